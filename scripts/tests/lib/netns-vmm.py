#!/usr/bin/env python3
"""netns-vmm: a stand-in for `vmm`, for tests only, on hosts that cannot boot Linux to init.

The agent starts it exactly as it starts the real vmm (`agent --vmm PATH`):

    netns-vmm.py --kernel K --cmdline C --vcpus N --mem-mib M --entry E --serial-log FILE
                 --api-sock SOCK --net tap=kec2tN,mac=MAC [--disk ...] [--rng] ...

Instead of a VM it makes a "guest" out of a network namespace:
- it opens the ENI's tap as the vmm does (TUNSETIFF, IFF_TAP | IFF_NO_PI on /dev/net/tun);
- it makes a guest network namespace holding `eth0` (one end of a veth pair, with the ENI's
  MAC), the other end (`wire-<tap>`) left unbridged in the agent's namespace with ARP and IPv6
  off, so that the agent's kernel never answers on it; frames are relayed both ways between
  the tap and a packet socket on that end, so the guest sits on the ENI as a VM's NIC would;
- it answers the control socket: `status` (running), `ctrl-alt-del` (the guest reboots: its
  processes end and the stand-in exits with `vmm: exit: guest requested a reset`), `stop`
  (`vmm: exit: stopped through the control API`), `pause`/`resume` (refused);
- it runs the image's real bootstrap (`usr/sbin/kec2-bootstrap` of the guest root) in the guest
  network namespace and a UTS namespace of its own (so that it sets "the guest's" host name),
  with ROOT= the guest root and its console on --serial-log. Every process left in the guest
  namespace (udhcpc, dropbear, httpd, what user-data started) ends with the "VM".

The guest root is `$NETNS_VMM_GUESTS/<instance id>/root`, or without that variable
`<instance dir>/guest-root` (the instance dir is the --api-sock's folder, under the agent's
state dir, mode 0700: too closed for httpd's www-data), copied on the first boot from
$NETNS_VMM_ROOTFS, and kept across reboots like a root volume;
its /run and /tmp are emptied at every boot as tmpfs would be. Guest namespaces are named
`$NETNS_VMM_PREFIX-<tap>` (prefix default `kec2g`), so that a test can find and remove leftovers.
Extra environment for the bootstrap: $NETNS_VMM_BOOTSTRAP_ENV (space-separated NAME=VALUE).

With $NETNS_VMM_INIT set, no root is prepared and no bootstrap runs: the guest is its network
namespace alone, and `sh -c "$NETNS_VMM_INIT"` runs in it as its init (console on --serial-log),
for tests that drive the guest's side themselves with `ip netns exec` (cloud-init-imds.sh).
"""

import argparse
import ctypes
import fcntl
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17
ETHTOOL_SSG = 0x19
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4

STARTED = time.monotonic()


def log(msg):
    """A line on stderr (the agent's vmm.log)."""
    print(f"netns-vmm: {msg}", file=sys.stderr, flush=True)


def run(*args, check=True):
    r = subprocess.run(list(args), stdin=subprocess.DEVNULL, capture_output=True, text=True)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def ethtool_tx_off(ifname):
    """Turns transmit checksum offload (and with it TSO/GSO's need for it) off on `ifname`, in
    the calling namespace: frames read from a packet socket on the veth's other end must carry
    complete checksums, as a VM's NIC would put on the wire."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for cmd in (ETHTOOL_STXCSUM, ETHTOOL_SSG):
        value = ctypes.create_string_buffer(struct.pack("II", cmd, 0), 8)
        ifr = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
        ifr += b"\0" * (40 - len(ifr))
        fcntl.ioctl(s.fileno(), SIOCETHTOOL, ifr)
    s.close()


def open_tap(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_CLOEXEC)
    ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI)
    ifr += b"\0" * (40 - len(ifr))
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def netns_pids(ns):
    r = run("ip", "netns", "pids", ns, check=False)
    return [int(p) for p in r.stdout.split() if p.isdigit()]


def kill_netns_processes(ns, grace=1.0):
    """Ends every process in namespace `ns`: SIGTERM, then SIGKILL for what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        pids = [p for p in netns_pids(ns) if p != os.getpid()]
        if not pids:
            return
        for p in pids:
            try:
                os.kill(p, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(p != os.getpid() for p in netns_pids(ns)):
            time.sleep(0.05)


def remove_netns(ns):
    if os.path.exists(f"/var/run/netns/{ns}"):
        kill_netns_processes(ns)
        run("ip", "netns", "del", ns, check=False)


def write_sysctl(key, value):
    try:
        with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
            f.write(value)
    except OSError as e:
        log(f"cannot set {key}: {e}")


class Guest:
    def __init__(self, args):
        self.args = args
        nets = [dict(kv.split("=", 1) for kv in n.split(",") if "=" in kv) for n in args.net]
        if not nets or "tap" not in nets[0] or "mac" not in nets[0]:
            raise SystemExit("vmm: error: netns-vmm needs --net tap=NAME,mac=MAC")
        self.tap_name = nets[0]["tap"]
        self.mac = nets[0]["mac"]
        self.ns = f"{os.environ.get('NETNS_VMM_PREFIX', 'kec2g')}-{self.tap_name}"
        self.wire = f"wire-{self.tap_name}"[:15]
        self.dir = os.path.dirname(os.path.abspath(args.api_sock))
        guests = os.environ.get("NETNS_VMM_GUESTS")
        if guests:
            self.root = os.path.join(guests, os.path.basename(self.dir), "root")
        else:
            self.root = os.path.join(self.dir, "guest-root")
        self.console = open(args.serial_log, "ab", buffering=0) if args.serial_log else None
        self.tap = None
        self.sock = None
        self.bootstrap = None
        self.stopping = threading.Event()
        self.lock = threading.Lock()
        self.done = False

    def say(self, line):
        if self.console:
            self.console.write((line + "\n").encode())

    # --- the wire -----------------------------------------------------------------------
    def plug(self):
        self.tap = open_tap(self.tap_name)
        remove_netns(self.ns)
        run("ip", "link", "del", self.wire, check=False)
        run("ip", "netns", "add", self.ns)
        run("ip", "link", "add", self.wire, "type", "veth", "peer", "name", "eth0", "netns", self.ns)
        run("ip", "-n", self.ns, "link", "set", "eth0", "address", self.mac)
        # The agent's side of the wire: no ARP, no IPv6, no addresses: the agent's kernel
        # neither answers nor speaks on it, only the relay reads it.
        write_sysctl(f"net.ipv6.conf.{self.wire}.disable_ipv6", "1")
        run("ip", "link", "set", self.wire, "arp", "off", "up")
        # The guest's side: IPv4 only (the image's kernel has no IPv6), complete checksums.
        run("ip", "netns", "exec", self.ns, "sh", "-c",
            "echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6; "
            "echo 1 >/proc/sys/net/ipv6/conf/default/disable_ipv6; "
            "echo 1 >/proc/sys/net/ipv6/conf/eth0/disable_ipv6", check=False)
        run("ip", "netns", "exec", self.ns, sys.executable, os.path.abspath(__file__),
            "--ethtool-tx-off", "eth0")
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.bind((self.wire, ETH_P_ALL))
        threading.Thread(target=self.tap_to_wire, daemon=True).start()
        threading.Thread(target=self.wire_to_tap, daemon=True).start()

    def tap_to_wire(self):
        while not self.stopping.is_set():
            try:
                frame = os.read(self.tap, 65536)
                if frame:
                    self.sock.send(frame)
            except OSError as e:
                if self.stopping.is_set():
                    return
                if e.errno in (100, 105):  # ENETDOWN, ENOBUFS: drop the frame, as a wire would
                    continue
                log(f"tap read/relay failed: {e}; the wire is cut")
                return

    def wire_to_tap(self):
        while not self.stopping.is_set():
            try:
                frame, addr = self.sock.recvfrom(65536)
                if addr[2] == PACKET_OUTGOING:
                    continue  # what we sent to the guest
                os.write(self.tap, frame)
            except OSError as e:
                if self.stopping.is_set():
                    return
                if e.errno in (5, 100, 105):  # EIO (tap down), ENETDOWN, ENOBUFS
                    continue
                log(f"wire read/relay failed: {e}; the wire is cut")
                return

    # --- the boot -----------------------------------------------------------------------
    def prepare_root(self):
        if not os.path.isdir(self.root):
            template = os.environ.get("NETNS_VMM_ROOTFS")
            if not template or not os.path.isdir(template):
                raise RuntimeError("NETNS_VMM_ROOTFS does not name the guest's root tree")
            tmp = self.root + ".tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            os.makedirs(os.path.dirname(self.root), exist_ok=True)
            run("cp", "-a", template, tmp)
            os.rename(tmp, self.root)
        for d in ("run", "tmp"):  # tmpfs in the guest: empty at every boot
            path = os.path.join(self.root, d)
            shutil.rmtree(path, ignore_errors=True)
            os.makedirs(path)
        os.chmod(os.path.join(self.root, "tmp"), 0o1777)

    def boot(self):
        init = os.environ.get("NETNS_VMM_INIT")
        if init:
            self.say(f"netns-vmm: a stand-in for the vmm (kernel {self.args.kernel} not booted)")
            self.say(f"netns-vmm: guest = network namespace {self.ns}, eth0 {self.mac} wired to "
                     f"{self.tap_name}; init: {init}")
            out = self.console if self.console else subprocess.DEVNULL
            self.bootstrap = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, "sh", "-c", init],
                stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/")
            threading.Thread(target=self.watch_bootstrap, daemon=True).start()
            return
        self.prepare_root()
        self.say(f"netns-vmm: a stand-in for the vmm (kernel {self.args.kernel} not booted)")
        self.say(f"netns-vmm: guest = network namespace {self.ns}, eth0 {self.mac} wired to "
                 f"{self.tap_name}, root {self.root}")
        self.say("kec2: netns-vmm up; running kec2-bootstrap")
        env = ["env", f"ROOT={self.root}", "KEC2_SET_HOSTNAME=1",
               "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
        env += os.environ.get("NETNS_VMM_BOOTSTRAP_ENV", "").split()
        out = self.console if self.console else subprocess.DEVNULL
        # As the image's rcS: the saved hostname, then the bootstrap, which sets the host name
        # itself; in a UTS namespace of the guest's own, so the host's name is never touched.
        rcs = 'busybox hostname -F "$ROOT/etc/hostname"; exec sh "$ROOT/usr/sbin/kec2-bootstrap"'
        self.bootstrap = subprocess.Popen(
            ["ip", "netns", "exec", self.ns, "unshare", "--uts"] + env + ["sh", "-c", rcs],
            stdin=subprocess.DEVNULL, stdout=out, stderr=out, cwd="/")
        threading.Thread(target=self.watch_bootstrap, daemon=True).start()

    def watch_bootstrap(self):
        status = self.bootstrap.wait()
        log(f"kec2-bootstrap exited {status}")

    # --- the end ------------------------------------------------------------------------
    def shut_down(self, reason):
        with self.lock:
            if self.done:
                return
            self.done = True
        self.stopping.set()
        if os.path.exists(f"/var/run/netns/{self.ns}"):
            kill_netns_processes(self.ns)
        if self.bootstrap and self.bootstrap.poll() is None:
            self.bootstrap.kill()
        run("ip", "link", "del", self.wire, check=False)
        remove_netns(self.ns)
        if self.tap is not None:
            os.close(self.tap)
        try:
            os.unlink(self.args.api_sock)
        except OSError:
            pass
        if reason:
            print(f"vmm: exit: {reason}", file=sys.stderr, flush=True)
        os._exit(0)

    # --- the control socket -------------------------------------------------------------
    def status(self):
        return {"state": "running", "vcpus": self.args.vcpus, "memory_mib": self.args.mem_mib,
                "entry": self.args.entry or "kernel",
                "uptime_ms": int((time.monotonic() - STARTED) * 1000), "pid": os.getpid(),
                "exits": {}, "devices": []}

    def serve(self):
        path = self.args.api_sock
        try:
            os.unlink(path)
        except OSError:
            pass
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(16)
        while True:
            conn, _ = srv.accept()
            threading.Thread(target=self.client, args=(conn,), daemon=True).start()

    def client(self, conn):
        with conn, conn.makefile("rwb") as f:
            for line in f:
                try:
                    action = json.loads(line).get("action")
                except (ValueError, AttributeError):
                    action = None
                after = None
                if action == "status":
                    answer = {"ok": True, "status": self.status()}
                elif action == "ctrl-alt-del":
                    answer = {"ok": True, "status": self.status()}
                    after = "ctrl-alt-del"
                elif action == "stop":
                    answer = {"ok": True, "status": self.status()}
                    after = "stop"
                else:
                    answer = {"ok": False, "error": f"netns-vmm does not do {action!r}"}
                f.write((json.dumps(answer) + "\n").encode())
                f.flush()
                if after == "ctrl-alt-del":
                    # busybox init: ::ctrlaltdel:/sbin/reboot, rcK, then a reset.
                    self.say("kec2: ctrl-alt-del: the system is going down for a reboot")
                    self.shut_down("guest requested a reset")
                elif after == "stop":
                    self.shut_down("stopped through the control API")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--ethtool-tx-off":
        ethtool_tx_off(sys.argv[2])
        return 0
    p = argparse.ArgumentParser(prog="netns-vmm")
    p.add_argument("--kernel", default="")
    p.add_argument("--initrd")
    p.add_argument("--cmdline", default="")
    p.add_argument("--vcpus", type=int, default=1)
    p.add_argument("--mem-mib", type=int, default=128)
    p.add_argument("--entry")
    p.add_argument("--serial-log")
    p.add_argument("--api-sock", required=True)
    p.add_argument("--net", action="append", default=[])
    args, _ignored = p.parse_known_args()
    guest = Guest(args)
    signal.signal(signal.SIGTERM, lambda *_: guest.shut_down(None))
    signal.signal(signal.SIGINT, lambda *_: guest.shut_down(None))
    try:
        guest.plug()
        threading.Thread(target=guest.serve, daemon=True).start()
        log(f"started {args.vcpus} vCPU(s), {args.mem_mib} MiB, pid {os.getpid()}: namespace "
            f"{guest.ns}, eth0 {guest.mac} wired to {guest.tap_name}")
        guest.boot()
    except Exception as e:  # noqa: BLE001 - any failure is the vmm's boot failure
        guest.stopping.set()
        run("ip", "link", "del", guest.wire, check=False)
        remove_netns(guest.ns)
        print(f"vmm: error: netns-vmm: {e}", file=sys.stderr, flush=True)
        return 1
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
