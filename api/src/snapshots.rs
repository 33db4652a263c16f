//! Snapshot actions: CreateSnapshot, DescribeSnapshots, CopySnapshot, DeleteSnapshot, and
//! CreateImage (a snapshot of each of an instance's volumes at one point in time, and a new
//! AMI).

use shapes::Empty;
use shapes::ec2::{
    CopySnapshotRequest, CopySnapshotResult, CreateImageRequest, CreateImageResult,
    CreateSnapshotRequest, DeleteSnapshotRequest, DescribeSnapshotsRequest,
    DescribeSnapshotsResult, Snapshot, SnapshotState, StorageTier,
};

use super::Call;
use super::errors::ApiError;
use super::filters::filters_match;
use super::typed::{self, Page, non_empty, tag_set};
use super::volumes::{check_snapshot_id, check_volume_id, int32, snapshot_not_found};
use control::ec2::images as ctl_images;
use control::ec2::snapshots as ctl;
use state::snapshots::{self, SnapshotRow};
use state::tags;
use state::well_formed_id;

/// A snapshot as an output's `Snapshot`.
fn snapshot(s: &SnapshotRow, owner: &str, t: &[(String, String)]) -> Snapshot {
    Snapshot {
        snapshot_id: Some(s.id.clone()),
        volume_id: Some(s.volume_id.clone()),
        state: SnapshotState::from_wire(&s.state),
        state_message: s.state_message.clone(),
        start_time: typed::time(&s.start_time),
        progress: Some(format!("{}%", s.progress)),
        owner_id: Some(owner.to_string()),
        volume_size: Some(int32(s.volume_size_gib)),
        description: Some(s.description.clone()),
        encrypted: Some(false),
        storage_tier: Some(StorageTier::Standard),
        full_snapshot_size_in_bytes: (s.state == "completed")
            .then(|| i64::try_from(s.size_bytes).unwrap_or(i64::MAX)),
        tags: tag_set(t),
        ..Snapshot::default()
    }
}

/// CreateSnapshot: returns at once (pending); the snapshot completes in the background.
pub async fn create(c: &Call<'_>, input: CreateSnapshotRequest) -> Result<Snapshot, ApiError> {
    let vol_id = non_empty(&input.volume_id, "VolumeId")?;
    check_volume_id(vol_id)?;
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "snapshot")?;
    let s =
        c.st.plane
            .create_snapshot(ctl::CreateSnapshot {
                volume_id: vol_id.to_string(),
                description: input.description.unwrap_or_default(),
                tags: tag_list.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(snapshot(&s, &c.st.account_id, &tag_list))
}

/// DescribeSnapshots: `SnapshotId.N`, `Owner.N` (self or this account), filters
/// snapshot-id, volume-id, status, owner-id, description, volume-size, tag:, tag-key;
/// `MaxResults` (5 to 1000; more gives 1000, as on EC2) with `NextToken`.
pub fn describe(
    c: &Call<'_>,
    input: DescribeSnapshotsRequest,
) -> Result<DescribeSnapshotsResult, ApiError> {
    let ids = input.snapshot_ids.unwrap_or_default();
    for id in &ids {
        check_snapshot_id(id)?;
    }
    let owners = input.owner_ids.unwrap_or_default();
    let ours = owners.is_empty() || owners.iter().any(|o| o == "self" || *o == c.st.account_id);
    let filters = typed::filters(input.filters.as_deref())?;
    let page = Page::new(
        input.max_results.map(|n| n.min(MAX_SNAPSHOT_RESULTS)),
        input.next_token.as_deref(),
        5,
        MAX_SNAPSHOT_RESULTS,
    )?;
    let (rows, tag_map) = {
        let conn = c.st.db.lock();
        let rows = snapshots::query(&conn, &ids)?;
        let refs: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
        let tag_map = tags::for_resources(&conn, &refs)?;
        (rows, tag_map)
    };
    if let Some(missing) = ids.iter().find(|id| !rows.iter().any(|r| &r.id == *id)) {
        return Err(snapshot_not_found(missing));
    }
    let mut out = Vec::new();
    for s in rows.iter().filter(|_| ours) {
        let t = tag_map.get(&s.id).map_or(&[][..], Vec::as_slice);
        let keep = filters_match(
            &filters,
            t,
            "snapshot-id, volume-id, status, owner-id, description, volume-size, encrypted",
            |name| {
                let v = match name {
                    "snapshot-id" => s.id.clone(),
                    "volume-id" => s.volume_id.clone(),
                    "status" => s.state.clone(),
                    "owner-id" => c.st.account_id.clone(),
                    "description" => s.description.clone(),
                    "volume-size" => s.volume_size_gib.to_string(),
                    "encrypted" => "false".to_string(),
                    _ => return None,
                };
                Some(vec![v])
            },
        )?;
        if keep {
            out.push(snapshot(s, &c.st.account_id, t));
        }
    }
    let (out, next_token) = page.apply(out, |s| s.snapshot_id.as_deref().unwrap_or_default());
    Ok(DescribeSnapshotsResult {
        snapshots: Some(out),
        next_token,
    })
}

/// The most snapshots one DescribeSnapshots page holds (EC2's limit).
const MAX_SNAPSHOT_RESULTS: i32 = 1000;

/// CopySnapshot within this region: a completed snapshot's copy, completed at once because
/// it shares the source's chunks (one more reference each). The copy's volume is
/// `vol-ffffffff`, as on EC2.
pub async fn copy(
    c: &Call<'_>,
    input: CopySnapshotRequest,
) -> Result<CopySnapshotResult, ApiError> {
    let source = non_empty(&input.source_snapshot_id, "SourceSnapshotId")?;
    check_snapshot_id(source)?;
    let region = non_empty(&input.source_region, "SourceRegion")?;
    for (field, value) in [
        ("SourceRegion", Some(region)),
        ("DestinationRegion", input.destination_region.as_deref()),
    ] {
        if let Some(r) = value
            && r != super::REGION
        {
            return Err(ApiError::invalid(
                field,
                format!(
                    "'{r}' is not a region of this agent; the only region is {}",
                    super::REGION
                ),
            ));
        }
    }
    if input.encrypted.unwrap_or(false) {
        return Err(ApiError::invalid(
            "Encrypted",
            "encrypted snapshots are not supported by this agent",
        ));
    }
    let tag_list = typed::tag_specifications(input.tag_specifications.as_deref(), "snapshot")?;
    let s =
        c.st.plane
            .copy_snapshot(ctl::CopySnapshot {
                source: source.to_string(),
                description: input.description.unwrap_or_default(),
                tags: tag_list.clone(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CopySnapshotResult {
        snapshot_id: Some(s.id),
        tags: tag_set(&tag_list),
    })
}

/// DeleteSnapshot: refused while an image uses it or while it is being taken.
pub async fn delete(c: &Call<'_>, input: DeleteSnapshotRequest) -> Result<Empty, ApiError> {
    let id = non_empty(&input.snapshot_id, "SnapshotId")?;
    check_snapshot_id(id)?;
    c.st.plane
        .delete_snapshot(id)
        .await
        .map_err(|e| ApiError::refused(&e))?;
    Ok(Empty::default())
}

/// CreateImage: one snapshot of each of the instance's volumes, all at one point in time, and
/// an AMI booting the instance's kernel with them (same devices, sizes, types and
/// DeleteOnTermination). A running instance is shut down, copied and booted again, unless
/// `NoReboot`: then it is only paused for the copy (crash-consistent). The image is pending
/// until its snapshots complete. `TagSpecification` may tag the image and the snapshots.
pub async fn create_image(
    c: &Call<'_>,
    input: CreateImageRequest,
) -> Result<CreateImageResult, ApiError> {
    let instance_id = non_empty(&input.instance_id, "InstanceId")?;
    if !well_formed_id(instance_id, "i") {
        return Err(ApiError::new(
            "InvalidInstanceID.Malformed",
            format!("Invalid id: \"{instance_id}\" (expecting \"i-...\")"),
        ));
    }
    let name = non_empty(&input.name, "Name")?.to_string();
    if name.len() < 3 || name.len() > 128 {
        return Err(ApiError::invalid(
            "Name",
            "image names are 3 to 128 characters",
        ));
    }
    let description = input.description.clone().unwrap_or_default();
    super::images::check_description(&description)?;
    let mut tag_map =
        typed::tag_specifications_for(input.tag_specifications.as_deref(), &["image", "snapshot"])?;
    let created =
        c.st.plane
            .create_image(ctl_images::CreateImage {
                instance_id: instance_id.to_string(),
                name,
                description,
                no_reboot: input.no_reboot.unwrap_or(false),
                image_tags: tag_map.remove("image").unwrap_or_default(),
                snapshot_tags: tag_map.remove("snapshot").unwrap_or_default(),
            })
            .await
            .map_err(|e| ApiError::refused(&e))?;
    Ok(CreateImageResult {
        image_id: Some(created.image.id),
    })
}
