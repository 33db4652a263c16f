//! Control requests and their answers: one JSON object per line each way.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::arch::x86_64::regs::EntryMode;
use crate::control::{ExitCounts, ExitReason, RunState, VmControl};
use crate::devices::acpi::{GED_POWER_BUTTON, Ged};
use crate::devices::event_loop::SharedVirtioDevice;
use crate::devices::i8042::I8042;
use crate::devices::virtio::DeviceStats;
use crate::jail::JailConfig;
use crate::microvm::VcpuThreads;
use crate::snapshot::{SnapshotInfo, Snapshotter};

use super::written::WrittenBlocks;

/// How long a pause may take to hold every vCPU.
const PAUSE_TIMEOUT: Duration = Duration::from_secs(2);

/// A request: `{"action": "status" | "pause" | "resume" | "ctrl-alt-del" | "power-button" |
/// "stop"}`, `{"action": "snapshot", "path": "/abs/file"}`,
/// `{"action": "track-writes", "drive": "ID"}` or
/// `{"action": "written-blocks", "drive": "ID", "stop": true}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Request {
    /// Report the VM's state and counters.
    Status,
    /// Hold every vCPU outside the guest.
    Pause,
    /// Let the vCPUs run again.
    Resume,
    /// Press Ctrl-Alt-Del on the guest's keyboard.
    CtrlAltDel,
    /// Press the ACPI power button (the GED raises its interrupt).
    PowerButton,
    /// End the VM now.
    Stop,
    /// Pause the VM, write all of its state to `path` (atomically), and leave it paused.
    Snapshot {
        /// Absolute path of the file to write.
        path: PathBuf,
    },
    /// Start recording which blocks of a disk are written (forgetting any recorded so far).
    TrackWrites {
        /// The disk's id (`--disk ...,id=`).
        drive: String,
    },
    /// The blocks of a disk written since tracking started or since the last such request;
    /// the record starts empty again, and ends with `stop`.
    WrittenBlocks {
        /// The disk's id.
        drive: String,
        /// End tracking.
        #[serde(default)]
        stop: bool,
    },
}

/// The VM's state as the API reports it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// running, paused or stopping.
    pub state: RunState,
    /// Number of vCPUs.
    pub vcpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u64,
    /// How the guest was started.
    pub entry: EntryMode,
    /// Milliseconds since the VM was built.
    pub uptime_ms: u64,
    /// The VMM's process id.
    pub pid: u32,
    /// Exit counters.
    pub exits: ExitCounts,
    /// Per-device counters (virtio devices, in MMIO order).
    pub devices: Vec<DeviceStats>,
    /// A power-button press the guest has not read yet: a guest that listens to ACPI reads
    /// the GED's event status at once, so a press still pending after a while means it does
    /// not (a kernel booted with `acpi=off`).
    pub power_button_pending: bool,
}

/// An answer: `{"ok": true, "status": {...}}` or `{"ok": false, "error": "..."}`.
#[derive(Debug, Clone, Serialize)]
pub struct Response {
    /// Whether the request was carried out.
    pub ok: bool,
    /// The VM's status after the request.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    /// What went wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The file a snapshot request wrote.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<SnapshotInfo>,
    /// The blocks a written-blocks request found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub written: Option<WrittenBlocks>,
}

impl Response {
    /// A refusal with `message`.
    pub fn error(message: String) -> Self {
        Response {
            ok: false,
            status: None,
            error: Some(message),
            snapshot: None,
            written: None,
        }
    }
}

/// Carries out requests against one VM.
#[derive(Debug, Clone)]
pub struct ApiHandler {
    /// Run state.
    pub control: Arc<VmControl>,
    /// The vCPU threads, to kick on pause.
    pub threads: Arc<VcpuThreads>,
    /// The keyboard, for Ctrl-Alt-Del.
    pub keyboard: Arc<Mutex<I8042>>,
    /// The Generic Event Device, for the power button.
    pub ged: Arc<Mutex<Ged>>,
    /// The virtio devices, for their counters.
    pub devices: Vec<SharedVirtioDevice>,
    /// Entry mode, for status.
    pub mode: EntryMode,
    /// Memory size, for status.
    pub memory_mib: u64,
    /// Takes snapshots (absent in tests without a VM).
    pub snapshotter: Option<Arc<Snapshotter>>,
    /// The jail the VMM runs in: snapshot paths are host paths under its root.
    pub jail: Option<JailConfig>,
}

impl ApiHandler {
    /// The current status.
    pub fn status(&self) -> Status {
        Status {
            state: self.control.run_state(),
            vcpus: self.control.vcpus(),
            memory_mib: self.memory_mib,
            entry: self.mode,
            uptime_ms: self.control.uptime().as_millis() as u64,
            pid: std::process::id(),
            exits: self.control.counters.snapshot(),
            devices: self
                .devices
                .iter()
                .map(|d| {
                    let dev = d.lock().unwrap_or_else(|e| e.into_inner());
                    dev.counters().snapshot(dev.describe())
                })
                .collect(),
            power_button_pending: self.ged.lock().unwrap_or_else(|e| e.into_inner()).pending()
                & GED_POWER_BUTTON
                != 0,
        }
    }

    pub(super) fn answer(&self) -> Response {
        Response {
            ok: true,
            status: Some(self.status()),
            error: None,
            snapshot: None,
            written: None,
        }
    }

    /// Parses one request line and carries it out.
    pub fn handle_line(&self, line: &str) -> Response {
        match serde_json::from_str::<Request>(line) {
            Ok(request) => self.handle(&request),
            Err(err) => Response::error(format!(
                "bad request ({err}); send one JSON object per line with \"action\" one of \
                 status, pause, resume, ctrl-alt-del, power-button, stop, snapshot \
                 (with \"path\"), track-writes or written-blocks (with \"drive\")"
            )),
        }
    }

    /// Carries out one request.
    pub fn handle(&self, request: &Request) -> Response {
        if matches!(request, Request::Pause | Request::Resume) && self.control.capturing() {
            return Response::error("cannot pause or resume: a snapshot is being taken".into());
        }
        match request {
            Request::Status => self.answer(),
            Request::Pause => match self.control.set_paused(true) {
                Ok(()) => {
                    self.threads.kick_all();
                    if self.control.wait_all_parked(PAUSE_TIMEOUT) {
                        // What the guest queued before it stopped is done before the answer:
                        // no disk changes while the VM is paused.
                        self.drain_devices();
                        self.answer()
                    } else {
                        Response::error("vCPUs did not pause in time".into())
                    }
                }
                Err(state) => {
                    Response::error(format!("cannot pause: the VM is {}", state_name(state)))
                }
            },
            Request::Resume => match self.control.set_paused(false) {
                Ok(()) => self.answer(),
                Err(state) => {
                    Response::error(format!("cannot resume: the VM is {}", state_name(state)))
                }
            },
            Request::CtrlAltDel => {
                if self.control.run_state() == RunState::Stopping {
                    return Response::error("cannot send ctrl-alt-del: the VM is stopping".into());
                }
                self.keyboard
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .send_ctrl_alt_del();
                self.answer()
            }
            Request::PowerButton => {
                if self.control.run_state() == RunState::Stopping {
                    return Response::error(
                        "cannot press the power button: the VM is stopping".into(),
                    );
                }
                self.ged
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .press_power_button();
                self.answer()
            }
            Request::Stop => {
                self.control.request_exit(ExitReason::Stopped);
                self.answer()
            }
            Request::Snapshot { path } => self.snapshot(path),
            Request::TrackWrites { drive } => self.track_writes(drive),
            Request::WrittenBlocks { drive, stop } => self.written_blocks(drive, *stop),
        }
    }
}

impl ApiHandler {
    /// Writes a snapshot to host path `path`, which must lie in the jail when there is one.
    fn snapshot(&self, path: &Path) -> Response {
        let Some(snapshotter) = &self.snapshotter else {
            return Response::error("this VM cannot be snapshotted".into());
        };
        let target = match &self.jail {
            None => path.to_owned(),
            Some(jail) => match jail.inside(path) {
                Some(inside) => inside,
                None => {
                    return Response::error(format!(
                        "snapshot path {} is outside the vmm's jail {}",
                        path.display(),
                        jail.root.display()
                    ));
                }
            },
        };
        match snapshotter.take(&target) {
            Ok(mut info) => {
                info.path = path.to_owned();
                Response {
                    snapshot: Some(info),
                    ..self.answer()
                }
            }
            Err(err) => Response::error(format!("snapshot failed: {}", chain(&err))),
        }
    }
}

/// An error and its causes, `: `-separated.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    text
}

fn state_name(state: RunState) -> &'static str {
    match state {
        RunState::Running => "running",
        RunState::Paused => "paused",
        RunState::Stopping => "stopping",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::irq::CountingIrq;

    fn handler() -> ApiHandler {
        let control = Arc::new(VmControl::new(0));
        let keyboard = Arc::new(Mutex::new(I8042::new(
            Box::new(CountingIrq::default()),
            control.clone(),
        )));
        let ged = Arc::new(Mutex::new(Ged::new(
            Box::new(CountingIrq::default()),
            control.clone(),
        )));
        ApiHandler {
            control,
            threads: Arc::new(VcpuThreads::default()),
            keyboard,
            ged,
            devices: Vec::new(),
            mode: EntryMode::User,
            memory_mib: 64,
            snapshotter: None,
            jail: None,
        }
    }

    #[test]
    fn requests_parse_from_json_lines() {
        let parse = |s| serde_json::from_str::<Request>(s).unwrap();
        assert_eq!(parse(r#"{"action":"status"}"#), Request::Status);
        assert_eq!(parse(r#"{"action":"ctrl-alt-del"}"#), Request::CtrlAltDel);
        assert_eq!(parse(r#"{"action":"power-button"}"#), Request::PowerButton);
        assert_eq!(
            parse(r#"{"action":"snapshot","path":"/v/i-1.snap"}"#),
            Request::Snapshot {
                path: "/v/i-1.snap".into()
            }
        );
        assert!(serde_json::from_str::<Request>(r#"{"action":"snapshot"}"#).is_err());
        assert!(
            serde_json::from_str::<Request>(r#"{"action":"snapshot","path":"/x","y":1}"#).is_err()
        );
        assert!(serde_json::from_str::<Request>(r#"{"action":"explode"}"#).is_err());
    }

    #[test]
    fn pause_and_resume_change_state() {
        // No vCPU threads, so everything is parked at once.
        let h = handler();
        let r = h.handle(&Request::Pause);
        assert!(r.ok, "{:?}", r.error);
        assert_eq!(r.status.unwrap().state, RunState::Paused);
        let again = h.handle(&Request::Pause);
        assert_eq!(
            again.error.as_deref(),
            Some("cannot pause: the VM is paused")
        );
        assert_eq!(
            h.handle(&Request::Resume).status.unwrap().state,
            RunState::Running
        );
        assert!(!h.handle(&Request::Resume).ok);
    }

    #[test]
    fn stop_ends_the_vm() {
        let h = handler();
        assert!(h.handle(&Request::Stop).ok);
        assert_eq!(h.control.wait_for_exit(), ExitReason::Stopped);
        assert!(!h.handle(&Request::CtrlAltDel).ok);
        let refused = h.handle(&Request::PowerButton);
        assert_eq!(
            refused.error.as_deref(),
            Some("cannot press the power button: the VM is stopping")
        );
        assert_eq!(h.ged.lock().unwrap().pending(), 0);
    }

    #[test]
    fn power_button_sets_the_ged_event() {
        let h = handler();
        assert!(!h.status().power_button_pending);
        let answer = h.handle(&Request::PowerButton);
        assert!(answer.ok);
        assert!(answer.status.unwrap().power_button_pending);
        assert_eq!(h.ged.lock().unwrap().pending(), 1);
        assert_eq!(h.control.run_state(), RunState::Running);
        // The guest's _EVT reads the event status: the press is no longer pending.
        let mut byte = [0u8];
        crate::devices::bus::BusDevice::read(&mut *h.ged.lock().unwrap(), 0x602, 0, &mut byte);
        assert_eq!(byte, [GED_POWER_BUTTON]);
        assert!(!h.status().power_button_pending, "read by the guest");
    }

    #[test]
    fn bad_lines_get_a_clear_error() {
        let r = handler().handle_line("{not json");
        assert!(!r.ok);
        assert!(r.error.unwrap().contains("ctrl-alt-del"));
        let json = serde_json::to_string(&handler().handle_line(r#"{"action":"status"}"#)).unwrap();
        assert!(json.contains(r#""state":"running""#), "{json}");
        assert!(json.contains(r#""memory_mib":64"#), "{json}");
    }
}
