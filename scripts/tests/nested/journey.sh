#!/bin/bash
# The nested journey: run inside L1 (a QEMU guest with AMD SVM, scripts/tests/nested/run.sh)
# as root, from the payload disk mounted at /payload:
#   /payload/bin/{agent,ec2,vmm,vmm-ctl}   the binaries under test
#   /payload/images/<name>/manifest.json   the images (linux; debian if it was built)
#   /payload/state                         the agent's state dir (the payload disk has room)
# For each image it drives an agent through the EC2 API the way a user would, against a real
# Linux guest (L2) booted by our vmm on L1's /dev/kvm, and prints one line per step on the
# console: "PASS <image>/<step>" or "FAIL <image>/<step>: <reason>", plus
# "TIMING <image> run-to-ssh <seconds>". A failing step is reported and the later steps are
# still tried where they mean something. The steps are listed in scripts/tests/nested/README.md.
set -uo pipefail

P=/payload
BIN=$P/bin
STATE=$P/state
WORK=/tmp/journey
IMAGES=${NESTED_IMAGES:-linux debian}
BOOT_TIMEOUT=${NESTED_BOOT_TIMEOUT:-600}   # one L2 boot under nested emulation
# The images whose journey includes the volume steps (attach, write, snapshot, restore: two
# more boots). The Debian AMI's boots take minutes under nested emulation, and the steps test
# the agent and the vmm, which the busybox image (same kernel, same devices) covers.
VOLUME_IMAGES=${NESTED_VOLUME_IMAGES:-linux}
STOP_TIMEOUT=${NESTED_STOP_TIMEOUT:-90}    # the agent's graceful stop before it kills the vmm
ITYPE=${NESTED_INSTANCE_TYPE:-t3.micro}
mkdir -p "$WORK" "$STATE"
cd "$WORK" || exit 1

failures=0
say() { echo "journey: $*"; }
pass() { echo "PASS $IMG/$1${2:+: $2}"; }
fail() { echo "FAIL $IMG/$1: $2"; failures=$((failures + 1)); }
now() { date +%s; }

# --- the agent ----------------------------------------------------------------------------------
agent_pid=
start_agent() {
  AGENT_LOG=info "$BIN/agent" --state-dir "$STATE" --listen 127.0.0.1:0 --vmm "$BIN/vmm" \
    --outbound-nat false --dns 192.0.2.53 --stop-timeout "$STOP_TIMEOUT" \
    </dev/null >/dev/null 2>"$WORK/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do [[ -s $STATE/endpoint ]] && break; sleep 0.2; done
  [[ -s $STATE/endpoint ]] || return 1
  ENDPOINT=$(cat "$STATE/endpoint")
  eval "$("$BIN/ec2" --state-dir "$STATE" credentials)"
}
ec2() { timeout 120 "$BIN/ec2" --endpoint-url "$ENDPOINT" --state-dir "$STATE" "$@"; }
# api ACTION [Name=Value ...]: a signed EC2 Query request (curl's SigV4) for what the ec2 CLI
# does not offer (SecurityGroupId.N and HibernationOptions at launch, Hibernate at stop).
api() {
  local action=$1 kv args=()
  shift
  for kv in "$@"; do args+=(--data-urlencode "$kv"); done
  curl -sS --max-time 120 --aws-sigv4 "aws:amz:local-1:ec2" \
    --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" \
    --data-urlencode "Action=$action" --data-urlencode "Version=2016-11-15" "${args[@]}" "$ENDPOINT"
}
# inst FIELD (jq path below the instance), e.g. inst .PrivateIpAddress
inst() {
  ec2 --output json describe-instances --instance-ids "$IID" 2>/dev/null |
    jq -r --arg id "$IID" ".Reservations[].Instances[] | select(.InstanceId == \$id) | $1 // empty"
}
state() { inst .State.Name; }
# console: the instance's whole serial log, every boot (GetConsoleOutput gives the last 64 KiB
# only, too little to count boots by).
console() { tr -d '\r' <"$STATE/instances/$IID/console.log" 2>/dev/null; }
# count_ready: how many times the console says the guest finished booting.
count_ready() { console | grep -cE "$READY_RE" || true; }
# wait_ready N: until the console has N ready lines (N boots), at most BOOT_TIMEOUT seconds.
wait_ready() {
  local deadline=$(($(now) + BOOT_TIMEOUT))
  while (($(now) < deadline)); do
    (($(count_ready) >= $1)) && return 0
    [[ $(state) == running || $(state) == pending ]] || return 1
    sleep 3
  done
  return 1
}
wait_state() { # STATE [SECONDS]
  local deadline=$(($(now) + ${2:-300}))
  while (($(now) < deadline)); do
    [[ $(state) == "$1" ]] && return 0
    sleep 2
  done
  return 1
}
console_tail() { console | tail -n "${1:-15}" | sed 's/^/    console: /'; }
vmm_log_tail() { tail -n 5 "$STATE/instances/$IID/vmm.log" 2>/dev/null | sed 's/^/    vmm.log: /'; }
# not_running_note: when the instance is not running, why (its state reason, the console's and
# the vmm log's last lines).
not_running_note() {
  [[ $(state) == running ]] && return 0
  say "the instance is $(state): $(inst .StateReason.Code) $(inst .StateReason.Message)"
  console_tail 20
  vmm_log_tail
}

# --- ssh into the guest ---------------------------------------------------------------------
SSH_OPTS=(-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o BatchMode=yes
  -o LogLevel=ERROR -o ServerAliveInterval=15 -o ServerAliveCountMax=4)
# gssh [ssh args] -- remote command: one attempt, bounded.
gssh() { timeout 180 ssh -i "$WORK/key.pem" "${SSH_OPTS[@]}" -o ConnectTimeout=30 "$USERNAME@$PUB" "$@"; }
# wait_ssh SECONDS: until a login works.
wait_ssh() {
  local deadline=$(($(now) + $1))
  while (($(now) < deadline)); do
    gssh true 2>/dev/null && return 0
    sleep 3
  done
  return 1
}
# as_root: runs stdin as a root shell script in the guest. The Debian AMI has sudo; the busybox
# image has none, so its user-data (root) starts a helper that runs the scripts its user drops
# into /run/kec2-root (a directory only that user can write).
ROOTQ='q=/run/kec2-root; n=$$; cat >$q/$n.tmp && mv $q/$n.tmp $q/$n.sh || exit 99
i=0; while [ ! -e $q/$n.rc ]; do i=$((i+1)); [ $i -gt 170 ] && { echo "root helper: no answer"; exit 98; }; sleep 1; done
cat $q/$n.out; rc=$(cat $q/$n.rc); rm -f $q/$n.*; exit $rc'
as_root() {
  if [[ $ROOT_VIA == sudo ]]; then gssh 'sudo -n sh -s'; else gssh "$ROOTQ"; fi
}

# The user-data: a page on port 80, and on the busybox image the root helper.
user_data() {
  cat <<UD
#!/bin/sh
# kec2 nested journey: a page on port 80.
mkdir -p /var/www/html
echo "<h1>kec2 nested $MARKER</h1>" >/var/www/html/index.html
chmod 0644 /var/www/html/index.html
if ! command -v sudo >/dev/null 2>&1; then
  mkdir -p /usr/local/sbin
  cat >/usr/local/sbin/kec2-rootq <<'HELPER'
#!/bin/sh
# Runs, as root, the scripts $USERNAME drops into /run/kec2-root (for tests; no sudo here).
q=/run/kec2-root
mkdir -p \$q && chown $USERNAME \$q && chmod 0700 \$q
while :; do
  for f in \$q/*.sh; do
    [ -e "\$f" ] || continue
    b=\${f%.sh}
    mv "\$f" "\$b.run"
    sh "\$b.run" >"\$b.out" 2>&1
    echo \$? >"\$b.rc.tmp"
    mv "\$b.rc.tmp" "\$b.rc"
  done
  sleep 1
done
HELPER
  chmod 0755 /usr/local/sbin/kec2-rootq
  grep -q kec2-rootq /etc/inittab || echo '::respawn:/usr/local/sbin/kec2-rootq' >>/etc/inittab
  setsid /usr/local/sbin/kec2-rootq </dev/null >/dev/null 2>&1 &
fi
# An image without a web server of its own (the busybox one starts httpd after user-data).
if [ ! -x /usr/sbin/kec2-bootstrap ] && command -v python3 >/dev/null 2>&1; then
  cd /var/www/html && setsid python3 -m http.server 80 </dev/null >/dev/null 2>&1 &
fi
echo "kec2 nested user-data done"
UD
}

# The remote IMDS probe: prints "<status> <body>" per request, through curl or busybox nc.
IMDS_SH='
req() { # METHOD PATH [HEADER]
  if command -v curl >/dev/null 2>&1; then
    if [ -n "$3" ]; then s=$(curl -s -m 10 -o /tmp/imds.body -w "%{http_code}" -X "$1" -H "$3" "http://169.254.169.254$2")
    else s=$(curl -s -m 10 -o /tmp/imds.body -w "%{http_code}" -X "$1" "http://169.254.169.254$2"); fi
    echo "$s $(cat /tmp/imds.body)"
  else
    { printf "%s %s HTTP/1.0\r\nHost: 169.254.169.254\r\nConnection: close\r\n" "$1" "$2"
      [ "$1" = PUT ] && printf "Content-Length: 0\r\n"
      [ -n "$3" ] && printf "%s\r\n" "$3"
      printf "\r\n"; sleep 3; } | nc -w 5 169.254.169.254 80 | tr -d "\r" >/tmp/imds.resp
    echo "$(head -n 1 /tmp/imds.resp | cut -d" " -f2) $(sed "1,/^\$/d" /tmp/imds.resp)"
  fi
}
t=$(req PUT /latest/api/token "X-aws-ec2-metadata-token-ttl-seconds: 300")
echo "TOKEN $t" | cut -c1-12
tok=${t#* }
echo "V2 $(req GET /latest/meta-data/instance-id "X-aws-ec2-metadata-token: $tok")"
echo "V1 $(req GET /latest/meta-data/instance-id "")"
'

# --- one image's journey -----------------------------------------------------------------------
journey() {
  local manifest=$P/images/$IMG/manifest.json t0 t1 out sg ami probe_s pip0 pub0 got
  MARKER="m$RANDOM$RANDOM" vol1= vol2=
  case $IMG in
  linux) USERNAME=ec2-user ROOT_VIA=helper READY_RE='^kec2-bootstrap: bootstrap finished$'
    DOWN_RE='The system is going down NOW|Requesting system (poweroff|reboot|halt)|reboot: (Power down|Restarting system)' ;;
  *) USERNAME=$(jq -r '.default_user // .user // "admin"' "$manifest") ROOT_VIA=sudo
    READY_RE='Cloud-init v\. .* finished at'
    # systemd's own last words: every unit stopped, file systems synced, then power off (the
    # power button) or, for a guest without ACPI, the Ctrl-Alt-Del fallback's reboot.
    DOWN_RE='Reached target .*Power-Off|System Power Off|systemd-shutdown\[1\]: Syncing filesystems and block devices|reboot: Power down' ;;
  esac
  say "=== image $IMG (user $USERNAME) ==="

  # register-image, a key pair, a security group with no ingress.
  ami=$(ec2 register-image --manifest "$manifest" 2>&1 | grep -o 'ami-[0-9a-f]*' | head -n 1)
  [[ -n $ami ]] && pass register-image "$ami" || { fail register-image "$(ec2 register-image --manifest "$manifest" 2>&1 | tail -n 2)"; return; }
  rm -f "$WORK/key.pem"
  if (cd "$WORK" && ec2 create-key-pair --key-name "nested-$IMG" --out "$WORK/key.pem" >"$WORK/out" 2>&1) &&
    [[ -s $WORK/key.pem ]]; then
    pass create-key-pair
  else
    fail create-key-pair "$(tail -n 3 "$WORK/out")"; return
  fi
  sg=$(ec2 create-security-group --group-name "nested-$IMG" --description "nested journey $IMG" 2>&1 | grep -o 'sg-[0-9a-f]*' | head -n 1)
  [[ -n $sg ]] && pass create-security-group "$sg" || { fail create-security-group "no group id"; return; }

  launch_and_reach || return
  network_checks
  reboot_step
  # --- stop from the API is a clean shutdown ---
  stop_and_check stop-clean "ec2 stop-instances"
  if [[ " $VOLUME_IMAGES " == *" $IMG "* ]]; then
    volume_steps || { terminate_step; return; }
  else
    start_and_wait start-1 || { terminate_step; return; }
    say "volume steps not run for $IMG (NESTED_VOLUME_IMAGES='$VOLUME_IMAGES')"
  fi
  hibernate_step
  guest_poweroff_step
  terminate_step
}

# launch_and_reach: RunInstances, the boot, SSH refused then allowed; fails (1) when there is no instance to go on with.
launch_and_reach() {
  # --- launch ---
  t0=$(now)
  out=$(api RunInstances "ImageId=$ami" "InstanceType=$ITYPE" MinCount=1 MaxCount=1 \
    "KeyName=nested-$IMG" "SecurityGroupId.1=$sg" "HibernationOptions.Configured=true" \
    "UserData=$(user_data | base64 -w0)")
  IID=$(grep -o '<instanceId>i-[0-9a-f]*' <<<"$out" | head -n 1 | cut -d'>' -f2)
  [[ -n $IID ]] || { fail run-instances "$(head -c 400 <<<"$out")"; return 1; }
  if wait_state running 120; then pass run-instances "$IID running after $(($(now) - t0)) s"
  else fail run-instances "$IID is $(state), not running: $(inst .StateReason.Message)"; console_tail; terminate_step; return 1; fi
  PUB=$(inst .PublicIpAddress) PIP=$(inst .PrivateIpAddress)
  if wait_ready 1; then pass boot "the guest finished booting $(($(now) - t0)) s after RunInstances"
  else fail boot "no '$READY_RE' on the console after $(($(now) - t0)) s (bound $BOOT_TIMEOUT s; the instance is $(state))"; console_tail 25
    console | grep -iE 'virtio|vda|WARNING|irq|ACPI' | head -n 40 | sed 's/^/    console (devices): /'; fi

  # --- ssh: refused before port 22 is authorized, then a login ---
  probe_s=$(now)
  if out=$(timeout 60 ssh -i "$WORK/key.pem" "${SSH_OPTS[@]}" -o ConnectTimeout=10 "$USERNAME@$PUB" true 2>&1); then
    fail ssh-refused "a login to $PUB worked before port 22 was authorized"
  elif grep -qi 'timed out' <<<"$out"; then pass ssh-refused "times out before port 22 is authorized"
  else fail ssh-refused "ssh failed otherwise than by a timeout: $out"; fi
  probe_s=$(($(now) - probe_s))
  ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port 22 --cidr 0.0.0.0/0 >/dev/null 2>&1 ||
    fail authorize-22 "authorize-security-group-ingress failed"
  if wait_ssh 300; then
    t1=$(now)
    pass ssh-login "ssh -i key.pem $USERNAME@$PUB"
    echo "TIMING $IMG run-to-ssh $((t1 - t0 - probe_s))"
    # cloud-init ends its boot without an error (a failed module makes it "error").
    if gssh 'command -v cloud-init' >/dev/null 2>&1; then
      got=$(gssh 'cloud-init status --long' 2>&1)
      if grep -qx 'status: done' <<<"$got"; then pass cloud-init-status "status: done"
      else fail cloud-init-status "$(tr '\n' ';' <<<"$got" | head -c 400)"; fi
    fi
    # Where a systemd guest's boot went (informational).
    gssh 'command -v systemd-analyze >/dev/null && { systemd-analyze; systemd-analyze blame | head -n 12; }' 2>/dev/null |
      sed "s/^/journey: $IMG boot profile: /"
  else
    fail ssh-login "no login to $USERNAME@$PUB within 300 s after authorizing port 22: $(gssh true 2>&1 | tail -n 1)"
  fi
  # The instance runs: the later steps go on (a failed ssh-login was reported above).
  return 0
}

# network_checks: the agent's DHCP address, the user-data page, IMDSv2 and v1 refused.
network_checks() {
  # --- the agent's DHCP gave the guest DescribeInstances' private IP ---
  got=$(gssh 'ip -4 -o addr show scope global' 2>/dev/null)
  if grep -q " inet $PIP/" <<<"$got"; then pass private-ip "the guest has $PIP by DHCP"
  else fail private-ip "DescribeInstances says $PIP, the guest has: $(tr '\n' ';' <<<"$got")"; fi

  # --- the user-data page on port 80, once authorized ---
  if curl -s -m 10 "http://$PUB/" >/dev/null 2>&1; then fail http-refused "port 80 answered before it was authorized"; fi
  ec2 authorize-security-group-ingress --group-id "$sg" --protocol tcp --port 80 --cidr 0.0.0.0/0 >/dev/null 2>&1 ||
    fail authorize-80 "authorize-security-group-ingress failed"
  got=$(curl -s -m 20 "http://$PUB/" 2>&1)
  if grep -q "kec2 nested $MARKER" <<<"$got"; then pass user-data-page "http://$PUB/ serves the page user-data wrote"
  else fail user-data-page "http://$PUB/ gave '$(head -c 200 <<<"$got")'"; fi

  # --- IMDSv2 from inside; v1 refused once tokens are required ---
  got=$(gssh "$IMDS_SH" 2>&1)
  if grep -q "^TOKEN 200" <<<"$got" && grep -qx "V2 200 $IID" <<<"$got"; then
    pass imdsv2 "token taken, instance-id $IID"
  else fail imdsv2 "$(tr '\n' ';' <<<"$got")"; fi
  ec2 modify-instance-metadata-options --instance-id "$IID" --http-tokens required >/dev/null 2>&1 ||
    fail imds-tokens-required "modify-instance-metadata-options failed"
  got=$(gssh "$IMDS_SH" 2>&1)
  if grep -q "^V1 401" <<<"$got" && grep -qx "V2 200 $IID" <<<"$got"; then
    pass imdsv1-refused "with --http-tokens required a v1 GET gets 401, v2 still works"
  else fail imdsv1-refused "$(tr '\n' ';' <<<"$got")"; fi

}

# reboot_step: RebootInstances keeps both addresses.
reboot_step() {
  # --- a reboot keeps both addresses ---
  pip0=$PIP pub0=$PUB
  local boots
  boots=$(count_ready)
  ec2 reboot-instances --instance-ids "$IID" >/dev/null 2>&1 || fail reboot "reboot-instances failed"
  if wait_ready $((boots + 1)) && wait_ssh 300; then
    PUB=$(inst .PublicIpAddress) PIP=$(inst .PrivateIpAddress)
    got=$(gssh 'ip -4 -o addr show scope global' 2>/dev/null)
    if [[ $PIP == "$pip0" && $PUB == "$pub0" ]] && grep -q " inet $PIP/" <<<"$got"; then
      pass reboot "private $PIP and public $PUB kept; ssh works again"
    else fail reboot "before $pip0/$pub0, after $PIP/$PUB, guest: $(tr '\n' ';' <<<"$got")"; fi
  else
    fail reboot "the guest did not come back within $BOOT_TIMEOUT s"; console_tail
  fi

}

# volume_steps: a volume attached while stopped, written in the guest, snapshotted, restored, and both read back after stop/start; fails (1) when the instance does not come back.
volume_steps() {
  # --- a second volume, attached while stopped ---
  local snap dev1 sum1 serial1 serial2
  vol1=$(ec2 create-volume --size 1 2>&1 | grep -o 'vol-[0-9a-f]*' | head -n 1)
  if [[ -n $vol1 ]] && ec2 attach-volume --volume-id "$vol1" --instance-id "$IID" --device /dev/sdf >"$WORK/out" 2>&1; then
    pass attach-volume "$vol1 on /dev/sdf while stopped"
  else fail attach-volume "${vol1:-no volume}: $(tail -n 2 "$WORK/out")"; fi
  start_and_wait start-1 || return 1
  [[ $(inst .PrivateIpAddress) == "$pip0" ]] && pass stop-start-private-ip "$pip0 kept" ||
    fail stop-start-private-ip "was $pip0, now $(inst .PrivateIpAddress)"
  serial1=${vol1//-/}
  got=$(as_root <<ROOT 2>&1
set -e
dev=
for b in /sys/block/vd*; do [ "\$(cat \$b/serial 2>/dev/null)" = "$serial1" ] && dev=/dev/\${b##*/}; done
[ -n "\$dev" ] || { echo "no disk with serial $serial1:"; for b in /sys/block/vd*; do echo "\$b \$(cat \$b/serial 2>/dev/null)"; done; exit 1; }
if command -v mkfs.ext4 >/dev/null 2>&1; then mkfs.ext4 -q -F "\$dev"; else mke2fs "\$dev" >/dev/null; fi
mkdir -p /mnt/data
mount "\$dev" /mnt/data
dd if=/dev/urandom of=/mnt/data/blob bs=1024 count=2048 2>/dev/null
echo "DEV \$dev"
echo "SUM \$(sha256sum /mnt/data/blob | cut -d' ' -f1)"
sync
umount /mnt/data
ROOT
  )
  sum1=$(sed -n 's/^SUM //p' <<<"$got")
  dev1=$(sed -n 's/^DEV //p' <<<"$got")
  if [[ -n $sum1 ]]; then pass volume-in-guest "$vol1 is $dev1 in the guest: formatted, mounted, 2 MiB written (sha256 ${sum1:0:12}...)"
  else fail volume-in-guest "$(tr '\n' ';' <<<"$got" | head -c 400)"; fi

  # --- a snapshot of it, restored to a new volume ---
  snap=$(ec2 create-snapshot --volume-id "$vol1" --description "nested $IMG" 2>&1 | grep -o 'snap-[0-9a-f]*' | head -n 1)
  local sstate=
  for _ in $(seq 120); do
    sstate=$(ec2 --output json describe-snapshots 2>/dev/null | jq -r --arg s "$snap" '.. | objects | select(.SnapshotId? == $s) | (.State // .Status)' | head -n 1)
    [[ $sstate == completed || $sstate == error ]] && break
    sleep 2
  done
  [[ $sstate == completed ]] && pass snapshot "$snap of $vol1 completed" || fail snapshot "${snap:-no snapshot}: state '$sstate'"

  stop_and_check stop-clean-2 "ec2 stop-instances (second)"
  vol2=$(ec2 create-volume --size 1 --snapshot-id "$snap" 2>&1 | grep -o 'vol-[0-9a-f]*' | head -n 1)
  for _ in $(seq 60); do
    [[ $(ec2 --output json describe-volumes 2>/dev/null | jq -r --arg v "$vol2" '.. | objects | select(.VolumeId? == $v) | .Status' | head -n 1) == available ]] && break
    sleep 1
  done
  ec2 attach-volume --volume-id "$vol2" --instance-id "$IID" --device /dev/sdg >"$WORK/out" 2>&1 ||
    fail attach-restored "${vol2:-no volume}: $(tail -n 2 "$WORK/out")"
  start_and_wait start-2 || return 1
  serial2=${vol2//-/}
  got=$(as_root <<ROOT 2>&1
for s in $serial1 $serial2; do
  dev=
  for b in /sys/block/vd*; do [ "\$(cat \$b/serial 2>/dev/null)" = "\$s" ] && dev=/dev/\${b##*/}; done
  [ -n "\$dev" ] || { echo "NODISK \$s"; continue; }
  mkdir -p /mnt/\$s && mount -o ro "\$dev" /mnt/\$s && echo "SUM \$s \$(sha256sum /mnt/\$s/blob | cut -d' ' -f1)" && umount /mnt/\$s
done
ROOT
  )
  if [[ -n $sum1 ]] && grep -qx "SUM $serial1 $sum1" <<<"$got"; then pass volume-survives-stop-start "$vol1's file has the same sha256 after stop/start"
  else fail volume-survives-stop-start "wrote ${sum1:-nothing}; now: $(tr '\n' ';' <<<"$got" | head -c 300)"; fi
  if [[ -n $sum1 ]] && grep -qx "SUM $serial2 $sum1" <<<"$got"; then pass snapshot-restore "$vol2 from $snap holds the same bytes"
  else fail snapshot-restore "wrote ${sum1:-nothing}; now: $(tr '\n' ';' <<<"$got" | head -c 300)"; fi
  [[ $(inst .PrivateIpAddress) == "$pip0" ]] || fail stop-start-private-ip-2 "was $pip0, now $(inst .PrivateIpAddress)"
  not_running_note

}

# hibernate_step: StopInstances Hibernate=true and a start keep a process and the boot id.
hibernate_step() {
  # --- hibernation keeps a running process ---
  local pid boot_id
  # A process of its own session (setsid), so that the end of the ssh session does not end it;
  # seen alive by a second login before the hibernation.
  got=$(gssh 'setsid sleep 100000 </dev/null >/dev/null 2>&1 & echo "PID $!"; echo "BOOT $(cat /proc/sys/kernel/random/boot_id)"' 2>&1)
  pid=$(sed -n 's/^PID //p' <<<"$got") boot_id=$(sed -n 's/^BOOT //p' <<<"$got")
  sleep 2
  got=$(gssh "tr '\\0' ' ' </proc/$pid/cmdline" 2>&1)
  grep -q "sleep 100000" <<<"$got" || say "hibernate: the sleep (pid '$pid') is not running before the hibernation: $got"
  out=$(api StopInstances "InstanceId.1=$IID" Hibernate=true)
  if grep -q '<code>64</code>\|stopping' <<<"$out" && wait_state stopped 300; then
    reason=$(inst .StateReason.Code)
    [[ $reason == Client.UserInitiatedHibernate ]] || fail hibernate "stopped with reason '$reason'"
    ec2 start-instances --instance-ids "$IID" >/dev/null 2>&1
    if wait_state running 120 && PUB=$(inst .PublicIpAddress) && wait_ssh 300; then
      got=$(gssh "kill -0 $pid && tr '\\0' ' ' </proc/$pid/cmdline; echo; cat /proc/sys/kernel/random/boot_id" 2>&1)
      if [[ -n $pid ]] && grep -q "sleep 100000" <<<"$got" && grep -qx "$boot_id" <<<"$got"; then
        pass hibernate "pid $pid (sleep 100000) and the boot id survived stop --hibernate and start"
      else fail hibernate "before: pid $pid boot $boot_id; after: $(tr '\n' ';' <<<"$got")"; fi
      # The devices came back too: a line written to the guest's console reaches console.log.
      echo "echo kec2-nested-console-$MARKER >/dev/console" | as_root >/dev/null 2>&1
      sleep 3
      console | grep -q "kec2-nested-console-$MARKER" && pass console-after-resume "the serial console works after the resume" ||
        fail console-after-resume "a line written to /dev/console after the resume never reached console.log"
    else fail hibernate "no ssh after the start from hibernation (state $(state))"; console_tail; fi
  else fail hibernate "StopInstances Hibernate=true: $(head -c 300 <<<"$out") (state $(state))"; fi
}

# guest_poweroff_step: `poweroff` in the guest stops the instance (InstanceInitiatedShutdownBehavior stop).
guest_poweroff_step() {
  local reason
  if [[ " $(jq -r .boot_args "$manifest") " == *" acpi=off "* ]]; then
    # Without ACPI the kernel can only halt.
    echo "SKIP $IMG/guest-poweroff: the image boots with acpi=off, so poweroff halts the guest"
  elif [[ $(state) == running ]]; then
    echo poweroff | as_root >/dev/null 2>&1
    if wait_state stopped 180; then
      reason=$(inst .StateReason.Code)
      [[ $reason == Client.InstanceInitiatedShutdown ]] && pass guest-poweroff "stopped, reason $reason" ||
        fail guest-poweroff "stopped with reason '$reason'"
    else
      fail guest-poweroff "still $(state) 180 s after poweroff in the guest; its console's last lines: $(console | tail -n 3 | tr '\n' '|')"
      ec2 stop-instances --force --instance-ids "$IID" >/dev/null 2>&1
      wait_state stopped 120
    fi
  else fail guest-poweroff "not tried: the instance is $(state)"; fi
}

# terminate_step: TerminateInstances cleans up (run whatever happened before).
terminate_step() {
  local root_vol taps
  root_vol=$(inst '(.BlockDeviceMapping // .BlockDeviceMappings // [])[] | select(.DeviceName == "/dev/xvda") | .Ebs.VolumeId')
  # Terminated from running, so that its tap is there to be removed.
  [[ $(state) == running ]] || { ec2 start-instances --instance-ids "$IID" >/dev/null 2>&1; wait_state running 120; }
  taps=$(ip -o link show | grep -o 'kec2t[0-9a-z]*' | sort -u | paste -sd ' ')
  ec2 terminate-instances --instance-ids "$IID" >/dev/null 2>&1
  if wait_state terminated 300; then
    local left=()
    for t in $taps; do ip link show "$t" >/dev/null 2>&1 && left+=("tap $t"); done
    [[ -n $root_vol && -e $STATE/volumes/$root_vol.img ]] && left+=("root volume file $root_vol.img")
    [[ -n $root_vol ]] || left+=("(no root volume id in DescribeInstances)")
    for v in $vol1 $vol2; do
      [[ $(ec2 --output json describe-volumes 2>/dev/null | jq -r --arg v "$v" '.. | objects | select(.VolumeId? == $v) | .Status' | head -n 1) == available ]] ||
        left+=("attached volume $v not available")
    done
    pgrep -f "vmm.*$IID" >/dev/null && left+=("a vmm still runs")
    ((${#left[@]} == 0)) && pass terminate "terminated; taps ${taps:-none} and the root volume file gone, attached volumes available" ||
      fail terminate "${left[*]}"
  else fail terminate "still $(state)"; fi
}

# stop_and_check STEP WHAT: StopInstances (graceful), stopped in time, and the console shows the
# guest shutting down after its last boot.
stop_and_check() {
  local t0 text
  t0=$(now)
  ec2 stop-instances --instance-ids "$IID" >/dev/null 2>&1
  if ! wait_state stopped $((STOP_TIMEOUT + 120)); then fail "$1" "still $(state) after $2"; return; fi
  text=$(console | awk -v re="$READY_RE" '$0 ~ re {buf = ""} {buf = buf $0 "\n"} END {printf "%s", buf}')
  if grep -qE "$DOWN_RE" <<<"$text"; then
    pass "$1" "stopped in $(($(now) - t0)) s; the console shows the shutdown: $(grep -oE "$DOWN_RE" <<<"$text" | tail -n 1)"
  else
    fail "$1" "stopped in $(($(now) - t0)) s (stop timeout $STOP_TIMEOUT s) but the console shows no clean shutdown ('$DOWN_RE'); its last lines: $(tail -n 4 <<<"$text" | tr '\n' '|')"
  fi
}
# start_and_wait STEP: StartInstances, then until the guest has booted and ssh works.
start_and_wait() {
  local boots t0
  boots=$(count_ready) t0=$(now)
  ec2 start-instances --instance-ids "$IID" >"$WORK/out" 2>&1 || { fail "$1" "start-instances: $(tail -n 2 "$WORK/out")"; return 1; }
  # A stop gives the public address back: the new one is known once the instance runs.
  wait_state running 120 && PUB=$(inst .PublicIpAddress)
  if wait_ready $((boots + 1)) && wait_ssh 300; then
    say "$1: booted and reachable by ssh $(($(now) - t0)) s after start-instances"
    return 0
  fi
  fail "$1" "the guest did not boot or take ssh logins within $BOOT_TIMEOUT s (state $(state): $(inst .StateReason.Message))"; console_tail
  vmm_log_tail
  return 1
}

IMG=agent
suite_t0=$(now)
if start_agent; then pass start "agent at $ENDPOINT"; else fail start "the agent did not start: $(tail -n 5 "$WORK/agent.log")"; exit 1; fi
for IMG in $IMAGES; do
  if [[ -f $P/images/$IMG/manifest.json ]]; then
    journey
  else
    say "image $IMG not in the payload (images/out/$IMG not built): skipped"
  fi
done
IMG=agent
kill "$agent_pid" 2>/dev/null
wait "$agent_pid" 2>/dev/null
if grep -q 'a unit panicked' "$WORK/agent.log"; then fail no-panics "$(grep -m 3 'a unit panicked' "$WORK/agent.log")"; fi
echo "TIMING journey total $(($(now) - suite_t0))"
say "$failures failed steps"
((failures == 0))
