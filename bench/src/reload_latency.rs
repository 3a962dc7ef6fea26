//! Run with `cargo run --release -p wasmount-bench --bin reload-latency -- ADDR TOKEN NAME FILE SOURCE [ROUNDS]`.
//!
//! Measures hot reload as an app developer sees it: writes a new build of `SOURCE` (the
//! component plus a custom section that makes its content unique) to `FILE`, which a
//! `wasmount dev --app NAME=FILE` server at `ADDR` watches, and times from the file being
//! closed until the new version is serving and answers `GET /NAME/` with 200.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::{Request, StatusCode};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

async fn get(addr: &str, path: &str, token: &str) -> (StatusCode, String) {
    let stream = TcpStream::connect(addr)
        .await
        .expect("connecting to the server");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .expect("handshake");
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", addr)
        .header("authorization", format!("Bearer {token}"))
        .body(Empty::<Bytes>::new())
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

/// `component` with a custom section appended: same behaviour, different bytes.
fn unique_build(component: &[u8], round: usize) -> Vec<u8> {
    let name = b"bench";
    let payload = format!("round {round}");
    let mut section = vec![name.len() as u8];
    section.extend_from_slice(name);
    section.extend_from_slice(payload.as_bytes());
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section id
    bytes.push(section.len() as u8); // LEB128, < 128
    bytes.extend_from_slice(&section);
    bytes
}

fn sha256_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(bytes);
    digest.iter().fold(String::new(), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, token, name, file, source, rest @ ..] = args.as_slice() else {
        panic!("usage: reload-latency ADDR TOKEN NAME FILE SOURCE [ROUNDS]");
    };
    let rounds: usize = rest
        .first()
        .map_or(5, |r| r.parse().expect("ROUNDS is a number"));
    let component = std::fs::read(source).expect("reading SOURCE");
    let mut times = Vec::new();
    for round in 0..rounds {
        let build = unique_build(&component, round + std::process::id() as usize);
        let expected = sha256_hex(&build);
        std::fs::write(file, &build).expect("writing the build"); // open, write, close
        let closed = Instant::now();
        loop {
            let (_, info) = get(addr, &format!("/_wasmount/apps/{name}"), token).await;
            if info.contains(&expected) {
                break;
            }
            assert!(
                closed.elapsed() < Duration::from_secs(30),
                "{name} never reloaded: {info}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (status, _) = get(addr, &format!("/{name}/"), token).await;
        assert_eq!(status, StatusCode::OK, "the new version answers");
        let elapsed = closed.elapsed().as_secs_f64() * 1000.0;
        times.push(elapsed);
        println!("{name:<6} round {round}: file closed -> new version answering {elapsed:>6.1} ms");
        tokio::time::sleep(Duration::from_millis(400)).await; // let the optimized build land
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name:<6} median {:.1} ms, max {:.1} ms over {rounds} reloads",
        times[times.len() / 2],
        times[times.len() - 1]
    );
}
