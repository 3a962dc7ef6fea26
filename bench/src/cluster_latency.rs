//! The timings of `bench/cluster.sh`, against running nodes that share one PostgreSQL store:
//!
//! - `propagation TOKEN COMPONENT ROUNDS WRITER READER…`: uploads ROUNDS new apps (the
//!   component made distinct by a custom section) on WRITER; for each, the time from the
//!   upload's answer until every READER serves it, learned from the store's notification
//!   (each reader's table is polled through the admin API, which never reads through).
//!   `PAUSE_MS` (default 1000) apart, so the nodes' background optimizing compiles of one
//!   round do not slow the next;
//! - `launch TOKEN APP ROUNDS WRITER READER`: launches APP on WRITER and sends the first
//!   request for the new instance to READER at once (it reads through to the store);
//! - `fill TOKEN COMPONENT COUNT WRITER`: uploads COUNT distinct apps `fill-N`;
//! - `serving COUNT NODE`: waits until `/fill-0/` … `/fill-{COUNT-1}/` all answer 200 on
//!   NODE and its health is 200, and prints how long that took;
//! - `recovered TOKEN COMPONENT NODE…`: waits until an upload works again and every node
//!   says it is in sync, and prints how long that took.
//!
//! Every loop is bounded in count and time. Loopback only.

use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_bench::request;

/// How long one condition may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(120);

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| {
        args.get(i)
            .map(String::as_str)
            .expect("see the usage in the source")
    };
    match arg(0) {
        "propagation" => {
            let rounds = arg(3).parse().unwrap();
            propagation(arg(1), arg(2), rounds, arg(4), &args[5..]).await;
        }
        "launch" => launch(arg(1), arg(2), arg(3).parse().unwrap(), arg(4), arg(5)).await,
        "fill" => fill(arg(1), arg(2), arg(3).parse().unwrap(), arg(4)).await,
        "serving" => serving(arg(1).parse().unwrap(), arg(2)).await,
        "recovered" => recovered(arg(1), arg(2), &args[3..]).await,
        other => panic!("unknown measurement `{other}`"),
    }
}

/// `component` with a custom section holding `tag`, so each copy has its own content hash.
fn distinct(component: &[u8], tag: &str) -> Bytes {
    let name = b"bench";
    let payload_len = 1 + name.len() + tag.len();
    let mut bytes = component.to_vec();
    bytes.push(0); // custom section
    bytes.push(u8::try_from(payload_len).expect("a short tag"));
    bytes.push(name.len() as u8);
    bytes.extend_from_slice(name);
    bytes.extend_from_slice(tag.as_bytes());
    Bytes::from(bytes)
}

async fn upload(token: &str, node: &str, name: &str, bytes: Bytes) {
    let path = format!("/_wasmount/apps/{name}");
    let (status, body) = request(node, Method::PUT, &path, token, bytes).await;
    assert!(
        status.is_success(),
        "upload of {name} to {node}: {status} {body}"
    );
}

/// Polls until `check` holds, every millisecond, at most [`PATIENCE`].
async fn until<F: AsyncFnMut() -> bool>(what: &str, mut check: F) {
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < PATIENCE, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

async fn get(node: &str, path: &str, token: &str) -> StatusCode {
    request(node, Method::GET, path, token, Bytes::new())
        .await
        .0
}

async fn propagation(
    token: &str,
    component: &str,
    rounds: usize,
    writer: &str,
    readers: &[String],
) {
    let bytes = std::fs::read(component).expect("reading the component");
    let run = std::process::id();
    let pause_ms = std::env::var("PAUSE_MS").map_or(1000, |ms| ms.parse().expect("PAUSE_MS"));
    let pause = Duration::from_millis(pause_ms);
    let mut known = Vec::new();
    let mut served = Vec::new();
    for round in 0..rounds {
        let name = format!("p{run}-{round}");
        upload(token, writer, &name, distinct(&bytes, &name)).await;
        let uploaded = Instant::now();
        let (admin_path, app_path) = (format!("/_wasmount/apps/{name}"), format!("/{name}/"));
        for reader in readers {
            until("the reader to know the app", async || {
                get(reader, &admin_path, token).await == StatusCode::OK
            })
            .await;
        }
        known.push(uploaded.elapsed());
        for reader in readers {
            until("the reader to serve the app", async || {
                get(reader, &app_path, "").await == StatusCode::OK
            })
            .await;
        }
        served.push(uploaded.elapsed());
        tokio::time::sleep(pause).await;
    }
    report(
        "upload -> known to every other node (notification)",
        &mut known,
    );
    report(
        "upload -> served by every other node (compile included)",
        &mut served,
    );
}

async fn launch(token: &str, app: &str, rounds: usize, writer: &str, reader: &str) {
    let mut first = Vec::new();
    let mut whole = Vec::new();
    for round in 0..rounds {
        let body = format!(r#"{{"app": "{app}", "input": {{"round": {round}}}}}"#);
        let started = Instant::now();
        let (status, answer) = request(
            writer,
            Method::POST,
            "/_wasmount/instances",
            token,
            body.into(),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{answer}");
        let launched: serde_json::Value = serde_json::from_str(&answer).unwrap();
        let name = launched["name"].as_str().unwrap();
        let asked = Instant::now();
        let status = get(reader, &format!("/{name}/"), "").await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the first request on the other node"
        );
        first.push(asked.elapsed());
        whole.push(started.elapsed());
    }
    report(
        "first request for a new instance on another node",
        &mut first,
    );
    report("launch on one node -> first 200 on another", &mut whole);
}

async fn fill(token: &str, component: &str, count: usize, writer: &str) {
    let bytes = std::fs::read(component).expect("reading the component");
    let started = Instant::now();
    for index in 0..count {
        let name = format!("fill-{index}");
        upload(token, writer, &name, distinct(&bytes, &name)).await;
    }
    println!(
        "uploaded {count} distinct apps in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

async fn serving(count: usize, node: &str) {
    let started = Instant::now();
    until("the node's health", async || {
        matches!(
            wasmount::client::send(node, health_request(node)).await,
            Ok(response) if response.status() == StatusCode::OK
        )
    })
    .await;
    let healthy = started.elapsed();
    for index in 0..count {
        let path = format!("/fill-{index}/");
        until("every app to serve", async || {
            get(node, &path, "").await == StatusCode::OK
        })
        .await;
    }
    println!(
        "health 200 after {} ms (counted from this check's start); all {count} apps answer 200 after {} ms",
        healthy.as_millis(),
        started.elapsed().as_millis()
    );
}

fn health_request(node: &str) -> http::Request<http_body_util::Full<Bytes>> {
    http::Request::get("/_wasmount/health")
        .header("host", node)
        .body(http_body_util::Full::new(Bytes::new()))
        .unwrap()
}

async fn recovered(token: &str, component: &str, nodes: &[String]) {
    let bytes = std::fs::read(component).expect("reading the component");
    let started = Instant::now();
    let name = format!("recovered-{}", std::process::id());
    until("an upload to work again", async || {
        let path = format!("/_wasmount/apps/{name}");
        let body = distinct(&bytes, &name);
        request(&nodes[0], Method::PUT, &path, token, body)
            .await
            .0
            .is_success()
    })
    .await;
    let writable = started.elapsed();
    for node in nodes {
        until("the node to be in sync", async || {
            let (_, health) =
                request(node, Method::GET, "/_wasmount/health", "", Bytes::new()).await;
            health.contains(r#""in_sync":true"#)
        })
        .await;
    }
    println!(
        "writes work {} ms after the database is back; every node in sync after {} ms",
        writable.as_millis(),
        started.elapsed().as_millis()
    );
}

fn report(what: &str, samples: &mut [Duration]) {
    samples.sort();
    let at =
        |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what}: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} samples)",
        ms(at(0.5)),
        ms(at(0.99)),
        ms(samples[samples.len() - 1]),
        samples.len()
    );
}
