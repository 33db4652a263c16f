//! Write tracking on the control socket: `track-writes` starts recording the blocks written
//! to a disk, `written-blocks` hands them over (and with `stop`, ends the recording). The
//! agent copies a running instance's volume, pauses it (which drains the disks), takes the
//! blocks written meanwhile and copies only those before it resumes.

use std::sync::Arc;

use super::protocol::{ApiHandler, Response};
use super::written::WrittenBlocks;
use crate::devices::virtio::block::dirty::{BLOCK_BYTES, WriteLog};

impl ApiHandler {
    /// The write log of the disk with id `drive`, or the refusal's message.
    fn drive_log(&self, drive: &str) -> Result<Arc<WriteLog>, String> {
        self.devices
            .iter()
            .find_map(|d| {
                let dev = d.lock().unwrap_or_else(|e| e.into_inner());
                dev.write_log()
                    .filter(|(id, _)| id == drive)
                    .map(|(_, l)| l)
            })
            .ok_or_else(|| format!("no disk with id `{drive}`"))
    }

    /// Every device serves what its driver queued and finishes what is in flight.
    pub(super) fn drain_devices(&self) {
        for device in &self.devices {
            device.lock().unwrap_or_else(|e| e.into_inner()).drain();
        }
    }

    /// `track-writes`: records the blocks written to `drive` from now on.
    pub(super) fn track_writes(&self, drive: &str) -> Response {
        match self.drive_log(drive) {
            Ok(log) => {
                log.start();
                self.answer()
            }
            Err(refusal) => Response::error(refusal),
        }
    }

    /// `written-blocks`: the blocks written to `drive` since tracking started or since the
    /// last take; tracking ends if `stop`.
    pub(super) fn written_blocks(&self, drive: &str, stop: bool) -> Response {
        let log = match self.drive_log(drive) {
            Ok(log) => log,
            Err(refusal) => return Response::error(refusal),
        };
        let Some(ranges) = log.take(stop) else {
            return Response::error(format!("writes to disk `{drive}` are not being tracked"));
        };
        Response {
            written: Some(WrittenBlocks {
                drive: drive.to_owned(),
                block_bytes: BLOCK_BYTES,
                bytes: ranges.iter().map(|&(_, len)| len).sum(),
                ranges,
            }),
            ..self.answer()
        }
    }
}
