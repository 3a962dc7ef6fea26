//! An HTTPS client for the tests: rustls trusting one test CA, HTTP/2 or HTTP/1.1 chosen by
//! ALPN, on hyper's own client connections.

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::client::TlsStream;

/// A TLS client that trusts the CA in `ca_pem` and offers `alpn` (e.g. `h2`, `http/1.1`).
pub fn client(ca_pem: &Path, alpn: &[&str]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_pem).expect("reading the test CA") {
        roots.add(cert.expect("a PEM certificate")).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr`, its handshake done.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::IpAddress(addr.ip().into());
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// The protocol ALPN chose, and the server's certificate, of a connection.
pub fn negotiated(stream: &TlsStream<tokio::net::TcpStream>) -> (String, Vec<u8>) {
    let session = stream.get_ref().1;
    let alpn = String::from_utf8_lossy(session.alpn_protocol().unwrap_or_default()).into_owned();
    let cert = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|cert| cert.as_ref().to_vec())
        .unwrap_or_default();
    (alpn, cert)
}

/// An answer: status, the HTTP version it came in, and the body as text.
#[derive(Debug)]
pub struct Answer {
    /// The status.
    pub status: StatusCode,
    /// `HTTP/2.0` or `HTTP/1.1`.
    pub version: http::Version,
    /// The body.
    pub text: String,
}

/// Sends `GET path` on a new HTTP/2 connection over `stream`.
pub async fn get_h2(
    stream: TlsStream<tokio::net::TcpStream>,
    addr: SocketAddr,
    path: &str,
) -> Answer {
    let (mut sender, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
        .await
        .expect("an HTTP/2 handshake");
    tokio::spawn(connection);
    let request = Request::get(format!("https://{addr}{path}"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    answer(sender.send_request(request).await).await
}

/// An HTTP/1.1 connection over `stream`, kept open for more requests.
pub async fn open_h1(stream: TlsStream<tokio::net::TcpStream>) -> http1::SendRequest<Empty<Bytes>> {
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .expect("an HTTP/1.1 handshake");
    tokio::spawn(connection);
    sender
}

/// Sends `GET path` on an open HTTP/1.1 connection.
pub async fn get_h1(
    sender: &mut http1::SendRequest<Empty<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> Answer {
    sender.ready().await.expect("the connection is open");
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    answer(sender.send_request(request).await).await
}

async fn answer(sent: hyper::Result<http::Response<hyper::body::Incoming>>) -> Answer {
    let response = sent.expect("an answer");
    let (status, version) = (response.status(), response.version());
    let body = response
        .into_body()
        .collect()
        .await
        .expect("the body")
        .to_bytes();
    Answer {
        status,
        version,
        text: String::from_utf8_lossy(&body).into_owned(),
    }
}
