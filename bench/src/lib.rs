//! What the benchmark programs share: one HTTP/1.1 request to a wasmount server on loopback.

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, StatusCode};

/// Sends one request with the admin `token` on a new connection to `addr`; returns the status
/// and the body as text. Panics on connection errors: a benchmark cannot go on without them.
pub async fn request(
    addr: &str,
    method: Method,
    path: &str,
    token: &str,
    body: Bytes,
) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(body))
        .expect("a request");
    let response = wasmount::client::send(addr, request)
        .await
        .expect("a response from the server");
    let status = response.status();
    (
        status,
        String::from_utf8_lossy(response.body()).into_owned(),
    )
}
