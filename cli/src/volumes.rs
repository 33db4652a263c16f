//! The EBS commands of `ec2`: volumes, snapshots and images from instances, with
//! `aws ec2`'s names.

use clap::Subcommand;

use super::client::Client;
use super::error::CliError;
use super::output::{parse, print_json};
use super::params::{filter_params, list_params};
use super::xmltree::{child, items, text};

/// EBS commands.
#[derive(Debug, Subcommand)]
pub enum EbsCommand {
    /// Create a volume (prints its id).
    CreateVolume {
        /// Size in GiB (default: the snapshot's size).
        #[arg(long)]
        size: Option<u64>,
        /// gp2, gp3, io1, io2, st1, sc1 or standard.
        #[arg(long, default_value = "gp2")]
        volume_type: String,
        /// Provisioned IOPS (gp3, io1, io2).
        #[arg(long)]
        iops: Option<u64>,
        /// Throughput in MiB/s (gp3).
        #[arg(long)]
        throughput: Option<u64>,
        /// Restore this snapshot.
        #[arg(long)]
        snapshot_id: Option<String>,
        /// The zone.
        #[arg(long, default_value = "local-1a")]
        availability_zone: String,
    },
    /// List volumes.
    DescribeVolumes {
        /// Only these volumes.
        #[arg(long, num_args = 1..)]
        volume_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Attach a volume to a stopped instance.
    AttachVolume {
        /// The volume.
        #[arg(long)]
        volume_id: String,
        /// The instance.
        #[arg(long)]
        instance_id: String,
        /// `/dev/sdf` to `/dev/sdp`.
        #[arg(long)]
        device: String,
    },
    /// Detach a volume from a stopped instance.
    DetachVolume {
        /// The volume.
        #[arg(long)]
        volume_id: String,
    },
    /// Delete an unattached volume.
    DeleteVolume {
        /// The volume.
        #[arg(long)]
        volume_id: String,
    },
    /// Snapshot a volume (prints the snapshot id; it completes in the background).
    CreateSnapshot {
        /// The volume.
        #[arg(long)]
        volume_id: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
    },
    /// List snapshots.
    DescribeSnapshots {
        /// Only these snapshots.
        #[arg(long, num_args = 1..)]
        snapshot_ids: Vec<String>,
        /// Filters: `Name=NAME,Values=V1,V2` (repeatable).
        #[arg(long, num_args = 1..)]
        filters: Vec<String>,
    },
    /// Copy a completed snapshot (prints the copy's id).
    CopySnapshot {
        /// The snapshot to copy.
        #[arg(long)]
        source_snapshot_id: String,
        /// Description of the copy.
        #[arg(long)]
        description: Option<String>,
    },
    /// Delete a snapshot.
    DeleteSnapshot {
        /// The snapshot.
        #[arg(long)]
        snapshot_id: String,
    },
    /// Make an AMI from an instance's volumes (prints its id).
    CreateImage {
        /// The instance.
        #[arg(long)]
        instance_id: String,
        /// The image's name.
        #[arg(long)]
        name: String,
        /// Description.
        #[arg(long)]
        description: Option<String>,
        /// Do not reboot a running instance: pause it for the copy instead (crash-consistent).
        #[arg(long)]
        no_reboot: bool,
    },
}

fn push(p: &mut Vec<(String, String)>, k: &str, v: impl ToString) {
    p.push((k.to_string(), v.to_string()));
}

/// Runs an EBS command.
pub fn run(cmd: &EbsCommand, json: bool, c: &Client) -> Result<(), CliError> {
    let mut p = Vec::new();
    let (action, id_tag) = match cmd {
        EbsCommand::CreateVolume {
            size,
            volume_type,
            iops,
            throughput,
            snapshot_id,
            availability_zone,
        } => {
            push(&mut p, "AvailabilityZone", availability_zone);
            push(&mut p, "VolumeType", volume_type);
            for (k, v) in [("Size", size), ("Iops", iops), ("Throughput", throughput)] {
                if let Some(v) = v {
                    push(&mut p, k, v);
                }
            }
            if let Some(s) = snapshot_id {
                push(&mut p, "SnapshotId", s);
            }
            ("CreateVolume", Some("volumeId"))
        }
        EbsCommand::DescribeVolumes {
            volume_ids,
            filters,
        } => {
            list_params(&mut p, "VolumeId", volume_ids);
            filter_params(&mut p, filters)?;
            ("DescribeVolumes", None)
        }
        EbsCommand::AttachVolume {
            volume_id,
            instance_id,
            device,
        } => {
            push(&mut p, "VolumeId", volume_id);
            push(&mut p, "InstanceId", instance_id);
            push(&mut p, "Device", device);
            ("AttachVolume", Some("status"))
        }
        EbsCommand::DetachVolume { volume_id } => {
            push(&mut p, "VolumeId", volume_id);
            ("DetachVolume", Some("status"))
        }
        EbsCommand::DeleteVolume { volume_id } => {
            push(&mut p, "VolumeId", volume_id);
            ("DeleteVolume", None)
        }
        EbsCommand::CreateSnapshot {
            volume_id,
            description,
        } => {
            push(&mut p, "VolumeId", volume_id);
            if let Some(d) = description {
                push(&mut p, "Description", d);
            }
            ("CreateSnapshot", Some("snapshotId"))
        }
        EbsCommand::DescribeSnapshots {
            snapshot_ids,
            filters,
        } => {
            list_params(&mut p, "SnapshotId", snapshot_ids);
            push(&mut p, "Owner.1", "self");
            filter_params(&mut p, filters)?;
            ("DescribeSnapshots", None)
        }
        EbsCommand::CopySnapshot {
            source_snapshot_id,
            description,
        } => {
            push(&mut p, "SourceSnapshotId", source_snapshot_id);
            push(&mut p, "SourceRegion", super::client::REGION);
            if let Some(d) = description {
                push(&mut p, "Description", d);
            }
            ("CopySnapshot", Some("snapshotId"))
        }
        EbsCommand::DeleteSnapshot { snapshot_id } => {
            push(&mut p, "SnapshotId", snapshot_id);
            ("DeleteSnapshot", None)
        }
        EbsCommand::CreateImage {
            instance_id,
            name,
            description,
            no_reboot,
        } => {
            push(&mut p, "InstanceId", instance_id);
            push(&mut p, "Name", name);
            if let Some(d) = description {
                push(&mut p, "Description", d);
            }
            push(&mut p, "NoReboot", no_reboot);
            ("CreateImage", Some("imageId"))
        }
    };
    let xml = c.call(action, &p)?;
    if json {
        return print_json(&xml);
    }
    let doc = parse(&xml)?;
    let root = doc.root_element();
    if let Some(tag) = id_tag {
        println!("{}", text(root, tag).unwrap_or(""));
        return Ok(());
    }
    match action {
        "DescribeVolumes" => {
            println!(
                "{:<22} {:>6} {:<9} {:>6} {:<10} {:<20} DEVICE",
                "VOLUME_ID", "GIB", "TYPE", "IOPS", "STATE", "INSTANCE"
            );
            for v in items(root, "volumeSet") {
                let att = child(v, "attachmentSet")
                    .and_then(|s| s.children().find(|c| c.has_tag_name("item")));
                let a = |f: &str| att.and_then(|n| text(n, f)).unwrap_or("-");
                println!(
                    "{:<22} {:>6} {:<9} {:>6} {:<10} {:<20} {}",
                    text(v, "volumeId").unwrap_or(""),
                    text(v, "size").unwrap_or(""),
                    text(v, "volumeType").unwrap_or(""),
                    text(v, "iops").unwrap_or(""),
                    text(v, "status").unwrap_or(""),
                    a("instanceId"),
                    a("device")
                );
            }
        }
        "DescribeSnapshots" => {
            println!(
                "{:<23} {:<22} {:>6} {:<10} {:>8} STARTED",
                "SNAPSHOT_ID", "VOLUME_ID", "GIB", "STATE", "PROGRESS"
            );
            for s in items(root, "snapshotSet") {
                println!(
                    "{:<23} {:<22} {:>6} {:<10} {:>8} {}",
                    text(s, "snapshotId").unwrap_or(""),
                    text(s, "volumeId").unwrap_or(""),
                    text(s, "volumeSize").unwrap_or(""),
                    text(s, "status").unwrap_or(""),
                    text(s, "progress").unwrap_or(""),
                    text(s, "startTime").unwrap_or("")
                );
            }
        }
        _ => {}
    }
    Ok(())
}
