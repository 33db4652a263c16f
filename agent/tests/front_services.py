"""STS and CloudWatch on the agent's one endpoint, beside EC2, with the real clients: boto3
and the `aws` CLI, each forced in turn to every protocol CloudWatch's model lists (RPC v2
CBOR, awsJson 1.0, awsQuery) by a copy of botocore's model naming only that protocol.

Usage: front_services.py ENDPOINT STATE_DIR. Prints "front services: ok" on success."""

import json
import sys

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from aws_clients import aws_cli, forced_model_dir, keys_of, session

endpoint, state_dir = sys.argv[1:3]
keys = keys_of(state_dir)
NO_RETRY = Config(retries={"max_attempts": 0})


def session_with_data_path(data_path=None):
    return session(keys, data_path)


def code_of(fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError(f"{fn.__name__} should have failed")


def aws(args, data_path=None):
    return aws_cli(endpoint, keys, args, data_path)


# The account the EC2 resources are owned by.
ec2 = session_with_data_path().client("ec2", endpoint_url=endpoint, config=NO_RETRY)
account = ec2.describe_security_groups()["SecurityGroups"][0]["OwnerId"]
assert len(account) == 12 and account.isdigit(), account

# STS GetCallerIdentity: boto3 (awsQuery) and the CLI.
sts = session_with_data_path().client("sts", endpoint_url=endpoint, config=NO_RETRY)
ident = sts.get_caller_identity()
assert (ident["Account"], ident["Arn"], ident["UserId"]) == (
    account, f"arn:aws:iam::{account}:root", account), ident
rc, out, err = aws(["sts", "get-caller-identity"])
assert rc == 0, err
assert json.loads(out)["Account"] == account, out
# Signed with other keys: refused by STS in its own words.
bad = boto3.client("sts", endpoint_url=endpoint, region_name="local-1", config=NO_RETRY,
                   aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="x" * 40)
assert code_of(bad.get_caller_identity) == ("InvalidClientTokenId", 403)

# CloudWatch ListMetrics over each protocol, with boto3 and with the CLI.
for protocol in ["smithy-rpc-v2-cbor", "json", "query"]:
    data_path = forced_model_dir("cloudwatch", protocol)
    cw = session_with_data_path(data_path).client("cloudwatch", endpoint_url=endpoint,
                                                  config=NO_RETRY)
    assert cw.meta.service_model.protocol == protocol, cw.meta.service_model.protocol
    listed = cw.list_metrics(Namespace="AWS/EC2", MetricName="CPUUtilization",
                             Dimensions=[{"Name": "InstanceId"}])
    assert listed["Metrics"] == [], (protocol, listed)
    # A value outside the model's enum, sent past boto3's own checks: the service's error, in
    # this protocol, read back by botocore's parser.
    lax = session_with_data_path(data_path).client(
        "cloudwatch", endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 0}, parameter_validation=False))
    assert code_of(lax.list_metrics, RecentlyActive="PT1H") == ("ValidationError", 400), protocol
    assert code_of(lax.list_metrics, NextToken="forged") == ("InvalidParameterValue", 400), protocol
    # An operation CloudWatch has but the agent does not serve yet.
    code, status = code_of(lax.list_metric_streams)
    assert status == 400 and code in ("InvalidAction", "UnknownOperationException"), (protocol, code)
    rc, out, err = aws(["cloudwatch", "list-metrics", "--namespace", "AWS/EC2"], data_path)
    assert rc == 0, (protocol, err)
    assert json.loads(out)["Metrics"] == [], (protocol, out)
    print(f"cloudwatch over {protocol}: ok")

# EC2 through the CLI as well.
rc, out, err = aws(["ec2", "describe-regions"])
assert rc == 0 and json.loads(out)["Regions"][0]["RegionName"] == "local-1", (out, err)

print("front services: ok")
