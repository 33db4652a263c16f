#!/usr/bin/env bash
# cloud-init's own EC2 datasource (Debian bookworm's cloud-init 22.4, unchanged) against the
# agent's metadata service. Debian's cloud-init .deb is fetched with apt-get download (cached
# in ${KEC2_CACHE:-/var/cache/kec2}/cloud-init/), unpacked with dpkg-deb -x (never installed),
# and its code runs from there with Debian's python3 and the Python packages
# scripts/install-deps.sh installs.
#
# A real agent runs in a namespace of its own with the netns-vmm stand-in (lib/netns-vmm.py,
# through lib/netns-agent.sh) giving each instance a guest network namespace wired to its tap;
# here the guest runs no bootstrap (NETNS_VMM_INIT): the test gives eth0 the instance's private
# address and runs lib/cloud-init-ec2.py in that namespace, so 169.254.169.254 is reached
# through the agent's metadata redirect exactly as from a VM. Through the API: a key pair is
# imported, an image registered, and two instances run with the key:
#   1. user-data "#cloud-config", HttpTokens optional;
#   2. user-data a MIME multipart of a "#cloud-config" and a "#!" script, and then
#      HttpTokens=required (ModifyInstanceMetadataOptions).
# For each, with cloud-init's code: the datasource is found (get_data()) on cloud "aws"; it
# took an IMDSv2 token and found metadata version 2021-03-23; get_instance_id(), get_hostname(),
# get_public_ssh_keys(), get_userdata_raw() (and the processed parts), the availability zone,
# the interface's metadata and network_config (eth0 by its MAC, DHCP) are the instance's; an
# IMDSv1 read is served (1) or refused with 401 (2); GET / lists the versions.
#
#   scripts/tests/cloud-init-imds.sh [VMM]     (the argument, from scripts/test.sh, is unused)
#
# Needs root, target/release/{agent,ec2}, /usr/bin/python3 with python3-{yaml,requests,jinja2,
# jsonschema,configobj,jsonpatch,oauthlib,netifaces}, iproute2, iptables, ssh-keygen, and apt
# access to Debian's archive the first time. Prints "PASS cloud-init-imds" or
# "FAIL cloud-init-imds: <reason>" and exits 0 or 1.
set -euo pipefail

NAME=cloud-init-imds
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tmp=$(mktemp -d)
chmod 0755 "$tmp"
cache="${KEC2_CACHE:-/var/cache/kec2}/cloud-init"
python=/usr/bin/python3   # Debian's: the one the python3-* packages serve

fail() {
  echo "FAIL $NAME: $*"
  if [[ -s $tmp/driver.out ]]; then
    echo "--- driver (last 40 lines) ---"
    tail -n 40 "$tmp/driver.out"
  fi
  if [[ -s $tmp/cloud-init.log ]]; then
    echo "--- cloud-init's log (last 20 lines) ---"
    tail -n 20 "$tmp/cloud-init.log"
  fi
  if [[ -s $tmp/agent.log ]]; then
    echo "--- agent log (last 20 lines) ---"
    tail -n 20 "$tmp/agent.log"
  fi
  exit 1
}

# shellcheck source=lib/netns-agent.sh
source "$here/lib/netns-agent.sh"
cleanup() {
  netns_agent_stop
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

[[ $(id -u) -eq 0 ]] || fail "needs root (network namespaces, taps, iptables)"
for tool in ip iptables ssh-keygen dpkg-deb apt-get "$python"; do
  command -v "$tool" >/dev/null || fail "'$tool' is missing"
done
"$python" -c 'import yaml, requests, jinja2, jsonschema, configobj, jsonpatch, oauthlib' 2>/dev/null ||
  fail "$python lacks cloud-init's libraries: run scripts/install-deps.sh (python3-requests, python3-jinja2, ...)"

# --- Debian's cloud-init, unpacked, never installed ---------------------------------------
mkdir -p "$cache"
deb=$(find "$cache" -maxdepth 1 -name 'cloud-init_*_all.deb' | sort | tail -n 1)
if [[ -z $deb ]]; then
  (cd "$cache" && apt-get download cloud-init >"$tmp/apt.out" 2>&1) ||
    { apt-get update -qq >/dev/null 2>&1 && (cd "$cache" && apt-get download cloud-init >"$tmp/apt.out" 2>&1); } ||
    fail "apt-get download cloud-init: $(tail -n 3 "$tmp/apt.out")"
  deb=$(find "$cache" -maxdepth 1 -name 'cloud-init_*_all.deb' | sort | tail -n 1)
  [[ -n $deb ]] || fail "apt-get download left no cloud-init .deb in $cache"
fi
unpacked="${deb%.deb}"
if [[ ! -d $unpacked ]]; then
  rm -rf "$unpacked.tmp"
  dpkg-deb -x "$deb" "$unpacked.tmp" || fail "dpkg-deb -x $deb failed"
  mv "$unpacked.tmp" "$unpacked"
fi
pythonpath="$unpacked/usr/lib/python3/dist-packages"
[[ -f $pythonpath/cloudinit/sources/DataSourceEc2.py ]] || fail "$deb holds no DataSourceEc2.py"
ci_version=$(PYTHONPATH="$pythonpath" "$python" -c 'from cloudinit import version; print(version.version_string())') ||
  fail "cloud-init from $deb does not import with $python"
echo "cloud-init $ci_version from $(basename "$deb")"

# --- the agent; guests that are bare namespaces ----------------------------------------------
netns_agent_start NETNS_VMM_INIT="exec sleep infinity"
ssh-keygen -q -t ed25519 -N '' -C cloud-init-imds -f "$tmp/key" || fail "ssh-keygen failed"
pubkey=$(cat "$tmp/key.pub")
ec2 import-key-pair --key-name cloud-init-imds --public-key-material "file://$tmp/key.pub" \
  >"$tmp/out" 2>&1 || fail "import-key-pair: $(cat "$tmp/out")"
echo "netns-vmm ignores the kernel" >"$tmp/vmlinux"
ec2 register-image --name cloud-init-imds --kernel "$tmp/vmlinux" \
  --boot-args "console=ttyS0 root=/dev/vda rw" >"$tmp/out" 2>&1 ||
  fail "register-image: $(cat "$tmp/out")"
ami=$(grep -o 'ami-[0-9a-f]*' "$tmp/out" | head -n 1)
[[ -n $ami ]] || fail "register-image printed no ami id: $(cat "$tmp/out")"

# launch USER_DATA_FILE: runs an instance with the key and the user-data; sets iid.
launch() {
  ec2 run-instances --image-id "$ami" --instance-type t3.micro --key-name cloud-init-imds \
    --user-data "file://$1" >"$tmp/out" 2>&1 || fail "run-instances: $(cat "$tmp/out")"
  iid=$(grep -o 'i-[0-9a-f]*' "$tmp/out" | head -n 1)
  [[ -n $iid ]] || fail "run-instances printed no instance id: $(cat "$tmp/out")"
  ec2 wait instance-running --instance-ids "$iid" --timeout 30 >"$tmp/out" 2>&1 ||
    fail "$iid never ran: $(cat "$tmp/out")"
}

# guest_up IID: sets gns, the instance's guest namespace (named on its console by the
# stand-in), with eth0 holding the instance's private address and a default route through the
# subnet's router.
guest_up() {
  local iid=$1 pip subnet cidr router console="$state/instances/$1/console.log"
  for _ in $(seq 50); do
    gns=$(sed -n 's/^netns-vmm: guest = network namespace \([^,]*\),.*/\1/p' "$console" 2>/dev/null | tail -n 1)
    [[ -n $gns ]] && ip netns list | grep -q "^$gns\b" && break
    sleep 0.1
  done
  [[ -n $gns ]] || fail "$iid: the stand-in named no guest namespace on the console"
  pip=$(describe_instance "$iid" privateIpAddress)
  subnet=$(describe_instance "$iid" subnetId)
  cidr=$(ec2 --output json describe-subnets | "$python" -c '
import json, sys
def walk(v):
    if isinstance(v, dict):
        low = {k.lower(): x for k, x in v.items()}
        if low.get("subnetid") == sys.argv[1] and "cidrblock" in low:
            print(low["cidrblock"]); sys.exit(0)
        for x in v.values(): walk(x)
    elif isinstance(v, list):
        for x in v: walk(x)
walk(json.load(sys.stdin))' "$subnet")
  [[ $pip && $cidr == */* ]] || fail "$iid: no private address ('$pip') or subnet block ('$cidr')"
  router=$("$python" -c 'import ipaddress, sys; print(ipaddress.ip_network(sys.argv[1])[1])' "$cidr")
  ip -n "$gns" link set lo up &&
    ip -n "$gns" link set eth0 up &&
    ip -n "$gns" addr add "$pip/${cidr#*/}" dev eth0 &&
    ip -n "$gns" route add default via "$router" ||
    fail "$iid: cannot configure eth0 in $gns"
}

# The guest's resolver: nothing answers (a refusal on its loopback), so that cloud-init's DNS
# checks fail at once instead of waiting on the host's resolver, which a guest cannot reach.
echo "nameserver 127.0.0.1" >"$tmp/resolv.conf"

# cloud_init IID GNS USER_DATA_FILE [DRIVER ARGS...]: the driver in the guest's namespace.
cloud_init() {
  local iid=$1 gns=$2 ud=$3 mac hostname
  shift 3
  hostname=$(describe_instance "$iid" privateDnsName)
  [[ $hostname == ip-* ]] || fail "$iid: DescribeInstances gives no privateDnsName ('$hostname')"
  mac=$(ip -n "$gns" -o link show dev eth0 | grep -o 'link/ether [0-9a-f:]*' | cut -d' ' -f2)
  rm -rf "$tmp/work" && mkdir -p "$tmp/work"
  # ip netns exec gives the command a mount namespace of its own: the resolv.conf bind stays there.
  ip netns exec "$gns" sh -c 'mount --bind "$1" /etc/resolv.conf && shift && exec "$@"' sh \
    "$tmp/resolv.conf" env PYTHONPATH="$pythonpath" "$python" "$here/lib/cloud-init-ec2.py" \
    --workdir "$tmp/work" --instance-id "$iid" --mac "$mac" \
    --hostname "$hostname" \
    --zone local-1a --public-key "$pubkey" --user-data "$ud" "$@" >"$tmp/driver.out" 2>&1
  local status=$?
  cp "$tmp/work/cloud-init.log" "$tmp/cloud-init.log" 2>/dev/null || true
  ((status == 0)) && sed 's/^driver: /  /' "$tmp/driver.out"
  return $status
}

# --- 1: #cloud-config, tokens optional --------------------------------------------------------
cat >"$tmp/ud1" <<'EOF'
#cloud-config
packages: [nginx]
runcmd:
  - [sh, -c, "echo hello from cloud-config"]
EOF
launch "$tmp/ud1"
iid1=$iid
guest_up "$iid1"
gns1=$gns
cloud_init "$iid1" "$gns1" "$tmp/ud1" --part text/cloud-config ||
  fail "instance 1 ($iid1, #cloud-config, HttpTokens optional): cloud-init's checks failed"
echo "1: $iid1: DataSourceEc2 found, IMDSv2 token, version 2021-03-23; id, hostname, key, #cloud-config user-data, zone, network_config (eth0 DHCP) as the instance's; IMDSv1 served"

# --- 2: multipart (#cloud-config and a #! script), tokens required ----------------------------
"$python" - "$tmp/ud2" <<'EOF'
import sys
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
msg = MIMEMultipart()
msg.attach(MIMEText("#cloud-config\nruncmd:\n  - [touch, /run/cloud-config-ran]\n", "cloud-config"))
msg.attach(MIMEText("#!/bin/sh\necho hello from a user-data script\n", "x-shellscript"))
open(sys.argv[1], "w").write(msg.as_string())
EOF
launch "$tmp/ud2"
iid2=$iid
ec2 modify-instance-metadata-options --instance-id "$iid2" --http-tokens required >"$tmp/out" 2>&1 ||
  fail "modify-instance-metadata-options: $(cat "$tmp/out")"
guest_up "$iid2"
gns2=$gns
cloud_init "$iid2" "$gns2" "$tmp/ud2" --tokens-required \
  --part text/cloud-config --part text/x-shellscript ||
  fail "instance 2 ($iid2, multipart, HttpTokens=required): cloud-init's checks failed"
echo "2: $iid2: the same with a multipart user-data (cloud-config and script parts) and HttpTokens=required; IMDSv1 refused (401)"
echo "PASS $NAME"
