"""Reads one metric's statistics from the agent with boto3's cloudwatch client (its default
protocol, RPC v2 CBOR) and prints them as JSON for the Rust test that called it.

    metric_reader.py ENDPOINT STATE_DIR NAMESPACE METRIC DIMENSION VALUE SECONDS PERIOD

prints `{"datapoints": [{"t": epoch, "sum":…, "avg":…, "max":…, "min":…, "n":…}, …],
"metrics": [names in NAMESPACE with that dimension]}` (datapoints in time order over the
last SECONDS), then `metric reader: ok`."""

import datetime
import json
import sys

from aws_clients import keys_of, session

endpoint, state_dir, namespace, metric, dim, value, seconds, period = sys.argv[1:9]
cw = session(keys_of(state_dir)).client("cloudwatch", endpoint_url=endpoint)
now = datetime.datetime.now(datetime.timezone.utc)
got = cw.get_metric_statistics(
    Namespace=namespace, MetricName=metric, Dimensions=[{"Name": dim, "Value": value}],
    StartTime=now - datetime.timedelta(seconds=int(seconds)),
    EndTime=now + datetime.timedelta(seconds=5),
    Period=int(period), Statistics=["Sum", "Average", "Maximum", "Minimum", "SampleCount"])
points = sorted(got["Datapoints"], key=lambda p: p["Timestamp"])
names = set()
for page in cw.get_paginator("list_metrics").paginate(
        Namespace=namespace, Dimensions=[{"Name": dim, "Value": value}]):
    names.update(m["MetricName"] for m in page["Metrics"])
print(json.dumps({
    "datapoints": [{"t": p["Timestamp"].timestamp(), "sum": p["Sum"], "avg": p["Average"],
                    "max": p["Maximum"], "min": p["Minimum"], "n": p["SampleCount"],
                    "unit": p.get("Unit")} for p in points],
    "metrics": sorted(names),
}))
print("metric reader: ok")
