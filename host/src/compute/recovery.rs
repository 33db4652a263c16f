//! An instance's supervision fails alone. Each of its tasks (starting its VMM, watching it,
//! ending it, confirming that it runs) is a unit of its own (`crate::tasks`); a panic in
//! one is logged with the instance id, and the instance is not left in limbo:
//! - a panicked watch is re-armed for the same VMM, a few times;
//! - a panicked shutdown (stop, terminate, reboot, hibernate) ends the VMM with SIGKILL, and
//!   the watch records the exit as the transition asked;
//! - a panicked start or confirmation, or a watch that keeps panicking, fails the instance:
//!   its VMM is ended and it is recorded `stopped` (`terminated` if it was shutting down)
//!   with `Server.InternalError` naming the panic.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use super::Compute;
use super::supervisor;
use crate::tasks::{self, Panicked, Unit};
use state::instances::{self, InstanceState, StateUpdate};

/// How many times a panicked watch is re-armed before the instance is failed.
const REARMS: u32 = 3;
/// How long a failed instance's killed VMM is waited for.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// A task of an instance's supervision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Starting its VMM.
    Start,
    /// Watching its VMM (pid) for the exit.
    Watch(i32),
    /// Ending its VMM (pid and start time) for a stop, termination, reboot or hibernation.
    End(i32, u64),
    /// Waiting for its VMM to answer, to mark it running.
    Confirm,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Step::Start => "vmm start",
            Step::Watch(_) => "vmm watch",
            Step::End(..) => "vmm shutdown",
            Step::Confirm => "vmm confirmation",
        }
    }
}

type Boxed = Pin<Box<dyn Future<Output = ()> + Send>>;

impl Compute {
    /// Spawns `step` of instance `id`'s supervision as a unit, recovered from a panic as the
    /// module says.
    pub(super) fn supervise<F>(self: &Arc<Self>, id: &str, step: Step, work: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.supervise_attempt(id, step, Box::pin(work), 0);
    }

    fn supervise_attempt(self: &Arc<Self>, id: &str, step: Step, work: Boxed, attempt: u32) {
        let me = self.clone();
        let owned = id.to_owned();
        let unit = Unit::new(step.name()).instance(id);
        tasks::spawn_or_recover(unit, work, move |panicked| {
            me.recover(owned, step, panicked, attempt)
        });
    }

    fn recover(self: Arc<Self>, id: String, step: Step, panicked: Panicked, n: u32) -> Boxed {
        Box::pin(async move {
            match step {
                Step::End(pid, start) => {
                    if supervisor::alive(pid, start) {
                        tracing::warn!(%id, pid, "killing the vmm its failed shutdown left");
                        supervisor::kill_group(pid);
                    }
                }
                Step::Watch(pid) if n < REARMS => {
                    tokio::time::sleep(Duration::from_millis(100 << n)).await;
                    tracing::warn!(%id, pid, rearm = n + 1, "watching the vmm again");
                    let watch = self.clone().watch_again(id.clone(), pid);
                    self.supervise_attempt(&id, step, watch, n + 1);
                }
                Step::Watch(_) | Step::Start => self.fail(&id, &panicked, false).await,
                Step::Confirm => self.fail(&id, &panicked, true).await,
            }
        })
    }

    /// A new watch of VMM `pid`, whose first watch (and child handle) was lost in a panic.
    fn watch_again(self: Arc<Self>, id: String, pid: i32) -> Boxed {
        Box::pin(async move {
            supervisor::wait_exit(pid).await;
            reap_if_child(pid);
            self.on_exit(&id, pid).await;
        })
    }

    /// Fails instance `id` after `panicked`: its VMM is ended and it is recorded `stopped`
    /// (`terminated` if it was shutting down) with `Server.InternalError`. With `watched`, a
    /// watch of its VMM runs and records the exit; otherwise it is recorded here.
    pub(super) async fn fail(self: &Arc<Self>, id: &str, panicked: &Panicked, watched: bool) {
        let _g = self.guard(id).await;
        let row = match instances::get(&self.db.lock(), id) {
            Ok(Some(row)) => row,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(%id, error = %e, "cannot read the instance to fail it");
                return;
            }
        };
        if matches!(
            row.state,
            InstanceState::Stopped | InstanceState::Terminated
        ) {
            return;
        }
        tracing::error!(%id, state = row.state.name(), "failing the instance: {panicked}");
        let update = failure(panicked);
        let shutting_down = row.state == InstanceState::ShuttingDown;
        if watched && let (Some(pid), Some(start)) = (row.pid, row.pid_start) {
            if supervisor::alive(pid, start) {
                let next = if shutting_down {
                    InstanceState::ShuttingDown
                } else {
                    InstanceState::Stopping
                };
                record(&self.db.lock(), id, next, &update);
                supervisor::kill_group(pid);
            }
            return;
        }
        let vmm = match (row.pid, row.pid_start) {
            (Some(pid), Some(start)) => supervisor::alive(pid, start).then_some(pid),
            // A start that panicked after spawning its VMM, before recording it.
            _ => supervisor::find_by_socket(&self.dir(id).api_sock()).map(|(pid, _)| pid),
        };
        if let Some(pid) = vmm {
            supervisor::kill_group(pid);
            let _ = tokio::time::timeout(KILL_WAIT, supervisor::wait_exit(pid)).await;
            reap_if_child(pid);
        }
        let next = if shutting_down {
            InstanceState::Terminated
        } else {
            InstanceState::Stopped
        };
        {
            let conn = self.db.lock();
            let terminated = next == InstanceState::Terminated;
            if let Err(e) = self.network.release_in_db(&conn, id, terminated) {
                tracing::error!(%id, error = %e, "cannot release public addresses");
            }
            record(&conn, id, next, &update);
        }
        self.release_network(id).await;
    }
}

/// `Server.InternalError` naming the panic, as EC2 reports an instance's internal failure.
fn failure(panicked: &Panicked) -> StateUpdate {
    StateUpdate {
        reason: Some((
            "Server.InternalError".into(),
            format!("Server.InternalError: the agent's {panicked}"),
        )),
        transition_reason: Some(format!(
            "Server.InternalError ({})",
            chrono::Utc::now().format("%Y-%m-%d %H:%M:%S GMT")
        )),
    }
}

fn record(conn: &rusqlite::Connection, id: &str, state: InstanceState, update: &StateUpdate) {
    if let Err(e) = instances::set_state(conn, id, state, update) {
        tracing::error!(%id, error = %e, "cannot record the instance's failure");
    }
}

/// Reaps `pid` if it is an exited child of the agent whose handle was lost in a panic, so
/// that it does not linger as a zombie that still looks alive; a no-op for other processes.
fn reap_if_child(pid: i32) {
    let mut status: libc::c_int = 0;
    // SAFETY: waitpid with WNOHANG only reads `pid` and writes `status`, a valid c_int; for a
    // process that is not our child it fails with ECHILD and changes nothing.
    unsafe {
        libc::waitpid(pid, &mut status, libc::WNOHANG);
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::CommandExt;
    use std::process::{Child, Command};

    use super::*;
    use crate::compute::ComputeConfig;
    use crate::compute::capacity::Capacity;
    use crate::imds::server::Imds;
    use crate::imds::source::IdentityKey;
    use crate::netns::NetNs;
    use crate::network::{Network, NetworkConfig};
    use crate::tasks::test_log::capture;
    use state::Db;
    use state::instances::InstanceRow;

    /// A network namespace of the test's own (the network service releases instances'
    /// networks and rebuilds rules there, never on the host's), removed on drop.
    struct TestNs(String);

    impl TestNs {
        fn new() -> Self {
            static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let name = format!("kec2-recovery-{}-{n}", std::process::id());
            let out = Command::new("ip")
                .args(["netns", "add", &name])
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            TestNs(name)
        }
    }

    impl Drop for TestNs {
        fn drop(&mut self) {
            let _ = Command::new("ip").args(["netns", "del", &self.0]).output();
        }
    }

    struct Fixture {
        compute: Arc<Compute>,
        _dir: tempfile::TempDir,
        _ns: TestNs,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let ns = TestNs::new();
        let db = Arc::new(Db::open(&dir.path().join("state.db")).unwrap());
        let key = IdentityKey::load_or_create(dir.path()).unwrap();
        let imds = Imds::new(db.clone(), "123456789012".into(), key);
        let net = NetworkConfig {
            public_pool: "198.51.100.0/24".parse().unwrap(),
            outbound_nat: false,
            dns: Vec::new(),
            netns: NetNs::named(&ns.0).unwrap(),
        };
        let network = Network::new(db.clone(), net, imds);
        let config = ComputeConfig {
            state_dir: dir.path().to_owned(),
            vmm: "/nonexistent/vmm".into(),
            capacity: Capacity {
                vcpus: 8,
                memory_mib: 8192,
            },
            stop_timeout: Duration::from_secs(1),
            terminated_retention: Duration::from_secs(3600),
            seccomp: false,
            jail: false,
        };
        // Stand-in VMMs are not jailed; their (absent) cgroups are only ever removed.
        let cgroups = crate::compute::cgroups::Cgroups::detect().unwrap();
        Fixture {
            compute: Compute::new(db, config, network, cgroups),
            _dir: dir,
            _ns: ns,
        }
    }

    /// A stand-in for a VMM: a process leading its own group, as the supervisor starts them.
    fn stand_in() -> (Child, i32, u64) {
        let child = Command::new("sleep")
            .arg("600")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        (child, pid, supervisor::start_time(pid).unwrap())
    }

    fn insert(c: &Compute, id: &str, state: InstanceState, vmm: Option<(i32, u64)>) {
        let row = InstanceRow::example(id, state);
        let conn = c.db.lock();
        instances::insert(&conn, &row).unwrap();
        instances::set_pid(&conn, id, vmm).unwrap();
    }

    fn row(c: &Compute, id: &str) -> InstanceRow {
        instances::get(&c.db.lock(), id).unwrap().unwrap()
    }

    /// Waits up to 10 s for instance `id` to reach `state`.
    async fn settled(c: &Compute, id: &str, state: InstanceState) -> InstanceRow {
        for _ in 0..500 {
            let r = row(c, id);
            if r.state == state {
                return r;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("{id} never became {}: {:?}", state.name(), row(c, id).state);
    }

    fn reason(r: &InstanceRow) -> (String, String) {
        let code = r.state_reason_code.clone().unwrap_or_default();
        (code, r.state_reason_message.clone().unwrap_or_default())
    }

    #[tokio::test]
    async fn a_panicked_start_fails_its_instance_alone_while_another_is_still_watched() {
        let (logs, _guard) = capture();
        let f = fixture();
        let c = &f.compute;
        let (other, pid, start) = stand_in();
        insert(c, "i-0other", InstanceState::Running, Some((pid, start)));
        let watch = c.clone().monitor("i-0other".into(), pid, Some(other));
        c.supervise("i-0other", Step::Watch(pid), watch);
        insert(c, "i-0start", InstanceState::Pending, None);

        c.supervise("i-0start", Step::Start, async {
            panic!("injected start defect")
        });
        let failed = settled(c, "i-0start", InstanceState::Stopped).await;
        let (code, message) = reason(&failed);
        assert_eq!(code, "Server.InternalError");
        assert!(
            message.contains("vmm start panicked: injected start defect"),
            "{message}"
        );

        assert_eq!(row(c, "i-0other").state, InstanceState::Running);
        assert!(
            supervisor::alive(pid, start),
            "the other instance's vmm is untouched"
        );
        supervisor::kill_group(pid);
        let ended = settled(c, "i-0other", InstanceState::Stopped).await;
        assert!(
            reason(&ended).1.contains("ended without an exit line"),
            "its watch saw it"
        );

        let panics = logs.lines_with(&["a unit panicked", "vmm start", "i-0start"]);
        assert_eq!(panics.len(), 1, "{}", logs.text());
        assert!(panics[0].contains("injected start defect"));
    }

    #[tokio::test]
    async fn a_panicked_watch_is_rearmed_records_the_exit_and_reaps_the_vmm() {
        let (logs, _guard) = capture();
        let f = fixture();
        let c = &f.compute;
        let (_child, pid, start) = stand_in();
        insert(c, "i-0watch", InstanceState::Running, Some((pid, start)));

        c.supervise("i-0watch", Step::Watch(pid), async {
            panic!("injected watch defect")
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(row(c, "i-0watch").state, InstanceState::Running);
        let rearmed = logs.lines_with(&["watching the vmm again", "i-0watch"]);
        assert_eq!(rearmed.len(), 1, "{}", logs.text());

        supervisor::kill_group(pid);
        settled(c, "i-0watch", InstanceState::Stopped).await;
        assert!(
            supervisor::start_time(pid).is_none(),
            "reaped, not left a zombie"
        );
        let panics = logs.lines_with(&["a unit panicked", "vmm watch", "i-0watch"]);
        assert_eq!(panics.len(), 1, "{}", logs.text());
    }

    #[tokio::test]
    async fn a_panicked_shutdown_kills_the_vmm_and_the_stop_completes() {
        let (logs, _guard) = capture();
        let f = fixture();
        let c = &f.compute;
        let (child, pid, start) = stand_in();
        insert(c, "i-0stop", InstanceState::Running, Some((pid, start)));
        let user = StateUpdate {
            reason: Some(("Client.UserInitiatedShutdown".into(), "by the user".into())),
            transition_reason: None,
        };
        instances::set_state(&c.db.lock(), "i-0stop", InstanceState::Stopping, &user).unwrap();
        let watch = c.clone().monitor("i-0stop".into(), pid, Some(child));
        c.supervise("i-0stop", Step::Watch(pid), watch);

        let end = async { panic!("injected shutdown defect") };
        c.supervise("i-0stop", Step::End(pid, start), end);
        let stopped = settled(c, "i-0stop", InstanceState::Stopped).await;
        assert_eq!(reason(&stopped).0, "Client.UserInitiatedShutdown");
        assert!(!supervisor::alive(pid, start));
        assert!(stopped.pid.is_none());
        let killed = logs.lines_with(&["killing the vmm its failed shutdown left", "i-0stop"]);
        assert_eq!(killed.len(), 1, "{}", logs.text());
    }

    #[tokio::test]
    async fn a_panicked_confirmation_stops_the_instance_with_the_reason() {
        let f = fixture();
        let c = &f.compute;
        let (child, pid, start) = stand_in();
        insert(c, "i-0conf", InstanceState::Pending, Some((pid, start)));
        let watch = c.clone().monitor("i-0conf".into(), pid, Some(child));
        c.supervise("i-0conf", Step::Watch(pid), watch);

        c.supervise("i-0conf", Step::Confirm, async {
            panic!("injected confirm defect")
        });
        let stopped = settled(c, "i-0conf", InstanceState::Stopped).await;
        let (code, message) = reason(&stopped);
        assert_eq!(code, "Server.InternalError");
        assert!(message.contains("vmm confirmation panicked: injected confirm defect"));
        assert!(!supervisor::alive(pid, start));
    }
}
