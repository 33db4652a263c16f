#!/usr/bin/python3
"""cloud-init's own EC2 datasource against the agent's metadata service, for
scripts/tests/cloud-init-imds.sh.

Run in a guest network namespace (so 169.254.169.254 is reached as a guest reaches it), with
PYTHONPATH naming an unpacked Debian cloud-init (usr/lib/python3/dist-packages), by Debian's
python3 (the libraries cloud-init imports are Debian packages):

    cloud-init-ec2.py --workdir DIR --instance-id I --mac M --hostname H --zone Z
                      --public-key KEY --user-data FILE [--tokens-required]
                      [--part content/type ...]

It instantiates DataSourceEc2 exactly as cloud-init's init stage does, lets it find, probe and
crawl the service (get_data), then checks what cloud-init would use from it. Prints one line
per check; exits 0 when all hold, 1 with "driver: FAIL <what>" otherwise.
"""

import argparse
import logging
import os
import sys

from cloudinit import distros, dmi, helpers, url_helper
from cloudinit.sources import DataSourceEc2 as ec2

# What the vmm's SMBIOS tables will say (another change adds them to the vmm): cloud-init
# recognises AWS by a system UUID starting with "ec2" equal to the system serial number. The
# driver stands in for those tables here by answering cloud-init's DMI reads itself.
UUID = "ec2e1916-9099-7caf-fd21-012345abcdef"
FAKE_DMI = {
    "system-uuid": UUID,
    "system-serial-number": UUID,
    "system-manufacturer": "Amazon EC2",
    "system-product-name": "t3.micro",
    "chassis-asset-tag": "Amazon EC2",
    "bios-vendor": "Amazon EC2",
}
dmi.read_dmi_data = FAKE_DMI.get

IMDS = "http://169.254.169.254"
failures = []


def check(what, ok, detail=""):
    print(f"driver: {'ok  ' if ok else 'FAIL'} {what}" + (f" ({detail})" if not ok and detail else ""),
          flush=True)
    if not ok:
        failures.append(what)


def imds_status(path, headers=None):
    """The HTTP status of a GET, through cloud-init's url_helper; without headers, IMDSv1's."""
    try:
        return url_helper.readurl(IMDS + path, headers=headers, timeout=5, retries=0).code
    except url_helper.UrlError as e:
        return e.code


class Warnings(logging.Handler):
    """Collects what cloud-init logs at WARNING and above."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.records = []

    def emit(self, record):
        self.records.append(f"{record.name}: {record.getMessage()}")


def main():
    p = argparse.ArgumentParser()
    for a in ("--workdir", "--instance-id", "--mac", "--hostname", "--zone", "--public-key",
              "--user-data"):
        p.add_argument(a, required=True)
    p.add_argument("--tokens-required", action="store_true")
    p.add_argument("--part", action="append", default=[],
                   help="a content type the processed user-data must hold")
    args = p.parse_args()

    logging.basicConfig(filename=os.path.join(args.workdir, "cloud-init.log"), level=logging.DEBUG,
                        format="%(asctime)s %(name)s %(levelname)s: %(message)s")
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    paths = helpers.Paths({
        "cloud_dir": os.path.join(args.workdir, "var-lib-cloud"),
        "run_dir": os.path.join(args.workdir, "run-cloud-init"),
    })
    # As /etc/cloud/cloud.cfg would set them: only the IPv4 address (a guest here has no IPv6,
    # and "instance-data." would need DNS), and waits short enough for a test.
    sys_cfg = {"datasource": {"Ec2": {"metadata_urls": [IMDS], "max_wait": 30, "timeout": 5}}}
    distro = distros.fetch("debian")("debian", {}, paths)
    ds = ec2.DataSourceEc2(sys_cfg, distro, paths)

    found = ds.get_data()
    check("get_data() found the datasource", found is True, repr(found))
    if not found:
        return 1
    check("cloud name is aws", ds.cloud_name == "aws", ds.cloud_name)
    check("platform is ec2", ds.platform_type == "ec2", ds.platform_type)
    check("IMDSv2: a session token was taken", bool(ds._api_token), repr(ds._api_token))
    version = ds._crawled_metadata.get("_metadata_api_version")
    check("the newest version cloud-init asks (2021-03-23) was found", version == "2021-03-23",
          version)
    check("get_instance_id() is the instance's", ds.get_instance_id() == args.instance_id,
          ds.get_instance_id())
    check("the identity document names the instance",
          ds.identity.get("instanceId") == args.instance_id, repr(ds.identity))
    short = args.hostname.split(".")[0]
    got = ds.get_hostname()
    check("get_hostname() is the private DNS name's host", got.hostname == short, repr(got))
    got = ds.get_hostname(fqdn=True)
    check("get_hostname(fqdn=True) is the private DNS name", got.hostname == args.hostname,
          repr(got))
    keys = ds.get_public_ssh_keys()
    check("get_public_ssh_keys() holds the key pair's key",
          any(k.split()[:2] == args.public_key.split()[:2] for k in keys), repr(keys))
    with open(args.user_data, "rb") as f:
        user_data = f.read()
    check("get_userdata_raw() is the user-data", ds.get_userdata_raw() == user_data,
          repr(ds.get_userdata_raw())[:200])
    parts = [part.get_content_type() for part in ds.get_userdata().walk()
             if not part.is_multipart()]
    for want in args.part:
        check(f"the processed user-data has a {want} part", want in parts, repr(parts))
    check("availability zone", ds.availability_zone == args.zone, ds.availability_zone)
    check("region", ds.region == args.zone[:-1], ds.region)
    md = ds.metadata
    check("placement/availability-zone",
          md.get("placement", {}).get("availability-zone") == args.zone, repr(md.get("placement")))
    check("services/domain", md.get("services", {}).get("domain") == "amazonaws.com",
          repr(md.get("services")))
    check("block-device-mapping/ami", md.get("block-device-mapping", {}).get("ami", "")
          .startswith("/dev/"), repr(md.get("block-device-mapping")))
    check("local-hostname", md.get("local-hostname") == args.hostname, md.get("local-hostname"))
    mac_md = md.get("network", {}).get("interfaces", {}).get("macs", {}).get(args.mac, {})
    for key in ("device-number", "local-ipv4s", "mac", "subnet-ipv4-cidr-block",
                "vpc-ipv4-cidr-block", "vpc-ipv4-cidr-blocks", "vpc-id", "subnet-id",
                "interface-id", "owner-id"):
        check(f"network/interfaces/macs/<mac>/{key}", bool(mac_md.get(key)), repr(mac_md))
    check("not an EC2-Classic instance", ds.is_classic_instance() is False)
    netcfg = ds.network_config
    eth0 = (netcfg or {}).get("ethernets", {}).get("eth0", {})
    check("network_config: eth0 by its MAC, with DHCP",
          eth0.get("match", {}).get("macaddress") == args.mac.lower()
          and eth0.get("dhcp4") is True and eth0.get("set-name") == "eth0", repr(netcfg))

    check("cloud-init logged no warning", not warnings.records, "; ".join(warnings.records)[:500])
    status = imds_status("/2021-03-23/meta-data/instance-id")
    if args.tokens_required:
        check("HttpTokens=required: an IMDSv1 read is refused (401)", status == 401, status)
    else:
        check("HttpTokens=optional: an IMDSv1 read is served", status == 200, status)
    status = imds_status("/2021-03-24/meta-data/", ds._get_headers())
    check("an unknown version is 404", status == 404, status)
    versions = url_helper.readurl(IMDS + "/", headers=ds._get_headers(), timeout=5).contents
    lines = versions.decode().splitlines()
    check("GET / lists the versions, latest last",
          lines[:2] == ["1.0", "2007-01-19"] and lines[-1] == "latest"
          and all(v in lines for v in ds.extended_metadata_versions + [ds.min_metadata_version]),
          repr(lines))

    if failures:
        print(f"driver: FAIL {len(failures)} check(s): {'; '.join(failures)}", flush=True)
        return 1
    print("driver: all checks hold", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
