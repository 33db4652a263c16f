//! Volume actions: CreateVolume, DescribeVolumes, AttachVolume, DetachVolume, DeleteVolume,
//! ModifyVolume.

use super::errors::ApiError;
use super::filters::filters_match;
use super::instances::well_formed_id;
use super::xml::Xml;
use super::{AVAILABILITY_ZONE, Call};
use crate::state::instances::{self, InstanceState};
use crate::state::volumes::{self, VolumeRow, VolumeState};
use crate::state::{new_id, now_iso, snapshots, tags};
use crate::storage::types::{SpecError, VolumeSpec, VolumeType};

/// The zone id of the one zone.
pub const ZONE_ID: &str = "local1-az1";

/// `InvalidParameterValue`/... for a refused volume specification.
pub fn spec_error(e: SpecError) -> ApiError {
    ApiError::new(e.code(), e.to_string())
}

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

/// Loads a volume by a well-formed id.
fn load(c: &Call<'_>, id: &str) -> Result<VolumeRow, ApiError> {
    check_volume_id(id)?;
    volumes::get(&c.st.db.lock(), id)?.ok_or_else(|| volume_not_found(id))
}

/// The `Volume` fields, without an enclosing element.
pub fn volume_fields(x: &mut Xml, v: &VolumeRow, t: &[(String, String)]) {
    x.leaf("volumeId", &v.id)
        .leaf("size", v.size_gib.to_string())
        .leaf("snapshotId", v.snapshot_id.as_deref().unwrap_or(""))
        .leaf("availabilityZone", AVAILABILITY_ZONE)
        .leaf("availabilityZoneId", ZONE_ID)
        .leaf("status", v.state.name())
        .leaf("createTime", &v.created)
        .open("attachmentSet");
    if let (Some(instance), Some(device)) = (&v.instance_id, &v.device) {
        x.open("item");
        attachment_fields(x, v, instance, device, "attached");
        x.close("item");
    }
    x.close("attachmentSet")
        .leaf("volumeType", &v.volume_type)
        .leaf("iops", v.iops.to_string());
    if v.volume_type == "gp3" {
        x.leaf("throughput", v.throughput.to_string());
    }
    x.leaf("encrypted", "false")
        .leaf("multiAttachEnabled", "false");
    if !t.is_empty() {
        x.tag_set(t);
    }
}

fn attachment_fields(x: &mut Xml, v: &VolumeRow, instance: &str, device: &str, status: &str) {
    x.leaf("volumeId", &v.id)
        .leaf("instanceId", instance)
        .leaf("device", device)
        .leaf("status", status)
        .leaf("attachTime", v.attach_time.as_deref().unwrap_or(""))
        .leaf("deleteOnTermination", v.delete_on_termination.to_string());
}

/// CreateVolume.
pub fn create(c: &Call<'_>) -> Result<String, ApiError> {
    let p = c.p;
    match (p.get("AvailabilityZone"), p.get("AvailabilityZoneId")) {
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
    if p.bool("Encrypted")? || p.get("KmsKeyId").is_some() {
        return Err(ApiError::invalid(
            "Encrypted",
            "encrypted volumes are not supported by this agent; use Encrypted=false",
        ));
    }
    if p.bool("MultiAttachEnabled")? {
        return Err(ApiError::invalid(
            "MultiAttachEnabled",
            "Multi-Attach is not supported by this agent",
        ));
    }
    let kind = volume_type("VolumeType", p.get("VolumeType"))?;
    let size = p.int("Size", 0, i64::from(u32::MAX))?;
    let iops = p.int("Iops", 0, i64::from(u32::MAX))?.map(|n| n as u64);
    let throughput = p
        .int("Throughput", 0, i64::from(u32::MAX))?
        .map(|n| n as u64);
    let snapshot = match p.get("SnapshotId") {
        Some(id) => {
            check_snapshot_id(id)?;
            let s = snapshots::get(&c.st.db.lock(), id)?.ok_or_else(|| snapshot_not_found(id))?;
            if s.state != "completed" {
                return Err(ApiError::new(
                    "IncorrectState",
                    format!("Snapshot '{id}' is {}, not completed.", s.state),
                ));
            }
            Some(s)
        }
        None => None,
    };
    let size = match (size, &snapshot) {
        (None, None) => {
            return Err(ApiError::new(
                "MissingParameter",
                "The request must contain the parameter size or snapshotId",
            ));
        }
        (Some(n), Some(s)) if (n as u64) < s.volume_size_gib => {
            return Err(ApiError::invalid(
                "Size",
                format!(
                    "Volume of {n}GiB is smaller than snapshot '{}', expect size >= {}GiB",
                    s.id, s.volume_size_gib
                ),
            ));
        }
        (Some(n), _) => n as u64,
        (None, Some(s)) => s.volume_size_gib,
    };
    let spec = VolumeSpec::new(kind, size, iops, throughput).map_err(spec_error)?;
    let tag_list = p.tag_specifications("volume")?;
    let row = VolumeRow {
        seq: 0,
        id: new_id("vol"),
        volume_type: kind.name().to_string(),
        size_gib: spec.size_gib,
        iops: spec.iops,
        throughput: spec.throughput,
        snapshot_id: snapshot.map(|s| s.id),
        source_image: None,
        state: VolumeState::Creating,
        created: now_iso(),
        instance_id: None,
        device: None,
        attach_time: None,
        delete_on_termination: false,
    };
    let row =
        c.st.storage
            .create_volume(row, &tag_list)
            .map_err(|e| ApiError::internal(&e))?;
    tracing::info!(volume = %row.id, size = row.size_gib, kind = %row.volume_type, "volume created");
    let t: Vec<(String, String)> = tag_list;
    let mut x = Xml::response("CreateVolume", c.request_id);
    volume_fields(&mut x, &row, &t);
    Ok(x.finish())
}

/// DescribeVolumes: `VolumeId.N` and filters volume-id, status, volume-type, size,
/// snapshot-id, attachment.instance-id, attachment.device, attachment.status, tag:, tag-key.
pub fn describe(c: &Call<'_>) -> Result<String, ApiError> {
    let ids = c.p.list("VolumeId");
    for id in &ids {
        check_volume_id(id)?;
    }
    let filters = c.p.filters()?;
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
    let mut x = Xml::response("DescribeVolumes", c.request_id);
    x.open("volumeSet");
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
            x.open("item");
            volume_fields(&mut x, v, t);
            x.close("item");
        }
    }
    x.close("volumeSet");
    Ok(x.finish())
}

/// Whether `device` is a data-volume device name EC2 accepts here: `/dev/sd[f-p]` or
/// `/dev/xvd[f-p]`.
pub fn valid_data_device(device: &str) -> bool {
    let letter = device
        .strip_prefix("/dev/sd")
        .or_else(|| device.strip_prefix("/dev/xvd"));
    matches!(letter.map(str::as_bytes), Some([b'f'..=b'p']))
}

/// The letter that identifies a device (`/dev/sdf` and `/dev/xvdf` are the same slot).
pub fn device_slot(device: &str) -> String {
    device
        .trim_start_matches("/dev/")
        .trim_start_matches("xvd")
        .trim_start_matches("sd")
        .to_string()
}

/// AttachVolume: stopped instances only (no hot-plug).
pub fn attach(c: &Call<'_>) -> Result<String, ApiError> {
    let vol_id = c.p.required("VolumeId")?;
    let instance_id = c.p.required("InstanceId")?;
    let device = c.p.required("Device")?;
    check_volume_id(vol_id)?;
    if !well_formed_id(instance_id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{instance_id}\" (expecting \"i-...\")"),
        ));
    }
    if !valid_data_device(device) {
        return Err(ApiError::invalid(
            "Device",
            format!(
                "Invalid value '{device}' for unixDevice; use /dev/sdf to /dev/sdp or /dev/xvdf to /dev/xvdp"
            ),
        ));
    }
    let conn = c.st.db.lock();
    let v = volumes::get(&conn, vol_id)?.ok_or_else(|| volume_not_found(vol_id))?;
    let inst = instances::get(&conn, instance_id)?.ok_or_else(|| {
        ApiError::new(
            "InvalidInstanceID.NotFound",
            format!("The instance ID '{instance_id}' does not exist"),
        )
    })?;
    if let Some(other) = &v.instance_id {
        return Err(ApiError::new(
            "VolumeInUse",
            format!("{vol_id} is already attached to an instance ({other})"),
        ));
    }
    if v.state != VolumeState::Available {
        return Err(ApiError::new(
            "IncorrectState",
            format!("Volume '{vol_id}' is in the '{}' state.", v.state.name()),
        ));
    }
    if inst.state != InstanceState::Stopped {
        return Err(ApiError::new(
            "IncorrectState",
            format!(
                "Instance '{instance_id}' is {}; volumes are attached to stopped instances only \
                 (this agent has no hot-plug)",
                inst.state.name()
            ),
        ));
    }
    let taken = volumes::attached_to(&conn, instance_id)?;
    if taken
        .iter()
        .any(|t| t.device.as_deref().map(device_slot) == Some(device_slot(device)))
    {
        return Err(ApiError::invalid(
            "Device",
            format!(
                "Invalid value '{device}' for unixDevice. Attachment point {device} is already in use"
            ),
        ));
    }
    volumes::set_attachment(&conn, vol_id, Some((instance_id, device, false)))?;
    let v = volumes::get(&conn, vol_id)?.ok_or_else(|| volume_not_found(vol_id))?;
    drop(conn);
    tracing::info!(volume = %vol_id, instance = %instance_id, %device, "volume attached");
    let mut x = Xml::response("AttachVolume", c.request_id);
    attachment_fields(&mut x, &v, instance_id, device, "attached");
    Ok(x.finish())
}

/// DetachVolume: from stopped instances (`Force` changes nothing without hot-plug).
pub fn detach(c: &Call<'_>) -> Result<String, ApiError> {
    let vol_id = c.p.required("VolumeId")?;
    c.p.bool("Force")?;
    let v = load(c, vol_id)?;
    let conn = c.st.db.lock();
    let (Some(instance_id), Some(device)) = (v.instance_id.clone(), v.device.clone()) else {
        return Err(ApiError::new(
            "IncorrectState",
            format!("Volume '{vol_id}' is in the '{}' state.", v.state.name()),
        ));
    };
    if c.p.get("InstanceId").is_some_and(|i| i != instance_id)
        || c.p
            .get("Device")
            .is_some_and(|d| device_slot(d) != device_slot(&device))
    {
        return Err(ApiError::new(
            "InvalidAttachment.NotFound",
            format!(
                "Volume '{vol_id}' is not attached there; it is attached to {instance_id} at {device}"
            ),
        ));
    }
    let inst = instances::get(&conn, &instance_id)?;
    if let Some(i) =
        inst.filter(|i| !matches!(i.state, InstanceState::Stopped | InstanceState::Terminated))
    {
        return Err(ApiError::new(
            "IncorrectState",
            format!(
                "Instance '{instance_id}' is {}; volumes are detached from stopped instances only \
                 (this agent has no hot-plug)",
                i.state.name()
            ),
        ));
    }
    volumes::set_attachment(&conn, vol_id, None)?;
    drop(conn);
    tracing::info!(volume = %vol_id, instance = %instance_id, "volume detached");
    let mut x = Xml::response("DetachVolume", c.request_id);
    attachment_fields(&mut x, &v, &instance_id, &device, "detached");
    Ok(x.finish())
}

/// DeleteVolume: refused while attached.
pub fn delete(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("VolumeId")?;
    let v = load(c, id)?;
    if let Some(i) = &v.instance_id {
        return Err(ApiError::new(
            "VolumeInUse",
            format!("Volume {id} is currently attached to {i}"),
        ));
    }
    if v.state != VolumeState::Available && v.state != VolumeState::Error {
        return Err(ApiError::new(
            "IncorrectState",
            format!("Volume '{id}' is in the '{}' state.", v.state.name()),
        ));
    }
    c.st.storage
        .delete_volume(id)
        .map_err(|e| ApiError::internal(&e))?;
    Ok(Xml::returns_true("DeleteVolume", c.request_id))
}

/// ModifyVolume: grow, change type, IOPS, throughput. The file grows at once; the guest sees
/// the new size and rate limits at its next start.
pub fn modify(c: &Call<'_>) -> Result<String, ApiError> {
    let id = c.p.required("VolumeId")?;
    let v = load(c, id)?;
    if !matches!(v.state, VolumeState::Available | VolumeState::InUse) {
        return Err(ApiError::new(
            "IncorrectState",
            format!("Volume '{id}' is in the '{}' state.", v.state.name()),
        ));
    }
    let old_kind = VolumeType::parse(&v.volume_type).unwrap_or(VolumeType::Gp2);
    let kind = match c.p.get("VolumeType") {
        Some(t) => volume_type("VolumeType", Some(t))?,
        None => old_kind,
    };
    let size = c.p.int("Size", 0, i64::from(u32::MAX))?.map(|n| n as u64);
    if size.is_some_and(|s| s < v.size_gib) {
        return Err(ApiError::invalid(
            "Size",
            format!(
                "New size cannot be smaller than existing size ({} GiB)",
                v.size_gib
            ),
        ));
    }
    let size = size.unwrap_or(v.size_gib);
    let iops = c.p.int("Iops", 0, i64::from(u32::MAX))?.map(|n| n as u64);
    let throughput =
        c.p.int("Throughput", 0, i64::from(u32::MAX))?
            .map(|n| n as u64);
    // The type's current IOPS/throughput are kept when it stays the same and takes them.
    let keep_iops = iops.or_else(|| {
        (kind == old_kind && matches!(kind, VolumeType::Gp3 | VolumeType::Io1 | VolumeType::Io2))
            .then_some(v.iops)
    });
    let keep_tp = throughput
        .or_else(|| (kind == old_kind && kind == VolumeType::Gp3).then_some(v.throughput));
    let spec = VolumeSpec::new(kind, size, keep_iops, keep_tp).map_err(spec_error)?;
    if size > v.size_gib {
        c.st.storage
            .grow_volume(id, size)
            .map_err(|e| ApiError::internal(&e))?;
    }
    volumes::set_spec(
        &c.st.db.lock(),
        id,
        kind.name(),
        spec.size_gib,
        spec.iops,
        spec.throughput,
    )?;
    tracing::info!(volume = %id, size, kind = %kind, iops = spec.iops, "volume modified");
    let now = now_iso();
    let mut x = Xml::response("ModifyVolume", c.request_id);
    x.open("volumeModification")
        .leaf("volumeId", id)
        .leaf("modificationState", "completed")
        .leaf("targetSize", spec.size_gib.to_string())
        .leaf("targetIops", spec.iops.to_string())
        .leaf("targetVolumeType", kind.name())
        .leaf("targetThroughput", spec.throughput.to_string())
        .leaf("originalSize", v.size_gib.to_string())
        .leaf("originalIops", v.iops.to_string())
        .leaf("originalVolumeType", &v.volume_type)
        .leaf("originalThroughput", v.throughput.to_string())
        .leaf("progress", "100")
        .leaf("startTime", &now)
        .leaf("endTime", &now)
        .close("volumeModification");
    Ok(x.finish())
}
