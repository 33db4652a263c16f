//! The metadata service's HTTP/1.1 wire format: reading a request head within a size bound,
//! parsing it, the body's framing, and rendering a response. Everything here reads bytes a
//! guest sends, so nothing trusts a length it gives and nothing grows past [`MAX_REQUEST`].

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use super::handler::ImdsResponse;

/// The largest request head, and the largest body, accepted.
pub const MAX_REQUEST: usize = 16 * 1024;

/// Why a request head could not be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The head grew past [`MAX_REQUEST`] bytes without ending.
    #[error("the request head is longer than {MAX_REQUEST} bytes")]
    TooLarge,
    /// The connection failed.
    #[error("cannot read the request head")]
    Io(#[source] std::io::Error),
}

/// Reads a request head (up to the blank line), reading at most [`MAX_REQUEST`] bytes of it
/// (blank lines before it included); `None` at the end of the stream before any head.
pub async fn read_head<R: AsyncBufRead + Unpin>(r: &mut R) -> Result<Option<Vec<u8>>, HeadError> {
    let mut head = Vec::new();
    let mut budget = MAX_REQUEST;
    loop {
        let mut line = Vec::new();
        let n = (&mut *r)
            .take(budget as u64)
            .read_until(b'\n', &mut line)
            .await
            .map_err(HeadError::Io)?;
        budget -= n;
        if n == 0 {
            if budget == 0 {
                return Err(HeadError::TooLarge);
            }
            return Ok((!head.is_empty()).then_some(head));
        }
        if line == b"\r\n" || line == b"\n" {
            if head.is_empty() {
                continue; // a stray blank line between requests
            }
            return Ok(Some(head));
        }
        if !line.ends_with(b"\n") && budget == 0 {
            return Err(HeadError::TooLarge);
        }
        head.extend_from_slice(&line);
    }
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// `GET`, `PUT`, ...
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// Whether the request line says HTTP/1.0.
    pub http10: bool,
    /// Headers, names lower-cased, values trimmed, in order.
    pub headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the client wants the connection closed after this answer: HTTP/1.0 without
    /// keep-alive, or `Connection: close`.
    pub fn wants_close(&self) -> bool {
        match self
            .header("connection")
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("close") => true,
            Some("keep-alive") => false,
            _ => self.http10,
        }
    }

    /// The length of the body that follows, or the status refusing the request: bodies
    /// are framed by one decimal `Content-Length` of at most [`MAX_REQUEST`] bytes only.
    pub fn body_length(&self) -> Result<usize, u16> {
        if self.header("transfer-encoding").is_some() {
            return Err(400);
        }
        let mut lengths = self
            .headers
            .iter()
            .filter(|(n, _)| n == "content-length")
            .map(|(_, v)| v);
        let Some(first) = lengths.next() else {
            return Ok(0);
        };
        if lengths.any(|other| other != first) || !first.bytes().all(|b| b.is_ascii_digit()) {
            return Err(400);
        }
        match first.parse::<usize>() {
            Ok(n) if n <= MAX_REQUEST => Ok(n),
            Ok(_) => Err(413),
            Err(_) if !first.is_empty() => Err(413), // all digits, too many for a usize
            Err(_) => Err(400),
        }
    }
}

/// Parses a request head; `None` if it is not a well-formed HTTP/1.x request.
pub fn parse_head(head: &[u8]) -> Option<Head> {
    let text = std::str::from_utf8(head).ok()?;
    let mut lines = text.lines();
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let version = first.next()?;
    if first.next().is_some() || !version.starts_with("HTTP/1.") || !path.starts_with('/') {
        return None;
    }
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':')?;
        let name = name.trim();
        if name.is_empty() {
            return None;
        }
        headers.push((name.to_ascii_lowercase(), value.trim().to_owned()));
    }
    Some(Head {
        method,
        path,
        http10: version == "HTTP/1.0",
        headers,
    })
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        500 => "Internal Server Error",
        _ => "Error",
    }
}

/// A response with a plain-text body.
pub fn plain(status: u16, text: &str) -> ImdsResponse {
    ImdsResponse {
        status,
        body: text.as_bytes().to_vec(),
        headers: Vec::new(),
        ip_ttl: None,
    }
}

/// A plain response with the status's own reason as its text.
pub fn status_only(status: u16) -> ImdsResponse {
    plain(status, reason(status))
}

/// The response's bytes.
pub fn render(r: &ImdsResponse, head_only: bool) -> Vec<u8> {
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

    fn read(bytes: &[u8]) -> Result<Option<Vec<u8>>, HeadError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let mut r = bytes;
        rt.block_on(read_head(&mut r))
    }

    #[test]
    fn heads_parse_with_lowercase_header_names() {
        let h = parse_head(
            b"PUT /latest/api/token HTTP/1.1\r\nHost: 169.254.169.254\r\n\
             X-aws-ec2-metadata-token-ttl-seconds: 21600\r\n",
        )
        .unwrap();
        assert_eq!(
            (h.method.as_str(), h.path.as_str()),
            ("PUT", "/latest/api/token")
        );
        assert_eq!(
            h.header("x-aws-ec2-metadata-token-ttl-seconds"),
            Some("21600")
        );
        assert!(!h.http10 && !h.wants_close());
        assert!(parse_head(b"GET\r\n").is_none());
        assert!(parse_head(b"GET nope HTTP/1.1\r\n").is_none());
        assert!(parse_head(b"GET / SMTP\r\n").is_none());
        assert!(parse_head(b"GET / HTTP/1.1 extra\r\n").is_none());
        assert!(parse_head(b"GET / HTTP/1.1\r\nno colon\r\n").is_none());
        assert!(parse_head(b"GET / HTTP/1.1\r\n: empty name\r\n").is_none());
        assert!(parse_head(b"GET /\xff HTTP/1.1\r\n").is_none());
        assert!(parse_head(b"GET / HTTP/1.0\r\n").unwrap().wants_close());
    }

    #[test]
    fn bodies_are_framed_by_one_bounded_content_length() {
        let length = |headers: &str| {
            parse_head(format!("PUT / HTTP/1.1\r\n{headers}").as_bytes())
                .unwrap()
                .body_length()
        };
        assert_eq!(length(""), Ok(0));
        assert_eq!(length("Content-Length: 12\r\n"), Ok(12));
        assert_eq!(length("Content-Length: 16384\r\n"), Ok(MAX_REQUEST));
        assert_eq!(length("Content-Length: 16385\r\n"), Err(413));
        assert_eq!(
            length("Content-Length: 99999999999999999999999\r\n"),
            Err(413)
        );
        assert_eq!(length("Content-Length: -1\r\n"), Err(400));
        assert_eq!(length("Content-Length: +1\r\n"), Err(400));
        assert_eq!(length("Content-Length:\r\n"), Err(400));
        assert_eq!(
            length("Content-Length: 1\r\nContent-Length: 2\r\n"),
            Err(400)
        );
        assert_eq!(length("Transfer-Encoding: chunked\r\n"), Err(400));
    }

    #[test]
    fn heads_are_read_within_the_size_bound() {
        let got = read(b"\r\nGET / HTTP/1.1\r\nA: b\r\n\r\nGET /next").unwrap();
        assert_eq!(got.unwrap(), b"GET / HTTP/1.1\r\nA: b\r\n");
        assert!(read(b"").unwrap().is_none());
        assert_eq!(read(b"GET / HTTP/1.1").unwrap().unwrap(), b"GET / HTTP/1.1");
        let endless_line = vec![b'a'; 10 * MAX_REQUEST];
        assert!(matches!(read(&endless_line), Err(HeadError::TooLarge)));
        let endless_headers = b"X: y\r\n".repeat(MAX_REQUEST);
        assert!(matches!(read(&endless_headers), Err(HeadError::TooLarge)));
        let blank_lines = b"\r\n".repeat(MAX_REQUEST);
        assert!(matches!(read(&blank_lines), Err(HeadError::TooLarge)));
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
