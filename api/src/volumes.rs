//! Volume actions: CreateVolume, DescribeVolumes, AttachVolume, DetachVolume, DeleteVolume,
//! ModifyVolume.

use shapes::Empty;
use shapes::ec2::{
    self, AttachVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest, DescribeVolumesRequest,
    DescribeVolumesResult, DetachVolumeRequest, ModifyVolumeRequest, ModifyVolumeResult, Volume,
    VolumeAttachment, VolumeModification,
};

use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, Page, non_empty, tag_set};
use super::{AVAILABILITY_ZONE, Call, ZONE_ID};
use control::ec2::volumes as ctl;
pub use control::ec2::volumes::{device_slot, valid_data_device};
use host::storage::types::VolumeType;
use state::volumes::{self, VolumeRow};
use state::well_formed_id;
use state::{now_iso, tags};

/// Checks `vol-...`.
pub fn check_volume_id(id: &str) -> Result<(), ApiError> {
    if well_formed_id(id, "vol") {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidVolumeID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"vol-...\")"),
        ))
    }
}

/// Checks `snap-...`.
pub fn check_snapshot_id(id: &str) -> Result<(), ApiError> {
    if well_formed_id(id, "snap") {
        Ok(())
    } else {
        Err(ApiError::new(
            "InvalidSnapshotID.Malformed",
            format!("Invalid id: \"{id}\" (expecting \"snap-...\")"),
        ))
    }
}

/// `InvalidVolume.NotFound`.
pub fn volume_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidVolume.NotFound",
        format!("The volume '{id}' does not exist."),
    )
}

/// `InvalidSnapshot.NotFound`.
pub fn snapshot_not_found(id: &str) -> ApiError {
    ApiError::new(
        "InvalidSnapshot.NotFound",
        format!("The snapshot '{id}' does not exist."),
    )
}

/// Parses `VolumeType` (default gp2, as on EC2).
pub fn volume_type(field: &str, v: Option<&str>) -> Result<VolumeType, ApiError> {
    match v {
        None => Ok(VolumeType::Gp2),
        Some(s) => VolumeType::parse(s).ok_or_else(|| {
            ApiError::invalid(
                field,
                format!("'{s}' is not one of: gp2, gp3, io1, io2, st1, sc1, standard"),
            )
        }),
    }
}

/// The storage type of a typed `VolumeType` (the model's values beyond ours are refused as
/// before).
pub fn storage_type(field: &str, t: ec2::VolumeType) -> Result<VolumeType, ApiError> {
    volume_type(field, Some(t.as_str()))
}

/// A count a request gives (`Size`, `Iops`, `Throughput`): not negative.
pub fn count(field: &str, value: Option<i32>) -> Result<Option<u64>, ApiError> {
    value
        .map(|n| {
            u64::try_from(n).map_err(|_| {
                ApiError::invalid(
                    field,
                    format!("'{n}' is not an integer from 0 to {}", u32::MAX),
                )
            })
        })
        .transpose()
}

/// A stored count for an output (stored counts are far below `i32::MAX`).
pub fn int32(n: u64) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// A volume as an output's `Volume`.
pub fn volume(v: &VolumeRow, t: &[(String, String)]) -> Volume {
    let attachments = match (&v.instance_id, &v.device) {
        (Some(instance), Some(device)) => vec![attachment(v, instance, device, "attached")],
        _ => Vec::new(),
    };
    Volume {
        volume_id: Some(v.id.clone()),
        size: Some(int32(v.size_gib)),
        snapshot_id: Some(v.snapshot_id.clone().unwrap_or_default()),
        availability_zone: Some(AVAILABILITY_ZONE.to_string()),
        availability_zone_id: Some(ZONE_ID.to_string()),
        state: ec2::VolumeState::from_wire(v.state.name()),
        create_time: typed::time(&v.created),
        attachments: Some(attachments),
        volume_type: ec2::VolumeType::from_wire(&v.volume_type),
        iops: Some(int32(v.iops)),
        throughput: (v.volume_type == "gp3").then(|| int32(v.throughput)),
        encrypted: Some(false),
        multi_attach_enabled: Some(false),
        tags: tag_set(t),
        ..Volume::default()
    }
}

fn attachment(v: &VolumeRow, instance: &str, device: &str, status: &str) -> VolumeAttachment {
    VolumeAttachment {
        volume_id: Some(v.id.clone()),
        instance_id: Some(instance.to_string()),
        device: Some(device.to_string()),
        state: ec2::VolumeAttachmentState::from_wire(status),
        attach_time: v.attach_time.as_deref().and_then(typed::time),
        delete_on_termination: Some(v.delete_on_termination),
        ..VolumeAttachment::default()
    }
}

/// CreateVolume.
pub async fn create(c: &Call<'_>, input: CreateVolumeRequest) -> Result<Volume, ApiError> {
    match (
        input.availability_zone.as_deref(),
        input.availability_zone_id.as_deref(),
    ) {
        (None, None) => return Err(ApiError::missing("AvailabilityZone")),
        (Some(z), _) if z != AVAILABILITY_ZONE => {
            return Err(ApiError::invalid(
                "AvailabilityZone",
                format!("Invalid availability zone: [{z}]; the only zone is {AVAILABILITY_ZONE}"),
            ));
        }
        (_, Some(z)) if z != ZONE_ID => {
            return Err(ApiError::invalid(
                "AvailabilityZoneId",
                format!("Invalid availability zone id: [{z}]; the only one is {ZONE_ID}"),
            ));
        }
        _ => {}
    }
    if input.encrypted.unwrap_or(false) || input.kms_key_id.is_some() {
        return Err(ApiError::invalid(
            "Encrypted",
            "encrypted volumes are not supported by this agent; use Encrypted=false",
        ));
    }
    if input.multi_attach_enabled.unwrap_or(false) {
        return Err(ApiError::invalid(
            "MultiAttachEnabled",
            "Multi-Attach is not supported by this agent",
        ));
    }
    let kind = match input.volume_type {
        Some(t) => storage_type("VolumeType", t)?,
        None => VolumeType::Gp2,
    };
    let size = count("Size", input.size)?;
    let iops = count("Iops", input.iops)?;
    let throughput = count("Throughput", input.throughput)?;
    if let Some(id) = input.snapshot_id.as_deref() {
        check_snapshot_id(id)?;
    }
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "volume")?;
    let row =
        c.st.plane
            .create_volume(ctl::CreateVolume {
                kind,
                size_gib: size,
                iops,
                throughput,
                snapshot_id: input.snapshot_id,
                tags: tag_list.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(volume(&row, &tag_list))
}

/// DescribeVolumes: `VolumeId.N`, `MaxResults` (5 to 500; more gives 500, as on EC2) with
/// `NextToken`, and filters volume-id, status, volume-type, size, snapshot-id,
/// attachment.instance-id, attachment.device, attachment.status, tag:, tag-key.
pub fn describe(
    c: &Call<'_>,
    input: DescribeVolumesRequest,
) -> Result<DescribeVolumesResult, ApiError> {
    let ids = input.volume_ids.unwrap_or_default();
    for id in &ids {
        check_volume_id(id)?;
    }
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(
        input.max_results.map(|n| n.min(MAX_VOLUME_RESULTS)),
        input.next_token.as_deref(),
        5,
        MAX_VOLUME_RESULTS,
    )?;
    let (rows, tag_map) = {
        let conn = c.st.db.lock();
        let rows = volumes::query(&conn, &ids, &[], &[])?;
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, tag_map)
    };
    if let Some(missing) = ids.iter().find(|id| !rows.iter().any(|r| &r.id == *id)) {
        return Err(volume_not_found(missing));
    }
    let mut out = Vec::new();
    for v in &rows {
        let t = tag_map.get(&v.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "volume-id, status, volume-type, size, snapshot-id, availability-zone, encrypted, \
             attachment.instance-id, attachment.device, attachment.status, \
             attachment.delete-on-termination",
            |name| {
                let v = match name {
                    "volume-id" => v.id.clone(),
                    "status" => v.state.name().to_string(),
                    "volume-type" => v.volume_type.clone(),
                    "size" => v.size_gib.to_string(),
                    "snapshot-id" => v.snapshot_id.clone().unwrap_or_default(),
                    "availability-zone" => AVAILABILITY_ZONE.to_string(),
                    "encrypted" => "false".to_string(),
                    "attachment.instance-id" => v.instance_id.clone().unwrap_or_default(),
                    "attachment.device" => v.device.clone().unwrap_or_default(),
                    "attachment.status" => if v.instance_id.is_some() {
                        "attached"
                    } else {
                        ""
                    }
                    .to_string(),
                    "attachment.delete-on-termination" => v.delete_on_termination.to_string(),
                    _ => return None,
                };
                Some(vec![v])
            },
        )?;
        if keep {
            out.push(volume(v, t));
        }
    }
    let (out, next_token) = page.apply(out, |v| v.volume_id.as_deref().unwrap_or_default());
    Ok(DescribeVolumesResult {
        volumes: Some(out),
        next_token,
    })
}

/// The most volumes one DescribeVolumes page holds (EC2's limit).
const MAX_VOLUME_RESULTS: i32 = 500;

/// AttachVolume: stopped instances only (no hot-plug).
pub async fn attach(
    c: &Call<'_>,
    input: AttachVolumeRequest,
) -> Result<VolumeAttachment, ApiError> {
    let vol_id = non_empty(&input.volume_id, "VolumeId")?;
    let instance_id = non_empty(&input.instance_id, "InstanceId")?;
    let device = non_empty(&input.device, "Device")?;
    check_volume_id(vol_id)?;
    if !well_formed_id(instance_id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{instance_id}\" (expecting \"i-...\")"),
        ));
    }
    let v =
        c.st.plane
            .attach_volume(ctl::AttachVolume {
                volume_id: vol_id.to_string(),
                instance_id: instance_id.to_string(),
                device: device.to_string(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(attachment(&v, instance_id, device, "attached"))
}

/// DetachVolume: from stopped instances (`Force` changes nothing without hot-plug).
pub async fn detach(
    c: &Call<'_>,
    input: DetachVolumeRequest,
) -> Result<VolumeAttachment, ApiError> {
    let vol_id = non_empty(&input.volume_id, "VolumeId")?;
    check_volume_id(vol_id)?;
    let d =
        c.st.plane
            .detach_volume(ctl::DetachVolume {
                volume_id: vol_id.to_string(),
                instance_id: input.instance_id,
                device: input.device,
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(attachment(&d.volume, &d.instance_id, &d.device, "detached"))
}

/// DeleteVolume: refused while attached.
pub async fn delete(c: &Call<'_>, input: DeleteVolumeRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.volume_id, "VolumeId")?;
    check_volume_id(id)?;
    c.st.plane
        .delete_volume(id)
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// ModifyVolume: grow, change type, IOPS, throughput. The file grows at once; the guest sees
/// the new size and rate limits at its next start.
pub async fn modify(
    c: &Call<'_>,
    input: ModifyVolumeRequest,
) -> Result<ModifyVolumeResult, ApiError> {
    let id = non_empty(&input.volume_id, "VolumeId")?;
    check_volume_id(id)?;
    let kind = input
        .volume_type
        .map(|t| storage_type("VolumeType", t))
        .transpose()?;
    let cmd = ctl::ModifyVolume {
        volume_id: id.to_string(),
        kind,
        size_gib: count("Size", input.size)?,
        iops: count("Iops", input.iops)?,
        throughput: count("Throughput", input.throughput)?,
    };
    let m =
        c.st.plane
            .modify_volume(cmd)
            .await
            .map_err(|e| ApiError::refused(&e))?;
    let (v, spec) = (&m.before, &m.spec);
    let now = typed::time(&now_iso());
    Ok(ModifyVolumeResult {
        volume_modification: Some(VolumeModification {
            volume_id: Some(id.to_string()),
            modification_state: ec2::VolumeModificationState::from_wire("completed"),
            target_size: Some(int32(spec.size_gib)),
            target_iops: Some(int32(spec.iops)),
            target_volume_type: ec2::VolumeType::from_wire(m.kind.name()),
            target_throughput: Some(int32(spec.throughput)),
            original_size: Some(int32(v.size_gib)),
            original_iops: Some(int32(v.iops)),
            original_volume_type: ec2::VolumeType::from_wire(&v.volume_type),
            original_throughput: Some(int32(v.throughput)),
            progress: Some(100),
            start_time: now,
            end_time: now,
            ..VolumeModification::default()
        }),
    })
}
