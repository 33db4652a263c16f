#!/usr/bin/env bash
# The guest bootstrap (images/linux/rootfs/usr/sbin/kec2-bootstrap) against the agent's real
# DHCP and IMDS. These machines cannot boot Linux to init, so the "VM" is a stand-in vmm
# (scripts/tests/lib/netns-vmm.py, given to a real agent with --vmm): it opens the instance's
# tap as the vmm does, wires it to eth0 of a guest network namespace (a veth pair and a relay),
# and runs the image's bootstrap there as an ordinary process (in a UTS namespace of its own),
# with ROOT= a copy of images/linux/rootfs kept across reboots like a root volume and its
# console on the instance's serial log. The agent runs in a network namespace of its own (--netns), with its
# API on this host's loopback; nothing touches the host's own interfaces.
#
# Through the API (target/release/ec2): a key pair is imported, an image registered, an
# instance run with the key and a user-data script. Then each step of the bootstrap:
#   - eth0 has the instance's private IP (DescribeInstances) from the agent's DHCP, with its
#     router, whose MAC the guest learnt is the VPC bridge's (the wire is faithful);
#   - the hostname (ip-A-B-C-D, from IMDS local-hostname): /etc/hostname, /etc/hosts and the
#     guest's host name (the host's own is untouched);
#   - an IMDSv2 token was taken and the instance id read from IMDS is the instance's; the
#     requests passed the agent's metadata redirect for this tap (its DNAT counters);
#   - ~ec2-user/.ssh/authorized_keys holds the key pair's public key (0600, ec2-user's);
#   - user-data ran once: its marker, /var/log/cloud-init-output.log and the console; the
#     daemon it leaves does not hold the boot up;
#   - dropbear and httpd answer on the private IP once the security group allows 22 and 80;
#   - "kec2-bootstrap: bootstrap finished" is in GetConsoleOutput.
# Then RebootInstances (the agent restarts the stand-in): the bootstrap finishes again without
# rerunning user-data or adding the key twice. Then ModifyInstanceMetadataOptions
# HttpTokens=required (an IMDSv1 GET from the guest now gets 401) and another reboot: the
# bootstrap still gets its token, the instance id and the key, and finishes. Last, StopInstances
# ends the stand-in, which leaves no namespace, veth or guest process behind.
#
#   scripts/tests/bootstrap-live.sh [VMM]     (the argument, from scripts/test.sh, is unused)
#
# Needs root, target/release/{agent,ec2} (cargo build --release), python3, iproute2, iptables
# and ebtables; installs Debian's busybox-static and dropbear-bin if they are missing.
# Prints "PASS bootstrap-live" or "FAIL bootstrap-live: <reason>" and exits 0 or 1.
set -euo pipefail

NAME=bootstrap-live
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
iid=

fail() {
  echo "FAIL $NAME: $*"
  if [[ -n $iid && -f $state/instances/$iid/console.log ]]; then
    echo "--- console (last 40 lines) ---"
    tail -n 40 "$state/instances/$iid/console.log"
    echo "--- vmm.log (last 10 lines) ---"
    tail -n 10 "$state/instances/$iid/vmm.log" 2>/dev/null || true
  fi
  if [[ -s $tmp/agent.log ]]; then
    echo "--- agent log (last 20 lines) ---"
    tail -n 20 "$tmp/agent.log"
  fi
  exit 1
}

# The agent in a namespace of its own with the stand-in: state, ns (the agent's namespace),
# gprefix (the guest namespaces'), netns_agent_start, ec2, describe_instance, standin_pids.
# shellcheck source=lib/netns-agent.sh
source "$here/lib/netns-agent.sh"

cleanup() {
  netns_agent_stop
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[[ $(id -u) -eq 0 ]] || fail "needs root (network namespaces, taps, iptables, file owners)"
# The guest's userland, as images/build.sh linux installs it (this test may run before it).
missing=()
for pkg in busybox-static dropbear-bin; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if ((${#missing[@]})); then
  echo "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1 ||
    { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive \
      apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null 2>&1; } ||
    fail "cannot install ${missing[*]}"
fi
for tool in busybox dropbear dropbearkey python3 ip iptables ebtables nsenter unshare; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing"
done
for applet in udhcpc nc timeout; do
  busybox --list | grep -qx "$applet" || fail "busybox has no $applet"
done

# The guest's root: the image's own files (as images/build.sh lays them out, with owners and
# modes); binaries come from this host (busybox, dropbear), as in images/linux/bootstrap-test.sh.
cp -a "$repo/images/linux/rootfs" "$tmp/rootfs"
chown -R 0:0 "$tmp/rootfs"
chmod 0755 "$tmp/rootfs/usr/sbin/kec2-bootstrap" "$tmp/rootfs/usr/share/kec2/udhcpc.script"
install -d -m 0700 "$tmp/rootfs/root"
install -d -m 0700 -o 1000 -g 1000 "$tmp/rootfs/home/ec2-user"
install -d -m 0755 "$tmp/rootfs/var/log" "$tmp/rootfs/var/lib" "$tmp/rootfs/run" "$tmp/rootfs/tmp"
chmod 0755 "$tmp/rootfs"

# --- the agent, in a namespace of its own ------------------------------------------------
netns_agent_start NETNS_VMM_ROOTFS="$tmp/rootfs" NETNS_VMM_GUESTS="$tmp/guests" \
  NETNS_VMM_BOOTSTRAP_ENV="KEC2_IMDS_TRIES=20"

# --- a key pair, an image, an instance with user-data ------------------------------------
dropbearkey -t ed25519 -f "$tmp/key" >/dev/null 2>&1 || fail "dropbearkey failed"
dropbearkey -y -f "$tmp/key" | grep '^ssh-ed25519 ' >"$tmp/key.pub"
pubkey=$(cut -d' ' -f1,2 "$tmp/key.pub")   # type and key; the comment may differ
ec2 import-key-pair --key-name bootstrap-live --public-key-material "file://$tmp/key.pub" \
  >"$tmp/out" 2>&1 || fail "import-key-pair: $(cat "$tmp/out")"
echo "netns-vmm ignores the kernel" >"$tmp/vmlinux"
ec2 register-image --name bootstrap-live --kernel "$tmp/vmlinux" \
  --boot-args "console=ttyS0 root=/dev/vda rw init=/sbin/init" >"$tmp/out" 2>&1 ||
  fail "register-image: $(cat "$tmp/out")"
ami=$(grep -o 'ami-[0-9a-f]*' "$tmp/out" | head -n 1)
[[ -n $ami ]] || fail "register-image printed no ami id: $(cat "$tmp/out")"
marker="user-data-$$-$RANDOM"
cat >"$tmp/user-data.sh" <<EOF
#!/bin/sh
echo "$marker: user-data ran as \$(id -u) in \$(pwd)"
echo ran >>"\$HOME/user-data-runs"
sleep 600 &
echo \$! >"\$HOME/user-data-daemon"
EOF
ec2 run-instances --image-id "$ami" --instance-type t3.micro --key-name bootstrap-live \
  --user-data "file://$tmp/user-data.sh" >"$tmp/out" 2>&1 || fail "run-instances: $(cat "$tmp/out")"
iid=$(grep -o 'i-[0-9a-f]*' "$tmp/out" | head -n 1)
[[ -n $iid ]] || fail "run-instances printed no instance id: $(cat "$tmp/out")"
ec2 wait instance-running --instance-ids "$iid" --timeout 30 >"$tmp/out" 2>&1 ||
  fail "$iid never ran: $(cat "$tmp/out")"
root="$tmp/guests/$iid/root"
echo "agent in $ns; $ami; $iid running on the stand-in"

# describe FIELD: the instance's FIELD in DescribeInstances (JSON).
describe() { describe_instance "$iid" "$1"; }
# console: GetConsoleOutput through the API.
console() { ec2 get-console-output --instance-id "$iid" 2>/dev/null | tr -d '\r'; }
# wait_finished N: until the console has N "bootstrap finished" lines (N boots).
wait_finished() {
  local n
  for _ in $(seq 120); do
    n=$(console | grep -cx 'kec2-bootstrap: bootstrap finished' || true)
    ((n >= $1)) && return 0
    sleep 0.5
  done
  fail "boot $1: no 'kec2-bootstrap: bootstrap finished' on the console within 60 s"
}
# boot_text N: the console of boot N (from its stand-in banner on).
boot_text() {
  console | awk -v n="$1" '/^kec2: netns-vmm up; running kec2-bootstrap$/ { b++ } b == n'
}
said() { grep -qxF "kec2-bootstrap: $2" <<<"$(boot_text "$1")" || fail "boot $1: the console lacks 'kec2-bootstrap: $2'"; }
not_said() { ! grep -qF "$2" <<<"$(boot_text "$1")" || fail "boot $1: the console says '$2'"; }
guest_ns() { guest_namespaces | head -n 1; }
# running PID: the process exists and is not a zombie (waiting for a parent to reap it).
running() {
  local st
  st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)
  [[ -n $st && $st != Z ]]
}
runs() { wc -l <"$root/root/user-data-runs" 2>/dev/null || echo 0; }
mode_owner() { stat -c '%a %u:%g' "$1"; }
keys="$root/home/ec2-user/.ssh/authorized_keys"

# check_boot N: the steps every boot must do.
check_boot() {
  local n=$1 gns
  wait_finished "$n"
  gns=$(guest_ns)
  [[ -n $gns ]] || fail "boot $n: no guest namespace"
  # DHCP: the agent's lease is the instance's private IP.
  [[ $(ip -n "$gns" -4 -o addr show dev eth0) == *" inet $pip/"* ]] ||
    fail "boot $n: eth0 in $gns does not carry $pip: $(ip -n "$gns" -4 -o addr show dev eth0)"
  grep -qx "DHCP_IP='$pip'" "$root/run/kec2/dhcp.env" || fail "boot $n: udhcpc's lease is not $pip"
  boot_text "$n" | grep -qx "kec2-bootstrap: eth0 has $pip/[0-9]* by DHCP (router [0-9.]*, DNS 192.0.2.53)" ||
    fail "boot $n: the console does not report $pip by DHCP with the agent's router and DNS"
  router=$(sed -n "s/^DHCP_ROUTER='\(.*\)'$/\1/p" "$root/run/kec2/dhcp.env")
  ip -n "$gns" route show default | grep -q "^default via $router dev eth0" || fail "boot $n: no default route via $router"
  # The wire is faithful: the router's MAC the guest learnt is the VPC bridge's, so only the
  # bridge (not the agent's kernel on the wire's far end) answers ARP.
  bridge=$(ip -n "$ns" -4 -o addr show | awk -v r="$router/" 'index($4, r) == 1 {print $2}')
  bridge_mac=$(ip -n "$ns" -o link show dev "$bridge" | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  [[ -n $bridge_mac && $(ip -n "$gns" neigh show "$router" dev eth0) == *"lladdr $bridge_mac "* ]] ||
    fail "boot $n: the guest's neighbour entry for $router is '$(ip -n "$gns" neigh show "$router")', not the bridge $bridge's MAC $bridge_mac"
  # IMDSv2, from the agent: the instance id the bootstrap read is this instance's.
  said "$n" "IMDSv2 token taken from http://169.254.169.254"
  # Through the agent's per-tap metadata redirect (nothing else holds 169.254.169.254 here).
  tap=${gns#"$gprefix-"}
  dnat=$(ip netns exec "$ns" iptables -t nat -L KEC2-PREROUTING -v -n -x |
    awk -v t="$tap" '$0 ~ "PHYSDEV match --physdev-in " t " " && /169.254.169.254/ {print $1}')
  [[ -n $dnat && $dnat -gt 0 ]] ||
    fail "boot $n: the agent's metadata DNAT for $tap counted no connections (${dnat:-no rule})"
  said "$n" "instance $iid"
  not_said "$n" "going on with IMDSv1"
  # The hostname, from IMDS local-hostname.
  [[ $(cat "$root/etc/hostname") == "$hostname" ]] ||
    fail "boot $n: /etc/hostname is '$(cat "$root/etc/hostname")', not $hostname"
  said "$n" "hostname $hostname"
  grep -q "^$pip " "$root/etc/hosts" || fail "boot $n: /etc/hosts does not map $pip"
  # ... and the guest's host name (the stand-in gives the guest a UTS namespace of its own).
  uts_pid=$(cat "$root/run/kec2/udhcpc.eth0.pid")
  [[ $(nsenter -t "$uts_pid" -u hostname) == "$hostname" ]] ||
    fail "boot $n: the guest's host name is '$(nsenter -t "$uts_pid" -u hostname)', not $hostname"
  [[ $(hostname) != "$hostname" ]] || fail "boot $n: the host's own name was changed"
  # The key pair's public key, once.
  [[ -f $keys ]] || fail "boot $n: no ~ec2-user/.ssh/authorized_keys"
  (($(grep -c "^$pubkey\( \|\$\)" "$keys") == 1)) ||
    fail "boot $n: authorized_keys holds the key pair's public key $(grep -c "^$pubkey" "$keys") times, not once"
  [[ $(mode_owner "$keys") == "600 1000:1000" ]] || fail "boot $n: authorized_keys is $(mode_owner "$keys"), not 600 1000:1000"
  [[ $(mode_owner "${keys%/*}") == "700 1000:1000" ]] || fail "boot $n: ~ec2-user/.ssh is $(mode_owner "${keys%/*}"), not 700 1000:1000"
  # user-data: once for the instance's life.
  (($(runs) == 1)) || fail "boot $n: user-data has run $(runs) times, not once"
  [[ $(cat "$root/var/lib/kec2/user-data.done") == "$iid" ]] || fail "boot $n: user-data.done does not name $iid"
  (($(grep -c "^$marker: user-data ran as 0 in $root\$" "$root/var/log/cloud-init-output.log") == 1)) ||
    fail "boot $n: /var/log/cloud-init-output.log does not hold user-data's line once"
}

# reboot: RebootInstances, with the metadata DNAT's counters zeroed first so that the next
# boot's requests are seen to pass through it.
reboot() {
  ip netns exec "$ns" iptables -t nat -Z KEC2-PREROUTING || fail "cannot zero KEC2-PREROUTING's counters"
  ec2 reboot-instances --instance-ids "$iid" >"$tmp/out" 2>&1 || fail "reboot-instances: $(cat "$tmp/out")"
}

# --- the first boot -------------------------------------------------------------------------
pip=$(describe privateIpAddress)
[[ $pip =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || fail "DescribeInstances gives no privateIpAddress ('$pip')"
hostname="ip-${pip//./-}"
check_boot 1
said 1 "installed the key pair's public key in ~ec2-user/.ssh/authorized_keys"
said 1 "running user-data ($(wc -c <"$tmp/user-data.sh") bytes) for instance $iid"
boot_text 1 | grep -q "^$marker: user-data ran as 0 in $root\$" || fail "boot 1: user-data's line is not on the console"
said 1 "user-data exited 0"
daemon=$(cat "$root/root/user-data-daemon")
running "$daemon" || fail "boot 1: the daemon user-data started is not running"
# SSH and the web server, reached from the agent's side through the security group.
said 1 "dropbear listening on port 22"
said 1 "httpd serving $root/var/www/html on port 80"
sg=$(ec2 describe-security-groups 2>&1 | grep -o 'sg-[0-9a-f]*' | head -n 1)
[[ -n $sg ]] || fail "no security group"
for port in 22 80; do
  ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port "$port" \
    --cidr 0.0.0.0/0 >"$tmp/out" 2>&1 || fail "authorize-security-group-ingress: $(cat "$tmp/out")"
done
page=$(ip netns exec "$ns" busybox timeout 5 busybox wget -q -O - "http://$pip/" 2>/dev/null) ||
  fail "httpd does not answer on $pip:80 from the agent's namespace"
[[ $page == "$(cat "$tmp/rootfs/var/www/html/index.html")" ]] || fail "httpd on $pip does not serve /var/www/html/index.html"
banner=$(ip netns exec "$ns" busybox timeout 5 busybox nc "$pip" 22 </dev/null 2>/dev/null | head -n 1 || true)
[[ $banner == SSH-2.0-dropbear* ]] || fail "no dropbear on $pip:22 (got '$banner')"
echo "boot 1: eth0 $pip by the agent's DHCP, IMDSv2 token through the agent's DNAT, instance $iid, hostname $hostname, key installed, user-data ran once (its daemon did not hold the boot), dropbear and httpd reachable through the security group, bootstrap finished"

# --- a reboot: same instance, same root -------------------------------------------------------
first_pid=$(standin_pids | head -n 1)
reboot
check_boot 2
[[ $(standin_pids | head -n 1) != "$first_pid" ]] || fail "the reboot did not restart the stand-in"
[[ $(describe State) == *running* ]] || fail "the instance is not running after the reboot"
said 2 "the key pair's public key is already in ~ec2-user/.ssh/authorized_keys"
said 2 "user-data already ran on instance $iid; not again"
not_said 2 "$marker"
! running "$daemon" || fail "the daemon user-data started survived the reboot"
echo "boot 2 (reboot): same lease and hostname, token, key not added twice, user-data not run again, bootstrap finished"

# --- IMDSv2 required --------------------------------------------------------------------------
ec2 modify-instance-metadata-options --instance-id "$iid" --http-tokens required >"$tmp/out" 2>&1 ||
  fail "modify-instance-metadata-options: $(cat "$tmp/out")"
status=$(ip netns exec "$(guest_ns)" sh -c 'printf "GET /latest/meta-data/instance-id HTTP/1.0\r\nHost: 169.254.169.254\r\n\r\n" |
  busybox timeout 5 busybox nc 169.254.169.254 80' 2>/dev/null | head -n 1 | awk '{print $2}')
[[ $status == 401 ]] || fail "with HttpTokens=required an IMDSv1 GET from the guest got '$status', not 401"
reboot
check_boot 3
said 3 "the key pair's public key is already in ~ec2-user/.ssh/authorized_keys"
said 3 "user-data already ran on instance $iid; not again"
echo "boot 3 (HttpTokens=required; IMDSv1 gets 401): token, instance id, key, bootstrap finished"

# --- a stop: the "VM" ends and leaves nothing behind ------------------------------------------
ec2 stop-instances --instance-ids "$iid" >"$tmp/out" 2>&1 || fail "stop-instances: $(cat "$tmp/out")"
ec2 wait instance-stopped --instance-ids "$iid" --timeout 30 >"$tmp/out" 2>&1 ||
  fail "$iid never stopped: $(cat "$tmp/out")"
[[ -z $(standin_pids) ]] || fail "the stand-in still runs after the stop"
[[ -z $(guest_ns) ]] || fail "the guest namespace $(guest_ns) is left after the stop"
! ip -n "$ns" -o link show | grep -q 'wire-' || fail "the wire's veth is left in $ns after the stop"
! running "$uts_pid" || fail "the guest's udhcpc survived the stop"
echo "stop: the stand-in, its guest namespace, wire and processes are gone"
echo "PASS $NAME"
