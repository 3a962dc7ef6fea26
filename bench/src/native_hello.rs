//! Run with `cargo run --release -p wasmount-bench --bin native-hello -- 127.0.0.1:18082`.
//!
//! A native hyper server answering every request with a short greeting: the ceiling that
//! `bench/run.sh` compares wasmount with (same runtime, same HTTP stack, no WebAssembly).

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18082".into());
    let listener = TcpListener::bind(&addr).await?;
    eprintln!(
        "native hello listening on http://{}",
        listener.local_addr()?
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request: Request<hyper::body::Incoming>| async {
                let mut response = Response::new(Full::new(Bytes::from_static(
                    b"<!doctype html><title>hello</title><h1>Hello from native hyper!</h1>\n",
                )));
                response.headers_mut().insert(
                    "content-type",
                    hyper::header::HeaderValue::from_static("text/html; charset=utf-8"),
                );
                Ok::<_, Infallible>(response)
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
