//! The probe's network side: smoltcp over the virtio net driver, polled, with DHCP or a
//! static address. This file owns the [`Stack`] itself (interface, device glue, the poll
//! loop and its waits); the rest lives beside it:
//! - `netstack/services.rs`: the services of `probe.net=` / `probe.http=` (TCP echo on 7,
//!   HTTP on 80, discard sink on 9, chargen-like source on 19);
//! - `netstack/http_client.rs`: the blocking HTTP client and `probe.fetch=`;
//! - `netstack/ping.rs`: the pings of `probe.ping=`.
//!
//! Between polls the vCPU blocks on the wait port with smoltcp's `poll_delay` as the deadline,
//! or with none when smoltcp has no timer running (an idle stack: listening sockets and a bound
//! DHCP lease, whose renewal is half an hour away); a received packet, a finished transmission,
//! a key or a device error wakes it, so an idle probe costs no CPU and causes no VM exits.

use alloc::vec;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use smoltcp::iface::{Config, Interface, SocketHandle, SocketSet};
use smoltcp::socket::{dhcpv4, tcp};
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpCidr, Ipv4Cidr};

use crate::burn::{self, Burn, Step};
use crate::cmdline::NetConfig;
use crate::keyboard::Keyboard;
use crate::power;
use crate::say;
use crate::time::{self, Clock};
use crate::virtio::net::{MacDisplay, VirtioNet};
use crate::wait::{self, Wake};

mod http_client;
mod ping;
mod services;
#[cfg(test)]
mod tests;

pub use http_client::{HttpError, fetch};
pub use ping::{PING_INTERVAL_MS, PING_TRIES, PingOutcome, echo_reply_seq, ping_all};
pub use services::{ECHO_PORT, HTTP_PORT, SINK_PORT, SOURCE_PORT, fill_source, source_byte};

use http_client::EPHEMERAL_BASE;
use services::{Controls, Services};

/// Most smoltcp polls in one round before the wait (smoltcp sends one segment per socket per
/// poll, so a round of a busy source sends up to this many).
const MAX_ROUNDS: usize = 1024;
/// Longest interval between i8042 and InterruptStatus reads while the stack is busy.
const HOUSEKEEPING_MS: u64 = 20;
/// Longest wait for the device to finish transmissions when no transmit buffer is free.
const TX_FULL_WAIT_MICROS: u64 = 10_000;

/// A TCP socket with receive and transmit buffers of `rx` and `tx` bytes.
fn tcp_socket(rx: usize, tx: usize) -> tcp::Socket<'static> {
    tcp::Socket::new(
        tcp::SocketBuffer::new(vec![0; rx]),
        tcp::SocketBuffer::new(vec![0; tx]),
    )
}

/// The network stack: interface, device, sockets and services.
pub struct Stack {
    iface: Interface,
    dev: VirtioNet,
    sockets: SocketSet<'static>,
    clock: Clock,
    keyboard: Keyboard,
    dhcp: Option<SocketHandle>,
    services: Services,
    /// What the HTTP control paths change: the burn share and whether ARP is answered.
    controls: Controls,
    address: Option<Ipv4Cidr>,
    next_port: u16,
    /// When the i8042 and InterruptStatus are next read even without a device wake (TSC):
    /// both are register exits, kept off the per-packet path.
    next_housekeeping: u64,
    /// The last wait was ended by a device.
    woken: bool,
    announced: bool,
}

impl Stack {
    /// Brings up the interface on `dev` with `config` and arms the services.
    pub fn new(
        mut dev: VirtioNet,
        config: NetConfig,
        name: &[u8],
        source_bytes: u64,
        clock: Clock,
        keyboard: Keyboard,
    ) -> Self {
        let mac = dev.mac();
        say!("net mac {}", MacDisplay(mac));
        if dev.link_up() == Some(false) {
            say!("net link down");
        }
        let mut iface_config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        iface_config.random_seed = time::now()
            ^ u64::from_le_bytes([0, 0, mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]]);
        let now = instant(clock, time::now());
        let iface = Interface::new(iface_config, &mut dev, now);
        let mut sockets = SocketSet::new(Vec::new());
        let services = Services::new(&mut sockets, name.to_vec(), source_bytes, clock);
        let mut stack = Self {
            iface,
            dev,
            sockets,
            clock,
            keyboard,
            dhcp: None,
            services,
            controls: Controls::new(&burn::SHARED),
            address: None,
            next_port: EPHEMERAL_BASE + (time::now() % 8192) as u16,
            next_housekeeping: 0,
            woken: false,
            announced: false,
        };
        match config {
            NetConfig::Dhcp => {
                stack.dhcp = Some(stack.sockets.add(dhcpv4::Socket::new()));
            }
            NetConfig::Static { cidr, gateway } => {
                let cidr = Ipv4Cidr::new(Ipv4Addr::from(cidr.addr), cidr.prefix);
                let gateway = gateway.map(Ipv4Addr::from);
                stack.configure(cidr, gateway);
                say!("net static {cidr} gw {}", GatewayDisplay(gateway));
            }
        }
        stack
    }

    /// The clock the stack keeps time with.
    pub fn clock(&self) -> Clock {
        self.clock
    }

    /// The interface address, once there is one.
    pub fn address(&self) -> Option<Ipv4Cidr> {
        self.address
    }

    fn configure(&mut self, cidr: Ipv4Cidr, gateway: Option<Ipv4Addr>) {
        self.iface.update_ip_addrs(|addrs| {
            addrs.clear();
            let _ = addrs.push(IpCidr::Ipv4(cidr));
        });
        self.iface.routes_mut().remove_default_ipv4_route();
        if let Some(gw) = gateway {
            let _ = self.iface.routes_mut().add_default_ipv4_route(gw);
        }
        self.address = Some(cidr);
    }

    fn deconfigure(&mut self) {
        self.iface.update_ip_addrs(|addrs| addrs.clear());
        self.iface.routes_mut().remove_default_ipv4_route();
        self.address = None;
    }

    fn now(&self) -> Instant {
        instant(self.clock, time::now())
    }

    /// The name the HTTP responder on port 80 answers with from now on.
    pub fn set_http_name(&mut self, name: &[u8]) {
        self.services.set_name(name);
    }

    /// Burns at `burn`'s share (and lets `GET /burn/<PCT>` set it) instead of the probe's
    /// shared one (for tests, which run several stacks in one process).
    pub fn use_burn(&mut self, burn: &'static Burn) {
        self.controls.burn = burn;
    }

    /// Answers ARP requests for the probe's address (true, the default) or drops them before
    /// smoltcp sees them; prints `probe: arp on|off` on a change.
    pub fn set_answer_arp(&mut self, on: bool) {
        self.controls.set_answer_arp(on);
    }

    /// Keeps the stack running (services included) for `millis` milliseconds.
    pub fn pause(&mut self, millis: u64) {
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(millis));
        loop {
            let now = time::now();
            if now >= deadline {
                return;
            }
            let left = self.clock.micros_ceil(deadline - now);
            self.poll_within(true, Some(left));
        }
    }

    /// One round: keyboard, smoltcp, DHCP, services, device notifications; then, if `block`,
    /// wait on the wait port until a packet arrives or smoltcp next needs polling.
    pub fn poll(&mut self, block: bool) {
        self.poll_within(block, None);
    }

    /// [`Stack::poll`], waiting at most `max_wait_micros` (`None`: as long as smoltcp allows).
    fn poll_within(&mut self, block: bool, max_wait_micros: Option<u64>) {
        let now = time::now();
        // A device error raises the config-change interrupt, which wakes the wait; a used
        // entry the driver rejected is flagged as it is read. Either is seen here.
        if self.woken || self.dev.bad_used {
            self.check_device();
        }
        if self.woken || now >= self.next_housekeeping {
            // A key press wakes the wait, so checking after device wakes (and now and then
            // while busy) is enough; likewise for acknowledging the device's interrupt bits.
            self.next_housekeeping =
                now.saturating_add(self.clock.ticks_from_millis(HOUSEKEEPING_MS));
            self.woken = false;
            if let Some(request) = self.keyboard.poll() {
                power::shut_down(request);
            }
            self.dev.mmio().ack_interrupt();
        }
        let ignored = match (self.controls.answer_arp, self.address) {
            (false, Some(cidr)) => Some(cidr.address().octets()),
            _ => None,
        };
        self.dev.ignore_arp_requests_for(ignored);
        for _ in 0..MAX_ROUNDS {
            let now = self.now();
            let changed = self.iface.poll(now, &mut self.dev, &mut self.sockets)
                != smoltcp::iface::PollResult::None;
            self.poll_dhcp();
            let busy = self
                .services
                .run(&mut self.sockets, time::now(), &mut self.controls);
            if !changed && !busy {
                break;
            }
        }
        // Send what the services queued in the last round.
        let now = self.now();
        self.iface.poll(now, &mut self.dev, &mut self.sockets);
        self.dev.flush();
        if self.address.is_some() && !self.announced {
            self.announced = true;
            say!("net serving");
        }
        if block {
            self.wait_idle(max_wait_micros);
        }
    }

    /// Blocks on the wait port until a device has work (a packet, a finished transmission, a
    /// key) or smoltcp next needs polling, at most `max_wait_micros` (`None`: no limit of the
    /// caller's); returns at once if a received frame is waiting. While burning, it returns at
    /// once in the busy part of each window (the caller polls again: vCPU 0 burns by serving)
    /// and waits at most until the next window otherwise. With no deadline at all it waits for
    /// a device alone.
    fn wait_idle(&mut self, max_wait_micros: Option<u64>) {
        if self.dev.rx_pending() {
            return;
        }
        let tsc = time::now();
        let window = self.clock.ticks_from_millis(burn::WINDOW_MS);
        let max_wait_micros = match burn::step(self.controls.burn.share(), tsc, window) {
            Step::Spin { .. } => return,
            Step::Idle { until: Some(next) } => earliest(
                max_wait_micros,
                Some(self.clock.micros_ceil(next.saturating_sub(tsc))),
            ),
            Step::Idle { until: None } => max_wait_micros,
        };
        let now = self.now();
        let smoltcp = self
            .iface
            .poll_delay(now, &self.sockets)
            .map(|d| d.total_micros());
        let Some(delay) = earliest(max_wait_micros, smoltcp) else {
            self.woken = wait::wait_for_device() == Wake::Device;
            return;
        };
        // With every transmit buffer held by the device, wait for it to send some (its
        // completion wakes the wait).
        let delay = if delay == 0 && self.dev.tx_full() {
            TX_FULL_WAIT_MICROS
        } else {
            delay
        };
        if delay == 0 {
            return;
        }
        self.woken = wait::wait_micros(delay) == Wake::Device;
    }

    /// Reinitialises the device if it reports `DEVICE_NEEDS_RESET` or sent a bad used entry.
    fn check_device(&mut self) {
        if self.dev.mmio().needs_reset() || self.dev.bad_used {
            say!("net needs reset");
            // Reinitialise the device in place; if that fails there is no network left.
            match self.dev.reinit() {
                Ok(()) => {}
                Err(e) => {
                    say!("net reinit failed: {e}");
                    power::power_off(power::FAILURE);
                }
            }
        }
    }

    fn poll_dhcp(&mut self) {
        let Some(handle) = self.dhcp else { return };
        let event = self.sockets.get_mut::<dhcpv4::Socket>(handle).poll();
        match event {
            Some(dhcpv4::Event::Configured(config)) => {
                let (cidr, router) = (config.address, config.router);
                self.configure(cidr, router);
                say!("net dhcp {cidr} gw {}", GatewayDisplay(router));
            }
            Some(dhcpv4::Event::Deconfigured) => {
                if self.address.is_some() {
                    say!("net dhcp lease lost");
                }
                self.deconfigure();
            }
            None => {}
        }
    }

    /// Polls until the interface has an address or `timeout_ms` pass; true if it has one.
    /// It waits only while nothing changed: the poll that configures the address returns
    /// before blocking on the (half-hour) timer of the lease just bound.
    pub fn wait_for_address(&mut self, timeout_ms: u64) -> bool {
        let deadline = time::now().saturating_add(self.clock.ticks_from_millis(timeout_ms));
        loop {
            self.poll(false);
            if self.address.is_some() {
                return true;
            }
            let now = time::now();
            if now >= deadline {
                return false;
            }
            self.wait_idle(Some(self.clock.micros_ceil(deadline - now)));
        }
    }

    /// Serves until the VM is stopped.
    pub fn serve_forever(&mut self) -> ! {
        loop {
            self.poll(true);
        }
    }
}

/// The sooner of two optional waits (`None` is no limit).
fn earliest(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// smoltcp's time from a TSC reading.
pub fn instant(clock: Clock, ticks: u64) -> Instant {
    let micros = u128::from(ticks) * 1000 / u128::from(clock.khz());
    Instant::from_micros(i64::try_from(micros).unwrap_or(i64::MAX))
}

/// A gateway for console lines: the address or `none`.
struct GatewayDisplay(Option<Ipv4Addr>);

impl core::fmt::Display for GatewayDisplay {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            Some(gw) => write!(f, "{gw}"),
            None => f.write_str("none"),
        }
    }
}
