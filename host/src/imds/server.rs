//! The metadata service's HTTP side. Each ENI gets its own listening port on 169.254.169.254,
//! and the firewall redirects that ENI's requests for port 80 (and only its requests) there,
//! so the instance is known by the tap a request came in on, never by anything the guest
//! says. A small HTTP/1.1 server: keep-alive, Content-Length bodies, the IP TTL of a token's
//! reply set to the instance's hop limit.
//!
//! A guest controls everything it sends, so each instance's listener is bounded on its own:
//! at most [`MAX_CONNECTIONS`] connections at once, heads and bodies of at most
//! [`http::MAX_REQUEST`] bytes, and a deadline on every read and write. A slow, endless or garbled
//! client holds only its own connection, and only until a deadline passes.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;

use super::IMDS_IP;
use super::handler::{self, ImdsRequest, ImdsResponse};
use super::http::{self, HeadError, plain, status_only};
use super::source::{self, IdentityKey};
use super::tokens::TokenStore;
use crate::netns::NetNs;
use crate::tasks::{self, Backoff, Unit};
use state::Db;

/// What every listener shares.
#[derive(Debug)]
pub struct Imds {
    db: Arc<Db>,
    account_id: String,
    key: IdentityKey,
    tokens: Mutex<TokenStore>,
    deadlines: Deadlines,
}

/// How long a client may take over each part of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deadlines {
    /// An idle kept-alive connection is closed after this long, and a request head must
    /// have arrived whole within it.
    idle: Duration,
    /// How long a client may take to send a body, or to take in an answer.
    transfer: Duration,
}

/// What to send back for one request.
struct Answer {
    response: ImdsResponse,
    /// The request was a HEAD: the body is left out.
    head_only: bool,
    /// The connection closes after the answer.
    close: bool,
}

impl Answer {
    /// `response`, then the connection closes.
    fn closing(response: ImdsResponse) -> Self {
        Answer {
            response,
            head_only: false,
            close: true,
        }
    }
}

/// The deadlines served with.
const DEADLINES: Deadlines = Deadlines {
    idle: Duration::from_secs(30),
    transfer: Duration::from_secs(10),
};
/// The most connections one instance may have open at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;

impl Imds {
    /// The service for the instances in `db`.
    pub fn new(db: Arc<Db>, account_id: String, key: IdentityKey) -> Arc<Self> {
        Arc::new(Imds {
            db,
            account_id,
            key,
            tokens: Mutex::new(TokenStore::default()),
            deadlines: DEADLINES,
        })
    }

    /// Opens a listener for instance `instance_id` (on `tap`) on a free port of
    /// 169.254.169.254 (in `ns`) and serves it until the returned task is aborted: a unit
    /// restarted after a panic, each connection a unit that fails alone. Returns the port and
    /// the task.
    pub async fn listen(
        self: &Arc<Self>,
        ns: &NetNs,
        instance_id: String,
        tap: &str,
    ) -> std::io::Result<(u16, tokio::task::JoinHandle<()>)> {
        let bound = ns
            .run(|| std::net::TcpListener::bind(SocketAddr::from((IMDS_IP, 0))))
            .map_err(std::io::Error::other)??;
        bound.set_nonblocking(true)?;
        let listener = TcpListener::from_std(bound)?;
        let port = listener.local_addr()?.port();
        Ok((port, self.serve(listener, instance_id, tap)))
    }

    /// Serves `instance_id`'s metadata on `listener` until the returned task is aborted, at
    /// most [`MAX_CONNECTIONS`] connections at a time: a unit restarted after a panic, each
    /// connection a unit that fails alone.
    fn serve(
        self: &Arc<Self>,
        listener: TcpListener,
        instance_id: String,
        tap: &str,
    ) -> JoinHandle<()> {
        let me = self.clone();
        let listener = Arc::new(listener);
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let unit = Unit::new("metadata listener")
            .instance(&instance_id)
            .tap(tap);
        tasks::spawn_restarting(unit, Backoff::SERVER, move || {
            me.clone()
                .accept(listener.clone(), slots.clone(), instance_id.clone())
        })
    }

    /// Accepts connections for instance `instance_id` while `slots` has room, each served by
    /// a unit of its own.
    async fn accept(
        self: Arc<Self>,
        listener: Arc<TcpListener>,
        slots: Arc<Semaphore>,
        instance_id: String,
    ) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                tracing::debug!(instance = %instance_id, "imds: too many connections");
                drop(stream);
                continue;
            };
            let me = self.clone();
            let id = instance_id.clone();
            let unit = Unit::new("metadata connection").instance(&instance_id);
            tasks::spawn(unit, async move {
                if let Err(e) = me.serve_connection(stream, &id).await {
                    tracing::debug!(instance = %id, "imds connection: {e}");
                }
                drop(slot);
            });
        }
    }

    /// Forgets the tokens of a stopped or terminated instance.
    pub fn forget(&self, instance_id: &str) {
        self.tokens
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .revoke_instance(instance_id);
    }

    async fn serve_connection(&self, stream: TcpStream, instance_id: &str) -> std::io::Result<()> {
        stream.set_nodelay(true)?;
        let fd = stream.as_raw_fd();
        let mut reader = BufReader::new(stream);
        loop {
            let read =
                tokio::time::timeout(self.deadlines.idle, http::read_head(&mut reader)).await;
            let Answer {
                response,
                head_only,
                close,
            } = match read {
                Ok(Ok(Some(head))) => match self.request(&mut reader, &head, instance_id).await {
                    Some(answer) => answer,
                    None => return Ok(()),
                },
                Ok(Ok(None)) | Err(_) => return Ok(()),
                Ok(Err(HeadError::TooLarge)) => {
                    Answer::closing(plain(400, "Request head too large"))
                }
                Ok(Err(HeadError::Io(e))) => return Err(e),
            };
            let ttl = response.ip_ttl.map_or(64, u32::from);
            set_ttl(fd, ttl)?;
            let bytes = http::render(&response, head_only);
            let write = reader.get_mut().write_all(&bytes);
            match tokio::time::timeout(self.deadlines.transfer, write).await {
                Ok(written) => written?,
                Err(_) => return Ok(()), // the client takes nothing in
            }
            if response.ip_ttl.is_some() {
                set_ttl(fd, 64)?;
            }
            if close {
                return Ok(());
            }
        }
    }

    /// Reads the body `head` announces and answers the request; `None` if the client went
    /// away or was too slow sending the body.
    async fn request(
        &self,
        reader: &mut BufReader<TcpStream>,
        head: &[u8],
        instance_id: &str,
    ) -> Option<Answer> {
        let Some(parsed) = http::parse_head(head) else {
            return Some(Answer::closing(status_only(400)));
        };
        let length = match parsed.body_length() {
            Ok(length) => length,
            // The body was not read, so nothing more on this connection can be framed.
            Err(status) => return Some(Answer::closing(status_only(status))),
        };
        let mut body = vec![0u8; length];
        match tokio::time::timeout(self.deadlines.transfer, reader.read_exact(&mut body)).await {
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => return None,
        }
        let head_only = parsed.method == "HEAD";
        let close = parsed.wants_close();
        let response = self.answer(&parsed.method, &parsed.path, parsed.headers, instance_id);
        Some(Answer {
            response,
            head_only,
            close,
        })
    }

    fn answer(
        &self,
        method: &str,
        path: &str,
        headers: Vec<(String, String)>,
        instance_id: &str,
    ) -> ImdsResponse {
        let loaded = source::load(&self.db.lock(), instance_id, &self.account_id, &self.key);
        let (metadata, options) = match loaded {
            Ok(Some(found)) => found,
            Ok(None) => return status_only(404),
            Err(e) => {
                tracing::error!(instance = %instance_id, "imds: cannot read state: {e}");
                return status_only(500);
            }
        };
        let path = path.split('?').next().unwrap_or(path);
        let request = ImdsRequest {
            method,
            path,
            headers,
        };
        let mut tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
        handler::handle(&request, &metadata, &options, &mut tokens, Instant::now())
    }
}

fn set_ttl(fd: i32, ttl: u32) -> std::io::Result<()> {
    let value = ttl as libc::c_int;
    // SAFETY: `value` is a valid c_int for the call; `fd` is the connection's open socket.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_IP,
            libc::IP_TTL,
            (&raw const value).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[cfg(test)]
#[path = "server_tests.rs"]
mod tests;
