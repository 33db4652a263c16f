"""What the boto3 test scripts share: a client for the agent from its credentials file, and
EC2 errors as their codes."""

import configparser
import os

import boto3
from botocore.exceptions import ClientError


def client(endpoint, state_dir):
    """An EC2 client for the agent at `endpoint`, with the keys in STATE_DIR/credentials."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(state_dir, "credentials"))
    return boto3.client(
        "ec2",
        endpoint_url=endpoint,
        region_name="local-1",
        aws_access_key_id=cfg["default"]["aws_access_key_id"],
        aws_secret_access_key=cfg["default"]["aws_secret_access_key"],
    )


def error_code(fn, **kw):
    """The EC2 error code of `fn(**kw)`, which must fail."""
    try:
        fn(**kw)
    except ClientError as e:
        return e.response["Error"]["Code"]
    raise AssertionError(f"{fn.__name__} should have failed")
