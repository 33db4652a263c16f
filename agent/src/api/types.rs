//! Catalog actions: DescribeInstanceTypes, DescribeRegions, DescribeAvailabilityZones.

use super::errors::ApiError;
use super::xml::Xml;
use super::{AVAILABILITY_ZONE, Call, REGION};
use crate::compute::catalog::{self, INSTANCE_TYPES};

/// The most `InstanceType.N` DescribeInstanceTypes takes (EC2's limit).
const MAX_TYPES: usize = 100;

/// DescribeInstanceTypes (`InstanceType.N` narrows the list).
pub fn describe_instance_types(c: &Call<'_>) -> Result<String, ApiError> {
    let wanted = c.p.list("InstanceType");
    if wanted.len() > MAX_TYPES {
        return Err(ApiError::invalid(
            "InstanceType",
            format!(
                "{} instance types given; the limit is {MAX_TYPES}",
                wanted.len()
            ),
        ));
    }
    if let Some(bad) = wanted.iter().find(|w| catalog::lookup(w).is_none()) {
        return Err(ApiError::new(
            "InvalidInstanceType",
            format!("The following supplied instance types do not exist: [{bad}]"),
        ));
    }
    let mut x = Xml::response("DescribeInstanceTypes", c.request_id);
    x.open("instanceTypeSet");
    for t in INSTANCE_TYPES
        .iter()
        .filter(|t| wanted.is_empty() || wanted.iter().any(|w| w == t.name))
    {
        x.open("item")
            .leaf("instanceType", t.name)
            .leaf("currentGeneration", "true")
            .leaf(
                "freeTierEligible",
                if t.name == "t2.micro" {
                    "true"
                } else {
                    "false"
                },
            )
            .leaf("bareMetal", "false")
            .leaf("hypervisor", "nitro")
            .open("processorInfo")
            .open("supportedArchitectures")
            .leaf("item", "x86_64")
            .close("supportedArchitectures")
            .close("processorInfo")
            .open("vCpuInfo")
            .leaf("defaultVCpus", t.vcpus.to_string())
            .leaf("defaultCores", t.vcpus.to_string())
            .leaf("defaultThreadsPerCore", "1")
            .close("vCpuInfo")
            .open("memoryInfo")
            .leaf("sizeInMiB", t.memory_mib.to_string())
            .close("memoryInfo")
            .leaf("burstablePerformanceSupported", t.burstable.to_string());
        // EBS: the instance store of the `d` types.
        let store = catalog::instance_store_gb(t.name);
        x.leaf("instanceStorageSupported", store.is_some().to_string());
        if let Some(gb) = store {
            x.open("instanceStorageInfo")
                .leaf("totalSizeInGB", gb.to_string())
                .open("disks")
                .open("item")
                .leaf("sizeInGB", gb.to_string())
                .leaf("count", "1")
                .leaf("type", "ssd")
                .close("item")
                .close("disks")
                .leaf("nvmeSupport", "required")
                .close("instanceStorageInfo");
        }
        x.close("item");
    }
    x.close("instanceTypeSet");
    Ok(x.finish())
}

/// DescribeRegions: the one region.
pub fn describe_regions(c: &Call<'_>) -> Result<String, ApiError> {
    let mut x = Xml::response("DescribeRegions", c.request_id);
    x.open("regionInfo")
        .open("item")
        .leaf("regionName", REGION)
        .leaf("regionEndpoint", "127.0.0.1")
        .leaf("optInStatus", "opt-in-not-required")
        .close("item")
        .close("regionInfo");
    Ok(x.finish())
}

/// DescribeAvailabilityZones: the one zone.
pub fn describe_zones(c: &Call<'_>) -> Result<String, ApiError> {
    let mut x = Xml::response("DescribeAvailabilityZones", c.request_id);
    x.open("availabilityZoneInfo")
        .open("item")
        .leaf("zoneName", AVAILABILITY_ZONE)
        .leaf("zoneState", "available")
        .leaf("regionName", REGION)
        .leaf("zoneId", "local1-az1")
        .close("item")
        .close("availabilityZoneInfo");
    Ok(x.finish())
}
