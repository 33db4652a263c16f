#!/usr/bin/env python3
"""virtio benchmarks: the probe's disk and network throughput against the host's own.

Usage (as root): virtio_bench.py VMM PROBE_ELF [--engine io_uring|sync|default]
                 [--rounds N] [--only disk|net]
Prints one JSON object. Disk: the probe's `probe.disk=bench` against fio on the same file
(page cache kept warm for both, psync, 1 MiB sequential and 4 KiB random), with the vmm's
disk engine given (`--disk PATH,engine=E`; `default` passes none, for a vmm that has no
engines); with rounds, probe and fio alternate and the medians are kept. Network:
bytes the probe's TCP source sends over the tap to the host, against a TCP sender in a
network namespace over a veth pair. Every namespace is created here and removed at the end.
"""
import json
import os
import re
import subprocess
import sys
import tempfile
import time

NS = f"kec2-bench-{os.getpid()}"
TRANSFER = 256 << 20


def sh(*args, check=True):
    return subprocess.run(args, check=check, capture_output=True, text=True)


def probe_disk(vmm, probe, path, engine):
    disk = path if engine == "default" else f"{path},engine={engine}"
    out = subprocess.run(
        [vmm, "--kernel", probe, "--mem-mib", "128", "--disk", disk, "--cmdline", "probe.disk=bench"],
        capture_output=True, text=True, timeout=120,
    ).stdout
    figures = {}
    for name in ("seq-write", "seq-read", "rand-write", "rand-read"):
        m = re.search(rf"probe: disk bench {name} (\d+)", out)
        if not m:
            raise SystemExit(f"no {name} figure from the probe:\n{out}")
        figures[name] = int(m.group(1))
    return figures


def fio(path, rw, bs):
    out = sh("fio", "--name=b", f"--filename={path}", f"--rw={rw}", f"--bs={bs}", "--size=64M",
             "--ioengine=psync", "--invalidate=0", "--time_based", "--runtime=2", "--output-format=json").stdout
    job = json.loads(out)["jobs"][0]
    side = job["write"] if "write" in rw else job["read"]
    return side["bw_bytes"] / 1e6, side["iops"]


def host_disk(path):
    seq_w, _ = fio(path, "write", "1M")
    seq_r, _ = fio(path, "read", "1M")
    _, rand_w = fio(path, "randwrite", "4k")
    _, rand_r = fio(path, "randread", "4k")
    return {"seq-write": seq_w, "seq-read": seq_r, "rand-write": rand_w, "rand-read": rand_r}


RECEIVER = """
import json, socket, sys, time
s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
total, start = 0, time.perf_counter()
while True:
    data = s.recv(1 << 20)
    if not data:
        break
    total += len(data)
print(json.dumps({"bytes": total, "mbps": total / (time.perf_counter() - start) / 1e6}))
"""


def receive_all(host, port, ns):
    """Connects from inside namespace `ns` and counts bytes until the sender closes."""
    out = sh("ip", "netns", "exec", ns, sys.executable, "-c", RECEIVER, host, str(port)).stdout
    return json.loads(out)


def probe_net(vmm, probe):
    sh("ip", "netns", "add", NS)
    try:
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", NS, "ip", "tuntap", "add", "dev", "tap0", "mode", "tap")
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", "10.0.0.1/24", "dev", "tap0")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "tap0", "up")
        with tempfile.TemporaryDirectory() as tmp:
            log = os.path.join(tmp, "console.log")
            vm = subprocess.Popen(
                ["ip", "netns", "exec", NS, vmm, "--kernel", probe, "--mem-mib", "64",
                 "--net", "tap=tap0,mac=02:00:00:00:00:02", "--serial-log", log,
                 "--cmdline", f"probe.net=static:10.0.0.2/24,10.0.0.1 probe.source_bytes={TRANSFER}"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                deadline = time.time() + 20
                while time.time() < deadline:
                    if os.path.exists(log) and "probe: net serving" in open(log).read():
                        break
                    time.sleep(0.05)
                return receive_all("10.0.0.2", 19, NS)
            finally:
                vm.kill()
                vm.wait()
    finally:
        sh("ip", "netns", "del", NS, check=False)


def veth_net():
    sh("ip", "netns", "add", NS)
    peer = f"{NS}-p"
    try:
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")
        sh("ip", "netns", "exec", NS, "ip", "link", "add", "veth0", "type", "veth", "peer", "name", "veth1")
        sh("ip", "netns", "add", peer)
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "veth1", "netns", peer)
        sh("ip", "netns", "exec", NS, "ip", "addr", "add", "10.0.1.1/24", "dev", "veth0")
        sh("ip", "netns", "exec", NS, "ip", "link", "set", "veth0", "up")
        sh("ip", "netns", "exec", peer, "ip", "addr", "add", "10.0.1.2/24", "dev", "veth1")
        sh("ip", "netns", "exec", peer, "ip", "link", "set", "veth1", "up")
        sender = subprocess.Popen(
            ["ip", "netns", "exec", peer, sys.executable, "-c",
             "import socket\n"
             "s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             "s.bind(('10.0.1.2', 19)); s.listen(1); c,_=s.accept()\n"
             f"buf=b'x'*(1<<20)\nfor _ in range({TRANSFER >> 20}): c.sendall(buf)\n"
             "c.close()\n"])
        time.sleep(0.5)
        try:
            return receive_all("10.0.1.2", 19, NS)
        finally:
            sender.kill()
            sender.wait()
    finally:
        sh("ip", "netns", "del", peer, check=False)
        sh("ip", "netns", "del", NS, check=False)


def disk_rounds(vmm, probe, engine, rounds):
    """Probe and fio in turn, `rounds` times each; the medians."""
    guests, hosts = [], []
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        path = os.path.join(tmp, "disk.img")
        with open(path, "wb") as f:
            f.truncate(64 << 20)
        for _ in range(rounds):
            guests.append(probe_disk(vmm, probe, path, engine))
            hosts.append(host_disk(path))
    median = lambda xs: sorted(xs)[len(xs) // 2]
    disk = {}
    for k in guests[0]:
        g, h = median([x[k] for x in guests]), median([x[k] for x in hosts])
        disk[k] = {"probe": g, "host": round(h, 1), "ratio": round(g / h, 2)}
    disk["engine"] = engine
    disk["rounds"] = rounds
    return disk


def main():
    args = sys.argv[1:]
    opts = {"--engine": "default", "--rounds": "1", "--only": ""}
    pos = []
    while args:
        a = args.pop(0)
        if a in opts and args:
            opts[a] = args.pop(0)
        else:
            pos.append(a)
    vmm, probe = pos[0], pos[1]
    out = {}
    if opts["--only"] in ("", "disk"):
        out["disk"] = disk_rounds(vmm, probe, opts["--engine"], int(opts["--rounds"]))
    if opts["--only"] in ("", "net"):
        p = probe_net(vmm, probe)
        v = veth_net()
        out["net"] = {"probe_tap_mbps": round(p["mbps"], 1), "probe_bytes": p["bytes"],
                      "veth_mbps": round(v["mbps"], 1), "ratio": round(p["mbps"] / v["mbps"], 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
