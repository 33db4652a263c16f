"""Every EC2 operation the agent serves, checked against botocore's model: a request without
its required members is refused with `MissingParameter`, one with a value outside an enum
with `InvalidParameterValue`, one with a parameter the operation does not have with
`UnknownParameter`; and none of them changes anything.

The requests are serialized by botocore's own EC2 serializer from values made up from the
model (the smallest valid value of each shape), then tampered with, signed with SigV4 and
sent as they are.

Usage: ec2_validation.py ENDPOINT STATE_DIR OPERATION[,OPERATION...]. Prints
"ec2 validation: ok N operations" on success."""

import configparser
import datetime
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.serialize
import botocore.session

endpoint, state_dir, served = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
cfg = configparser.ConfigParser()
cfg.read(os.path.join(state_dir, "credentials"))
creds = botocore.credentials.Credentials(cfg["default"]["aws_access_key_id"],
                                         cfg["default"]["aws_secret_access_key"])
model = botocore.session.get_session().get_service_model("ec2")
serializer = botocore.serialize.create_serializer("ec2", include_validation=False)


def smallest(shape, depth=0):
    """The smallest value of `shape` that the model accepts: required members only."""
    t = shape.type_name
    if t == "structure":
        names = list(shape.required_members)
        if not names and depth > 0:
            # An empty structure is not sent at all: give it its first string member.
            names = [n for n, m in shape.members.items() if m.type_name == "string"][:1]
        return {name: smallest(shape.members[name], depth + 1) for name in names if depth < 8}
    if t == "list":
        return [smallest(shape.member, depth + 1)]
    if t == "map":
        return {"k": smallest(shape.value, depth + 1)}
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        return "x" * max(1, shape.metadata.get("min", 1))
    if t in ("integer", "long"):
        return max(1, int(shape.metadata.get("min", 1)))
    if t in ("float", "double"):
        return 1.0
    if t == "boolean":
        return False
    if t == "timestamp":
        return datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    if t == "blob":
        return b"x"
    raise AssertionError(f"no value for a {t}")


def enum_member(shape):
    """A top-level member whose value is an enum (or a list of one), if any."""
    for name, m in shape.members.items():
        if m.type_name == "string" and m.enum:
            return name, "not-in-the-enum"
        if m.type_name == "list" and m.member.type_name == "string" and m.member.enum:
            return name, ["not-in-the-enum"]
    return None


# Where EC2 answers a bad enum value with a code of its own.
ENUM_CODES = {"DescribeInstanceTypes": "InvalidInstanceType"}


def send(op, params, extra=()):
    """(status, error code or None) of `op` with `params` (plus raw `extra` pairs)."""
    req = serializer.serialize_to_request(params, model.operation_model(op))
    pairs = list(req["body"].items()) + list(extra)
    body = urllib.parse.urlencode(pairs).encode()
    aws = botocore.awsrequest.AWSRequest(
        method="POST", url=endpoint + "/", data=body,
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    botocore.auth.SigV4Auth(creds, "ec2", "local-1").add_auth(aws)
    http = urllib.request.Request(endpoint + "/", data=body, method="POST",
                                  headers=dict(aws.headers.items()))
    try:
        with urllib.request.urlopen(http, timeout=30) as r:
            return r.status, None
    except urllib.error.HTTPError as e:
        doc = ET.fromstring(e.read())
        return e.code, doc.findtext(".//Code")


def state():
    """What a refused request must not change: every listing the agent has."""
    out = []
    for op in ["DescribeInstances", "DescribeVpcs", "DescribeSubnets", "DescribeSecurityGroups",
               "DescribeVolumes", "DescribeSnapshots", "DescribeImages", "DescribeKeyPairs",
               "DescribeAddresses", "DescribeNetworkInterfaces", "DescribeTags"]:
        req = serializer.serialize_to_request({}, model.operation_model(op))
        body = urllib.parse.urlencode(list(req["body"].items())).encode()
        aws = botocore.awsrequest.AWSRequest(method="POST", url=endpoint + "/", data=body, headers={
            "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
        botocore.auth.SigV4Auth(creds, "ec2", "local-1").add_auth(aws)
        with urllib.request.urlopen(urllib.request.Request(
                endpoint + "/", data=body, method="POST", headers=dict(aws.headers.items())),
                timeout=30) as r:
            text = r.read().decode()
        # Request ids differ per answer; everything else must not.
        out.append(ET.tostring(strip_request_id(ET.fromstring(text))))
    return out


def strip_request_id(doc):
    for el in list(doc):
        if el.tag.endswith("requestId"):
            doc.remove(el)
    return doc


before = state()
checked = {"missing": 0, "enum": 0, "unknown": 0}
for op in served:
    shape = model.operation_model(op).input_shape
    valid = smallest(shape)
    if shape.required_members:
        status, code = send(op, {})
        assert (status, code) == (400, "MissingParameter"), (op, status, code)
        checked["missing"] += 1
    found = enum_member(shape)
    if found:
        name, bad = found
        status, code = send(op, dict(valid, **{name: bad}))
        want = ENUM_CODES.get(op, "InvalidParameterValue")
        assert (status, code) == (400, want), (op, name, status, code)
        checked["enum"] += 1
    status, code = send(op, valid, [("NoSuchParameter", "1")])
    assert (status, code) == (400, "UnknownParameter"), (op, status, code)
    checked["unknown"] += 1
assert state() == before, "a refused request changed something"
print(f"checked: {checked}")
print(f"ec2 validation: ok {len(served)} operations")
