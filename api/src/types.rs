//! Catalog actions: DescribeInstanceTypes, DescribeRegions, DescribeAvailabilityZones.

use shapes::ec2::{
    ArchitectureType, AvailabilityZone, AvailabilityZoneState, DescribeAvailabilityZonesRequest,
    DescribeAvailabilityZonesResult, DescribeInstanceTypesRequest, DescribeInstanceTypesResult,
    DescribeRegionsRequest, DescribeRegionsResult, DiskInfo, DiskType, EphemeralNvmeSupport,
    InstanceStorageInfo, InstanceType, InstanceTypeHypervisor, InstanceTypeInfo, MemoryInfo,
    ProcessorInfo, Region, VCpuInfo,
};

use super::ZONE_ID;
use super::errors::ApiError;
use super::typed::Page;
use super::{AVAILABILITY_ZONE, Call, REGION};
use host::compute::catalog::{self, INSTANCE_TYPES};

/// The most `InstanceType.N` DescribeInstanceTypes takes (EC2's limit).
const MAX_TYPES: usize = 100;

/// A catalog count for an output (the catalog's are small).
fn int32(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A catalog size for an output.
fn int64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// One catalog entry as an `InstanceTypeInfo`.
fn instance_type_info(t: &catalog::InstanceType) -> InstanceTypeInfo {
    // EBS: the instance store of the `d` types.
    let store = catalog::instance_store_gb(t.name);
    InstanceTypeInfo {
        instance_type: InstanceType::from_wire(t.name),
        current_generation: Some(true),
        free_tier_eligible: Some(t.name == "t2.micro"),
        bare_metal: Some(false),
        hypervisor: Some(InstanceTypeHypervisor::Nitro),
        processor_info: Some(ProcessorInfo {
            supported_architectures: Some(vec![ArchitectureType::X86_64]),
            ..ProcessorInfo::default()
        }),
        v_cpu_info: Some(VCpuInfo {
            default_v_cpus: Some(int32(t.vcpus)),
            default_cores: Some(int32(t.vcpus)),
            default_threads_per_core: Some(1),
            ..VCpuInfo::default()
        }),
        memory_info: Some(MemoryInfo {
            size_in_mi_b: Some(int64(t.memory_mib)),
        }),
        burstable_performance_supported: Some(t.burstable),
        instance_storage_supported: Some(store.is_some()),
        instance_storage_info: store.map(|gb| InstanceStorageInfo {
            total_size_in_gb: Some(int64(gb)),
            disks: Some(vec![DiskInfo {
                size_in_gb: Some(int64(gb)),
                count: Some(1),
                type_: Some(DiskType::Ssd),
            }]),
            nvme_support: Some(EphemeralNvmeSupport::Required),
            ..InstanceStorageInfo::default()
        }),
        ..InstanceTypeInfo::default()
    }
}

/// DescribeInstanceTypes (`InstanceType.N` narrows the list; `MaxResults`, 5 to 100, with
/// `NextToken` pages it).
pub fn describe_instance_types(
    _c: &Call<'_>,
    input: DescribeInstanceTypesRequest,
) -> Result<DescribeInstanceTypesResult, ApiError> {
    let wanted: Vec<&str> = input
        .instance_types
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(InstanceType::as_str)
        .collect();
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
    let page = Page::new(input.max_results, input.next_token.as_deref(), 5, 100)?;
    let types: Vec<InstanceTypeInfo> = INSTANCE_TYPES
        .iter()
        .filter(|t| wanted.is_empty() || wanted.contains(&t.name))
        .map(instance_type_info)
        .collect();
    let (types, next_token) = page.apply(types, |t| {
        t.instance_type.as_ref().map_or("", InstanceType::as_str)
    });
    Ok(DescribeInstanceTypesResult {
        instance_types: Some(types),
        next_token,
    })
}

/// DescribeRegions: the one region.
pub fn describe_regions(
    _c: &Call<'_>,
    _input: DescribeRegionsRequest,
) -> Result<DescribeRegionsResult, ApiError> {
    Ok(DescribeRegionsResult {
        regions: Some(vec![Region {
            region_name: Some(REGION.to_string()),
            endpoint: Some("127.0.0.1".to_string()),
            opt_in_status: Some("opt-in-not-required".to_string()),
            ..Region::default()
        }]),
    })
}

/// DescribeAvailabilityZones: the one zone.
pub fn describe_zones(
    _c: &Call<'_>,
    _input: DescribeAvailabilityZonesRequest,
) -> Result<DescribeAvailabilityZonesResult, ApiError> {
    Ok(DescribeAvailabilityZonesResult {
        availability_zones: Some(vec![AvailabilityZone {
            zone_name: Some(AVAILABILITY_ZONE.to_string()),
            state: Some(AvailabilityZoneState::Available),
            region_name: Some(REGION.to_string()),
            zone_id: Some(ZONE_ID.to_string()),
            ..AvailabilityZone::default()
        }]),
    })
}
