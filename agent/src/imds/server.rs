//! The metadata service's HTTP side. Each ENI gets its own listening port on 169.254.169.254,
//! and the firewall redirects that ENI's requests for port 80 (and only its requests) there,
//! so the instance is known by the tap a request came in on, never by anything the guest
//! says. A small HTTP/1.1 server: keep-alive, Content-Length bodies, the IP TTL of a token's
//! reply set to the instance's hop limit.

use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use super::handler::{self, ImdsRequest, ImdsResponse};
use super::source::{self, IdentityKey};
use super::tokens::TokenStore;
use crate::network::firewall::IMDS_IP;
use crate::network::netns::NetNs;
use crate::state::Db;
use crate::tasks::{self, Backoff, Unit};

/// What every listener shares.
#[derive(Debug)]
pub struct Imds {
    db: Arc<Db>,
    account_id: String,
    key: IdentityKey,
    tokens: Mutex<TokenStore>,
}

/// The largest request head or body accepted.
const MAX_REQUEST: usize = 16 * 1024;
/// An idle kept-alive connection is closed after this long.
const IDLE: Duration = Duration::from_secs(30);

impl Imds {
    /// The service for the instances in `db`.
    pub fn new(db: Arc<Db>, account_id: String, key: IdentityKey) -> Arc<Self> {
        Arc::new(Imds {
            db,
            account_id,
            key,
            tokens: Mutex::new(TokenStore::default()),
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
        let listener = Arc::new(TcpListener::from_std(bound)?);
        let port = listener.local_addr()?.port();
        let me = self.clone();
        let unit = Unit::new("metadata listener")
            .instance(&instance_id)
            .tap(tap);
        let task = tasks::spawn_restarting(unit, Backoff::SERVER, move || {
            me.clone().accept(listener.clone(), instance_id.clone())
        });
        Ok((port, task))
    }

    /// Accepts connections for instance `instance_id`, each served by a unit of its own.
    async fn accept(self: Arc<Self>, listener: Arc<TcpListener>, instance_id: String) {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let me = self.clone();
            let id = instance_id.clone();
            let unit = Unit::new("metadata connection").instance(&instance_id);
            tasks::spawn(unit, async move {
                if let Err(e) = me.serve_connection(stream, &id).await {
                    tracing::debug!(instance = %id, "imds connection: {e}");
                }
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
            let head = match tokio::time::timeout(IDLE, read_head(&mut reader)).await {
                Ok(Ok(Some(head))) => head,
                Ok(Ok(None)) | Err(_) => return Ok(()),
                Ok(Err(e)) => return Err(e),
            };
            let response = match parse_head(&head) {
                Some((method, path, headers)) => {
                    let length = header(&headers, "content-length")
                        .and_then(|v| v.parse::<usize>().ok())
                        .unwrap_or(0);
                    if length > MAX_REQUEST {
                        plain(413, "Request Entity Too Large")
                    } else {
                        let mut body = vec![0u8; length];
                        reader.read_exact(&mut body).await?;
                        self.answer(&method, &path, headers, instance_id)
                    }
                }
                None => plain(400, "Bad Request"),
            };
            let close = response.status == 400 || wants_close(&head);
            let ttl = response.ip_ttl.map_or(64, u32::from);
            set_ttl(fd, ttl)?;
            let head_only = head.starts_with("HEAD ");
            reader
                .get_mut()
                .write_all(&render(&response, head_only))
                .await?;
            if response.ip_ttl.is_some() {
                set_ttl(fd, 64)?;
            }
            if close {
                return Ok(());
            }
        }
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
            Ok(None) => return plain(404, "Not Found"),
            Err(e) => {
                tracing::error!(instance = %instance_id, "imds: cannot read state: {e}");
                return plain(500, "Internal Server Error");
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

fn plain(status: u16, text: &str) -> ImdsResponse {
    ImdsResponse {
        status,
        body: text.as_bytes().to_vec(),
        headers: Vec::new(),
        ip_ttl: None,
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

/// Reads a request head (up to the blank line); `None` at end of stream.
async fn read_head<R: tokio::io::AsyncBufRead + Unpin>(
    r: &mut R,
) -> std::io::Result<Option<String>> {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let n = r.read_line(&mut line).await?;
        if n == 0 {
            return Ok(if head.is_empty() { None } else { Some(head) });
        }
        if line == "\r\n" || line == "\n" {
            if head.is_empty() {
                continue; // stray blank line between requests
            }
            return Ok(Some(head));
        }
        head.push_str(&line);
        if head.len() > MAX_REQUEST {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
    }
}

type Head = (String, String, Vec<(String, String)>);

/// Method, path and headers (names lower-cased) of a request head.
fn parse_head(head: &str) -> Option<Head> {
    let mut lines = head.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    if !first.next()?.starts_with("HTTP/1.") || !path.starts_with('/') {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
    }
    Some((method, path, headers))
}

/// Whether the client wants the connection closed after this answer: HTTP/1.0 without
/// keep-alive, or `Connection: close`.
fn wants_close(head: &str) -> bool {
    let http10 = head.lines().next().is_some_and(|l| l.ends_with("HTTP/1.0"));
    let connection = parse_head(head)
        .and_then(|(_, _, h)| header(&h, "connection").map(str::to_ascii_lowercase));
    match connection.as_deref() {
        Some("close") => true,
        Some("keep-alive") => false,
        _ => http10,
    }
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        _ => "Error",
    }
}

/// The response's bytes.
fn render(r: &ImdsResponse, head_only: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nServer: EC2ws\r\n",
        r.status,
        reason(r.status),
        r.body.len()
    );
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&r.body);
    }
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_with_lowercase_header_names() {
        let (m, p, h) = parse_head(
            "PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n",
        )
        .unwrap();
        assert_eq!((m.as_str(), p.as_str()), ("PUT", "/latest/api/token"));
        assert_eq!(
            header(&h, "x-aws-ec2-metadata-token-ttl-seconds"),
            Some("21600")
        );
        assert!(parse_head("GET\r\n").is_none());
        assert!(parse_head("GET nope HTTP/1.1\r\n").is_none());
        assert!(parse_head("GET / SMTP\r\n").is_none());
    }

    #[test]
    fn responses_carry_length_and_extra_headers() {
        let r = ImdsResponse {
            status: 200,
            body: b"tok".to_vec(),
            headers: vec![("x-aws-ec2-metadata-token-ttl-seconds".into(), "60".into())],
            ip_ttl: Some(1),
        };
        let text = String::from_utf8(render(&r, false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(text.contains("Content-Length: 3\r\n"));
        assert!(text.contains("x-aws-ec2-metadata-token-ttl-seconds: 60\r\n"));
        assert!(text.ends_with("\r\n\r\ntok"));
        assert!(
            String::from_utf8(render(&r, true))
                .unwrap()
                .ends_with("\r\n\r\n")
        );
    }
}
