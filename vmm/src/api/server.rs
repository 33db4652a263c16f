//! The Unix socket the control API listens on: a thread accepting connections, a thread per
//! connection reading request lines.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use super::protocol::{ApiHandler, Response};

/// Longest request line accepted.
const MAX_LINE: u64 = 64 * 1024;

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
    path: PathBuf,
}

impl ApiServer {
    /// Listens at `path` (replacing a stale socket left by a dead VMM) and serves requests.
    pub fn start(path: &Path, handler: ApiHandler) -> Result<Self, ApiError> {
        remove_stale_socket(path)?;
        let listener = UnixListener::bind(path).map_err(|source| ApiError::Bind {
            path: path.to_owned(),
            source,
        })?;
        std::thread::Builder::new()
            .name("api".into())
            .spawn(move || accept_loop(listener, handler))
            .map_err(|source| ApiError::Bind {
                path: path.to_owned(),
                source,
            })?;
        Ok(ApiServer {
            path: path.to_owned(),
        })
    }

    /// Removes the socket; connections still open get no more answers once the process ends.
    pub fn shutdown(self) {
        drop(self);
    }
}

impl Drop for ApiServer {
    /// The socket goes with the server, also when a later boot step fails.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
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

fn accept_loop(listener: UnixListener, handler: ApiHandler) {
    for stream in listener.incoming() {
        match stream {
            Ok(stream) => {
                let handler = handler.clone();
                let spawned = std::thread::Builder::new()
                    .name("api-conn".into())
                    .spawn(move || serve(stream, &handler));
                if let Err(err) = spawned {
                    tracing::warn!("cannot serve an api connection: {err}");
                }
            }
            Err(err) => tracing::warn!("api accept failed: {err}"),
        }
    }
}

fn serve(stream: UnixStream, handler: &ApiHandler) {
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
        let response = if line.ends_with('\n') {
            handler.handle_line(line.trim())
        } else if line.len() as u64 >= MAX_LINE {
            let response = Response::error(format!("request line longer than {MAX_LINE} bytes"));
            let text = serde_json::to_string(&response).unwrap_or_default();
            let _ = writeln!(writer, "{text}");
            return;
        } else {
            // The peer closed without a newline: answer the last line anyway.
            handler.handle_line(line.trim())
        };
        let text = serde_json::to_string(&response).unwrap_or_default();
        if writeln!(writer, "{text}").is_err() {
            return;
        }
    }
}
