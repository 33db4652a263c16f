#!/usr/bin/env bash
# A smoke test of the guest bootstrap (kec2-bootstrap) as an ordinary host process, on the
# files of the built root volume (unpacked with debugfs into a temporary root, ROOT=that root),
# through two network namespaces joined by a veth pair:
#   server side: busybox udhcpd (10.0.0.0/24, router 10.0.0.1) and a small IMDSv2 stand-in on
#                169.254.169.254:80 (tokens required; instance-id, local-hostname, public key,
#                user-data script);
#   client side: eth0, where the bootstrap runs DHCP, IMDS, the key, user-data, dropbear, httpd.
# user-data leaves a daemon behind, which must not hold the boot up.
# Then a "reboot" (services stopped, the bootstrap run again): user-data must not run again;
# then a new instance id on the same root volume: user-data runs once more.
# The DHCP and IMDS here are small stand-ins, so that this checks the files of the built root
# volume and a new instance id on the same volume, which the agent cannot give. The same steps
# against the agent's own DHCP and IMDS, through an instance's tap, are
# scripts/tests/bootstrap-live.sh.
#
#   images/linux/bootstrap-test.sh ROOTFS.ext4
#
# Prints "PASS bootstrap" or "FAIL bootstrap: <reason>" and exits 0 or 1. Root only.
set -euo pipefail

NAME=bootstrap
rootfs="${1:-}"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
srv="kec2-bs-srv-$$"
cli="kec2-bs-cli-$$"
pids=()

fail() {
  echo "FAIL $NAME: $*"
  for f in wget.err bootstrap.out imds.log udhcpd.log root/var/log/cloud-init-output.log; do
    [[ -s $tmp/$f ]] && { echo "--- $f (last 20 lines) ---"; tail -n 20 "$tmp/$f"; }
  done
  exit 1
}

# stop_services: ends what the bootstrap started in the temporary root, by their pid files.
stop_services() {
  local f p
  for f in "$tmp"/root/run/kec2/*.pid; do
    [[ -f $f ]] || continue
    p=$(cat "$f")
    [[ $p =~ ^[0-9]+$ ]] && kill "$p" 2>/dev/null || true
    rm -f "$f"
  done
}

cleanup() {
  stop_services
  local p
  # The daemon user-data leaves behind (it must not hold the bootstrap up).
  for p in $(cat "$tmp/root/root/user-data-daemons" 2>/dev/null); do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  ip netns del "$cli" 2>/dev/null || true
  ip netns del "$srv" 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[[ -f $rootfs ]] || fail "usage: $0 ROOTFS.ext4"
[[ $(id -u) -eq 0 ]] || fail "needs root (network namespaces, file owners)"
for tool in debugfs busybox dropbear dropbearkey python3 ip; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing"
done

mkdir "$tmp/root"
debugfs -R "rdump / $tmp/root" "$rootfs" >/dev/null 2>&1 || fail "debugfs cannot unpack $rootfs"
[[ -x $tmp/root/usr/sbin/kec2-bootstrap ]] || fail "the root volume has no executable /usr/sbin/kec2-bootstrap"
mkdir -p "$tmp/root/run" "$tmp/root/tmp"

# The namespaces and the link between them.
ip netns add "$srv" && ip netns add "$cli" || fail "cannot create network namespaces"
ip link add bs-srv netns "$srv" type veth peer name eth0 netns "$cli" || fail "cannot create the veth pair"
ip -n "$srv" link set lo up
ip -n "$srv" link set bs-srv up
ip -n "$srv" addr add 10.0.0.1/24 dev bs-srv
ip -n "$srv" addr add 169.254.169.254/32 dev bs-srv
ip -n "$cli" link set lo up

# DHCP: busybox udhcpd.
cat >"$tmp/udhcpd.conf" <<EOF
interface bs-srv
start 10.0.0.10
end 10.0.0.20
lease_file $tmp/udhcpd.leases
pidfile $tmp/udhcpd.pid
opt subnet 255.255.255.0
opt router 10.0.0.1
opt dns 10.0.0.1
opt lease 3600
EOF
touch "$tmp/udhcpd.leases"
ip netns exec "$srv" busybox udhcpd -f "$tmp/udhcpd.conf" >"$tmp/udhcpd.log" 2>&1 &
pids+=($!)

# IMDS: IMDSv2 tokens required; the instance id is read from a file so the test can change it.
dropbearkey -t ed25519 -f "$tmp/client_key" >/dev/null 2>&1 || fail "dropbearkey failed"
pubkey=$(dropbearkey -y -f "$tmp/client_key" | grep '^ssh-ed25519 ')
echo "i-0123456789abcdef0" >"$tmp/instance-id"
printf '%s\n' "$pubkey" >"$tmp/openssh-key"
cat >"$tmp/user-data" <<'EOF'
#!/bin/sh
echo "hello from user-data"
echo ran >>"$HOME/user-data-runs"
sleep 600 &
echo $! >>"$HOME/user-data-daemons"
EOF
cat >"$tmp/imds.py" <<'EOF'
import http.server, sys, os
d = sys.argv[1]
TOKEN = "kec2-test-token"
def data(path):
    files = {"/latest/meta-data/instance-id": "instance-id",
             "/latest/meta-data/public-keys/0/openssh-key": "openssh-key",
             "/latest/user-data": "user-data"}
    if path == "/latest/meta-data/local-hostname":
        return b"ip-10-0-0-5.ec2.internal"
    if path in files:
        return open(os.path.join(d, files[path]), "rb").read()
    return None
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def reply(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_PUT(self):
        ttl = self.headers.get("X-aws-ec2-metadata-token-ttl-seconds", "")
        if self.path == "/latest/api/token" and ttl.isdigit() and 1 <= int(ttl) <= 21600:
            self.reply(200, TOKEN.encode())
        else:
            self.reply(400, b"")
    def do_GET(self):
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, b"")
        body = data(self.path)
        self.reply(200, body) if body is not None else self.reply(404, b"")
http.server.ThreadingHTTPServer(("169.254.169.254", 80), H).serve_forever()
EOF
ip netns exec "$srv" python3 "$tmp/imds.py" "$tmp" >"$tmp/imds.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  grep -q . "$tmp/udhcpd.pid" 2>/dev/null && ip netns exec "$srv" busybox nc -w 1 169.254.169.254 80 </dev/null 2>/dev/null && break
  sleep 0.1
done

# bootstrap: one boot of the temporary root, its console in bootstrap.out.
bootstrap() {
  ip netns exec "$cli" env ROOT="$tmp/root" KEC2_IMDS_TRIES=10 \
    "$tmp/root/usr/sbin/kec2-bootstrap" >"$tmp/bootstrap.out" 2>&1 || fail "kec2-bootstrap exited $?"
  grep -qx 'kec2-bootstrap: bootstrap finished' "$tmp/bootstrap.out" || fail "no 'bootstrap finished' line"
}
said() { grep -qF "$1" "$tmp/bootstrap.out" || fail "the bootstrap did not say '$1'"; }
runs() { wc -l <"$tmp/root/root/user-data-runs" 2>/dev/null || echo 0; }
mode_owner() { stat -c '%a %u:%g' "$1"; }

# First boot.
bootstrap
ip="$(sed -n "s/^DHCP_IP='\(.*\)'$/\1/p" "$tmp/root/run/kec2/dhcp.env" 2>/dev/null)"
[[ $ip == 10.0.0.* ]] || fail "eth0 got no address by DHCP"
ip -n "$cli" -4 addr show eth0 | grep -q "inet $ip/24" || fail "eth0 does not carry $ip/24"
ip -n "$cli" route show default | grep -q 'via 10.0.0.1' || fail "no default route via 10.0.0.1"
said "IMDSv2 token taken"
said "instance i-0123456789abcdef0"
[[ $(cat "$tmp/root/etc/hostname") == ip-10-0-0-5 ]] || fail "hostname is '$(cat "$tmp/root/etc/hostname")', not ip-10-0-0-5"
keys="$tmp/root/home/ec2-user/.ssh/authorized_keys"
grep -qxF "$pubkey" "$keys" || fail "authorized_keys lacks the key pair's public key"
[[ $(mode_owner "$keys") == "600 1000:1000" ]] || fail "authorized_keys is $(mode_owner "$keys"), not 600 1000:1000"
[[ $(mode_owner "$(dirname "$keys")") == "700 1000:1000" ]] || fail "~ec2-user/.ssh is $(mode_owner "$(dirname "$keys")"), not 700 1000:1000"
(($(runs) == 1)) || fail "user-data ran $(runs) times on the first boot, not once"
grep -q 'hello from user-data' "$tmp/bootstrap.out" || fail "user-data's output is not on the console"
said "user-data exited 0"
grep -q 'hello from user-data' "$tmp/root/var/log/cloud-init-output.log" || fail "user-data's output is not in /var/log/cloud-init-output.log"
# (busybox 1.35's wget -T crashes: timeout(1) bounds it instead.)
page=$(ip netns exec "$srv" timeout 5 busybox wget -q -O - "http://$ip/" 2>"$tmp/wget.err") || fail "httpd does not answer on $ip:80"
[[ $page == *"It works"* ]] || fail "httpd does not serve /var/www/html/index.html"
banner=$(ip netns exec "$srv" timeout 5 busybox nc "$ip" 22 </dev/null 2>/dev/null | head -n 1 || true)
[[ $banner == SSH-2.0-dropbear* ]] || fail "no dropbear on $ip:22 (got '$banner')"
grep -q -- '-----BEGIN SSH HOST KEY FINGERPRINTS-----' "$tmp/bootstrap.out" || fail "no host key fingerprints on the console"
echo "first boot: DHCP $ip, IMDSv2, hostname, key, user-data once, httpd and dropbear up"

# A reboot of the same instance: the services end with the VM, the bootstrap runs again.
stop_services
bootstrap
said "already in ~ec2-user/.ssh/authorized_keys"
said "user-data already ran on instance i-0123456789abcdef0; not again"
(($(runs) == 1)) || fail "user-data ran again on a reboot"
(($(grep -cxF "$pubkey" "$keys") == 1)) || fail "the public key is in authorized_keys more than once"
echo "reboot: user-data not run again, key not duplicated"

# The same root volume under a new instance (an AMI made from it): user-data runs for it.
stop_services
echo "i-0fedcba9876543210" >"$tmp/instance-id"
bootstrap
said "running user-data"
(($(runs) == 2)) || fail "user-data did not run for a new instance"
echo "new instance: user-data ran for it"
echo "PASS $NAME"
