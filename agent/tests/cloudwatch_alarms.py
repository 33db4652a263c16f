"""CloudWatch alarms on a real agent, with the real clients: boto3's `cloudwatch` client in
its default protocol (RPC v2 CBOR) and forced to awsJson 1.0 and to awsQuery, and the `aws`
CLI (every call through `--cli-input-json`).

Usage:
  cloudwatch_alarms.py ENDPOINT STATE_DIR clients
      Each client, side by side, on a metric of its own put every second at
      StorageResolution 1: an alarm with Period 10 and 3 of 3 datapoints goes INSUFFICIENT_DATA
      -> ALARM while the values are above the threshold and -> OK when they fall back, with
      CloudWatch's reasons; a composite alarm follows it; DescribeAlarmHistory lists each
      transition; SetAlarmState, Disable/EnableAlarmActions, DescribeAlarmsForMetric, tags; bad
      input gets CloudWatch's codes and changes nothing; DeleteAlarms. Prints
      "cloudwatch over <protocol>: ok" per client, then "cloudwatch alarms: ok".
  cloudwatch_alarms.py ENDPOINT STATE_DIR stop INSTANCE_ID
      An alarm whose ALARM action is arn:aws:automate:local-1:ec2:stop, on a custom metric
      with the instance's InstanceId dimension, goes to ALARM; prints "stop alarm: ok" once
      its history holds the action's success; one with actions disabled runs none.
  cloudwatch_alarms.py ENDPOINT STATE_DIR recover INSTANCE_ID
      The same with arn:aws:automate:local-1:ec2:recover; prints "recover alarm: ok".
  cloudwatch_alarms.py ENDPOINT STATE_DIR kept
      After an agent restart: the stop alarm, its state and its history are still there.
      Prints "kept: ok".
"""

import datetime as dt
import json
import re
import sys
import threading
import time

from botocore.config import Config
from botocore.exceptions import ClientError

import aws_clients
from aws_clients import keys_of

endpoint, state_dir, mode = sys.argv[1:4]
keys = keys_of(state_dir)
NO_RETRY = Config(retries={"max_attempts": 0})
UTC = dt.timezone.utc


def snake(op):
    return re.sub(r"(?<!^)(?=[A-Z])", "_", op).lower()


def kebab(op):
    return snake(op).replace("_", "-")


class Failed(Exception):
    def __init__(self, code, status):
        super().__init__(f"{code} ({status})")
        self.code, self.status = code, status


class Boto:
    def __init__(self, data_path=None):
        s = aws_clients.session(keys, data_path)
        self.cw = s.client("cloudwatch", endpoint_url=endpoint, config=NO_RETRY)
        self.label = self.cw.meta.service_model.protocol

    def __call__(self, op, **params):
        try:
            out = getattr(self.cw, snake(op))(**params)
        except ClientError as e:
            raise Failed(e.response["Error"]["Code"],
                         e.response["ResponseMetadata"]["HTTPStatusCode"]) from None
        out.pop("ResponseMetadata", None)
        return out


class Cli:
    label = "the aws CLI"

    def __call__(self, op, **params):
        body = json.dumps(params, default=lambda t: t.isoformat())
        status, out, err = aws_clients.aws_cli(
            endpoint, keys, ["cloudwatch", kebab(op), "--cli-input-json", body])
        if status != 0:
            m = re.search(r"An error occurred \((\w+)\)", err)
            assert m, (op, err)
            raise Failed(m.group(1), None)
        return json.loads(out) if out.strip() else {}


def code_of(call, op, **params):
    try:
        call(op, **params)
    except Failed as e:
        return e.code
    raise AssertionError(f"{op} {params} should have failed")


def wait_for(what, check, timeout=120):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        ok, last = check()
        if ok:
            return last
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}; last: {last}")


def alarm_of(call, name, types=("MetricAlarm",)):
    got = call("DescribeAlarms", AlarmNames=[name], AlarmTypes=list(types))
    alarms = got.get("MetricAlarms", []) + got.get("CompositeAlarms", [])
    assert len(alarms) == 1, got
    return alarms[0]


def in_state(call, name, state, types=("MetricAlarm",)):
    def check():
        a = alarm_of(call, name, types)
        return a["StateValue"] == state, a
    return wait_for(f"{name} in {state}", check)


class Feeder(threading.Thread):
    """Puts the current level every second (StorageResolution 1, Timestamp now)."""

    def __init__(self, call, ns, dims, every=1.0):
        super().__init__(daemon=True)
        self.call, self.ns, self.dims, self.every = call, ns, dims, every
        self.level, self.stop, self.errors = 90.0, False, []

    def datum(self, t, v):
        return {"MetricName": "Load", "Dimensions": self.dims, "Timestamp": t,
                "Value": v, "StorageResolution": 1}

    def backfill(self, seconds):
        now = dt.datetime.now(UTC).replace(microsecond=0)
        self.call("PutMetricData", Namespace=self.ns, MetricData=[
            self.datum(now - dt.timedelta(seconds=s), self.level) for s in range(1, seconds)])

    def run(self):
        while not self.stop:
            try:
                self.call("PutMetricData", Namespace=self.ns,
                          MetricData=[self.datum(dt.datetime.now(UTC), self.level)])
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                self.errors.append(e)
            time.sleep(self.every)


def exercise(call, label, results):
    ns = f"Kec2Test/alarms-{label}"
    dims = [{"Name": "Host", "Value": label}]
    name, parent = f"load-{label}", f"any-{label}"
    feeder = Feeder(call, ns, dims, every=1.0 if isinstance(call, Boto) else 2.0)
    feeder.backfill(40)
    feeder.start()
    call("PutMetricAlarm", AlarmName=name, AlarmDescription="load above 70",
         Namespace=ns, MetricName="Load", Dimensions=dims, Statistic="Maximum", Period=10,
         EvaluationPeriods=3, DatapointsToAlarm=3, Threshold=70.0,
         ComparisonOperator="GreaterThanThreshold", TreatMissingData="missing",
         Tags=[{"Key": "team", "Value": "web"}])
    a = alarm_of(call, name)
    assert a["StateValue"] == "INSUFFICIENT_DATA", a
    assert a["StateReason"] == "Unchecked: Initial alarm creation", a
    assert (a["Period"], a["EvaluationPeriods"], a["DatapointsToAlarm"], a["Threshold"]) == \
        (10, 3, 3, 70.0), a
    assert a["AlarmArn"].startswith("arn:aws:cloudwatch:local-1:") and \
        a["AlarmArn"].endswith(f":alarm:{name}"), a
    assert a["Dimensions"] == dims and a["ActionsEnabled"] is True, a
    call("PutCompositeAlarm", AlarmName=parent, AlarmRule=f'ALARM("{name}")')

    # Tags, by the alarm's ARN.
    arn = a["AlarmArn"]
    call("TagResource", ResourceARN=arn, Tags=[{"Key": "env", "Value": "test"}])
    call("UntagResource", ResourceARN=arn, TagKeys=["team"])
    assert call("ListTagsForResource", ResourceARN=arn)["Tags"] == \
        [{"Key": "env", "Value": "test"}]
    assert code_of(call, "ListTagsForResource", ResourceARN=arn + "-gone") == \
        "ResourceNotFoundException"
    assert code_of(call, "TagResource", ResourceARN=arn,
                   Tags=[{"Key": "aws:x", "Value": "1"}]) == "InvalidParameterValue"

    # Above the threshold: ALARM, in CloudWatch's words.
    a = in_state(call, name, "ALARM")
    assert a["StateReason"].startswith("Threshold Crossed: 3 out of the last 3 datapoints [90.0 ("), a
    assert a["StateReason"].endswith(
        "were greater than the threshold (70.0) (minimum 3 datapoints for "
        "INSUFFICIENT_DATA -> ALARM transition)."), a
    data = json.loads(a["StateReasonData"])
    assert data["recentDatapoints"] == [90.0, 90.0, 90.0] and data["period"] == 10, data
    c = in_state(call, parent, "ALARM", ("CompositeAlarm",))
    assert f":alarm:{name} transitioned to ALARM at " in c["StateReason"], c

    # Back below: OK, and the composite with it.
    feeder.level = 10.0
    a = in_state(call, name, "OK")
    assert "not greater than the threshold (70.0)" in a["StateReason"], a
    assert "for ALARM -> OK transition" in a["StateReason"], a
    in_state(call, parent, "OK", ("CompositeAlarm",))

    hist = call("DescribeAlarmHistory", AlarmName=name, HistoryItemType="StateUpdate",
                ScanBy="TimestampAscending")["AlarmHistoryItems"]
    summaries = [h["HistorySummary"] for h in hist]
    assert summaries == ["Alarm updated from INSUFFICIENT_DATA to ALARM",
                         "Alarm updated from ALARM to OK"], summaries
    assert json.loads(hist[0]["HistoryData"])["newState"]["stateValue"] == "ALARM", hist[0]
    conf = call("DescribeAlarmHistory", AlarmName=name, HistoryItemType="ConfigurationUpdate")
    assert [h["HistorySummary"] for h in conf["AlarmHistoryItems"]] == \
        [f'Alarm "{name}" created'], conf
    composite = call("DescribeAlarmHistory", AlarmName=parent, AlarmTypes=["CompositeAlarm"],
                     HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    # Newest first: back to OK, and before it to ALARM (from OK, or straight from
    # INSUFFICIENT_DATA when the child's first evaluation already crossed).
    summaries = [h["HistorySummary"] for h in composite]
    assert summaries[0] == "Alarm updated from ALARM to OK", summaries
    assert summaries[1].endswith(" to ALARM"), summaries

    # SetAlarmState holds until the next evaluation, which puts the metric's state back.
    call("SetAlarmState", AlarmName=name, StateValue="ALARM", StateReason="testing",
         StateReasonData='{"by": "test"}')
    latest = call("DescribeAlarmHistory", AlarmName=name, HistoryItemType="StateUpdate",
                  MaxRecords=1)["AlarmHistoryItems"]
    new = json.loads(latest[0]["HistoryData"])["newState"]
    assert latest[0]["HistorySummary"] == "Alarm updated from OK to ALARM", latest
    assert (new["stateReason"], new["stateReasonData"]) == ("testing", {"by": "test"}), new
    in_state(call, name, "OK")

    # Actions off and on.
    call("DisableAlarmActions", AlarmNames=[name])
    assert alarm_of(call, name)["ActionsEnabled"] is False
    call("EnableAlarmActions", AlarmNames=[name])
    assert alarm_of(call, name)["ActionsEnabled"] is True

    found = call("DescribeAlarmsForMetric", Namespace=ns, MetricName="Load", Dimensions=dims)
    assert [x["AlarmName"] for x in found["MetricAlarms"]] == [name], found
    assert call("DescribeAlarmsForMetric", Namespace=ns, MetricName="Load",
                Period=60)["MetricAlarms"] == []
    assert [x["AlarmName"] for x in call("DescribeAlarms", ChildrenOfAlarmName=parent)
            ["MetricAlarms"]] == [name]

    # Bad input: CloudWatch's codes, and nothing changes.
    good = dict(AlarmName=f"bad-{label}", Namespace=ns, MetricName="Load", Dimensions=dims,
                Statistic="Maximum", Period=10, EvaluationPeriods=3, Threshold=70.0,
                ComparisonOperator="GreaterThanThreshold")
    cases = [
        (dict(good, Period=15), "ValidationError"),
        (dict(good, DatapointsToAlarm=4), "ValidationError"),
        (dict(good, Period=3600, EvaluationPeriods=25), "ValidationError"),
        (dict(good, ExtendedStatistic="p90"), "InvalidParameterCombination"),
        ({**{k: v for k, v in good.items() if k != "Statistic"}, "ExtendedStatistic": "p101"},
         "InvalidParameterValue"),
        (dict(good, TreatMissingData="sometimes"), "ValidationError"),
        (dict(good, AlarmActions=["arn:aws:automate:local-1:ec2:explode"]), "ValidationError"),
        (dict(good, AlarmActions=["arn:aws:automate:local-1:ec2:stop"]), "ValidationError"),
        (dict(good, OKActions=["arn:aws:sns:us-east-1:123456789012:t"]), "ValidationError"),
    ]
    for params, want in cases:
        assert code_of(call, "PutMetricAlarm", **params) == want, (params, want)
    assert code_of(call, "PutCompositeAlarm", AlarmName=f"bad-{label}",
                   AlarmRule=f'ALARM("{name}") AND') == "ValidationError"
    assert code_of(call, "PutCompositeAlarm", AlarmName=f"bad-{label}",
                   AlarmRule='ALARM("no-such-alarm")') == "ValidationError"
    assert code_of(call, "SetAlarmState", AlarmName="no-such-alarm", StateValue="OK",
                   StateReason="x") == "ResourceNotFound"
    assert code_of(call, "SetAlarmState", AlarmName=name, StateValue="OK", StateReason="x",
                   StateReasonData="{not json") == "InvalidFormat"
    assert code_of(call, "DeleteAlarms", AlarmNames=[parent, "no-such-alarm"]) == \
        "ResourceNotFound"
    assert code_of(call, "DeleteAlarms", AlarmNames=[name]) == "ResourceConflict"
    everything = call("DescribeAlarms", AlarmNamePrefix=f"load-{label}",
                      AlarmTypes=["MetricAlarm", "CompositeAlarm"])
    assert [x["AlarmName"] for x in everything["MetricAlarms"]] == [name], everything
    still = call("DescribeAlarms", AlarmNames=[parent], AlarmTypes=["CompositeAlarm"])
    assert [x["AlarmName"] for x in still["CompositeAlarms"]] == [parent], still
    assert call("DescribeAlarms", AlarmNamePrefix=f"bad-{label}")["MetricAlarms"] == []

    call("DeleteAlarms", AlarmNames=[parent, name])
    gone = call("DescribeAlarms", AlarmNamePrefix=f"load-{label}")
    assert gone["MetricAlarms"] == [], gone
    feeder.stop = True
    assert not feeder.errors, feeder.errors
    results[label] = f"cloudwatch over {label}: ok"


def clients():
    drivers = [Boto()]
    for protocol in ("json", "query"):
        drivers.append(Boto(aws_clients.forced_model_dir("cloudwatch", protocol)))
    drivers.append(Cli())
    results, threads, failures = {}, [], []

    def run(d):
        try:
            exercise(d, d.label.replace(" ", "-").replace("smithy-rpc-v2-cbor", "cbor"), results)
            print(f"cloudwatch over {d.label}: ok", flush=True)
        except BaseException as e:  # noqa: BLE001 - reported below
            import traceback
            failures.append(f"{d.label}: {traceback.format_exc()}")
            raise e

    for d in drivers:
        t = threading.Thread(target=run, args=(d,))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    assert not failures, "\n".join(failures)
    print("cloudwatch alarms: ok")


STOP = "arn:aws:automate:local-1:ec2:stop"
RECOVER = "arn:aws:automate:local-1:ec2:recover"


def stop(instance):
    call = Boto()
    dims = [{"Name": "InstanceId", "Value": instance}]
    now = dt.datetime.now(UTC).replace(microsecond=0)
    call("PutMetricData", Namespace="Kec2Test/health", MetricData=[
        {"MetricName": "Errors", "Dimensions": dims, "Timestamp": now - dt.timedelta(seconds=s),
         "Value": 5.0, "StorageResolution": 1} for s in range(1, 30)])
    # The same metric with actions disabled: it goes to ALARM and runs nothing.
    call("PutMetricAlarm", AlarmName="reboot-disabled", Namespace="Kec2Test/health",
         MetricName="Errors", Dimensions=dims, Statistic="Sum", Period=10,
         EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
         TreatMissingData="ignore", ActionsEnabled=False,
         AlarmActions=["arn:aws:automate:local-1:ec2:reboot"])
    call("PutMetricAlarm", AlarmName="stop-on-errors", Namespace="Kec2Test/health",
         MetricName="Errors", Dimensions=dims, Statistic="Sum", Period=10,
         EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
         TreatMissingData="ignore", AlarmActions=[STOP])

    def acted():
        h = call("DescribeAlarmHistory", AlarmName="stop-on-errors", HistoryItemType="Action")
        items = h["AlarmHistoryItems"]
        return bool(items), items
    items = wait_for("the stop action", acted)
    assert items[0]["HistorySummary"] == f"Successfully executed action {STOP}", items
    a = alarm_of(call, "stop-on-errors")
    assert a["StateValue"] == "ALARM", a
    quiet = alarm_of(call, "reboot-disabled")
    assert (quiet["StateValue"], quiet["ActionsEnabled"]) == ("ALARM", False), quiet
    assert call("DescribeAlarmHistory", AlarmName="reboot-disabled",
                HistoryItemType="Action")["AlarmHistoryItems"] == []
    print("stop alarm: ok")


def recover(instance):
    """An alarm whose ALARM action is arn:aws:automate:local-1:ec2:recover goes to ALARM and
    its action succeeds."""
    call = Boto()
    dims = [{"Name": "InstanceId", "Value": instance}]
    now = dt.datetime.now(UTC).replace(microsecond=0)
    call("PutMetricData", Namespace="Kec2Test/health", MetricData=[
        {"MetricName": "Hung", "Dimensions": dims, "Timestamp": now - dt.timedelta(seconds=s),
         "Value": 1.0, "StorageResolution": 1} for s in range(1, 30)])
    call("PutMetricAlarm", AlarmName="recover-when-hung", Namespace="Kec2Test/health",
         MetricName="Hung", Dimensions=dims, Statistic="Maximum", Period=10,
         EvaluationPeriods=1, Threshold=1.0, ComparisonOperator="GreaterThanOrEqualToThreshold",
         TreatMissingData="ignore", AlarmActions=[RECOVER])

    def acted():
        h = call("DescribeAlarmHistory", AlarmName="recover-when-hung", HistoryItemType="Action")
        items = h["AlarmHistoryItems"]
        return bool(items), items
    items = wait_for("the recover action", acted)
    assert items[0]["HistorySummary"] == f"Successfully executed action {RECOVER}", items
    print("recover alarm: ok")


def kept():
    call = Boto()
    a = alarm_of(call, "stop-on-errors")
    assert a["StateValue"] == "ALARM" and a["AlarmActions"] == [STOP], a
    h = call("DescribeAlarmHistory", AlarmName="stop-on-errors")["AlarmHistoryItems"]
    kinds = sorted({x["HistoryItemType"] for x in h})
    assert kinds == ["Action", "ConfigurationUpdate", "StateUpdate"], h
    print("kept: ok")


if mode == "clients":
    clients()
elif mode == "stop":
    stop(sys.argv[4])
elif mode == "recover":
    recover(sys.argv[4])
elif mode == "kept":
    kept()
else:
    raise SystemExit(f"unknown mode {mode}")
