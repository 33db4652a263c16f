"""The monitoring loop end to end, as a user walks it: a CPU alarm on a real probe instance
(sampled every 2 s by the agent) notifies an SNS topic whose HTTP subscriber is a webhook on
the loopback; burning the probe's CPU takes the alarm to ALARM and the webhook gets
CloudWatch's alarm JSON, signed; stopping the burn brings it back to OK. Then a status-check
alarm with a reboot action reboots the instance when it stops answering ARP.

    alarm_notifications.py ENDPOINT STATE_DIR NETNS INSTANCE_ID PUBLIC_IP

Drives the probe's load over HTTP from inside NETNS (where instances' networks live)."""

import json
import subprocess
import sys
import time

from aws_clients import keys_of, session
from sns_endpoints import HttpEndpoint, confirm_by_url, json_body, verify_signature

endpoint, state_dir, netns, iid, ip = sys.argv[1:6]
s = session(keys_of(state_dir))
cw = s.client("cloudwatch", endpoint_url=endpoint)
sns = s.client("sns", endpoint_url=endpoint)
ec2 = s.client("ec2", endpoint_url=endpoint)


def probe(path):
    """GET path on the probe's web server, from the instances' namespace."""
    out = subprocess.run(
        ["ip", "netns", "exec", netns, "python3", "-c",
         "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=5).read().decode())",
         f"http://{ip}{path}"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    return out.stdout


def wait_state(name, state, timeout):
    end = time.time() + timeout
    while True:
        a = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"][0]
        if a["StateValue"] == state:
            return a
        assert time.time() < end, f"{name} still {a['StateValue']} ({a['StateReason']})"
        time.sleep(1)


def mark():
    """What the webhook has got so far (notifications after it are new)."""
    with hook.got.cond:
        return {id(i) for i in hook.got.items}


def notification(state, seen):
    """The webhook's first notification since `seen` of the cpu-high alarm going to `state`:
    the SNS envelope and the alarm JSON inside it. (Before the burn the alarm may already
    have been in ALARM once: a probe's boot can take one 10-second period over 40 %, which
    CloudWatch counts as ALARM while the other periods are missing.)"""
    item = hook.got.wait_for(
        lambda i: id(i) not in seen and json_body(i).get("Type") == "Notification"
        and json.loads(json_body(i)["Message"]).get("NewStateValue") == state,
        timeout=60, what=f"an {state} notification")
    doc = json_body(item)
    return doc, json.loads(doc["Message"])


hook = HttpEndpoint()
topic = sns.create_topic(Name="ops-alerts")["TopicArn"]
sns.subscribe(TopicArn=topic, Protocol="http", Endpoint=hook.url + "/hook")
confirm = json_body(hook.got.wait_for(
    lambda i: json_body(i).get("Type") == "SubscriptionConfirmation", what="the confirmation"))
confirm_by_url(confirm["SubscribeURL"])

cw.put_metric_alarm(
    AlarmName="cpu-high", AlarmDescription="CPU above 40 %", Namespace="AWS/EC2",
    MetricName="CPUUtilization", Dimensions=[{"Name": "InstanceId", "Value": iid}],
    Statistic="Average", Period=10, EvaluationPeriods=3, DatapointsToAlarm=3, Threshold=40.0,
    ComparisonOperator="GreaterThanThreshold", AlarmActions=[topic], OKActions=[topic])
wait_state("cpu-high", "OK", 90)

seen = mark()
assert "burn 90" in probe("/burn/90")
alarm = wait_state("cpu-high", "ALARM", 120)
assert alarm["StateReason"].startswith("Threshold Crossed: 3 out of the last 3 datapoints"), alarm
doc, msg = notification("ALARM", seen)
verify_signature(doc)
assert doc["Subject"] == 'ALARM: "cpu-high" in local-1', doc["Subject"]
assert doc["TopicArn"] == topic
assert msg["AlarmName"] == "cpu-high" and msg["OldStateValue"] == "OK", msg
assert msg["NewStateReason"] == alarm["StateReason"], msg
trigger = msg["Trigger"]
assert trigger["MetricName"] == "CPUUtilization" and trigger["Namespace"] == "AWS/EC2", trigger
assert trigger["Dimensions"] == [{"value": iid, "name": "InstanceId"}], trigger
assert (trigger["Period"], trigger["EvaluationPeriods"], trigger["Threshold"]) == (10, 3, 40.0)
assert trigger["ComparisonOperator"] == "GreaterThanThreshold", trigger

seen = mark()
assert "burn 0" in probe("/burn/0")
wait_state("cpu-high", "OK", 120)
doc, msg = notification("OK", seen)
assert msg["OldStateValue"] == "ALARM" and doc["Subject"] == 'OK: "cpu-high" in local-1', doc

history = cw.describe_alarm_history(AlarmName="cpu-high")["AlarmHistoryItems"]
updates = [h["HistorySummary"] for h in history if h["HistoryItemType"] == "StateUpdate"]
actions = [h["HistorySummary"] for h in history if h["HistoryItemType"] == "Action"]
assert any("from OK to ALARM" in u for u in updates), updates
assert any("from ALARM to OK" in u for u in updates), updates
assert sum(f"Successfully executed action {topic}" in a for a in actions) >= 3, actions
print("alarm notifications: ok")

# A failed instance check reboots the instance (EC2's reboot action) and the alarm clears.
cw.put_metric_alarm(
    AlarmName="instance-check", Namespace="AWS/EC2", MetricName="StatusCheckFailed_Instance",
    Dimensions=[{"Name": "InstanceId", "Value": iid}], Statistic="Maximum", Period=10,
    EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
    AlarmActions=["arn:aws:automate:local-1:ec2:reboot", topic])
wait_state("instance-check", "OK", 60)
boots = ec2.get_console_output(InstanceId=iid)["Output"].count("probe: vcpu 0 of")
assert "arp off" in probe("/arp/off")
wait_state("instance-check", "ALARM", 60)
end = time.time() + 60
while ec2.get_console_output(InstanceId=iid)["Output"].count("probe: vcpu 0 of") <= boots:
    assert time.time() < end, "the reboot action did not reboot the instance"
    time.sleep(1)
# Rebooted, the probe answers ARP again: the check passes and the alarm clears.
wait_state("instance-check", "OK", 90)
history = cw.describe_alarm_history(AlarmName="instance-check", HistoryItemType="Action")
summaries = [h["HistorySummary"] for h in history["AlarmHistoryItems"]]
assert any("arn:aws:automate:local-1:ec2:reboot" in x and "Successfully" in x for x in summaries), summaries
print("reboot action: ok")
