#!/bin/bash
# PID 1 of the nested test host's L1 guest (started by /sbin/kec2-nested-init from the payload
# disk, mounted at /payload): mounts what the agent needs, loads the modules, checks /dev/kvm,
# runs the journey, then powers L1 off. Its output is L1's serial console, which the host-side
# runner (scripts/tests/nested/run.sh) reads: PASS/FAIL/TIMING lines and "NESTED DONE" last.
set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
cd /

poweroff_l1() {
  sync
  echo o >/proc/sysrq-trigger
  sleep 30
}

set -a
[[ -f /payload/nested.env ]] && . /payload/nested.env
set +a
echo "L1 INIT uptime $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r)"
mountpoint -q /run || mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mountpoint -q /tmp || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /tmp
mkdir -p /dev/pts /dev/shm /run/lock
mountpoint -q /dev/pts || mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts
mountpoint -q /dev/shm || mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
mountpoint -q /sys/fs/cgroup || mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -o remount,rw / 2>/dev/null
hostname kec2-l1
ip link set lo up

# The modules: KVM with AMD SVM (QEMU's -cpu EPYC,+svm,+npt), taps, bridges, and what
# iptables (nft), ipset and ebtables need; the kernel loads the xt_* matches on demand.
mods=(kvm kvm_amd tun bridge br_netfilter veth nf_tables nft_compat nf_nat nf_conntrack
  iptable_filter iptable_nat ip_set ip_set_hash_net ip_set_hash_ip ebtables ebtable_filter
  ebtable_nat xt_physdev xt_set xt_conntrack xt_MASQUERADE xt_nat xt_comment xt_tcpudp)
bad=()
for m in "${mods[@]}"; do
  modprobe "$m" 2>/tmp/modprobe.err || bad+=("$m ($(head -c 200 /tmp/modprobe.err))")
done
((${#bad[@]} == 0)) || echo "l1-init: modules not loaded: ${bad[*]}"
if [[ -c /dev/kvm ]] && grep -qw svm /proc/cpuinfo; then
  npt=$(cat /sys/module/kvm_amd/parameters/npt 2>/dev/null || echo '?')
  echo "PASS l1-kvm: /dev/kvm with kvm_amd (npt=$npt)"
else
  echo "FAIL l1-kvm: no /dev/kvm in L1 (svm in cpuinfo: $(grep -cw svm /proc/cpuinfo); modules: ${bad[*]:-all loaded})"
  echo "NESTED DONE"
  poweroff_l1
fi
echo "TIMING l1 boot-to-ready $(cut -d' ' -f1 /proc/uptime)"

timeout "${NESTED_JOURNEY_TIMEOUT:-5000}" /payload/journey.sh
rc=$?
((rc == 124)) && echo "FAIL journey: timed out inside L1"
((rc != 0 && rc != 124)) && echo "journey exited $rc"
echo "NESTED DONE"
poweroff_l1
