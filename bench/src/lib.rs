//! What the benchmark programs share: one HTTP/1.1 request to a wasmount server on loopback.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode};
use tokio::net::TcpStream;

/// Sends one request with the admin `token` on a new connection to `addr`; returns the status
/// and the body as text. Panics on connection errors: a benchmark cannot go on without them.
pub async fn request(
    addr: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Bytes,
) -> (StatusCode, String) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the server");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(body))
        .expect("a request");
    let response = sender.send_request(request).await.expect("a response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("a body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}
