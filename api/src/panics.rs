//! A request fails alone: a panic while one is answered is logged with its request id and
//! answered with EC2's `InternalError` (HTTP 500), and the server goes on with the next
//! request, on the same connection too.

use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;

use super::errors::ApiError;
use super::http::error_response;
use host::tasks::{self, Unit};

/// The id of the request being answered: made here, used by the handler and the logs.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// `router` with every request run as a unit that fails alone.
pub fn contained(router: Router) -> Router {
    router.layer(middleware::from_fn(contain))
}

async fn contain(mut request: Request, next: Next) -> Response {
    let id = new_request_id();
    request.extensions_mut().insert(RequestId(id.clone()));
    let unit = Unit::new("api request").request(&id);
    match tasks::catch(&unit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error_response(&ApiError::internal_error(), &id),
    }
}

/// A new request id, in EC2's form (a UUID).
pub fn new_request_id() -> String {
    use rand::Rng;
    let b: [u8; 16] = rand::thread_rng().r#gen();
    let h = hex::encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    )
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use axum::Extension;
    use axum::routing::get;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{TcpListener, TcpStream};

    use super::*;
    use host::tasks::test_log::capture;

    async fn broken() -> &'static str {
        panic!("the handler broke")
    }

    async fn echo_id(Extension(RequestId(id)): Extension<RequestId>) -> String {
        format!("served {id}")
    }

    /// Sends one GET for `path` on `conn` (kept alive) and reads the status, headers and body.
    async fn exchange(conn: &mut TcpStream, path: &str) -> (u16, HashMap<String, String>, String) {
        let head = format!("GET {path} HTTP/1.1\r\nHost: agent\r\n\r\n");
        conn.write_all(head.as_bytes()).await.unwrap();
        let mut reader = BufReader::new(conn);
        let mut status = String::new();
        reader.read_line(&mut status).await.unwrap();
        let mut headers = HashMap::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            let Some((name, value)) = line.trim_end().split_once(':') else {
                break;
            };
            headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
        }
        let length: usize = headers["content-length"].parse().unwrap();
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await.unwrap();
        let code = status.split_whitespace().nth(1).unwrap().parse().unwrap();
        (code, headers, String::from_utf8(body).unwrap())
    }

    #[tokio::test]
    async fn a_panicking_request_gets_internal_error_and_the_next_one_is_served() {
        let (logs, _guard) = capture();
        let app = contained(
            Router::new()
                .route("/broken", get(broken))
                .fallback(echo_id),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let mut conn = TcpStream::connect(addr).await.unwrap();

        let (status, headers, body) = exchange(&mut conn, "/broken").await;
        assert_eq!(status, 500);
        assert_eq!(headers["content-type"], "text/xml;charset=UTF-8");
        let doc = roxmltree::Document::parse(&body).unwrap();
        let text = |tag: &str| {
            doc.descendants()
                .find(|n| n.has_tag_name(tag))
                .and_then(|n| n.text())
                .map(str::to_owned)
        };
        assert_eq!(text("Code").as_deref(), Some("InternalError"));
        assert_eq!(
            text("Message").as_deref(),
            Some("An internal error has occurred")
        );
        let failed_id = text("RequestID").unwrap();
        assert_eq!(failed_id.len(), 36);

        let (status, _, body) = exchange(&mut conn, "/?Action=DescribeInstances").await;
        assert_eq!(status, 200, "the same connection serves the next request");
        assert!(body.starts_with("served ") && !body.ends_with(&failed_id));
        let mut other = TcpStream::connect(addr).await.unwrap();
        assert_eq!(exchange(&mut other, "/").await.0, 200);

        let panics = logs.lines_with(&["a unit panicked", "api request", &failed_id]);
        assert_eq!(panics.len(), 1, "{}", logs.text());
        assert!(panics[0].contains("the handler broke"));
        server.abort();
    }
}
