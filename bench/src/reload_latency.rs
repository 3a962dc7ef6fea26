//! Run with `cargo run --release -p wasmount-bench --bin reload-latency -- ADDR TOKEN NAME FILE SOURCE [ROUNDS]`.
//!
//! Measures hot reload as an app developer sees it: writes a new build of `SOURCE` (the
//! component plus a custom section that makes its content unique) to `FILE`, which a
//! `wasmount dev --app NAME=FILE` server at `ADDR` watches, and times from the file being
//! closed until the new version is serving and answers `GET /NAME/` with 200.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_bench::request;

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
        let expected = wasmount::client::sha256_hex(&build);
        std::fs::write(file, &build).expect("writing the build"); // open, write, close
        let closed = Instant::now();
        loop {
            let (_, info) = request(
                addr,
                Method::GET,
                &format!("/_wasmount/apps/{name}"),
                token,
                Bytes::new(),
            )
            .await;
            if info.contains(&expected) {
                break;
            }
            assert!(
                closed.elapsed() < Duration::from_secs(30),
                "{name} never reloaded: {info}"
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let (status, _) =
            request(addr, Method::GET, &format!("/{name}/"), token, Bytes::new()).await;
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
