//! Run with `bench/launch.sh` (it starts the server and mounts the apps), or by hand:
//! `launch-latency ADDR TOKEN latency APP [DATA_ADDR] ROUNDS` or
//! `launch-latency ADDR TOKEN fill APP COUNT CONCURRENCY`.
//!
//! `latency`: ROUNDS times, launches an instance of APP and requests its URL until it answers
//! 200, timing the launch call and launch → first 200. With DATA_ADDR, this program serves a
//! small TSV there and the input points at it (the app fetches it on every request).
//! `fill`: launches COUNT instances of APP, CONCURRENCY at a time, and reports launches per
//! second (each input is 100 bytes).

use bytes::Bytes;
use hyper::{Method, StatusCode};
use std::time::{Duration, Instant};
use wasmount_bench::request;

const USAGE: &str = "usage: launch-latency ADDR TOKEN (latency APP [DATA_ADDR] ROUNDS | fill APP COUNT CONCURRENCY)";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, token, mode, app, rest @ ..] = args.as_slice() else {
        panic!("{USAGE}");
    };
    match (mode.as_str(), rest) {
        ("latency", [rounds]) => {
            latency(addr, token, app, None, rounds.parse().expect(USAGE)).await
        }
        ("latency", [data, rounds]) => {
            latency(addr, token, app, Some(data), rounds.parse().expect(USAGE)).await;
        }
        ("fill", [count, concurrency]) => {
            fill(
                addr,
                token,
                app,
                count.parse().expect(USAGE),
                concurrency.parse().expect(USAGE),
            )
            .await;
        }
        _ => panic!("{USAGE}"),
    }
}

async fn latency(addr: &str, token: &str, app: &str, data: Option<&String>, rounds: usize) {
    if let Some(data) = data {
        serve_data(data).await;
    }
    let mut launches = Vec::with_capacity(rounds);
    let mut first_oks = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let input = match data {
            Some(data) => format!(
                r#"{{"file_relationships": ["http://{data}/media/expression-{round}.tsv"], "parameters": [], "node_info": {{}}}}"#
            ),
            None => r#"{"file_relationships": [], "parameters": []}"#.to_owned(),
        };
        let body = format!(r#"{{"app": "{app}", "input": {input}}}"#);
        let started = Instant::now();
        let (status, reply) = request(
            addr,
            Method::POST,
            "/_wasmount/instances",
            token,
            Bytes::from(body),
        )
        .await;
        launches.push(started.elapsed());
        assert_eq!(status, StatusCode::CREATED, "launch refused: {reply}");
        let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
        let path = format!("/{}/", reply["name"].as_str().expect("a name"));
        loop {
            let (status, page) = request(addr, Method::GET, &path, token, Bytes::new()).await;
            if status == StatusCode::OK {
                if data.is_some() {
                    assert!(
                        page.contains("<th>GENE0</th>"),
                        "the page lacks the data: {page}"
                    );
                }
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{path}: {status} {page}"
            );
        }
        first_oks.push(started.elapsed());
    }
    let what = if data.is_some() {
        "with a data fetch"
    } else {
        "no data fetch"
    };
    println!("{app} ({what}), {rounds} launches:");
    println!("  launch call          {}", summary(&mut launches));
    println!("  launch -> first 200  {}", summary(&mut first_oks));
}

async fn fill(addr: &str, token: &str, app: &str, count: usize, concurrency: usize) {
    let started = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (addr, token, app, next) = (
            addr.to_owned(),
            token.to_owned(),
            app.to_owned(),
            next.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    return;
                }
                // 100 bytes of input each.
                let input = format!(r#"{{"file_relationships": ["http://data.example/f/{i:010}.tsv"], "p": "{:0>27}"}}"#, i);
                assert_eq!(input.len(), 100, "{input}");
                let body = format!(r#"{{"app": "{app}", "input": {input}}}"#);
                let (status, reply) =
                    request(&addr, Method::POST, "/_wasmount/instances", &token, Bytes::from(body)).await;
                assert_eq!(status, StatusCode::CREATED, "launch refused: {reply}");
            }
        }));
    }
    for worker in workers {
        worker.await.expect("a launch worker");
    }
    let elapsed = started.elapsed();
    println!(
        "{count} launches of {app}, {concurrency} at a time: {:.2} s, {:.0} launches/s",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    );
}

/// Serves a 30 × 8 TSV at every path of `addr`, as Refinery's media server would.
async fn serve_data(addr: &str) {
    let mut tsv = String::from("gene");
    for column in 0..8 {
        tsv.push_str(&format!("\tsample{column}"));
    }
    tsv.push('\n');
    for row in 0..30 {
        tsv.push_str(&format!("GENE{row}"));
        for column in 0..8 {
            tsv.push_str(&format!("\t{}", (row * 7 + column * 3) % 17));
        }
        tsv.push('\n');
    }
    let tsv = Bytes::from(tsv);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("binding the data server");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tsv = tsv.clone();
            let service = hyper::service::service_fn(move |_request| {
                let tsv = tsv.clone();
                async move {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(tsv),
                    ))
                }
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
}

fn summary(times: &mut [Duration]) -> String {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    format!(
        "median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(at(0.5)),
        ms(at(0.9)),
        ms(times[times.len() - 1])
    )
}
