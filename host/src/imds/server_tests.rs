//! The metadata server's bounds over real sockets on loopback: slow, endless, oversized and
//! too many clients each cost only their own connection, for a while.

use std::time::Instant;

use tokio::io::AsyncReadExt;

use super::*;

/// A server on loopback for an instance the database does not know (so every well-formed
/// request gets a 404), with `deadlines`.
async fn server(dir: &tempfile::TempDir, deadlines: Deadlines) -> SocketAddr {
    let db = Arc::new(Db::open(&dir.path().join("state.db")).unwrap());
    let key = IdentityKey::load_or_create(dir.path()).unwrap();
    let mut imds = Imds::new(db, "123456789012".into(), key);
    Arc::get_mut(&mut imds).unwrap().deadlines = deadlines;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The task ends with the test's runtime.
    drop(imds.serve(listener, "i-0123456789abcdef0".into(), "kec2t-test"));
    addr
}

const SHORT: Deadlines = Deadlines {
    idle: Duration::from_millis(400),
    transfer: Duration::from_millis(400),
};

/// Reads what the server sends until it closes the connection (or 3 s pass: `None`).
async fn until_closed(stream: &mut TcpStream) -> Option<String> {
    let mut out = Vec::new();
    let read = stream.read_to_end(&mut out);
    match tokio::time::timeout(Duration::from_secs(3), read).await {
        Ok(_) => Some(String::from_utf8_lossy(&out).into_owned()),
        Err(_) => None,
    }
}

/// Sends `request` on a new connection; the answer's status line.
async fn status_line(addr: SocketAddr, request: &[u8]) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let answer = until_closed(&mut s)
        .await
        .expect("the server closes after its answer");
    answer.lines().next().unwrap_or("").to_owned()
}

const GET: &[u8] = b"GET /latest/meta-data/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";

#[tokio::test]
async fn slow_and_endless_clients_hold_only_their_own_connection_for_a_while() {
    let dir = tempfile::tempdir().unwrap();
    let addr = server(&dir, SHORT).await;
    let mut half_head = TcpStream::connect(addr).await.unwrap();
    half_head
        .write_all(b"GET /latest/meta-data/ HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let mut half_body = TcpStream::connect(addr).await.unwrap();
    half_body
        .write_all(b"PUT /latest/api/token HTTP/1.1\r\nContent-Length: 100\r\n\r\nab")
        .await
        .unwrap();

    let started = Instant::now();
    assert_eq!(status_line(addr, GET).await, "HTTP/1.1 404 Not Found");
    assert!(
        started.elapsed() < SHORT.idle,
        "answered while the others hang"
    );

    assert_eq!(until_closed(&mut half_head).await.as_deref(), Some(""));
    assert_eq!(until_closed(&mut half_body).await.as_deref(), Some(""));
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn oversized_and_unframed_requests_are_refused_and_closed() {
    let dir = tempfile::tempdir().unwrap();
    let addr = server(&dir, SHORT).await;
    // Exactly the bound, so that the server has read all of it when it closes (unread
    // bytes would turn its close into a reset that can overtake the answer).
    let endless_line = vec![b'a'; http::MAX_REQUEST];
    assert_eq!(
        status_line(addr, &endless_line).await,
        "HTTP/1.1 400 Bad Request"
    );
    let big_body = b"PUT /latest/api/token HTTP/1.1\r\nContent-Length: 16385\r\n\r\n";
    assert_eq!(
        status_line(addr, big_body).await,
        "HTTP/1.1 413 Request Entity Too Large"
    );
    let chunked = b"PUT /latest/api/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n";
    assert_eq!(status_line(addr, chunked).await, "HTTP/1.1 400 Bad Request");
    assert_eq!(
        status_line(addr, b"\x00\xff garbage\r\n\r\n").await,
        "HTTP/1.1 400 Bad Request"
    );
    // A well-formed request on the same server still gets its answer.
    assert_eq!(status_line(addr, GET).await, "HTTP/1.1 404 Not Found");
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_until_one_ends() {
    let dir = tempfile::tempdir().unwrap();
    let long = Deadlines {
        idle: Duration::from_secs(20),
        transfer: Duration::from_secs(20),
    };
    let addr = server(&dir, long).await;
    let mut held = Vec::new();
    for _ in 0..MAX_CONNECTIONS {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // The held ones are served: one answers on its kept-alive connection.
    held[0]
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), held[0].read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 404"));
    let mut extra = TcpStream::connect(addr).await.unwrap();
    extra.write_all(GET).await.ok();
    assert_eq!(
        until_closed(&mut extra).await.as_deref(),
        Some(""),
        "closed unanswered"
    );
    held.pop();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(status_line(addr, GET).await, "HTTP/1.1 404 Not Found");
}
