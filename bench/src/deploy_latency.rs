//! Run with `cargo run --release -p wasmount-bench --bin deploy-latency -- ADDR TOKEN NAME=FILE…`.
//!
//! For each `NAME=FILE`: uploads the component to the wasmount server at `ADDR` and requests
//! `/NAME/` until it answers 200, printing the upload time and the time to the first 200 (both
//! from the start of the upload). `bench/deploy.sh` runs it against a fresh server.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_bench::request;

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let addr = args
        .next()
        .expect("usage: deploy-latency ADDR TOKEN NAME=FILE…");
    let token = args
        .next()
        .expect("usage: deploy-latency ADDR TOKEN NAME=FILE…");
    for pair in args {
        let (name, file) = pair.split_once('=').expect("NAME=FILE");
        let bytes = Bytes::from(std::fs::read(file).expect("reading the component"));
        let size = bytes.len();
        let started = Instant::now();
        let (status, reply) = request(
            &addr,
            Method::PUT,
            &format!("/_wasmount/apps/{name}"),
            &token,
            bytes,
        )
        .await;
        let uploaded = started.elapsed();
        assert!(
            status.is_success(),
            "upload of {name} refused: {status} {reply}"
        );
        loop {
            let (status, _) = request(
                &addr,
                Method::GET,
                &format!("/{name}/"),
                &token,
                Bytes::new(),
            )
            .await;
            if status == StatusCode::OK {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} never answered"
            );
        }
        let first_ok = started.elapsed();
        // With the baseline compiler, the optimized build is swapped in later: time that too.
        let optimized = loop {
            let (_, info) = request(
                &addr,
                Method::GET,
                &format!("/_wasmount/apps/{name}"),
                &token,
                Bytes::new(),
            )
            .await;
            let compiled = serde_json::from_str::<serde_json::Value>(&info)
                .ok()
                .map(|v| v["compiled"].clone());
            if compiled.as_ref().and_then(|c| c.as_str()) != Some("baseline") {
                break started.elapsed();
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "{name} was never optimized"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        };
        let compile_ms = serde_json::from_str::<serde_json::Value>(&reply)
            .ok()
            .and_then(|v| v["compile_ms"].as_f64())
            .unwrap_or(f64::NAN);
        println!(
            "{name:<6} {size:>7} bytes  acknowledged {:>6.1} ms  first 200 {:>6.1} ms  (first compile {compile_ms:.1} ms)  optimized serving {:>6.1} ms",
            uploaded.as_secs_f64() * 1000.0,
            first_ok.as_secs_f64() * 1000.0,
            optimized.as_secs_f64() * 1000.0
        );
    }
}
