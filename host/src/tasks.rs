//! Units: the pieces of work the agent runs side by side (an API request, a tap's DHCP
//! server, an instance's metadata listener and its connections, an instance's supervision,
//! the background loops). A panic in one is caught here, logged with what the unit concerns
//! (instance, tap, request) and the panic's message, and ends or restarts that unit alone:
//! the agent goes on serving everything else.
//!
//! Catching is sound because what units share is either behind locks that recover from
//! poisoning (the database, the metadata tokens, the per-instance maps) or behind tokio's
//! locks, which do not poison; a unit that panics mid-change leaves at most its own work
//! half done, which its restart or its recovery takes up again.

use std::any::Any;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::task::JoinHandle;

/// A unit of work and what it concerns, named in its logs.
#[derive(Debug, Clone)]
pub struct Unit {
    name: &'static str,
    instance: Option<String>,
    tap: Option<String>,
    request: Option<String>,
    resource: Option<String>,
}

impl Unit {
    /// A unit called `name`, such as `"dhcp server"`.
    pub fn new(name: &'static str) -> Self {
        Unit {
            name,
            instance: None,
            tap: None,
            request: None,
            resource: None,
        }
    }

    /// Concerning instance `id`.
    pub fn instance(mut self, id: impl Into<String>) -> Self {
        self.instance = Some(id.into());
        self
    }

    /// Concerning tap `tap`.
    pub fn tap(mut self, tap: impl Into<String>) -> Self {
        self.tap = Some(tap.into());
        self
    }

    /// Answering API request `id`.
    pub fn request(mut self, id: impl Into<String>) -> Self {
        self.request = Some(id.into());
        self
    }

    /// Concerning another resource, such as a volume or snapshot.
    pub fn resource(mut self, id: impl Into<String>) -> Self {
        self.resource = Some(id.into());
        self
    }

    /// The unit's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn log_panic(&self, message: &str, phase: &'static str) {
        tracing::error!(
            unit = self.name,
            phase,
            instance = self.instance.as_deref(),
            tap = self.tap.as_deref(),
            request = self.request.as_deref(),
            resource = self.resource.as_deref(),
            panic = message,
            "a unit panicked; the rest of the agent goes on"
        );
    }

    fn log_restart(&self, delay: Duration, restarts: u32) {
        tracing::warn!(
            unit = self.name,
            instance = self.instance.as_deref(),
            tap = self.tap.as_deref(),
            resource = self.resource.as_deref(),
            restarts,
            delay_ms = delay.as_millis() as u64,
            "restarting the unit"
        );
    }
}

/// A unit's panic, caught.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{unit} panicked: {message}")]
pub struct Panicked {
    /// The unit.
    pub unit: &'static str,
    /// The panic's message.
    pub message: String,
}

/// The text a panic was raised with.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "(a panic without a message)".to_owned()
    }
}

async fn catch_phase<F: Future>(
    unit: &Unit,
    phase: &'static str,
    work: F,
) -> Result<F::Output, Panicked> {
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|payload| {
            let message = panic_message(&*payload);
            unit.log_panic(&message, phase);
            Panicked {
                unit: unit.name,
                message,
            }
        })
}

/// Runs `work` to its end as `unit`; a panic in it is caught, logged and returned.
pub async fn catch<F: Future>(unit: &Unit, work: F) -> Result<F::Output, Panicked> {
    catch_phase(unit, "run", work).await
}

/// Spawns `work` as a unit that fails alone: a panic is logged and ends this unit only.
pub fn spawn<F>(unit: Unit, work: F) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let _ = catch(&unit, work).await;
    })
}

/// Spawns `work` as a unit whose failure must leave a trace (an instance's supervision):
/// once its panic is logged, `recover` runs with it, itself guarded the same way.
pub fn spawn_or_recover<F, R, G>(unit: Unit, work: F, recover: R) -> JoinHandle<()>
where
    F: Future<Output = ()> + Send + 'static,
    R: FnOnce(Panicked) -> G + Send + 'static,
    G: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        if let Err(panicked) = catch(&unit, work).await {
            let _ = catch_phase(&unit, "recovery", recover(panicked)).await;
        }
    })
}

/// How a long-lived unit is restarted after a panic: the first delay is `first`, each next
/// one twice the last up to `max`; a run that lasted `healthy` starts over from `first`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The delay after a first panic.
    pub first: Duration,
    /// The longest delay.
    pub max: Duration,
    /// How long a run must last to count as healthy.
    pub healthy: Duration,
}

impl Backoff {
    /// For the agent's servers and loops: 100 ms, doubling up to 30 s, reset after a minute.
    pub const SERVER: Backoff = Backoff {
        first: Duration::from_millis(100),
        max: Duration::from_secs(30),
        healthy: Duration::from_secs(60),
    };

    /// The delay before the next run, after a run that lasted `ran` and followed `last`
    /// (`None` for the first run).
    pub fn delay(&self, last: Option<Duration>, ran: Duration) -> Duration {
        match last {
            Some(last) if ran < self.healthy => last.saturating_mul(2).min(self.max),
            _ => self.first.min(self.max),
        }
    }
}

/// Spawns a long-lived unit: `start` makes each run, and a run that panics is logged and
/// replaced by a new one after the backoff's delay. A run that returns ends the unit (a
/// DHCP server whose tap went away), and so does aborting the handle.
pub fn spawn_restarting<S, F>(unit: Unit, backoff: Backoff, mut start: S) -> JoinHandle<()>
where
    S: FnMut() -> F + Send + 'static,
    F: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut last = None;
        let mut restarts = 0u32;
        loop {
            let began = Instant::now();
            if catch(&unit, async { start().await }).await.is_ok() {
                return;
            }
            let delay = backoff.delay(last, began.elapsed());
            last = Some(delay);
            restarts = restarts.saturating_add(1);
            unit.log_restart(delay, restarts);
            tokio::time::sleep(delay).await;
        }
    })
}

/// Tracing output captured for tests (the subscriber is the calling thread's, so tests
/// run on a current-thread runtime).
#[cfg(any(test, feature = "test-support"))]
pub mod test_log {
    use std::sync::{Arc, Mutex};

    /// What was logged.
    #[derive(Debug, Clone, Default)]
    pub struct Logs(Arc<Mutex<Vec<u8>>>);

    impl Logs {
        /// Everything logged so far.
        pub fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap_or_else(|e| e.into_inner())).into()
        }

        /// The logged lines that contain every one of `parts`.
        pub fn lines_with(&self, parts: &[&str]) -> Vec<String> {
            self.text()
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
                .collect()
        }
    }

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// Captures this thread's tracing output until the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        (logs, tracing::subscriber::set_default(subscriber))
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::test_log::capture;
    use super::*;

    const QUICK: Backoff = Backoff {
        first: Duration::from_millis(10),
        max: Duration::from_millis(40),
        healthy: Duration::from_secs(60),
    };

    /// A server answering each connection's line with `<tag> <line>`; the line `boom`
    /// makes the run panic, as a defect would.
    async fn line_server(listener: Arc<TcpListener>, tag: &'static str) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let mut reader = BufReader::new(stream);
            let mut line = String::new();
            if reader.read_line(&mut line).await.is_err() {
                continue;
            }
            let line = line.trim_end();
            if line == "boom" {
                panic!("{tag} was asked to blow up");
            }
            let answer = format!("{tag} {line}\n");
            let _ = reader.get_mut().write_all(answer.as_bytes()).await;
        }
    }

    async fn bind() -> (Arc<TcpListener>, SocketAddr) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (Arc::new(listener), addr)
    }

    /// Sends `line` and reads the answer ("" when the connection closes unanswered).
    async fn ask(addr: SocketAddr, line: &str) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        let read = stream.read_to_string(&mut out);
        let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
        out.trim_end().to_owned()
    }

    #[tokio::test]
    async fn a_panicking_server_is_logged_restarted_and_serves_again_while_others_serve_on() {
        let (logs, _guard) = capture();
        let (a, addr_a) = bind().await;
        let (b, addr_b) = bind().await;
        let runs = Arc::new(AtomicU32::new(0));
        let unit_a = Unit::new("dhcp server").instance("i-0aaa").tap("kec2t7");
        let counted = runs.clone();
        let server_a = spawn_restarting(unit_a, QUICK, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            line_server(a.clone(), "a")
        });
        let unit_b = Unit::new("metadata listener").instance("i-0bbb");
        let server_b = spawn_restarting(unit_b, QUICK, move || line_server(b.clone(), "b"));

        assert_eq!(ask(addr_a, "hello").await, "a hello");
        assert_eq!(
            ask(addr_a, "boom").await,
            "",
            "the panicking run drops its connection"
        );
        assert_eq!(ask(addr_b, "still here").await, "b still here");
        assert_eq!(
            ask(addr_a, "again").await,
            "a again",
            "the restarted run serves"
        );
        assert_eq!(ask(addr_b, "and here").await, "b and here");
        assert_eq!(
            runs.load(Ordering::SeqCst),
            2,
            "one restart after one panic"
        );
        assert!(!server_a.is_finished() && !server_b.is_finished());

        let panics = logs.lines_with(&["a unit panicked"]);
        assert_eq!(panics.len(), 1, "{}", logs.text());
        for part in ["dhcp server", "i-0aaa", "kec2t7", "a was asked to blow up"] {
            assert!(
                panics[0].contains(part),
                "{part} missing from {}",
                panics[0]
            );
        }
        assert!(!panics[0].contains("i-0bbb"));
        let restarts = logs.lines_with(&["restarting the unit", "i-0aaa", "restarts=1"]);
        assert_eq!(restarts.len(), 1, "{}", logs.text());
        server_a.abort();
        server_b.abort();
    }

    #[tokio::test]
    async fn a_one_shot_unit_fails_alone_with_its_request_logged() {
        let (logs, _guard) = capture();
        let failing = spawn(Unit::new("api request").request("req-1"), async {
            panic!("index out of bounds");
        });
        let healthy = spawn(Unit::new("api request").request("req-2"), async {});
        assert!(failing.await.is_ok(), "the panic does not escape the unit");
        assert!(healthy.await.is_ok());
        let panics = logs.lines_with(&["a unit panicked"]);
        assert_eq!(panics.len(), 1, "{}", logs.text());
        assert!(panics[0].contains("req-1") && panics[0].contains("index out of bounds"));
    }

    #[tokio::test]
    async fn a_panicking_unit_is_recovered_with_its_message() {
        let (logs, _guard) = capture();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let unit = Unit::new("instance supervision").instance("i-0ccc");
        let work = async { panic!("state {} unexpected", 99) };
        spawn_or_recover(unit, work, move |p| async move {
            let _ = tx.send(p);
        })
        .await
        .unwrap();
        let panicked = rx.await.unwrap();
        assert_eq!(panicked.unit, "instance supervision");
        assert_eq!(panicked.message, "state 99 unexpected");
        assert_eq!(logs.lines_with(&["a unit panicked", "i-0ccc"]).len(), 1);

        let unit = Unit::new("instance supervision").instance("i-0ddd");
        let broken_recovery = |_| async { panic!("recovery broke too") };
        spawn_or_recover(unit, async { panic!("first") }, broken_recovery)
            .await
            .unwrap();
        let lines = logs.lines_with(&["i-0ddd", "recovery broke too", "phase=\"recovery\""]);
        assert_eq!(lines.len(), 1, "{}", logs.text());
    }

    #[tokio::test]
    async fn a_run_that_returns_ends_the_unit_and_abort_drops_the_run() {
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let done = spawn_restarting(Unit::new("dhcp server"), QUICK, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            async {}
        });
        done.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);

        struct DropFlag(Arc<AtomicBool>);
        impl Drop for DropFlag {
            fn drop(&mut self) {
                self.0.store(true, Ordering::SeqCst);
            }
        }
        let dropped = Arc::new(AtomicBool::new(false));
        let flag = dropped.clone();
        let forever = spawn_restarting(Unit::new("metadata listener"), QUICK, move || {
            let held = DropFlag(flag.clone());
            async move {
                std::future::pending::<()>().await;
                drop(held);
            }
        });
        tokio::task::yield_now().await;
        forever.abort();
        assert!(forever.await.unwrap_err().is_cancelled());
        assert!(dropped.load(Ordering::SeqCst), "the run was dropped");
    }

    #[test]
    fn the_restart_delay_doubles_up_to_its_bound_and_resets_after_a_healthy_run() {
        let b = Backoff::SERVER;
        let short = Duration::from_millis(5);
        let mut delays = vec![b.delay(None, short)];
        for _ in 0..12 {
            delays.push(b.delay(delays.last().copied(), short));
        }
        assert_eq!(delays[0], Duration::from_millis(100));
        assert_eq!(delays[1], Duration::from_millis(200));
        assert_eq!(delays[2], Duration::from_millis(400));
        assert_eq!(*delays.last().unwrap(), Duration::from_secs(30));
        assert!(delays.windows(2).all(|w| w[0] <= w[1] && w[1] <= b.max));
        let healthy = b.delay(Some(Duration::from_secs(30)), Duration::from_secs(61));
        assert_eq!(healthy, Duration::from_millis(100));
    }
}
