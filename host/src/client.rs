//! The one small HTTP/1.1 client of the project: a request on a new connection, the whole
//! response read. The command-line client, the tests and the benchmarks all use it.

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::BodyExt as _;
use tokio::net::TcpStream;

/// The error type request bodies may fail with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Sends `request` on a new connection to `address` (`host:port`) and reads the whole
/// response. The request's URI is sent as given (a path, usually): set `host` yourself.
///
/// # Errors
///
/// Connection, protocol or body errors.
pub async fn send<B>(address: &str, request: Request<B>) -> anyhow::Result<Response<Bytes>>
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let stream = TcpStream::connect(address).await?;
    let _ = stream.set_nodelay(true);
    send_on(stream, request).await
}

/// [`send`] on a connection the caller opened (a TLS stream, say).
///
/// # Errors
///
/// Protocol or body errors.
pub async fn send_on<S, B>(stream: S, request: Request<B>) -> anyhow::Result<Response<Bytes>>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let (parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    Ok(Response::from_parts(parts, body))
}

/// A `multipart/form-data` body of `(field name, content type, bytes)` parts, and its
/// content type.
pub fn multipart(parts: &[(&str, &str, &[u8])]) -> (String, Vec<u8>) {
    const BOUNDARY: &str = "wasmount-multipart-7d3f9a2c41b8";
    let size: usize = parts.iter().map(|(_, _, bytes)| bytes.len() + 160).sum();
    let mut body = Vec::with_capacity(size + 64);
    for (name, content_type, bytes) in parts {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"{name}\"\r\n\
                 content-type: {content_type}\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Lowercase hex SHA-256 of `bytes`: how wasmount names a component's content.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
