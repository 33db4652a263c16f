"""Predictive scaling on a real agent, with boto3: three days of a synthetic daily load
(hourly, put with PutMetricData) under a PredictiveScaling policy with a customized load
metric; GetPredictiveScalingForecast's load follows the daily pattern within 10 % of its
peak, and its capacity is the load over the target, within the group's bounds. Bad
configurations get ValidationError. No instance is launched (the group's desired capacity is 0).

    auto_scaling_forecast.py ENDPOINT STATE_DIR
"""

import datetime
import math
import sys
import time

from aws_clients import keys_of, session
from botocore.exceptions import ClientError

endpoint, state_dir = sys.argv[1:3]
s = session(keys_of(state_dir))
asg = s.client("autoscaling", endpoint_url=endpoint)
ec2 = s.client("ec2", endpoint_url=endpoint)
cw = s.client("cloudwatch", endpoint_url=endpoint)


def load(t):
    """The synthetic load at time t: 300 at 14:00 UTC, 100 at 02:00."""
    hour = t.hour + t.minute / 60
    return 200 + 100 * math.sin((hour - 8) / 24 * 2 * math.pi)


now = datetime.datetime.now(datetime.timezone.utc).replace(minute=0, second=0, microsecond=0)
points = [now - datetime.timedelta(hours=h) for h in range(1, 73)]
for i in range(0, len(points), 24):
    cw.put_metric_data(Namespace="Shop", MetricData=[
        {"MetricName": "Requests", "Dimensions": [{"Name": "Group", "Value": "shop"}],
         "Timestamp": t, "Value": load(t)} for t in points[i:i + 24]])

lt = ec2.create_launch_template(LaunchTemplateName="shop", LaunchTemplateData={
    "ImageId": "ami-0123456789abcdef0", "InstanceType": "t2.micro"})["LaunchTemplate"]["LaunchTemplateId"]
subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
asg.create_auto_scaling_group(AutoScalingGroupName="shop", LaunchTemplate={"LaunchTemplateId": lt},
                              MinSize=0, MaxSize=5, DesiredCapacity=0, VPCZoneIdentifier=subnet)
spec = {
    "TargetValue": 80.0,
    "CustomizedLoadMetricSpecification": {"MetricDataQueries": [{
        "Id": "load", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Shop", "MetricName": "Requests",
                       "Dimensions": [{"Name": "Group", "Value": "shop"}]},
            "Stat": "Sum"}}]},
    "CustomizedScalingMetricSpecification": {"MetricDataQueries": [{
        "Id": "scaling", "ReturnData": True, "MetricStat": {
            "Metric": {"Namespace": "Shop", "MetricName": "Requests",
                       "Dimensions": [{"Name": "Group", "Value": "shop"}]},
            "Stat": "Average"}}]},
}


def code_of(**kw):
    try:
        asg.put_scaling_policy(AutoScalingGroupName="shop", PolicyName="bad",
                               PolicyType="PredictiveScaling", **kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError("should have failed")


assert code_of(PredictiveScalingConfiguration={"MetricSpecifications": [dict(spec, TargetValue=0.0)]}) == "ValidationError"
assert code_of(PredictiveScalingConfiguration={"MetricSpecifications": [spec], "SchedulingBufferTime": 7200}) == "ValidationError"
asg.put_scaling_policy(AutoScalingGroupName="shop", PolicyName="daily", PolicyType="PredictiveScaling",
                       PredictiveScalingConfiguration={"MetricSpecifications": [spec], "Mode": "ForecastOnly",
                                                       "SchedulingBufferTime": 300})
pol = asg.describe_policies(AutoScalingGroupName="shop")["ScalingPolicies"]
assert [p["PolicyType"] for p in pol] == ["PredictiveScaling"], pol

f = asg.get_predictive_scaling_forecast(AutoScalingGroupName="shop", PolicyName="daily",
                                        StartTime=now, EndTime=now + datetime.timedelta(hours=24))
lf = f["LoadForecast"][0]
assert len(lf["Timestamps"]) == 24, lf
worst = max(abs(v - load(t)) for t, v in zip(lf["Timestamps"], lf["Values"]))
assert worst <= 30.0, (worst, list(zip(lf["Timestamps"], lf["Values"])))
cap = f["CapacityForecast"]["Values"]
for v, c in zip(lf["Values"], cap):
    assert c == min(5, max(0, math.ceil(v / 80.0))), (v, c)
assert max(cap) == 4 and min(cap) == 2, cap
print(f"forecast: worst error {worst:.1f} of a 300 peak")

# ForecastAndScale raises the capacity to the forecast's for now + the buffer time (within a
# minute: the policy is applied once a minute). Launches are suspended: only the capacity
# the forecast sets is looked at.
asg.suspend_processes(AutoScalingGroupName="shop", ScalingProcesses=["Launch"])
asg.put_scaling_policy(AutoScalingGroupName="shop", PolicyName="daily", PolicyType="PredictiveScaling",
                       PredictiveScalingConfiguration={"MetricSpecifications": [spec], "Mode": "ForecastAndScale",
                                                       "SchedulingBufferTime": 300})
start = datetime.datetime.now(datetime.timezone.utc)
ahead = start + datetime.timedelta(seconds=300)
want = cap[0] if ahead.hour == now.hour else cap[1]
end = time.time() + 75
while True:
    g = asg.describe_auto_scaling_groups(AutoScalingGroupNames=["shop"])["AutoScalingGroups"][0]
    if g["DesiredCapacity"] >= want:
        break
    assert time.time() < end, g
    time.sleep(1)
assert g["DesiredCapacity"] == want and g["PredictedCapacity"] == want, (g, want)
assert g["MinSize"] == 0, g

# Launches resumed: the template's image does not exist, so each launch activity fails with
# EC2's reason, and the group backs off instead of trying again every round.
asg.resume_processes(AutoScalingGroupName="shop")
end = time.time() + 30
while True:
    acts = asg.describe_scaling_activities(AutoScalingGroupName="shop")["Activities"]
    if acts and all(a["StatusCode"] == "Failed" for a in acts):
        break
    assert time.time() < end, acts
    time.sleep(1)
a = acts[0]
assert "ami-0123456789abcdef0" in a["StatusMessage"], a
assert a["Description"].startswith("Launching a new EC2 instance.  Status Reason: "), a
assert "an instance was started in response to a difference between desired and actual capacity" in a["Cause"], a
time.sleep(12)
again = asg.describe_scaling_activities(AutoScalingGroupName="shop")["Activities"]
assert len(again) <= 2 * want, (len(again), want)
asg.delete_auto_scaling_group(AutoScalingGroupName="shop")
assert asg.describe_auto_scaling_groups()["AutoScalingGroups"] == []
print("auto scaling forecast: ok")
