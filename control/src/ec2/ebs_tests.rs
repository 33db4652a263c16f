//! The EBS commands' checks and writes, over a database on a temporary directory.

use rusqlite::Connection;

use super::images::{CreateImage, CreateImageError, create_image};
use super::snapshots::{
    CopySnapshot, CopySnapshotError, CreateSnapshot, CreateSnapshotError, DeleteSnapshotError,
    copy_snapshot, create_snapshot, delete_snapshot,
};
use super::volumes::*;
use crate::Refusal;
use crate::effects::{self, Effect};
use host::storage::types::VolumeType;
use state::Db;
use state::instances::{self, InstanceRow, InstanceState};
use state::snapshots::{self, ChunkRef};
use state::volumes::{self, VolumeState};

fn db() -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(&dir.path().join("state.db")).unwrap();
    (dir, db)
}

fn empty(size: u64) -> CreateVolume {
    CreateVolume {
        kind: VolumeType::Gp3,
        size_gib: Some(size),
        iops: None,
        throughput: None,
        snapshot_id: None,
        tags: vec![("Name".into(), "data".into())],
    }
}

/// An available volume of `size` GiB.
fn volume(conn: &mut Connection, size: u64) -> String {
    let tx = conn.transaction().unwrap();
    let (row, effects) = create_volume(&tx, &empty(size)).unwrap();
    tx.commit().unwrap();
    assert_eq!(row.state, VolumeState::Creating);
    assert_eq!(
        effects,
        vec![Effect::CreateVolumeFile {
            volume: row.id.clone()
        }]
    );
    volumes::set_state(conn, &row.id, VolumeState::Available).unwrap();
    row.id
}

fn instance(conn: &Connection, id: &str, state: InstanceState) {
    instances::insert(conn, &InstanceRow::example(id, state)).unwrap();
}

/// A completed snapshot of `vol` holding the chunks `hashes`.
fn completed_snapshot(conn: &Connection, vol: &str, hashes: &[&str]) -> String {
    let s = create_snapshot(
        conn,
        &CreateSnapshot {
            volume_id: vol.into(),
            description: String::new(),
            tags: Vec::new(),
        },
    )
    .unwrap();
    let list: Vec<ChunkRef> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| ChunkRef {
            index: i as u64,
            hash: h.to_string(),
            len: 4096,
        })
        .collect();
    snapshots::complete(conn, &s.id, &list).unwrap();
    s.id
}

fn refusal(e: &impl Refusal) -> (Option<&'static str>, String) {
    (e.code(), e.to_string())
}

#[test]
fn create_volume_needs_a_size_and_a_completed_snapshot_at_most_that_size() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let tx = conn.transaction().unwrap();
    let mut cmd = empty(8);
    cmd.size_gib = None;
    let e = create_volume(&tx, &cmd).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("MissingParameter"),
            "The request must contain the parameter size or snapshotId".into()
        )
    );
    cmd.snapshot_id = Some("snap-12345678".into());
    let e = create_volume(&tx, &cmd).unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
    drop(tx);
    let vol = volume(&mut conn, 8);
    let snap = completed_snapshot(&conn, &vol, &["aa"]);
    let tx = conn.transaction().unwrap();
    let mut cmd = empty(4);
    cmd.snapshot_id = Some(snap.clone());
    let e = create_volume(&tx, &cmd).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("InvalidParameterValue"),
            format!(
                "Value for parameter Size is invalid: Volume of 4GiB is smaller than snapshot \
                 '{snap}', expect size >= 8GiB"
            )
        )
    );
    cmd.size_gib = None;
    let (row, effects) = create_volume(&tx, &cmd).unwrap();
    assert_eq!((row.size_gib, row.state), (8, VolumeState::Creating));
    assert!(effects.is_empty(), "a restore is background work");
    let e = create_volume(&tx, &empty(0)).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
}

#[test]
fn attach_checks_device_instance_state_and_slot() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let (a, b) = (volume(&mut conn, 1), volume(&mut conn, 1));
    instance(&conn, "i-11111111", InstanceState::Running);
    instance(&conn, "i-22222222", InstanceState::Stopped);
    let cmd = |vol: &str, inst: &str, dev: &str| AttachVolume {
        volume_id: vol.into(),
        instance_id: inst.into(),
        device: dev.into(),
    };
    let e = attach_volume(&conn, &cmd(&a, "i-22222222", "/dev/sdz")).unwrap_err();
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    let e = attach_volume(&conn, &cmd(&a, "i-33333333", "/dev/sdf")).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("InvalidInstanceID.NotFound"),
            "The instance ID 'i-33333333' does not exist".into()
        )
    );
    let e = attach_volume(&conn, &cmd(&a, "i-11111111", "/dev/sdf")).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            "Instance 'i-11111111' is running; volumes are attached to stopped instances only \
             (this agent has no hot-plug)"
                .into()
        )
    );
    let v = attach_volume(&conn, &cmd(&a, "i-22222222", "/dev/sdf")).unwrap();
    assert_eq!(v.instance_id.as_deref(), Some("i-22222222"));
    let e = attach_volume(&conn, &cmd(&a, "i-22222222", "/dev/sdg")).unwrap_err();
    assert_eq!(e.code(), Some("VolumeInUse"));
    let e = attach_volume(&conn, &cmd(&b, "i-22222222", "/dev/xvdf")).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("InvalidParameterValue"),
            "Value for parameter Device is invalid: Invalid value '/dev/xvdf' for unixDevice. \
             Attachment point /dev/xvdf is already in use"
                .into()
        )
    );
}

#[test]
fn detach_checks_where_and_the_instance_state() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 1);
    instance(&conn, "i-22222222", InstanceState::Stopped);
    let cmd = |inst: Option<&str>, dev: Option<&str>| DetachVolume {
        volume_id: vol.clone(),
        instance_id: inst.map(String::from),
        device: dev.map(String::from),
    };
    let e = detach_volume(&conn, &cmd(None, None)).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            format!("Volume '{vol}' is in the 'available' state.")
        )
    );
    volumes::set_attachment(&conn, &vol, Some(("i-22222222", "/dev/sdf", false))).unwrap();
    let e = detach_volume(&conn, &cmd(None, Some("/dev/sdg"))).unwrap_err();
    assert_eq!(e.code(), Some("InvalidAttachment.NotFound"));
    let other = volume(&mut conn, 1);
    instance(&conn, "i-11111111", InstanceState::Running);
    volumes::set_attachment(&conn, &other, Some(("i-11111111", "/dev/sdf", false))).unwrap();
    let e = detach_volume(
        &conn,
        &DetachVolume {
            volume_id: other,
            instance_id: None,
            device: None,
        },
    )
    .unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            "Instance 'i-11111111' is running; volumes are detached from stopped instances only \
             (this agent has no hot-plug)"
                .into()
        )
    );
    let d = detach_volume(&conn, &cmd(Some("i-22222222"), Some("/dev/xvdf"))).unwrap();
    assert_eq!(
        (d.instance_id.as_str(), d.device.as_str()),
        ("i-22222222", "/dev/sdf")
    );
    assert_eq!(
        volumes::get(&conn, &vol).unwrap().unwrap().instance_id,
        None
    );
}

#[test]
fn delete_volume_marks_it_deleting_and_journals_the_removal() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 1);
    volumes::set_attachment(&conn, &vol, Some(("i-22222222", "/dev/sdf", false))).unwrap();
    let e = delete_volume(&conn, &vol).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("VolumeInUse"),
            format!("Volume {vol} is currently attached to i-22222222")
        )
    );
    volumes::set_attachment(&conn, &vol, None).unwrap();
    let e = delete_volume(&conn, "vol-12345678").unwrap_err();
    assert_eq!(e.code(), Some("InvalidVolume.NotFound"));
    // The transaction as Plane::transact runs it; the agent stops before applying.
    let tx = conn.transaction().unwrap();
    let wanted = delete_volume(&tx, &vol).unwrap();
    let recorded = effects::record(&tx, wanted).unwrap();
    tx.commit().unwrap();
    assert_eq!(
        volumes::get(&conn, &vol).unwrap().unwrap().state,
        VolumeState::Deleting
    );
    // What the next start replays.
    let pending = state::effects::pending(&conn).unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].seq, recorded[0].seq);
    assert_eq!(
        Effect::from_row(&pending[0]),
        Some(Effect::DeleteVolume {
            volume: vol.clone()
        })
    );
    // A volume being deleted cannot be deleted, attached or modified again.
    let e = delete_volume(&conn, &vol).unwrap_err();
    assert_eq!(e.code(), Some("IncorrectState"));
}

#[test]
fn modify_grows_only_and_keeps_provisioned_rates() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 10);
    let cmd = |size: Option<u64>, kind: Option<VolumeType>| ModifyVolume {
        volume_id: vol.clone(),
        kind,
        size_gib: size,
        iops: None,
        throughput: None,
    };
    let e = modify_volume(&conn, &cmd(Some(5), None)).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("InvalidParameterValue"),
            "Value for parameter Size is invalid: New size cannot be smaller than existing \
             size (10 GiB)"
                .into()
        )
    );
    let (m, effects) = modify_volume(&conn, &cmd(None, None)).unwrap();
    assert!(effects.is_empty());
    assert_eq!((m.spec.iops, m.spec.throughput), (3000, 125));
    let (m, effects) = modify_volume(&conn, &cmd(Some(20), Some(VolumeType::Gp2))).unwrap();
    assert_eq!(m.before.size_gib, 10);
    assert_eq!(
        effects,
        vec![Effect::GrowVolumeFile {
            volume: vol.clone(),
            size_gib: 20
        }]
    );
    let now = volumes::get(&conn, &vol).unwrap().unwrap();
    assert_eq!((now.size_gib, now.volume_type.as_str()), (20, "gp2"));
}

#[test]
fn snapshots_are_deleted_unless_used_and_free_only_their_own_chunks() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 1);
    let snap = completed_snapshot(&conn, &vol, &["aa", "bb"]);
    let copy = copy_snapshot(
        &conn,
        &CopySnapshot {
            source: snap.clone(),
            description: "copy".into(),
            tags: Vec::new(),
        },
    )
    .unwrap();
    assert_eq!(copy.volume_id, "vol-ffffffff");
    let other = completed_snapshot(&conn, &vol, &["aa", "cc"]);
    // The copy shares aa and bb; other shares aa: deleting the source frees nothing.
    assert_eq!(delete_snapshot(&conn, &snap).unwrap(), Vec::new());
    assert_eq!(
        delete_snapshot(&conn, &copy.id).unwrap(),
        vec![Effect::FreeChunks {
            snapshot: copy.id.clone(),
            hashes: vec!["bb".into()]
        }]
    );
    let e = delete_snapshot(&conn, &copy.id).unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.NotFound"));
    let e = copy_snapshot(
        &conn,
        &CopySnapshot {
            source: copy.id.clone(),
            description: String::new(),
            tags: Vec::new(),
        },
    )
    .unwrap_err();
    assert!(matches!(e, CopySnapshotError::SnapshotNotFound(_)));
    let pending = create_snapshot(
        &conn,
        &CreateSnapshot {
            volume_id: vol.clone(),
            description: String::new(),
            tags: Vec::new(),
        },
    )
    .unwrap();
    let e = delete_snapshot(&conn, &pending.id).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            format!("Snapshot '{}' is still pending.", pending.id)
        )
    );
    let e = copy_snapshot(
        &conn,
        &CopySnapshot {
            source: pending.id.clone(),
            description: String::new(),
            tags: Vec::new(),
        },
    )
    .unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            "Snapshot is in invalid state - pending".into()
        )
    );
    let _ = other;
    assert!(matches!(
        delete_snapshot(&conn, "snap-12345678"),
        Err(DeleteSnapshotError::SnapshotNotFound(_))
    ));
}

#[test]
fn create_snapshot_refuses_a_volume_in_the_wrong_state_or_a_long_description() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 1);
    let mut cmd = CreateSnapshot {
        volume_id: vol.clone(),
        description: "x".repeat(256),
        tags: Vec::new(),
    };
    let e = create_snapshot(&conn, &cmd).unwrap_err();
    assert!(matches!(e, CreateSnapshotError::Description));
    assert_eq!(e.code(), Some("InvalidParameterValue"));
    cmd.description.clear();
    volumes::set_state(&conn, &vol, VolumeState::Creating).unwrap();
    let e = create_snapshot(&conn, &cmd).unwrap_err();
    assert_eq!(
        refusal(&e),
        (
            Some("IncorrectState"),
            format!("Volume '{vol}' is in the 'creating' state.")
        )
    );
    cmd.volume_id = "vol-12345678".into();
    let e = create_snapshot(&conn, &cmd).unwrap_err();
    assert_eq!(e.code(), Some("InvalidVolume.NotFound"));
}

#[test]
fn create_image_records_the_image_with_one_pending_snapshot_per_volume() {
    let (_dir, db) = db();
    let mut conn = db.lock();
    let vol = volume(&mut conn, 2);
    instance(&conn, "i-22222222", InstanceState::Stopped);
    volumes::set_attachment(&conn, &vol, Some(("i-22222222", "/dev/xvda", true))).unwrap();
    let cmd = CreateImage {
        instance_id: "i-22222222".into(),
        name: "backup".into(),
        description: String::new(),
        no_reboot: false,
        image_tags: Vec::new(),
        snapshot_tags: Vec::new(),
    };
    let made = create_image(&conn, &cmd).unwrap();
    assert_eq!(made.snapshots.len(), 1);
    assert_eq!(
        made.image.root_snapshot_id.as_deref(),
        Some(made.snapshots[0].id.as_str())
    );
    assert_eq!(
        made.snapshots[0].description,
        "Created by CreateImage(i-22222222) for backup"
    );
    let e = create_image(&conn, &cmd).unwrap_err();
    assert!(matches!(e, CreateImageError::NameTaken(_)));
    assert_eq!(e.code(), Some("InvalidAMIName.Duplicate"));
    let e = delete_snapshot(&conn, &made.snapshots[0].id).unwrap_err();
    assert_eq!(e.code(), Some("InvalidSnapshot.InUse"));
}
