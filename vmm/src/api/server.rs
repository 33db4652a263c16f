//! The Unix socket the control API listens on: a thread accepting connections, a thread per
//! connection reading request lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use super::protocol::{ApiHandler, Response};

/// Longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;
/// How long a shutdown waits for answers still being written (e.g. to the `stop` itself).
const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// Requests between being read and having their answer written.
#[derive(Debug, Default)]
struct InFlight {
    count: Mutex<u32>,
    done: Condvar,
}

impl InFlight {
    fn lock(&self) -> std::sync::MutexGuard<'_, u32> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn begin(&self) {
        *self.lock() += 1;
    }

    fn end(&self) {
        let mut count = self.lock();
        *count = count.saturating_sub(1);
        self.done.notify_all();
    }

    /// Waits until no answer is pending, for at most `timeout`.
    fn drain(&self, timeout: Duration) {
        let guard = self.lock();
        let _ = self.done.wait_timeout_while(guard, timeout, |c| *c > 0);
    }
}

/// Why the control socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Something that is not a socket is in the way.
    #[error("api socket path {0} exists and is not a socket")]
    PathInUse(PathBuf),
    /// Another live process listens there.
    #[error("api socket {0} is in use by another process")]
    SocketInUse(PathBuf),
    /// Binding failed.
    #[error("cannot listen on api socket {path}")]
    Bind {
        /// The socket path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// The listening control socket.
#[derive(Debug)]
pub struct ApiServer {
    _socket: SocketFile,
    in_flight: Arc<InFlight>,
}

/// The socket's path in the filesystem, removed when dropped (also when a later boot step
/// fails). Once the VMM is jailed the host path is out of reach and stays for the next VMM
/// to replace as stale.
#[derive(Debug)]
struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A bound control socket whose requests are not served yet: binding needs the host's
/// filesystem, serving starts once the VMM is jailed.
#[derive(Debug)]
pub struct ApiListener {
    socket: SocketFile,
    listener: UnixListener,
}

impl ApiListener {
    /// Listens at `path`, replacing a stale socket left by a dead VMM.
    pub fn bind(path: &Path) -> Result<Self, ApiError> {
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path).map_err(|source| ApiError::Bind {
            path: path.to_owned(),
            source,
        })?;
        Ok(ApiListener {
            socket: SocketFile(path.to_owned()),
            listener,
        })
    }

    /// Starts serving requests with `handler` on a thread of its own.
    pub fn serve(self, handler: ApiHandler) -> Result<ApiServer, ApiError> {
        let ApiListener { socket, listener } = self;
        let in_flight = Arc::new(InFlight::default());
        std::thread::Builder::new()
            .name("api".into())
            .spawn({
                let in_flight = in_flight.clone();
                move || accept_loop(listener, handler, in_flight)
            })
            .map_err(|source| ApiError::Bind {
                path: socket.0.clone(),
                source,
            })?;
        Ok(ApiServer {
            _socket: socket,
            in_flight,
        })
    }
}

impl ApiServer {
    /// Listens at `path` (replacing a stale socket left by a dead VMM) and serves requests.
    pub fn start(path: &Path, handler: ApiHandler) -> Result<Self, ApiError> {
        ApiListener::bind(path)?.serve(handler)
    }

    /// Lets answers being written finish (briefly), then removes the socket; connections
    /// still open get no more answers once the process ends.
    pub fn shutdown(self) {
        self.in_flight.drain(ANSWER_GRACE);
        drop(self);
    }
}

fn remove_stale_socket(path: &Path) -> Result<(), ApiError> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(ApiError::SocketInUse(path.to_owned()));
            }
            std::fs::remove_file(path).map_err(|source| ApiError::Bind {
                path: path.to_owned(),
                source,
            })
        }
        Ok(_) => Err(ApiError::PathInUse(path.to_owned())),
        Err(_) => Ok(()),
    }
}

fn accept_loop(listener: UnixListener, handler: ApiHandler, in_flight: Arc<InFlight>) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let handler = handler.clone();
                let in_flight = in_flight.clone();
                let spawned = std::thread::Builder::new()
                    .name("api-conn".into())
                    .spawn(move || serve(stream, &handler, &in_flight));
                if let Err(err) = spawned {
                    tracing::warn!("cannot serve an api connection: {err}");
                }
            }
            Err(err) => tracing::warn!("api accept failed: {err}"),
        }
    }
}

fn serve(stream: UnixStream, handler: &ApiHandler, in_flight: &InFlight) {
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = String::new();
        match (&mut reader).take(MAX_LINE).read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        in_flight.begin();
        let go_on = answer(&mut writer, handler, &line);
        in_flight.end();
        if !go_on {
            return;
        }
    }
}

/// Handles one request line and writes its answer; false when the connection should close.
fn answer(writer: &mut UnixStream, handler: &ApiHandler, line: &str) -> bool {
    let response = if line.ends_with('\n') {
        handler.handle_line(line.trim())
    } else if line.len() as u64 >= MAX_LINE {
        let response = Response::error(format!("request line longer than {MAX_LINE} bytes"));
        let text = serde_json::to_string(&response).unwrap_or_default();
        let _ = writeln!(writer, "{text}");
        return false;
    } else {
        // The peer closed without a newline: answer the last line anyway.
        handler.handle_line(line.trim())
    };
    let text = serde_json::to_string(&response).unwrap_or_default();
    writeln!(writer, "{text}").is_ok()
}
