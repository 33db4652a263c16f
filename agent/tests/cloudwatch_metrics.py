"""CloudWatch metrics and dashboards on a real agent, with the real clients: boto3's
`cloudwatch` client in its default protocol (RPC v2 CBOR) and forced to awsJson 1.0 and to
awsQuery (a copy of botocore's model naming only that protocol), and the `aws` CLI.

Each protocol puts its own metrics (a namespace of its own) and reads back the numbers it
put: statistics, percentiles, values/counts arrays, statistic sets, a high-resolution metric,
GetMetricData with two queries over pages and metric math, ListMetrics with filters, the dashboards, and
CloudWatch's error codes for bad input.

Usage: cloudwatch_metrics.py ENDPOINT STATE_DIR. Prints "cloudwatch metrics: ok" on success."""

import datetime as dt
import json
import sys

from botocore.config import Config
from botocore.exceptions import ClientError

import aws_clients
from aws_clients import keys_of

endpoint, state_dir = sys.argv[1:3]
keys = keys_of(state_dir)
NO_RETRY = Config(retries={"max_attempts": 0})
LAX = Config(retries={"max_attempts": 0}, parameter_validation=False)
UTC = dt.timezone.utc


def session(data_path=None):
    return aws_clients.session(keys, data_path)


def forced_model_dir(protocol):
    return aws_clients.forced_model_dir("cloudwatch", protocol)


def error_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e
    raise AssertionError(f"{fn.__name__} should have failed")


def code_of(fn, **kw):
    e = error_of(fn, **kw)
    return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]


def near(got, want, rel=0.02):
    return abs(got - want) <= rel * abs(want)


def aws(args):
    status, out, err = aws_clients.aws_cli(endpoint, keys, args)
    assert status == 0, (args, err)
    return json.loads(out) if out.strip() else {}


now = dt.datetime.now(UTC).replace(microsecond=0)
# The start of a minute a few minutes ago: every "recent" datum goes in it.
t0 = (now - dt.timedelta(minutes=5)).replace(second=0)
HOST = [{"Name": "Host", "Value": "web-1"}]


def exercise(cw, lax, label):
    ns = f"Kec2Test/{label}"

    # PutMetricData: single values, a values/counts array, a statistic set with an array,
    # a high-resolution metric, and a series of one value a minute.
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Requests", "Dimensions": HOST, "Timestamp": t0 + dt.timedelta(seconds=i),
         "Value": float(i + 1), "Unit": "Count"} for i in range(10)])
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Latency", "Timestamp": t0, "Unit": "Milliseconds",
         "Values": [float(v) for v in range(1, 101)], "Counts": [1.0] * 100}])
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Batch", "Timestamp": t0,
         "StatisticValues": {"SampleCount": 4, "Sum": 20, "Minimum": 2, "Maximum": 8}},
        {"MetricName": "Batch", "Timestamp": t0, "Values": [5, 10], "Counts": [2, 3]}])
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Fast", "Timestamp": t0 + dt.timedelta(seconds=i), "Value": float(i),
         "StorageResolution": 1} for i in range(10)])
    series_start = t0 - dt.timedelta(minutes=10)
    cw.put_metric_data(Namespace=ns, MetricData=[
        {"MetricName": "Series", "Timestamp": series_start + dt.timedelta(minutes=m),
         "Value": float(m)} for m in range(10)])

    # GetMetricStatistics: the five statistics, then percentiles, of what was put.
    window = {"StartTime": t0 - dt.timedelta(minutes=1), "EndTime": t0 + dt.timedelta(minutes=1),
              "Period": 60}
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Requests", Dimensions=HOST,
                                   Statistics=["Sum", "Average", "Minimum", "Maximum",
                                               "SampleCount"], **window)
    assert got["Label"] == "Requests", got
    [p] = got["Datapoints"]
    assert p["Timestamp"] == t0, (p, t0)
    assert (p["Sum"], p["Average"], p["Minimum"], p["Maximum"], p["SampleCount"], p["Unit"]) == (
        55.0, 5.5, 1.0, 10.0, 10.0, "Count"), p
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency",
                                   ExtendedStatistics=["p50", "p90", "p99.9"], **window)
    [p] = got["Datapoints"]
    ext = p["ExtendedStatistics"]
    assert near(ext["p50"], 50) and near(ext["p90"], 90) and near(ext["p99.9"], 100), ext
    assert p["Unit"] == "Milliseconds", p
    # A unit filter: the Latency points are milliseconds, not seconds.
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Latency", Statistics=["Sum"],
                                   Unit="Seconds", **window)
    assert got["Datapoints"] == [], got
    got = cw.get_metric_statistics(Namespace=ns, MetricName="Batch",
                                   Statistics=["Sum", "SampleCount", "Minimum", "Maximum"],
                                   **window)
    [p] = got["Datapoints"]
    assert (p["Sum"], p["SampleCount"], p["Minimum"], p["Maximum"]) == (60.0, 9.0, 2.0, 10.0), p
    # High resolution: ten 1-second points, or one 10-second one.
    fast = {"Namespace": ns, "MetricName": "Fast", "StartTime": t0,
            "EndTime": t0 + dt.timedelta(seconds=10)}
    got = cw.get_metric_statistics(Period=1, Statistics=["Sum"], **fast)
    assert sorted(d["Sum"] for d in got["Datapoints"]) == [float(i) for i in range(10)], got
    got = cw.get_metric_statistics(Period=10, Statistics=["Sum", "SampleCount"], **fast)
    assert [(d["Sum"], d["SampleCount"]) for d in got["Datapoints"]] == [(45.0, 10.0)], got

    # GetMetricData: two MetricStat queries, newest first, over pages of 4 datapoints.
    queries = [
        {"Id": "series", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Series"},
                                        "Period": 60, "Stat": "Sum"}},
        {"Id": "requests", "Label": "All requests",
         "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Requests",
                                   "Dimensions": HOST}, "Period": 60, "Stat": "Sum"}},
    ]
    span = {"StartTime": series_start, "EndTime": t0 + dt.timedelta(minutes=1)}
    whole = cw.get_metric_data(MetricDataQueries=queries, **span)
    assert "NextToken" not in whole, whole
    by_id = {r["Id"]: r for r in whole["MetricDataResults"]}
    assert by_id["series"]["Values"] == [float(m) for m in range(9, -1, -1)], by_id
    assert by_id["series"]["Timestamps"][0] == series_start + dt.timedelta(minutes=9), by_id
    assert by_id["series"]["Label"] == "Series" and by_id["series"]["StatusCode"] == "Complete"
    assert (by_id["requests"]["Label"], by_id["requests"]["Values"]) == ("All requests", [55.0])
    seen, token, pages = [], None, 0
    while True:
        kw = {"NextToken": token} if token else {}
        page = cw.get_metric_data(MetricDataQueries=queries, MaxDatapoints=4,
                                  ScanBy="TimestampAscending", **span, **kw)
        pages += 1
        n = sum(len(r["Values"]) for r in page["MetricDataResults"])
        assert n <= 4, page
        for r in page["MetricDataResults"]:
            seen += [(r["Id"], t, v) for t, v in zip(r["Timestamps"], r["Values"])]
        token = page.get("NextToken")
        if not token:
            break
        assert any(r["StatusCode"] == "PartialData" for r in page["MetricDataResults"]), page
    assert pages == 3 and len(seen) == 11, (pages, seen)
    assert [v for i, _, v in seen if i == "series"] == [float(m) for m in range(10)], seen

    # Metric math over two hidden MetricStat queries.
    math = cw.get_metric_data(MetricDataQueries=[
        {"Id": "requests", "ReturnData": False,
         "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Requests",
                                   "Dimensions": HOST}, "Period": 60, "Stat": "Sum"}},
        {"Id": "count", "ReturnData": False,
         "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Requests",
                                   "Dimensions": HOST}, "Period": 60, "Stat": "SampleCount"}},
        {"Id": "mean", "Expression": "requests / count * 100", "Label": "Mean x100"},
        {"Id": "total", "Expression": "SUM(METRICS())"},
    ], **span)
    by_id = {r["Id"]: r for r in math["MetricDataResults"]}
    assert sorted(by_id) == ["mean", "total"], math
    assert (by_id["mean"]["Label"], by_id["mean"]["Values"]) == ("Mean x100", [550.0]), math
    assert by_id["total"]["Values"] == [65.0] and by_id["total"]["Timestamps"] == [t0], math

    # ListMetrics with filters.
    names = lambda **kw: sorted(m["MetricName"] for m in cw.list_metrics(**kw)["Metrics"])
    assert names(Namespace=ns) == ["Batch", "Fast", "Latency", "Requests", "Series"]
    assert names(Namespace=ns, MetricName="Latency") == ["Latency"]
    assert names(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "web-1"}]) == ["Requests"]
    assert names(Namespace=ns, Dimensions=[{"Name": "Host", "Value": "web-2"}]) == []
    assert len(names(Namespace=ns, RecentlyActive="PT3H")) == 5
    [m] = cw.list_metrics(Namespace=ns, MetricName="Requests")["Metrics"]
    assert m["Dimensions"] == HOST, m

    # Dashboards.
    body = json.dumps({"widgets": [
        {"type": "metric", "x": 0, "y": 0, "width": 12, "height": 6,
         "properties": {"metrics": [[ns, "Requests", "Host", "web-1"]], "period": 60,
                        "stat": "Sum", "region": "local-1", "title": "Requests"}},
        {"type": "text", "x": 12, "y": 0, "width": 6, "height": 3,
         "properties": {"markdown": "# Ops"}}]})
    for name in [f"{label}-ops", f"{label}-web", "other"]:
        put = cw.put_dashboard(DashboardName=name, DashboardBody=body)
        assert put["DashboardValidationMessages"] == [], put
    d = cw.get_dashboard(DashboardName=f"{label}-ops")
    assert d["DashboardBody"] == body and d["DashboardName"] == f"{label}-ops", d
    assert d["DashboardArn"].startswith("arn:aws:cloudwatch::") and d["DashboardArn"].endswith(
        f":dashboard/{label}-ops"), d
    listed = cw.list_dashboards(DashboardNamePrefix=f"{label}-")["DashboardEntries"]
    assert [e["DashboardName"] for e in listed] == [f"{label}-ops", f"{label}-web"], listed
    assert listed[0]["Size"] == len(body) and listed[0]["LastModified"].tzinfo, listed
    e = error_of(cw.put_dashboard, DashboardName="bad",
                 DashboardBody=json.dumps({"widgets": [{"type": "text", "properties": {}}]}))
    assert e.response["Error"]["Code"] == "InvalidParameterInput", e.response
    messages = e.response.get("dashboardValidationMessages")
    assert messages == [{"DataPath": "/widgets/0/properties",
                         "Message": "Should have required property 'markdown'"}], e.response
    assert code_of(cw.put_dashboard, DashboardName="bad", DashboardBody="[]")[0] == \
        "InvalidParameterInput"
    assert code_of(cw.get_dashboard, DashboardName="missing") == ("ResourceNotFound", 404)
    # All or nothing: one missing name deletes none.
    assert code_of(cw.delete_dashboards, DashboardNames=[f"{label}-web", "missing"]) == (
        "ResourceNotFound", 404)
    cw.get_dashboard(DashboardName=f"{label}-web")
    cw.delete_dashboards(DashboardNames=[f"{label}-ops", f"{label}-web"])
    assert code_of(cw.get_dashboard, DashboardName=f"{label}-ops")[0] == "ResourceNotFound"
    assert cw.list_dashboards(DashboardNamePrefix=f"{label}-")["DashboardEntries"] == []

    # Bad input, with CloudWatch's codes.
    stats = {"Namespace": ns, "MetricName": "Requests", "StartTime": t0,
             "EndTime": t0 + dt.timedelta(minutes=1)}
    assert code_of(cw.get_metric_statistics, Period=45, Statistics=["Sum"], **stats) == (
        "InvalidParameterValue", 400)
    assert code_of(cw.get_metric_statistics, Period=60, ExtendedStatistics=["p101"], **stats) == (
        "InvalidParameterValue", 400)
    assert code_of(cw.get_metric_statistics, Period=60, Statistics=["Sum"],
                   ExtendedStatistics=["p90"], **stats)[0] == "InvalidParameterCombination"
    day = dict(stats, StartTime=t0 - dt.timedelta(days=1))
    assert code_of(cw.get_metric_statistics, Period=1, Statistics=["Sum"], **day)[0] == \
        "InvalidParameterCombination"
    # A statistic outside the model's enum, past boto3's own check: refused by the model.
    assert code_of(lax.get_metric_statistics, Period=60, Statistics=["Median"], **stats) == (
        "ValidationError", 400)
    assert code_of(cw.get_metric_data, MetricDataQueries=[
        {"Id": "m1", "MetricStat": {"Metric": {"Namespace": ns, "MetricName": "Requests"},
                                    "Period": 60, "Stat": "Median"}}], **span)[0] == \
        "ValidationError"
    # 31 dimensions: past the model's maximum of 30, which the wire layer answers as
    # CloudWatch answers a length constraint (ValidationException).
    thirty_one = [{"Name": f"D{i}", "Value": "v"} for i in range(31)]
    code, status = code_of(cw.put_metric_data, Namespace=ns, MetricData=[
        {"MetricName": "Wide", "Dimensions": thirty_one, "Value": 1.0}])
    assert (code, status) == ("ValidationError", 400), (code, status)
    assert code_of(cw.put_metric_data, Namespace="AWS/EC2", MetricData=[
        {"MetricName": "CPUUtilization", "Value": 1.0}]) == ("InvalidParameterValue", 400)
    assert code_of(cw.put_metric_data, Namespace=ns, MetricData=[
        {"MetricName": "Both", "Value": 1.0,
         "StatisticValues": {"SampleCount": 1, "Sum": 1, "Minimum": 1, "Maximum": 1}}]) == (
        "InvalidParameterCombination", 400)
    assert code_of(cw.put_metric_data, Namespace=ns, MetricData=[
        {"MetricName": "Old", "Value": 1.0,
         "Timestamp": now - dt.timedelta(days=15)}])[0] == "InvalidParameterValue"
    assert code_of(cw.put_metric_data, Namespace=ns, MetricData=[
        {"MetricName": "Odd", "Values": [1.0, 2.0], "Counts": [1.0]}])[0] == \
        "InvalidParameterValue"
    assert code_of(cw.put_metric_data, Namespace=ns, MetricData=[
        {"MetricName": "Res", "Value": 1.0, "StorageResolution": 5}])[0] == \
        "InvalidParameterValue"
    # Nothing of a refused request was kept.
    assert "Both" not in names(Namespace=ns) and "Wide" not in names(Namespace=ns)
    print(f"cloudwatch over {cw.meta.service_model.protocol}: ok", flush=True)


default = session().client("cloudwatch", endpoint_url=endpoint, config=NO_RETRY)
assert default.meta.service_model.protocol == "smithy-rpc-v2-cbor", \
    default.meta.service_model.protocol
exercise(default, session().client("cloudwatch", endpoint_url=endpoint, config=LAX), "cbor")
for protocol, label in [("json", "json"), ("query", "query")]:
    data_path = forced_model_dir(protocol)
    cw = session(data_path).client("cloudwatch", endpoint_url=endpoint, config=NO_RETRY)
    assert cw.meta.service_model.protocol == protocol, cw.meta.service_model.protocol
    lax = session(data_path).client("cloudwatch", endpoint_url=endpoint, config=LAX)
    exercise(cw, lax, label)

# The aws CLI: put-metric-data and get-metric-statistics.
aws(["cloudwatch", "put-metric-data", "--namespace", "Kec2Test/cli", "--metric-name", "Jobs",
     "--dimensions", "Queue=default", "--value", "7", "--unit", "Count",
     "--timestamp", t0.isoformat()])
aws(["cloudwatch", "put-metric-data", "--namespace", "Kec2Test/cli", "--metric-name", "Jobs",
     "--dimensions", "Queue=default", "--value", "3", "--unit", "Count",
     "--timestamp", t0.isoformat()])
out = aws(["cloudwatch", "get-metric-statistics", "--namespace", "Kec2Test/cli",
           "--metric-name", "Jobs", "--dimensions", "Name=Queue,Value=default",
           "--start-time", (t0 - dt.timedelta(minutes=1)).isoformat(),
           "--end-time", (t0 + dt.timedelta(minutes=1)).isoformat(), "--period", "60",
           "--statistics", "Sum", "Maximum", "SampleCount"])
[p] = out["Datapoints"]
assert (p["Sum"], p["Maximum"], p["SampleCount"], p["Unit"]) == (10.0, 7.0, 2.0, "Count"), out
out = aws(["cloudwatch", "list-metrics", "--namespace", "Kec2Test/cli"])
assert [m["MetricName"] for m in out["Metrics"]] == ["Jobs"], out
print("cloudwatch over the aws CLI: ok")

print("cloudwatch metrics: ok")
