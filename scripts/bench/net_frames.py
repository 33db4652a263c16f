#!/usr/bin/env python3
"""virtio-net data path with raw frames: the probe against a veth pair.

Usage (as root): net_frames.py VMM PROBE_ELF [SIZE ...]
Prints one JSON object. For each frame size (Ethernet header included, no FCS; default 64,
1514 and 65549, the last a 64 KiB TCP/IPv4 segment sent with a virtio-net GSO header):
- probe_to_host: the probe's `probe.frames=tx,COUNT,SIZE` sends through the vmm and the tap;
  `rawframes recv` (an AF_PACKET socket, recvmmsg) counts them on the tap's host side;
- host_to_probe: `rawframes send` (AF_PACKET, sendmmsg) on the tap's host side; the probe's
  `probe.frames=rx,COUNT` counts them (plain sizes only: the probe takes no GSO frames);
- veth: the same sender in one namespace, the same receiver in another, over a veth pair.
Rates are frames (and MB) per second from the first frame received to the last, at the
receiving end; frames lost on the way are reported beside them. Each figure is the median of
NET_FRAMES_REPEAT (default 3) interleaved runs, whose rates are listed in `runs`; ratios are
of frames per second (of MB/s for GSO frames, which the veth path cuts into segments before
its receiver, while the tap hands them over whole). The helper rawframes.c is
compiled here with cc. Every namespace is created here and removed at the end.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NS = f"kec2-frames-{os.getpid()}"
COUNTS = {64: 1_000_000, 1514: 500_000, 65549: 20_000}
IDLE_MS = 2000
REPEAT = int(os.environ.get("NET_FRAMES_REPEAT", "3"))
LINE = re.compile(r"probe: frames (tx|rx) (\d+) frames (\d+) bytes (\d+) us (\d+) fps")


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def netns(ns, *args):
    return ["ip", "netns", "exec", ns, *args]


def build_helper(tmp):
    out = os.path.join(tmp, "rawframes")
    sh("cc", "-O2", "-Wall", "-o", out, os.path.join(HERE, "rawframes.c"))
    return out


def rate(result, size):
    """frames/s and MB/s (Ethernet frames' bytes) of a receiver's or sender's JSON result."""
    secs = result["seconds"]
    fps = result["frames"] / secs if secs > 0 else 0.0
    nbytes = result.get("bytes", result["frames"] * size)
    return {"fps": round(fps), "mbps": round(nbytes / secs / 1e6 if secs > 0 else 0.0, 1),
            "frames": result["frames"]}


def expected(count, size):
    """Frames a receiver waits for: GSO frames may arrive cut into segments, so for them it
    stops only when the frames stop."""
    return count if size <= 1514 else count * 1000


def lost(count, size, frames):
    return count - frames if size <= 1514 else None


def start_receiver(helper, ns, iface, count):
    recv = subprocess.Popen(netns(ns, helper, "recv", iface, str(count), str(IDLE_MS)),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if recv.stderr.readline().strip() != "ready":
        raise SystemExit(f"receiver did not start: {recv.stderr.read()}")
    return recv


def finish(proc, timeout=120):
    out, err = proc.communicate(timeout=timeout)
    if proc.returncode != 0:
        raise SystemExit(f"{proc.args} failed: {err}")
    return json.loads(out)


def quiet(ns, iface):
    """No IPv6 on the interface: its router solicitations would mix with the frames."""
    sh(*netns(ns, "sysctl", "-qw", f"net.ipv6.conf.{iface}.disable_ipv6=1"), check=False)


def with_tap(fn):
    sh("ip", "netns", "add", NS)
    try:
        sh(*netns(NS, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap"))
        quiet(NS, "tap0")
        sh(*netns(NS, "ip", "link", "set", "tap0", "up"))
        return fn()
    finally:
        sh("ip", "netns", "del", NS, check=False)


def run_vmm(vmm, probe, log, arg):
    return subprocess.Popen(
        netns(NS, vmm, "--kernel", probe, "--mem-mib", "256",
              "--net", "tap=tap0,mac=02:00:00:00:00:02", "--serial-log", log,
              "--cmdline", f"probe.frames={arg}"),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def probe_line(log, direction):
    text = open(log).read()
    for m in LINE.finditer(text):
        if m.group(1) == direction:
            frames, nbytes, micros = int(m.group(2)), int(m.group(3)), int(m.group(4))
            return {"frames": frames, "bytes": nbytes, "seconds": micros / 1e6}
    raise SystemExit(f"no `frames {direction}` line from the probe:\n{text[-2000:]}")


def probe_to_host(vmm, probe, helper, size, count):
    def go():
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "console.log")
            recv = start_receiver(helper, NS, "tap0", expected(count, size))
            vm = run_vmm(vmm, probe, log, f"tx,{count},{size}")
            try:
                vm.wait(timeout=180)
                host = finish(recv)
            finally:
                vm.kill()
                recv.kill()
            guest = probe_line(log, "tx")
        result = rate(host, size)
        result["lost"] = lost(count, size, host["frames"])
        result["probe_fps"] = rate(guest, size)["fps"]
        return result
    return with_tap(go)


def host_to_probe(vmm, probe, helper, size, count):
    def go():
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "console.log")
            vm = run_vmm(vmm, probe, log, f"rx,{count}")
            try:
                deadline = time.time() + 30
                while time.time() < deadline:
                    if os.path.exists(log) and "frames rx ready" in open(log).read():
                        break
                    time.sleep(0.05)
                sent = json.loads(sh(*netns(NS, helper, "send", "tap0", str(count), str(size))).stdout)
                vm.wait(timeout=180)
            finally:
                vm.kill()
            guest = probe_line(log, "rx")
        result = rate(guest, size)
        result["lost"] = count - guest["frames"]
        result["sender_fps"] = rate(sent, size)["fps"]
        return result
    return with_tap(go)


def veth(helper, size, count):
    peer = f"{NS}-p"
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "netns", "add", peer)
        sh(*netns(NS, "ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1"))
        sh(*netns(NS, "ip", "link", "set", "veth1", "netns", peer))
        quiet(NS, "veth0")
        quiet(peer, "veth1")
        sh(*netns(NS, "ip", "link", "set", "veth0", "up"))
        sh(*netns(peer, "ip", "link", "set", "veth1", "up"))
        recv = start_receiver(helper, peer, "veth1", expected(count, size))
        try:
            sent = json.loads(sh(*netns(NS, helper, "send", "veth0", str(count), str(size))).stdout)
            host = finish(recv)
        finally:
            recv.kill()
        result = rate(host, size)
        result["lost"] = lost(count, size, host["frames"])
        result["sender_fps"] = rate(sent, size)["fps"]
        return result
    finally:
        sh("ip", "netns", "del", peer, check=False)
        sh("ip", "netns", "del", NS, check=False)


def median(runs, size):
    """The run with the median rate (frames/s, or MB/s for GSO frames), with every run's rate."""
    key = "fps" if size <= 1514 else "mbps"
    ranked = sorted(runs, key=lambda r: r[key])
    chosen = dict(ranked[len(ranked) // 2])
    chosen["runs"] = [r[key] for r in runs]
    return chosen


def ratio(a, b, size):
    """Of frames per second; of MB/s for GSO frames, which a veth may see cut into segments."""
    key = "fps" if size <= 1514 else "mbps"
    return round(a[key] / b[key], 2) if b[key] else None


def main():
    vmm, probe = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    sizes = [int(s) for s in sys.argv[3:]] or sorted(COUNTS)
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        helper = build_helper(tmp)
        for size in sizes:
            count = COUNTS.get(size, 200_000)
            runs = {"veth": [], "probe_to_host": [], "host_to_probe": []}
            # Interleaved, so that the host's load weighs on every kind alike.
            for _ in range(REPEAT):
                runs["veth"].append(veth(helper, size, count))
                runs["probe_to_host"].append(probe_to_host(vmm, probe, helper, size, count))
                if size <= 1514:
                    runs["host_to_probe"].append(host_to_probe(vmm, probe, helper, size, count))
            entry = {"count": count, "repeat": REPEAT}
            entry.update({k: median(v, size) for k, v in runs.items() if v})
            entry["ratio_probe_to_host"] = ratio(entry["probe_to_host"], entry["veth"], size)
            if "host_to_probe" in entry:
                entry["ratio_host_to_probe"] = ratio(entry["host_to_probe"], entry["veth"], size)
            figures[str(size)] = entry
    print(json.dumps({"frames": figures}))


if __name__ == "__main__":
    main()
