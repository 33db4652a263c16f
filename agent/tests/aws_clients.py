"""What the Python end-to-end tests share: the agent's keys, boto3 sessions on its endpoint,
a copy of botocore's model of a service forced to one protocol, and the `aws` CLI."""

import configparser
import copy
import json
import os
import subprocess
import sys
import tempfile

import boto3
import botocore.session


def keys_of(state_dir):
    """The agent's root keys, from the credentials file it writes in its state directory."""
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(state_dir, "credentials"))
    return {
        "aws_access_key_id": cfg["default"]["aws_access_key_id"],
        "aws_secret_access_key": cfg["default"]["aws_secret_access_key"],
    }


def session(keys, data_path=None):
    """A boto3 session with `keys` in the agent's region, reading models from `data_path`
    first when given."""
    s = botocore.session.get_session()
    if data_path:
        s.get_component("data_loader").search_paths.insert(0, data_path)
    return boto3.Session(botocore_session=s, region_name="local-1", **keys)


def forced_model_dir(service, protocol):
    """A data path whose model of `service` speaks only `protocol`."""
    loader = botocore.session.get_session().get_component("data_loader")
    model = copy.deepcopy(loader.load_service_model(service, "service-2"))
    model["metadata"]["protocol"] = protocol
    model["metadata"]["protocols"] = [protocol]
    version = model["metadata"]["apiVersion"]
    d = tempfile.mkdtemp(prefix=f"kec2-{service}-{protocol}-")
    os.makedirs(os.path.join(d, service, version))
    with open(os.path.join(d, service, version, "service-2.json"), "w") as f:
        json.dump(model, f)
    return d


def aws_cli(endpoint, keys, args, data_path=None):
    """Runs the `aws` CLI beside this Python on `endpoint`; gives (status, stdout, stderr)."""
    env = dict(os.environ, AWS_ACCESS_KEY_ID=keys["aws_access_key_id"],
               AWS_SECRET_ACCESS_KEY=keys["aws_secret_access_key"], AWS_DEFAULT_REGION="local-1",
               AWS_MAX_ATTEMPTS="1")
    env.pop("AWS_PROFILE", None)
    if data_path:
        env["AWS_DATA_PATH"] = data_path
    cli = os.path.join(os.path.dirname(sys.executable), "aws")
    out = subprocess.run([cli, "--endpoint-url", endpoint, "--output", "json", *args],
                         env=env, capture_output=True, text=True, timeout=60)
    return out.returncode, out.stdout, out.stderr
