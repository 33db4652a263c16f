# Shared by the tests that run a real agent with the netns-vmm stand-in (lib/netns-vmm.py):
# sourced, not run. The caller sets NAME, repo and tmp (a scratch directory, removed by the
# caller's cleanup) and defines fail(); this file defines:
#   state, ns, gprefix          the agent's state dir, its namespace, the guest namespaces' prefix
#   netns_agent_start [ENV=VALUE ...]
#                               starts target/release/agent in $ns with --vmm netns-vmm.py (its
#                               environment gets the ENV=VALUE pairs) and sets endpoint, agent_pid
#   ec2 ARGS...                 target/release/ec2 against it
#   describe_instance IID FIELD the instance's FIELD in DescribeInstances (JSON)
#   standin_pids                the stand-ins serving this agent's instances
#   guest_ns_of_tap TAP / guest_namespaces
#   netns_agent_stop            the agent, its stand-ins, the namespaces they left

state="$tmp/state"
ns="kec2-$NAME-$$"
ns=${ns:0:30}
gprefix="kec2g-$$"   # the stand-in adds -<tap>; namespace names stay short
agent_pid=
endpoint=

netns_agent_start() {
  local agent_bin="$repo/target/release/agent" ec2_bin="$repo/target/release/ec2"
  local f
  for f in "$agent_bin" "$ec2_bin"; do
    [[ -x $f ]] || fail "$f is missing: run cargo build --release --workspace"
  done
  ip netns add "$ns" || fail "cannot create the network namespace $ns"
  ip -n "$ns" link set lo up
  mkdir -p "$state"
  env NETNS_VMM_PREFIX="$gprefix" AGENT_LOG=debug "$@" \
    "$agent_bin" --state-dir "$state" --listen 127.0.0.1:0 --vmm "$repo/scripts/tests/lib/netns-vmm.py" \
    --netns "$ns" --outbound-nat false --dns 192.0.2.53 --stop-timeout 5 \
    </dev/null >/dev/null 2>"$tmp/agent.log" &
  agent_pid=$!
  for _ in $(seq 100); do [[ -s $state/endpoint ]] && break; sleep 0.1; done
  [[ -s $state/endpoint ]] || fail "the agent wrote no endpoint file"
  endpoint=$(cat "$state/endpoint")
}

ec2() { "$repo/target/release/ec2" --endpoint-url "$endpoint" --state-dir "$state" "$@"; }

describe_instance() {
  ec2 --output json describe-instances --instance-ids "$1" | python3 -c '
import json, sys
want, field = sys.argv[1], sys.argv[2]
def walk(v):
    if isinstance(v, dict):
        low = {k.lower(): x for k, x in v.items()}  # instanceId or InstanceId
        if low.get("instanceid") == want and field.lower() in low:
            print(low[field.lower()]); sys.exit(0)
        for x in v.values(): walk(x)
    elif isinstance(v, list):
        for x in v: walk(x)
walk(json.load(sys.stdin))' "$1" "$2"
}

standin_pids() {
  local p
  for p in /proc/[0-9]*; do
    { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -qF -- "--api-sock $state/" && echo "${p#/proc/}"
  done
  return 0
}

guest_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$gprefix-" || true; }

netns_agent_stop() {
  local p n
  # The agent first, so that it restarts nothing; its stand-ins live in their own sessions.
  if [[ -n $agent_pid ]]; then
    kill "$agent_pid" 2>/dev/null || true
    wait "$agent_pid" 2>/dev/null || true
    agent_pid=
  fi
  for p in $(standin_pids); do kill "$p" 2>/dev/null || true; done   # each removes its guest
  for _ in $(seq 30); do [[ -z $(standin_pids) ]] && break; sleep 0.1; done
  for p in $(standin_pids); do kill -9 "$p" 2>/dev/null || true; done
  for n in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^($gprefix-|$ns\$)" || true); do
    for p in $(ip netns pids "$n" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
    ip netns del "$n" 2>/dev/null || true
  done
}
