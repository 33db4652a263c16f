//! HTTP/1.0 on the wire, without I/O: the client's request formatting and response parsing,
//! the responder's request detection and answer, and `http://` URLs. The network stack
//! (`netstack`) moves these bytes over smoltcp sockets.

use alloc::vec::Vec;
use core::fmt::Write as _;

use crate::cmdline::{parse_ipv4, parse_percent, parse_u64};

/// Largest response the client keeps.
pub const MAX_RESPONSE: usize = 1 << 20;
/// Largest request head the responder reads.
pub const MAX_REQUEST: usize = 8192;

/// An `http://IP[:PORT][/PATH]` URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Url<'a> {
    /// The server's IPv4 address.
    pub ip: [u8; 4],
    /// The port (80 if absent).
    pub port: u16,
    /// The path, starting with `/`.
    pub path: &'a [u8],
}

/// Parses an `http://` URL with a dotted-quad host.
pub fn parse_url(url: &[u8]) -> Option<Url<'_>> {
    let rest = url.strip_prefix(b"http://")?;
    let (authority, path) = match rest.iter().position(|&b| b == b'/') {
        Some(slash) => (&rest[..slash], &rest[slash..]),
        None => (rest, &b"/"[..]),
    };
    let (host, port) = match authority.iter().position(|&b| b == b':') {
        Some(colon) => (
            &authority[..colon],
            u16::try_from(parse_u64(&authority[colon + 1..])?).ok()?,
        ),
        None => (authority, 80),
    };
    if path
        .iter()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return None;
    }
    Some(Url {
        ip: parse_ipv4(host)?,
        port,
        path,
    })
}

/// A request head and body: `METHOD PATH HTTP/1.0`, `Host`, the given headers,
/// `Content-Length` (when there is a body or the method is PUT or POST), `Connection: close`.
pub fn format_request(
    method: &str,
    ip: [u8; 4],
    port: u16,
    path: &[u8],
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = alloc::string::String::new();
    let [a, b, c, d] = ip;
    let _ = write!(head, "{method} ");
    let mut out = Vec::with_capacity(128 + body.len());
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(path);
    head.clear();
    let _ = write!(head, " HTTP/1.0\r\nHost: {a}.{b}.{c}.{d}");
    if port != 80 {
        let _ = write!(head, ":{port}");
    }
    head.push_str("\r\n");
    for (name, value) in headers {
        let _ = write!(head, "{name}: {value}\r\n");
    }
    if !body.is_empty() || matches!(method, "PUT" | "POST") {
        let _ = write!(head, "Content-Length: {}\r\n", body.len());
    }
    head.push_str("Connection: close\r\n\r\n");
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
    out
}

/// A parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// The headers, in order (names as sent).
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// The body (up to `Content-Length` when given, else up to the end of the connection).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v.as_slice())
    }

    /// The body's first line (without `\r\n`).
    pub fn first_line(&self) -> &[u8] {
        first_line(&self.body)
    }
}

/// The first line of `text`, without the line ending.
pub fn first_line(text: &[u8]) -> &[u8] {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Why a response could not be parsed (yet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// More bytes are needed.
    Incomplete,
    /// Not an HTTP response.
    Malformed,
}

/// Where the head ends: the index of the first body byte.
fn head_end(data: &[u8]) -> Option<usize> {
    let crlf = data
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4);
    let lf = data.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Parses `data`, the bytes received so far; `eof` says the server has closed. Without
/// `Content-Length` the body runs to the end of the connection.
pub fn parse_response(data: &[u8], eof: bool) -> Result<Response, ParseError> {
    let incomplete = if eof {
        ParseError::Malformed
    } else {
        ParseError::Incomplete
    };
    let Some(end) = head_end(data) else {
        let looks_like_http = b"HTTP/".starts_with(&data[..data.len().min(5)]);
        if !eof && data.len() < MAX_RESPONSE && looks_like_http {
            return Err(ParseError::Incomplete);
        }
        return Err(ParseError::Malformed);
    };
    let mut lines = data[..end]
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status_line = lines.next().ok_or(ParseError::Malformed)?;
    let mut parts = status_line.splitn(3, |&b| b == b' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with(b"HTTP/") {
        return Err(ParseError::Malformed);
    }
    let code = parts.next().unwrap_or_default();
    let status = parse_u64(code)
        .filter(|_| code.len() == 3)
        .and_then(|c| u16::try_from(c).ok())
        .ok_or(ParseError::Malformed)?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::Malformed)?;
        let value = line[colon + 1..].trim_ascii();
        headers.push((line[..colon].trim_ascii().to_vec(), value.to_vec()));
    }
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let body = &data[end..];
    match response.header("content-length") {
        Some(len) => {
            let len = parse_u64(len)
                .and_then(|l| usize::try_from(l).ok())
                .ok_or(ParseError::Malformed)?;
            if body.len() < len {
                return Err(incomplete);
            }
            response.body = body[..len].to_vec();
        }
        None if response
            .header("transfer-encoding")
            .is_some_and(|t| t.eq_ignore_ascii_case(b"chunked")) =>
        {
            // The client sends HTTP/1.0 requests, so servers must not chunk.
            return Err(ParseError::Malformed);
        }
        None => {
            if !eof {
                return Err(ParseError::Incomplete);
            }
            response.body = body.to_vec();
        }
    }
    Ok(response)
}

/// True once `data` holds a whole request head (a blank line ends it).
pub fn request_complete(data: &[u8]) -> bool {
    head_end(data).is_some()
}

/// The responder's answer to `request`: any GET gets `200 OK` with body `NAME\n`; HEAD the
/// same head without the body; anything else `405 Method Not Allowed`. (The control paths,
/// [`control`], are answered by [`respond_control`] instead.)
pub fn respond(request: &[u8], name: &[u8]) -> Vec<u8> {
    if request.starts_with(b"GET ") {
        answer("200 OK", name, true)
    } else if request.starts_with(b"HEAD ") {
        answer("200 OK", name, false)
    } else {
        answer("405 Method Not Allowed", b"method not allowed", true)
    }
}

/// A request to one of the responder's control paths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// `GET /burn/<PCT>`, PCT from 0 to 100: burn at that share.
    Burn(u8),
    /// `GET /burn/<anything else>`.
    BadBurn,
    /// `GET /arp/on` (true) or `GET /arp/off` (false): answer ARP requests or not.
    Arp(bool),
}

/// The control path `request` asks for, if any: only `GET`s of `/burn/<PCT>`, `/arp/on` and
/// `/arp/off` (exact paths, no query) are; every other request is answered as before.
pub fn control(request: &[u8]) -> Option<Control> {
    let line = first_line(request).strip_prefix(b"GET ")?;
    let path = line.split(|&b| b == b' ').next()?;
    if let Some(value) = path.strip_prefix(b"/burn/") {
        return Some(parse_percent(value).map_or(Control::BadBurn, Control::Burn));
    }
    match path {
        b"/arp/on" => Some(Control::Arp(true)),
        b"/arp/off" => Some(Control::Arp(false)),
        _ => None,
    }
}

/// The answer to a control request: `200 OK` with `burn <PCT>\n`, `arp on\n` or `arp off\n`;
/// `400 Bad Request` with `bad burn value\n`.
pub fn respond_control(control: Control) -> Vec<u8> {
    let mut body = alloc::string::String::new();
    let status = match control {
        Control::Burn(share) => {
            let _ = write!(body, "burn {share}");
            "200 OK"
        }
        Control::BadBurn => {
            body.push_str("bad burn value");
            "400 Bad Request"
        }
        Control::Arp(on) => {
            body.push_str(if on { "arp on" } else { "arp off" });
            "200 OK"
        }
    };
    answer(status, body.as_bytes(), true)
}

/// A whole answer: status line, `Content-Type: text/plain`, `Content-Length` of `text` plus
/// its newline, `Connection: close`, then (if `body_wanted`) `text` and a newline.
fn answer(status: &str, text: &[u8], body_wanted: bool) -> Vec<u8> {
    let mut out = alloc::string::String::new();
    let _ = write!(
        out,
        "HTTP/1.0 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        text.len() + 1
    );
    let mut out = out.into_bytes();
    if body_wanted {
        out.extend_from_slice(text);
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        assert_eq!(
            parse_url(b"http://10.0.0.1:8080/latest/meta-data/instance-id"),
            Some(Url {
                ip: [10, 0, 0, 1],
                port: 8080,
                path: b"/latest/meta-data/instance-id"
            })
        );
        assert_eq!(
            parse_url(b"http://169.254.169.254"),
            Some(Url {
                ip: [169, 254, 169, 254],
                port: 80,
                path: b"/"
            })
        );
        assert_eq!(parse_url(b"https://10.0.0.1/"), None);
        assert_eq!(parse_url(b"http://host.example/"), None);
        assert_eq!(parse_url(b"http://10.0.0.1:99999/"), None);
        assert_eq!(parse_url(b"http://10.0.0.1:/"), None);
    }

    #[test]
    fn formats_get_and_put() {
        let get = format_request(
            "GET",
            [169, 254, 169, 254],
            80,
            b"/latest/meta-data/",
            &[("X-aws-ec2-metadata-token", "abc")],
            b"",
        );
        assert_eq!(
            get,
            b"GET /latest/meta-data/ HTTP/1.0\r\nHost: 169.254.169.254\r\n\
              X-aws-ec2-metadata-token: abc\r\nConnection: close\r\n\r\n"
        );
        let put = format_request(
            "PUT",
            [10, 0, 0, 1],
            8080,
            b"/latest/api/token",
            &[("X-aws-ec2-metadata-token-ttl-seconds", "21600")],
            b"",
        );
        assert_eq!(
            put,
            b"PUT /latest/api/token HTTP/1.0\r\nHost: 10.0.0.1:8080\r\n\
              X-aws-ec2-metadata-token-ttl-seconds: 21600\r\nContent-Length: 0\r\n\
              Connection: close\r\n\r\n"
        );
        let post = format_request("POST", [1, 2, 3, 4], 80, b"/x", &[], b"hello");
        assert!(post.ends_with(b"Content-Length: 5\r\nConnection: close\r\n\r\nhello"));
    }

    #[test]
    fn parses_responses_with_and_without_length() {
        let data =
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\r\nweb-1\nEXTRA";
        let r = parse_response(data, false).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, b"web-1\n");
        assert_eq!(r.first_line(), b"web-1");
        assert_eq!(r.header("content-type"), Some(&b"text/plain"[..]));
        assert_eq!(r.header("X-Missing"), None);

        // Body runs to EOF without Content-Length.
        let data = b"HTTP/1.1 404 Not Found\r\nServer: x\r\n\r\nnot here\r\nsecond";
        assert_eq!(parse_response(data, false), Err(ParseError::Incomplete));
        let r = parse_response(data, true).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.first_line(), b"not here");

        // Bare LF line endings.
        let r = parse_response(b"HTTP/1.0 401 Unauthorized\nContent-Length: 0\n\n", false).unwrap();
        assert_eq!((r.status, r.body.len()), (401, 0));
        assert_eq!(r.first_line(), b"");
    }

    /// Answers shaped like the metadata service's: HTTP/1.1, a length the client can stop
    /// at without waiting for the close, binary bodies kept byte for byte.
    #[test]
    fn parses_metadata_service_answers() {
        let data = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 19\r\n\
                     Connection: keep-alive\r\n\r\ni-0123456789abcdef0";
        let r = parse_response(data, false).unwrap();
        assert_eq!(
            (r.status, r.body.as_slice()),
            (200, &b"i-0123456789abcdef0"[..])
        );

        // A token answer, with the TTL echoed in a header.
        let data = b"HTTP/1.1 200 OK\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n\
                     Content-Length: 5\r\n\r\ntok-1";
        let r = parse_response(data, false).unwrap();
        assert_eq!(
            r.header("x-aws-ec2-metadata-token-ttl-seconds"),
            Some(&b"21600"[..])
        );
        assert_eq!(r.body, b"tok-1");

        // Status only, the body ending with the connection.
        let data = b"HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n";
        assert_eq!(parse_response(data, false), Err(ParseError::Incomplete));
        let r = parse_response(data, true).unwrap();
        assert_eq!((r.status, r.body.len()), (401, 0));
        let data = b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(parse_response(data, false).unwrap().status, 404);

        // User data with line breaks, a NUL and non-UTF-8 bytes.
        let data = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\na\r\nb\n\0\xe9\xff!";
        assert_eq!(
            parse_response(data, false).unwrap().body,
            b"a\r\nb\n\0\xe9\xff!"
        );
    }

    #[test]
    fn incomplete_and_malformed_responses() {
        let full = b"HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        for cut in 0..full.len() {
            assert_eq!(
                parse_response(&full[..cut], false),
                Err(ParseError::Incomplete),
                "{cut}"
            );
            assert_eq!(
                parse_response(&full[..cut], true),
                Err(ParseError::Malformed),
                "{cut}"
            );
        }
        assert!(parse_response(full, false).is_ok());
        assert_eq!(
            parse_response(b"SSH-2.0-OpenSSH\r\n", false),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 2000 OK\r\n\r\n", true),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nbad header\r\n\r\n", true),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_response(b"HTTP/1.0 200 OK\r\nContent-Length: x\r\n\r\n", true),
            Err(ParseError::Malformed)
        );
        assert_eq!(
            parse_response(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
                true
            ),
            Err(ParseError::Malformed)
        );
    }

    #[test]
    fn responder_answers_get_with_the_name() {
        assert!(!request_complete(b"GET / HTTP/1.0\r\n"));
        assert!(request_complete(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"));
        assert!(request_complete(b"GET / HTTP/1.0\n\n"));
        let answer = respond(b"GET /anything HTTP/1.1\r\n\r\n", b"web-1");
        assert_eq!(
            answer,
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 6\r\n\
              Connection: close\r\n\r\nweb-1\n"
        );
        // Round trip through the client's parser.
        let r = parse_response(&answer, false).unwrap();
        assert_eq!((r.status, r.first_line()), (200, &b"web-1"[..]));
        let head = respond(b"HEAD / HTTP/1.0\r\n\r\n", b"web-1");
        assert!(head.ends_with(b"Content-Length: 6\r\nConnection: close\r\n\r\n"));
        let r = parse_response(&respond(b"DELETE / HTTP/1.0\r\n\r\n", b"n"), false).unwrap();
        assert_eq!(r.status, 405);
    }

    #[test]
    fn control_paths() {
        assert_eq!(
            control(b"GET /burn/50 HTTP/1.0\r\n\r\n"),
            Some(Control::Burn(50))
        );
        assert_eq!(
            control(b"GET /burn/0 HTTP/1.1\r\nHost: x\r\n\r\n"),
            Some(Control::Burn(0))
        );
        assert_eq!(control(b"GET /burn/100\n\n"), Some(Control::Burn(100)));
        for bad in [
            &b"/burn/101"[..],
            b"/burn/",
            b"/burn/x",
            b"/burn/50?x=1",
            b"/burn/-1",
        ] {
            let mut request = b"GET ".to_vec();
            request.extend_from_slice(bad);
            request.extend_from_slice(b" HTTP/1.0\r\n\r\n");
            assert_eq!(control(&request), Some(Control::BadBurn), "{bad:?}");
        }
        assert_eq!(
            control(b"GET /arp/off HTTP/1.0\r\n\r\n"),
            Some(Control::Arp(false))
        );
        assert_eq!(
            control(b"GET /arp/on HTTP/1.0\r\n\r\n"),
            Some(Control::Arp(true))
        );
        // Everything else keeps the plain answer: other paths, other methods, no path.
        for other in [
            &b"GET / HTTP/1.0\r\n\r\n"[..],
            b"GET /burn HTTP/1.0\r\n\r\n",
            b"GET /arp/ HTTP/1.0\r\n\r\n",
            b"GET /arp/off/x HTTP/1.0\r\n\r\n",
            b"GET /x/burn/50 HTTP/1.0\r\n\r\n",
            b"HEAD /burn/50 HTTP/1.0\r\n\r\n",
            b"PUT /arp/off HTTP/1.0\r\n\r\n",
            b"GET",
            b"",
        ] {
            assert_eq!(control(other), None, "{other:?}");
        }
    }

    #[test]
    fn control_answers() {
        let r = parse_response(&respond_control(Control::Burn(50)), false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"burn 50\n"[..]));
        let r = parse_response(&respond_control(Control::BadBurn), false).unwrap();
        assert_eq!(r.status, 400);
        let r = parse_response(&respond_control(Control::Arp(false)), false).unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"arp off\n"[..]));
        let r = parse_response(&respond_control(Control::Arp(true)), false).unwrap();
        assert_eq!(r.body, b"arp on\n");
        assert_eq!(r.header("content-type"), Some(&b"text/plain"[..]));
    }
}
