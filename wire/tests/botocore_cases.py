"""Cross-checks wire against botocore itself.

  botocore_cases.py version                     print botocore's version
  botocore_cases.py models OUT_DIR SERVICE...   write each service's service-2.json to OUT_DIR
  botocore_cases.py requests                    print, one JSON object per line, requests that
                                                botocore's serializers (and signers) build for
                                                sample inputs, with the input in the contract form
  botocore_cases.py every-request|every-output
                                                a sample input (serialized) or output for every
                                                operation of EC2, STS, SNS, Auto Scaling, ELBv2,
                                                IAM and CloudWatch (all three protocols)
  botocore_cases.py parse                       read responses (JSON lines on stdin), parse each
                                                with botocore's parser, print one verdict per line
"""
import base64
import datetime
import json
import sys

import botocore.loaders
import botocore.model
import botocore.parsers
import botocore.serialize
import botocore.session
import botocore.utils
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

ACCESS_KEY = "AKIDWIRETEST"
SECRET_KEY = "wire/secret+key"
REGION = "local-1"
WHEN = datetime.datetime(2026, 12, 7, 1, 2, 3, 123000, tzinfo=datetime.timezone.utc)

SAMPLES = [
    ("ec2", "ec2", "RunInstances", {
        "ImageId": "ami-12345678", "MinCount": 1, "MaxCount": 2, "InstanceType": "t2.micro",
        "KeyName": "k", "SecurityGroupIds": ["sg-1", "sg-2"],
        "BlockDeviceMappings": [{"DeviceName": "/dev/sda1",
                                 "Ebs": {"VolumeSize": 8, "DeleteOnTermination": True, "VolumeType": "gp3"}}],
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "a&b=c d"}]}],
        "UserData": "IyEvYmluL3NoCg==", "MetadataOptions": {"HttpTokens": "required"},
        "DryRun": False, "ClientToken": "tok-1",
    }),
    ("ec2", "ec2", "DescribeInstances", {
        "Filters": [{"Name": "instance-state-name", "Values": ["running", "stopped"]},
                    {"Name": "tag:Name", "Values": ["x*"]}],
        "MaxResults": 10,
    }),
    ("ec2", "ec2", "CreateTags", {
        "Resources": ["i-1", "vol-2"], "Tags": [{"Key": "k1", "Value": "v1"}, {"Key": "k2", "Value": ""}],
    }),
    ("sts", "query", "GetCallerIdentity", {}),
    ("sns", "query", "Publish", {
        "TopicArn": "arn:aws:sns:local-1:000000000000:t", "Message": "héllo <world>", "Subject": "s",
        "MessageAttributes": {
            "attr1": {"DataType": "String", "StringValue": "v"},
            "bin": {"DataType": "Binary", "BinaryValue": b"\x00\x01\xff"},
        },
    }),
    ("autoscaling", "query", "DescribeTags", {
        "Filters": [{"Name": "auto-scaling-group", "Values": ["g1"]}], "MaxRecords": 5,
    }),
    ("elbv2", "query", "DescribeTags", {"ResourceArns": ["arn:a", "arn:b"]}),
]
for proto in ("smithy-rpc-v2-cbor", "json", "query"):
    SAMPLES.append(("cloudwatch", proto, "PutMetricData", {
        "Namespace": "App", "MetricData": [{
            "MetricName": "Latency", "Dimensions": [{"Name": "Host", "Value": "h1"}],
            "Timestamp": WHEN, "Value": 1.5, "Unit": "Seconds", "StorageResolution": 1,
            "Values": [1.0, 2.25], "Counts": [3.0, 4.0],
        }],
    }))
    SAMPLES.append(("cloudwatch", proto, "ListMetrics", {
        "Namespace": "App", "MetricName": "Latency",
        "Dimensions": [{"Name": "Host", "Value": "h1"}], "RecentlyActive": "PT3H",
    }))


def contract(v):
    if isinstance(v, datetime.datetime):
        v = v.astimezone(datetime.timezone.utc)
        ms = v.microsecond // 1000
        base = v.strftime("%Y-%m-%dT%H:%M:%S")
        return f"{base}.{ms:03d}Z" if ms else f"{base}Z"
    if isinstance(v, (bytes, bytearray)):
        return base64.b64encode(v).decode()
    if isinstance(v, dict):
        return {k: contract(x) for k, x in v.items()}
    if isinstance(v, list):
        return [contract(x) for x in v]
    return v


_MODELS = {}


def service_model(name, protocol):
    if (name, protocol) not in _MODELS:
        _MODELS[(name, protocol)] = _load_model(name, protocol)
    return _MODELS[(name, protocol)]


def _load_model(name, protocol):
    loader = botocore.loaders.Loader()
    raw = loader.load_service_model(name, "service-2")
    raw["metadata"]["protocol"] = protocol
    return botocore.model.ServiceModel(raw, service_name=name)


def signed(name, model, serialized):
    body = serialized["body"]
    if isinstance(body, dict):
        body = botocore.utils.percent_encode_sequence(body).encode()
    query = serialized.get("query_string") or ""
    if isinstance(query, dict):
        query = botocore.utils.percent_encode_sequence(query)
    url = "http://127.0.0.1:8787" + serialized["url_path"] + ("?" + query if query else "")
    req = AWSRequest(method=serialized["method"], url=url, data=body, headers=serialized["headers"])
    creds = Credentials(ACCESS_KEY, SECRET_KEY)
    auth = SigV4Auth(creds, model.signing_name, REGION)
    auth.add_auth(req)
    return req, body, query


def requests():
    for name, protocol, op, params in SAMPLES:
        model = service_model(name, protocol)
        opm = model.operation_model(op)
        ser = botocore.serialize.create_serializer(protocol, include_validation=True)
        serialized = ser.serialize_to_request(params, opm)
        req, body, query = signed(name, model, serialized)
        print(json.dumps({
            "service": name, "protocol": protocol, "operation": op,
            "input": contract(params), "method": req.method, "path": serialized["url_path"],
            "query": query, "headers": [[k, v] for k, v in req.headers.items()] + [["host", "127.0.0.1:8787"]],
            "body": base64.b64encode(body).decode(),
        }))
    presigned()


def presigned():
    session = botocore.session.get_session()
    client = session.create_client(
        "ec2", region_name=REGION, endpoint_url="http://127.0.0.1:8787",
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
    params = {"InstanceIds": ["i-1", "i-2"]}
    url = client.generate_presigned_url("describe_instances", Params=params, ExpiresIn=600)
    path_query = url.split("127.0.0.1:8787", 1)[1]
    path, _, query = path_query.partition("?")
    # botocore signs a presigned URL with the operation's HTTP method (POST for EC2).
    print(json.dumps({
        "service": "ec2", "protocol": "ec2", "operation": "DescribeInstances", "input": params,
        "method": "POST", "path": path, "query": query, "headers": [["host", "127.0.0.1:8787"]],
        "body": "", "presigned": True,
    }))


class Captured(Exception):
    pass


def client_requests():
    """Requests as real boto3 clients send them (their own protocol choice, request
    compression, signing), captured before they leave."""
    import botocore.config
    session = botocore.session.get_session()
    config = botocore.config.Config(request_min_compression_size_bytes=1, retries={"max_attempts": 0})
    calls = [
        ("cloudwatch", "put_metric_data", "PutMetricData", {"Namespace": "App", "MetricData": [
            {"MetricName": "M", "Value": 2.5, "Timestamp": WHEN, "Dimensions": [{"Name": "H", "Value": "h"}]}]}),
        ("cloudwatch", "list_metrics", "ListMetrics", {"Namespace": "App"}),
        ("ec2", "describe_instances", "DescribeInstances", {"InstanceIds": ["i-1"]}),
        ("sns", "publish", "Publish", {"TopicArn": "arn:t", "Message": "m" * 100}),
        ("sts", "get_caller_identity", "GetCallerIdentity", {}),
    ]
    for service, method, op, params in calls:
        client = session.create_client(
            service, region_name=REGION, endpoint_url="http://127.0.0.1:8787", config=config,
            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)
        seen = {}

        def capture(request, **kwargs):
            seen["request"] = request
            raise Captured()

        client.meta.events.register("before-send", capture)
        try:
            getattr(client, method)(**params)
        except Captured:
            pass
        req = seen["request"]
        path, _, query = req.url.split("127.0.0.1:8787", 1)[1].partition("?")
        body = req.body if isinstance(req.body, bytes) else (req.body or "").encode()
        print(json.dumps({
            "service": service, "operation": op, "input": contract(params), "method": req.method,
            "path": path, "query": query, "headers": [[k, v if isinstance(v, str) else v.decode()] for k, v in req.headers.items()]
            + [["host", "127.0.0.1:8787"]],
            "body": base64.b64encode(body).decode(),
        }))


def parse():
    for line in sys.stdin:
        case = json.loads(line)
        model = service_model(case["service"], case["protocol"])
        opm = model.operation_model(case["operation"])
        parser = botocore.parsers.create_parser(case["protocol"])
        response = {
            "status_code": case["status"],
            "headers": {k.lower(): v for k, v in case["headers"]},
            "body": base64.b64decode(case["body"]),
        }
        parsed = parser.parse(response, opm.output_shape)
        if "error" in case:
            got = {"code": parsed["Error"].get("Code"), "message": parsed["Error"].get("Message")}
            shape = model.shape_for_error_code(got["code"] or "")
            if shape is not None:
                fields = parser.parse(response, shape)
                fields.pop("ResponseMetadata", None)
                fields = {k: v for k, v in fields.items() if k.lower() != "message"}
                if fields:
                    got["fields"] = contract(fields)
            got["request_id"] = parsed.get("ResponseMetadata", {}).get("RequestId")
            expected = case["error"]
        else:
            parsed.pop("ResponseMetadata", None)
            got = contract(parsed)
            expected = case["output"]
        print(json.dumps({"name": case["name"], "ok": got == expected, "got": got, "expected": expected}))


def sample(shape, depth=0):
    """A value of `shape` that satisfies its min/max/enum (patterns are not checked)."""
    t = shape.type_name
    if t == "structure":
        if depth >= 8:
            return None
        out = {}
        members = list(shape.members.items())
        if shape.is_tagged_union:
            members = members[:1]
        for name, m in members:
            if depth >= 3 and name not in shape.required_members:
                continue
            if m.serialization.get("location") or m.serialization.get("eventstream"):
                continue
            v = sample(m, depth + 1)
            if v is not None:
                out[name] = v
        # An empty structure is not on the wire at all in the query protocols: give it one
        # member, or leave it out.
        if not out and depth and depth < 8:
            for name, m in members:
                v = sample(m, depth + 1)
                if v is not None:
                    out[name] = v
                    break
        return out if out or depth == 0 else None
    if t == "list":
        n = max(1, int(shape.metadata.get("min", 1)))
        item = sample(shape.member, depth + 1)
        return None if item is None else [item] * min(n, 2)
    if t == "map":
        v = sample(shape.value, depth + 1)
        n = max(1, int(shape.metadata.get("min", 1)))
        return None if v is None else {f"k{i}": v for i in range(1, n + 1)}
    if t == "string":
        if shape.enum:
            return shape.enum[0]
        n = max(1, int(shape.metadata.get("min", 1)))
        return ("abcdefghij" * (n // 10 + 1))[:n]
    if t in ("integer", "long"):
        return int(shape.metadata.get("min", 1))
    if t in ("float", "double"):
        return float(shape.metadata.get("min", 1.5)) if "min" in shape.metadata else 1.5
    if t == "boolean":
        return True
    if t == "timestamp":
        return WHEN
    if t == "blob":
        n = max(2, int(shape.metadata.get("min", 2)))
        return b"\x00\x01" * (n // 2 + 1)
    raise ValueError(t)


def every_operation(kind):
    """One line per operation of every service: a sample input serialized by botocore
    (kind "requests") or a sample output (kind "outputs")."""
    for name, protocols in [("ec2", ["ec2"]), ("sts", ["query"]), ("sns", ["query"]), ("autoscaling", ["query"]),
                            ("elbv2", ["query"]), ("iam", ["query"]),
                            ("cloudwatch", ["smithy-rpc-v2-cbor", "json", "query"])]:
        for protocol in protocols:
            model = service_model(name, protocol)
            for op in model.operation_names:
                opm = model.operation_model(op)
                if kind == "outputs":
                    out = sample(opm.output_shape) if opm.output_shape is not None else {}
                    print(json.dumps({"name": f"{name} {protocol} {op}", "service": name, "protocol": protocol,
                                      "operation": op, "output": contract(out)}))
                    continue
                params = sample(opm.input_shape) if opm.input_shape is not None else {}
                ser = botocore.serialize.create_serializer(protocol, include_validation=False)
                serialized = ser.serialize_to_request(params, opm)
                body = serialized["body"]
                if isinstance(body, dict):
                    body = botocore.utils.percent_encode_sequence(body).encode()
                print(json.dumps({
                    "service": name, "protocol": protocol, "operation": op, "input": contract(params),
                    "method": serialized["method"], "path": serialized["url_path"], "query": "",
                    "headers": [[k, v] for k, v in serialized["headers"].items()],
                    "body": base64.b64encode(body).decode(),
                }))


def models(out_dir, names):
    loader = botocore.loaders.Loader()
    for name in names:
        with open(f"{out_dir}/{name}.json", "w") as f:
            json.dump(loader.load_service_model(name, "service-2"), f)


if __name__ == "__main__":
    if sys.argv[1] == "version":
        print(botocore.__version__)
    elif sys.argv[1] == "models":
        models(sys.argv[2], sys.argv[3:])
    elif sys.argv[1] == "requests":
        requests()
    elif sys.argv[1] == "client-requests":
        client_requests()
    elif sys.argv[1] in ("every-request", "every-output"):
        every_operation(sys.argv[1].removeprefix("every-") + "s")
    else:
        parse()
