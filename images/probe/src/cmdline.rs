//! The probe's command-line parameters: their keys, the lookup of a `key=value` word, and
//! [`Options`], the disk and network options of a command line. The rest lives beside it:
//! - `cmdline/values.rs`: the typed values of single parameters ([`Mode`], [`DiskMode`],
//!   [`ImdsVersion`], [`NetConfig`]);
//! - `cmdline/parse.rs`: parsers for numbers, sizes and addresses;
//! - `cmdline/virtio_mmio.rs`: the `virtio_mmio.device=` announcements.

mod parse;
mod values;
mod virtio_mmio;

pub use parse::{parse_hex, parse_ipv4, parse_percent, parse_ping_targets, parse_size, parse_u64};
pub use values::{DiskMode, ImdsVersion, Ipv4Cidr, Mode, NetConfig};
pub use virtio_mmio::{VirtioMmioDevice, virtio_mmio_devices};

/// The parameter that selects what vCPU 0 does.
pub const MODE_KEY: &[u8] = b"probe.mode";
/// `probe.disk=`: what the probe does with the first virtio block device.
pub const DISK_KEY: &[u8] = b"probe.disk";
/// `probe.net=`: `dhcp` or `static:IP/PREFIX,GATEWAY`.
pub const NET_KEY: &[u8] = b"probe.net";
/// `probe.http=`: the name the HTTP responder on port 80 answers with.
pub const HTTP_KEY: &[u8] = b"probe.http";
/// `probe.fetch=`: an `http://IP[:PORT]/PATH` URL fetched once the address is up.
pub const FETCH_KEY: &[u8] = b"probe.fetch";
/// `probe.source_bytes=`: bytes the TCP source on port 19 sends per connection.
pub const SOURCE_BYTES_KEY: &[u8] = b"probe.source_bytes";
/// `probe.imds=`: `v1` or `v2`, fetch the instance metadata once the address is up.
pub const IMDS_KEY: &[u8] = b"probe.imds";
/// `probe.imds_bench=`: sequential metadata GETs timed after the fetch.
pub const IMDS_BENCH_KEY: &[u8] = b"probe.imds_bench";
/// `probe.ping=`: `IP[,IP...]`, pinged once the address is up (after the metadata fetch).
pub const PING_KEY: &[u8] = b"probe.ping";
/// `probe.burn=`: the share (0 to 100) of each vCPU kept busy (`burn.rs`).
pub const BURN_KEY: &[u8] = b"probe.burn";
/// `probe.arp=`: `on` (the default) or `off`, whether the probe answers ARP requests.
pub const ARP_KEY: &[u8] = b"probe.arp";
/// The `probe.http=` value that makes the responder answer with the instance-id from IMDS.
pub const HTTP_FROM_IMDS: &[u8] = b"imds";
/// What the responder answers under `probe.http=imds` until the metadata fetch has ended.
pub const IMDS_PENDING_NAME: &[u8] = b"imds-pending";
/// What it answers afterwards if IMDS gave no instance-id.
pub const IMDS_UNAVAILABLE_NAME: &[u8] = b"imds-unavailable";
/// Most GETs `probe.imds_bench=` accepts.
pub const MAX_IMDS_BENCH: u32 = 1_000_000;
/// The Linux-style virtio-mmio device announcement: `virtio_mmio.device=SIZE@BASE:IRQ`.
pub const VIRTIO_MMIO_KEY: &[u8] = b"virtio_mmio.device";

/// `on` is true, `off` false, anything else `None`.
pub fn parse_on_off(value: &[u8]) -> Option<bool> {
    match value {
        b"on" => Some(true),
        b"off" => Some(false),
        _ => None,
    }
}

/// The value of the last `key=value` word of `cmdline` (words are separated by ASCII
/// whitespace); `None` if no word has that key. A bare `key` (without `=`) does not count.
pub fn param<'a>(cmdline: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    cmdline
        .split(u8::is_ascii_whitespace)
        .filter_map(|word| word.strip_prefix(key)?.strip_prefix(b"="))
        .next_back()
}

/// The values of every `key=value` word of `cmdline`, in order.
pub fn all_params<'a>(cmdline: &'a [u8], key: &'a [u8]) -> impl Iterator<Item = &'a [u8]> {
    cmdline
        .split(u8::is_ascii_whitespace)
        .filter_map(move |word| word.strip_prefix(key)?.strip_prefix(b"="))
}

/// The disk and network options of the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options<'a> {
    /// `probe.mode=`, if given.
    pub mode: Option<&'a [u8]>,
    /// `probe.disk=`, if given.
    pub disk: Option<DiskMode<'a>>,
    /// `probe.net=`, raw (parse with [`NetConfig::parse`]).
    pub net: Option<&'a [u8]>,
    /// `probe.http=`, if given.
    pub http: Option<&'a [u8]>,
    /// `probe.fetch=`, if given.
    pub fetch: Option<&'a [u8]>,
    /// `probe.source_bytes=`, raw.
    pub source_bytes: Option<&'a [u8]>,
    /// `probe.imds=`, raw (see [`Options::imds`]).
    pub imds: Option<&'a [u8]>,
    /// `probe.imds_bench=`, raw (see [`Options::imds_bench`]).
    pub imds_bench: Option<&'a [u8]>,
    /// `probe.ping=`, raw (parse with [`parse_ping_targets`]).
    pub ping: Option<&'a [u8]>,
    /// `probe.burn=`, raw (see [`Options::burn`]).
    pub burn: Option<&'a [u8]>,
    /// `probe.arp=`, raw (see [`Options::answer_arp`]).
    pub arp: Option<&'a [u8]>,
}

/// Bytes the TCP source sends per connection unless `probe.source_bytes=` says otherwise.
pub const DEFAULT_SOURCE_BYTES: u64 = 64 << 20;

impl<'a> Options<'a> {
    /// The options of `cmdline` (the last of each key wins).
    pub fn from_cmdline(cmdline: &'a [u8]) -> Self {
        Self {
            mode: param(cmdline, MODE_KEY),
            disk: param(cmdline, DISK_KEY).map(DiskMode::from_value),
            net: param(cmdline, NET_KEY),
            http: param(cmdline, HTTP_KEY),
            fetch: param(cmdline, FETCH_KEY),
            source_bytes: param(cmdline, SOURCE_BYTES_KEY),
            imds: param(cmdline, IMDS_KEY),
            imds_bench: param(cmdline, IMDS_BENCH_KEY),
            ping: param(cmdline, PING_KEY),
            burn: param(cmdline, BURN_KEY),
            arp: param(cmdline, ARP_KEY),
        }
    }

    /// The share of `probe.burn=` (`None` if absent); `Err` with the value if it is not an
    /// integer from 0 to 100.
    pub fn burn(&self) -> Result<Option<u8>, &'a [u8]> {
        self.burn
            .map(|value| parse_percent(value).ok_or(value))
            .transpose()
    }

    /// Whether `probe.arp=` lets the probe answer ARP requests (`None` if absent); `Err` with
    /// the value if it is neither `on` nor `off`.
    pub fn answer_arp(&self) -> Result<Option<bool>, &'a [u8]> {
        self.arp
            .map(|value| parse_on_off(value).ok_or(value))
            .transpose()
    }

    /// True when the probe should bring up the network and serve.
    pub fn wants_net(&self) -> bool {
        self.net.is_some()
            || self.http.is_some()
            || self.imds.is_some()
            || self.imds_bench.is_some()
            || self.ping.is_some()
    }

    /// True for `probe.http=imds`: the responder answers with the instance-id from IMDS.
    pub fn http_from_imds(&self) -> bool {
        self.http == Some(HTTP_FROM_IMDS)
    }

    /// The metadata fetch asked for: `None` if none; else the version of `probe.imds=`, or
    /// v2 when only `probe.http=imds` or `probe.imds_bench=` implies the fetch; `Err` with the
    /// value if `probe.imds=` is neither `v1` nor `v2`.
    pub fn imds(&self) -> Option<Result<ImdsVersion, &'a [u8]>> {
        match self.imds {
            Some(value) => Some(ImdsVersion::from_value(value).ok_or(value)),
            None if self.http_from_imds() || self.imds_bench.is_some() => Some(Ok(ImdsVersion::V2)),
            None => None,
        }
    }

    /// The number of timed GETs of `probe.imds_bench=` (0 if absent); `Err` with the value if
    /// it is not a number up to [`MAX_IMDS_BENCH`].
    pub fn imds_bench(&self) -> Result<u32, &'a [u8]> {
        match self.imds_bench {
            None => Ok(0),
            Some(value) => parse_u64(value)
                .and_then(|n| u32::try_from(n).ok())
                .filter(|&n| n <= MAX_IMDS_BENCH)
                .ok_or(value),
        }
    }

    /// True when only the classic `probe.mode=` behaviour applies (no disk or net options).
    pub fn classic(&self) -> bool {
        self.disk.is_none() && !self.wants_net()
    }

    /// The size accepted by `probe.source_bytes=` (with K/M/G suffixes), or the default.
    pub fn source_bytes(&self) -> Option<u64> {
        match self.source_bytes {
            None => Some(DEFAULT_SOURCE_BYTES),
            Some(value) => parse_size(value),
        }
    }

    /// The name the HTTP responder starts with: `probe.http=`, else `probe`; under
    /// `probe.http=imds`, [`IMDS_PENDING_NAME`] until the fetch sets the instance-id.
    pub fn http_name(&self) -> &'a [u8] {
        if self.http_from_imds() {
            return IMDS_PENDING_NAME;
        }
        self.http.unwrap_or(b"probe")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options() {
        let o = Options::from_cmdline(b"probe.disk=verify probe.net=dhcp probe.http=web-1");
        assert_eq!(o.disk, Some(DiskMode::Verify));
        assert_eq!(o.net, Some(&b"dhcp"[..]));
        assert_eq!(o.http_name(), b"web-1");
        assert!(o.wants_net() && !o.classic());
        assert_eq!(o.source_bytes(), Some(DEFAULT_SOURCE_BYTES));
        assert_eq!(o.mode, None);

        let o = Options::from_cmdline(b"probe.mode=count");
        assert!(o.classic());
        assert_eq!(o.mode, Some(&b"count"[..]));

        let o = Options::from_cmdline(b"probe.http=x probe.source_bytes=1M");
        assert!(o.wants_net());
        assert_eq!(o.source_bytes(), Some(1 << 20));
        let o = Options::from_cmdline(b"probe.net=static:10.0.0.2/24,10.0.0.1");
        assert_eq!(o.http_name(), b"probe");
        assert_eq!(
            Options::from_cmdline(b"probe.source_bytes=x").source_bytes(),
            None
        );
    }

    #[test]
    fn parses_imds_options() {
        let o = Options::from_cmdline(b"probe.imds=v1");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V1)));
        assert!(o.wants_net() && !o.http_from_imds());
        assert_eq!(o.http_name(), b"probe");
        assert_eq!(o.imds_bench(), Ok(0));

        let o = Options::from_cmdline(b"probe.net=dhcp probe.imds=v2");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));

        // probe.http=imds implies the fetch, v2 unless probe.imds says v1.
        let o = Options::from_cmdline(b"probe.http=imds");
        assert!(o.http_from_imds() && o.wants_net());
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));
        assert_eq!(o.http_name(), IMDS_PENDING_NAME);
        let o = Options::from_cmdline(b"probe.http=imds probe.imds=v1");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V1)));

        // So does probe.imds_bench=; the last value wins.
        let o = Options::from_cmdline(b"probe.imds_bench=10 probe.imds_bench=250");
        assert_eq!(o.imds(), Some(Ok(ImdsVersion::V2)));
        assert_eq!(o.imds_bench(), Ok(250));
        assert!(o.wants_net());
        assert_eq!(o.imds, None, "probe.imds_bench is not probe.imds");

        for bad in [&b"x"[..], b"-1", b"", b"1000001", b"99999999999"] {
            let mut line = b"probe.imds_bench=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(
                Options::from_cmdline(&line).imds_bench(),
                Err(bad),
                "{bad:?}"
            );
        }
        assert_eq!(
            Options::from_cmdline(b"probe.imds_bench=1000000").imds_bench(),
            Ok(MAX_IMDS_BENCH)
        );
        for bad in [&b"V2"[..], b"v3", b"", b"2"] {
            let mut line = b"probe.imds=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(
                Options::from_cmdline(&line).imds(),
                Some(Err(bad)),
                "{bad:?}"
            );
        }

        // Other names are plain names, and nothing asks for the fetch.
        let o = Options::from_cmdline(b"probe.http=imds-1 probe.net=dhcp");
        assert_eq!(o.imds(), None);
        assert_eq!(o.http_name(), b"imds-1");
        assert_eq!(Options::from_cmdline(b"probe.mode=count").imds(), None);
    }

    #[test]
    fn ping_alone_brings_the_network_up() {
        // probe.ping= alone brings the network up (DHCP); the last one wins.
        let o = Options::from_cmdline(b"probe.ping=10.0.0.9 probe.ping=10.0.0.1,10.0.0.3");
        assert!(o.wants_net() && !o.classic());
        assert_eq!(o.ping, Some(&b"10.0.0.1,10.0.0.3"[..]));
        assert_eq!(o.imds(), None);
        assert_eq!(Options::from_cmdline(b"probe.net=dhcp").ping, None);
    }

    #[test]
    fn parses_burn_and_arp() {
        let o = Options::from_cmdline(b"probe.burn=20 probe.burn=50 probe.arp=off");
        assert_eq!(o.burn(), Ok(Some(50)));
        assert_eq!(o.answer_arp(), Ok(Some(false)));
        // Neither brings the network up, nor leaves the classic modes.
        assert!(!o.wants_net() && o.classic());
        let o = Options::from_cmdline(b"probe.net=dhcp probe.arp=on probe.burn=0");
        assert_eq!((o.burn(), o.answer_arp()), (Ok(Some(0)), Ok(Some(true))));
        let o = Options::from_cmdline(b"probe.net=dhcp");
        assert_eq!((o.burn(), o.answer_arp()), (Ok(None), Ok(None)));
        for bad in [
            &b""[..],
            b"101",
            b"-5",
            b"50%",
            b"x",
            b"1000000000000000000000",
        ] {
            let mut line = b"probe.burn=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(Options::from_cmdline(&line).burn(), Err(bad), "{bad:?}");
        }
        for bad in [&b""[..], b"OFF", b"1", b"no"] {
            let mut line = b"probe.arp=".to_vec();
            line.extend_from_slice(bad);
            assert_eq!(
                Options::from_cmdline(&line).answer_arp(),
                Err(bad),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn finds_the_last_value() {
        let line = b"console=ttyS0 probe.mode=count  reboot=k\tprobe.mode=poweroff";
        assert_eq!(param(line, b"probe.mode"), Some(&b"poweroff"[..]));
        assert_eq!(param(line, b"console"), Some(&b"ttyS0"[..]));
        assert_eq!(param(line, b"reboot"), Some(&b"k"[..]));
        assert_eq!(param(line, b"probe"), None);
        assert_eq!(param(b"probe.mode probe.modex=1", b"probe.mode"), None);
        assert_eq!(param(b"probe.mode=", b"probe.mode"), Some(&b""[..]));
        assert_eq!(param(b"", b"probe.mode"), None);
    }
}
