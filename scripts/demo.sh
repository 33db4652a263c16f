#!/usr/bin/env bash
# The main job on a fresh Debian machine (as root): installs what is needed, builds, makes the
# probe image, boots it, and drives a running microVM through its control socket.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/install-deps.sh

echo "== building"
cargo build --release --workspace --locked
images/build.sh probe
vmm=target/release/vmm
ctl=target/release/vmm-ctl
probe=images/out/probe/probe.elf

echo
echo "== booting the probe: 2 vCPUs, 256 MiB, self-test, then power off"
"$vmm" --kernel "$probe" --vcpus 2 --mem-mib 256 --cmdline "probe.mode=selftest"

echo
echo "== a running microVM, driven through its control socket"
work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
"$vmm" --kernel "$probe" --mem-mib 64 --cmdline "probe.mode=count" \
  --api-sock "$work/api.sock" --serial-log "$work/console.log" 2>"$work/vmm.log" &
pid=$!
for _ in $(seq 100); do [[ -S $work/api.sock ]] && break; sleep 0.05; done
sleep 2.2
echo "-- status:"; "$ctl" --api-sock "$work/api.sock" status
echo "-- pause for 2 s:"; "$ctl" --api-sock "$work/api.sock" pause >/dev/null
tail -n 1 "$work/console.log"; sleep 2; tail -n 1 "$work/console.log"
echo "-- resume:"; "$ctl" --api-sock "$work/api.sock" resume >/dev/null; sleep 1.2
tail -n 1 "$work/console.log"
echo "-- ctrl-alt-del:"; "$ctl" --api-sock "$work/api.sock" ctrl-alt-del >/dev/null
wait "$pid" || true
echo "-- console log:"; cat "$work/console.log"
echo "-- vmm:"; cat "$work/vmm.log"

echo
echo "== the agent: an EC2 API over these microVMs"
state=$(mktemp -d)
cleanup() {
  kill "$pid" 2>/dev/null || true
  kill "$agent_pid" 2>/dev/null || true
  kill "${hook_pid:-}" 2>/dev/null || true
  pkill -f -- "--serial-log $state/" 2>/dev/null || true
  pkill -f -- "$state/elb/" 2>/dev/null || true
  [[ -n ${KEC2_NETNS:-} ]] && ip netns del "$KEC2_NETNS" 2>/dev/null
  rm -rf "$work" "$state"
}
trap cleanup EXIT
# KEC2_NETNS=NAME keeps the instances' network (VPC bridge, taps, rules) in a namespace of that
# name, made here, instead of on this host's own network.
netns_args=()
in_net() { "$@"; }
if [[ -n ${KEC2_NETNS:-} ]]; then
  ip netns add "$KEC2_NETNS"
  ip netns exec "$KEC2_NETNS" ip link set lo up
  netns_args=(--netns "$KEC2_NETNS")
  in_net() { ip netns exec "$KEC2_NETNS" "$@"; }
fi
target/release/agent --state-dir "$state" --listen 127.0.0.1:0 --metrics-interval 5 "${netns_args[@]}" 2>"$state/agent.log" &
agent_pid=$!
for _ in $(seq 100); do [[ -s $state/endpoint ]] && break; sleep 0.05; done
export EC2_ENDPOINT=$(cat "$state/endpoint")
ec2() { target/release/ec2 --state-dir "$state" "$@"; }
echo "-- API at $EC2_ENDPOINT; credentials:"; ec2 credentials | sed 's/=.*/=.../'
ami=$(ec2 register-image --manifest images/out/probe/manifest.json)
echo "-- registered the probe image as $ami"
ec2 run-instances --image-id "$ami" --instance-type t2.micro --count 2 >/dev/null
ids=$(ec2 describe-instances --output json | python3 -c 'import json,sys; print(" ".join(i["InstanceId"] for r in json.load(sys.stdin)["Reservations"] for i in r["Instances"]))')
ec2 wait instance-running --instance-ids $ids
echo "-- two instances running:"; ec2 describe-instances
first=${ids%% *}
vmm_pid=$(pgrep -f -- "--serial-log $state/instances/$first/" | head -n 1)
echo "-- the vmm of $first (pid $vmm_pid) runs jailed: its own uid, no capabilities, seccomp,"
echo "   its own mount namespace and cgroup (docs/security.md):"
grep -E '^(Uid|CapEff|NoNewPrivs|Seccomp):' "/proc/$vmm_pid/status" | sed 's/^/   /'
grep -E ':(memory|pids):|^0::' "/proc/$vmm_pid/cgroup" | sed 's/^/   cgroup /'
echo "   its / holds: [$(ls -A "/proc/$vmm_pid/root" | tr '\n' ' ')] (no /etc, /dev or /proc)"
for _ in $(seq 100); do ec2 get-console-output --instance-id "$first" | grep -q 'imds done' && break; sleep 0.1; done
echo "-- console of $first: an address by DHCP, its metadata over IMDSv2:"
ec2 get-console-output --instance-id "$first" | grep -E 'net dhcp|imds'
public=$(ec2 describe-instances --instance-ids "$first" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Reservations"][0]["Instances"][0].get("PublicIpAddress", ""))')
group=$(ec2 describe-security-groups --output json | python3 -c 'import json,sys; print([g["GroupId"] for g in json.load(sys.stdin)["SecurityGroups"] if g["GroupName"] == "default"][0])')
fetch() { in_net python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' "http://$public${1:-/}" 2>/dev/null || echo "(no answer)"; }
echo "-- its web page on its public address $public, before port 80 is open: $(fetch)"
ec2 authorize-security-group-ingress --group-id "$group" --protocol tcp --port 80 --cidr 0.0.0.0/0 >/dev/null
echo "-- after authorize-security-group-ingress tcp/80: $(fetch)"
echo "-- stop it, start it again:"
ec2 stop-instances --instance-ids "$first" >/dev/null
ec2 wait instance-stopped --instance-ids "$first"
echo "   the stop pressed its ACPI power button, as EC2 does; its console:"
ec2 get-console-output --instance-id "$first" | grep -E 'power button|power(ing)? off' | sed 's/^/   /'
ec2 start-instances --instance-ids "$first" >/dev/null
ec2 wait instance-running --instance-ids "$first"
ec2 describe-instances
echo "-- CloudWatch on the same endpoint, with the real aws CLI (its default protocol for"
echo "   CloudWatch is RPC v2 CBOR): put a custom metric, read its statistics back"
venv=${KEC2_VENV:-/var/cache/kec2/venv}
if [[ ! -x $venv/bin/aws ]]; then
  python3 -m venv "$venv" && "$venv/bin/pip" install --quiet boto3==1.44.18 awscli==1.46.3
fi
aws() { (eval "$(ec2 credentials)"; AWS_DEFAULT_REGION=local-1 "$venv/bin/aws" --endpoint-url "$EC2_ENDPOINT" "$@"); }
minute=$(date -u +%Y-%m-%dT%H:%M:00Z)
aws cloudwatch put-metric-data --namespace Demo --metric-data "[{\"MetricName\": \"Latency\",
  \"Dimensions\": [{\"Name\": \"InstanceId\", \"Value\": \"$first\"}], \"Timestamp\": \"$minute\",
  \"Values\": [12, 15, 20, 95], \"Counts\": [10, 5, 3, 1], \"Unit\": \"Milliseconds\"}]"
stats() {
  aws cloudwatch get-metric-statistics --namespace Demo --metric-name Latency \
    --dimensions Name=InstanceId,Value="$first" --start-time "$minute" \
    --end-time "$(date -u -d "$minute + 1 minute" +%Y-%m-%dT%H:%M:00Z)" --period 60 "$@" --output table
}
stats --statistics Average Maximum SampleCount
stats --extended-statistics p50 p90
echo "-- the agent watches its instances from outside (every 5 s here: agent --metrics-interval 5):"
echo "   EC2's status checks, and AWS/EC2 metrics at 1-minute resolution once detailed monitoring is on"
public=$(ec2 describe-instances --instance-ids "$first" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Reservations"][0]["Instances"][0].get("PublicIpAddress", ""))')
aws ec2 monitor-instances --instance-ids "$first" --output text
for _ in $(seq 60); do
  aws ec2 describe-instance-status --instance-ids "$first" --output text | grep -q 'INSTANCESTATUS.*ok' && break; sleep 1
done
aws ec2 describe-instance-status --instance-ids "$first" --output table \
  --query 'InstanceStatuses[].{Instance:InstanceId,System:SystemStatus.Status,Reachability:InstanceStatus.Details[0].Status,EBS:AttachedEbsStatus.Status}'
echo "-- an alarm that tells a webhook: CPU of $first above 40 % for 3 periods of 10 s -> an SNS"
echo "   topic -> an HTTP subscriber on this host (it confirms the subscription, then prints each"
echo "   notification: CloudWatch's alarm JSON, signed)"
python3 - "$state/webhook" <<'PY' &
import http.server, json, sys, urllib.request
out = sys.argv[1]
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        doc = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.send_response(200); self.end_headers()
        if doc["Type"] == "SubscriptionConfirmation":
            urllib.request.urlopen(doc["SubscribeURL"], timeout=10).read()
            print("   webhook: subscription confirmed", flush=True)
        else:
            m = json.loads(doc["Message"])
            print(f"   webhook: {doc['Subject']}: {m['OldStateValue']} -> {m['NewStateValue']}: "
                  f"{m['NewStateReason'][:110]}...", flush=True)
    def log_message(self, *a): pass
s = http.server.HTTPServer(("127.0.0.1", 0), Hook)
open(out + ".tmp", "w").write(str(s.server_address[1])); __import__("os").rename(out + ".tmp", out)
s.serve_forever()
PY
hook_pid=$!
for _ in $(seq 50); do [[ -s $state/webhook ]] && break; sleep 0.1; done
topic=$(aws sns create-topic --name ops-alerts --query TopicArn --output text)
aws sns subscribe --topic-arn "$topic" --protocol http --notification-endpoint "http://127.0.0.1:$(cat "$state/webhook")/" >/dev/null
sleep 2
aws cloudwatch put-metric-alarm --alarm-name cpu-high --namespace AWS/EC2 --metric-name CPUUtilization \
  --dimensions Name=InstanceId,Value="$first" --statistic Average --period 10 --evaluation-periods 3 \
  --threshold 40 --comparison-operator GreaterThanThreshold --alarm-actions "$topic" --ok-actions "$topic"
alarm_state() { aws cloudwatch describe-alarms --alarm-names cpu-high --query 'MetricAlarms[0].StateValue' --output text; }
wait_alarm() { for _ in $(seq 150); do [[ $(alarm_state) == "$1" ]] && return; sleep 1; done; echo "   (still $(alarm_state))"; }
wait_alarm OK
echo "   alarm cpu-high: $(alarm_state); the probe burns 90 % of its vCPU: $(fetch /burn/90)"
wait_alarm ALARM
sleep 2
echo "   alarm cpu-high: $(alarm_state); the burn stops: $(fetch /burn/0)"
wait_alarm OK
sleep 2
echo "   alarm cpu-high: $(alarm_state); its history:"
aws cloudwatch describe-alarm-history --alarm-name cpu-high --query 'AlarmHistoryItems[].[Timestamp,HistoryItemType,HistorySummary]' --output text | sed 's/^/   /'
echo "-- elasticity: a launch template, an Auto Scaling group of 2 behind an application load"
echo "   balancer (HAProxy, one per load balancer, in the instances' network)"
aws ec2 create-launch-template --launch-template-name web --launch-template-data \
  "{\"ImageId\": \"$ami\", \"InstanceType\": \"t2.nano\", \"SecurityGroupIds\": [\"$group\"]}" \
  --query 'LaunchTemplate.[LaunchTemplateId,LaunchTemplateName,LatestVersionNumber]' --output text | sed 's/^/   template: /'
vpc=$(aws ec2 describe-vpcs --query 'Vpcs[0].VpcId' --output text)
subnet=$(aws ec2 describe-subnets --query 'Subnets[0].SubnetId' --output text)
tg=$(aws elbv2 create-target-group --name web --protocol HTTP --port 80 --vpc-id "$vpc" \
  --health-check-interval-seconds 5 --health-check-timeout-seconds 2 --healthy-threshold-count 2 \
  --query 'TargetGroups[0].TargetGroupArn' --output text)
lb=$(aws elbv2 create-load-balancer --name web --subnets "$subnet" --security-groups "$group" \
  --query 'LoadBalancers[0].LoadBalancerArn' --output text)
dns=$(aws elbv2 describe-load-balancers --load-balancer-arns "$lb" --query 'LoadBalancers[0].DNSName' --output text)
aws elbv2 create-listener --load-balancer-arn "$lb" --protocol HTTP --port 80 \
  --default-actions Type=forward,TargetGroupArn="$tg" >/dev/null
aws autoscaling create-auto-scaling-group --auto-scaling-group-name web \
  --launch-template LaunchTemplateName=web --min-size 2 --max-size 4 --desired-capacity 2 \
  --vpc-zone-identifier "$subnet" --target-group-arns "$tg" --health-check-type ELB \
  --health-check-grace-period 30
healthy() { aws elbv2 describe-target-health --target-group-arn "$tg" --query "length(TargetHealthDescriptions[?TargetHealth.State=='healthy'])" --output text; }
wait_healthy() { for _ in $(seq 120); do [[ $(healthy) -ge $1 ]] && return; sleep 1; done; echo "   (only $(healthy) healthy)"; }
wait_healthy 2
aws elbv2 describe-target-health --target-group-arn "$tg" --output text \
  --query 'TargetHealthDescriptions[].[Target.Id,TargetHealth.State]' | sed 's/^/   target /'
lb_ip=$(awk -v n="$dns" '$2 == n {print $1}' "$state/elb/hosts")
through_lb() { in_net python3 -c 'import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=2).read().decode().strip())' "http://$lb_ip/" 2>/dev/null || echo "(no answer)"; }
echo "   http://$dns/ ($lb_ip in $state/elb/hosts) answers, in turn: $(for _ in 1 2 3 4; do printf '%s ' "$(through_lb)"; done)"
echo "-- set-desired-capacity 3: a third instance is launched, registered, checked and served"
aws autoscaling set-desired-capacity --auto-scaling-group-name web --desired-capacity 3
wait_healthy 3
echo "   answers: $(for _ in 1 2 3 4 5 6; do printf '%s ' "$(through_lb)"; done)"
aws autoscaling describe-scaling-activities --auto-scaling-group-name web --output text \
  --query 'Activities[].[StatusCode,Description]' | sed 's/^/   activity /'
echo "-- delete-auto-scaling-group --force-delete: its instances are terminated, then it goes"
aws autoscaling delete-auto-scaling-group --auto-scaling-group-name web --force-delete
for _ in $(seq 60); do
  [[ $(aws autoscaling describe-auto-scaling-groups --auto-scaling-group-names web --query 'length(AutoScalingGroups)' --output text) == 0 ]] && break
  sleep 1
done
aws elbv2 delete-load-balancer --load-balancer-arn "$lb"
echo "-- terminate both:"
ec2 terminate-instances --instance-ids $ids >/dev/null
ec2 wait instance-terminated --instance-ids $ids
ec2 describe-instances
echo
echo "== real Linux instances (the busybox image and the Debian AMI with cloud-init) over SSH:"
echo "   scripts/tests/nested/run.sh runs them in a nested test host on any machine (scripts/tests/nested/README.md)"
echo "== done"
