//! A test guest that reports what it received, as JSON: method, path, query, mount prefix,
//! headers and body length.
//!
//! - `?sleep_ms=N` waits N ms before answering (graceful shutdown tests);
//! - `/stream?bytes=N` streams N bytes (`0123456789` repeated) in 64 KiB chunks;
//! - `/log?msg=TEXT` prints TEXT to stdout and stderr first;
//! - `/env`, `/fs` and `/fetch?url=URL` report what the sandbox grants: the environment, the
//!   files at `/`, and the outcome of an outgoing request;
//! - `/read?path=P` and `/write?path=P` try to read or create a file;
//! - `/connect?addr=IP:PORT` tries to open a TCP socket;
//! - `/count` tells how many requests this instance has served (1 unless the host reuses
//!   instances), `/trap` panics (the instance traps);
//! - `/overreach` answers with the response headers an app may not send in path mode (a
//!   service worker over the whole origin, cookies for other paths and domains,
//!   `Clear-Site-Data`, HSTS) beside a cookie of its own and a harmless header.

use futures_lite::stream;
use wasmount_sdk::form::Form;
use wasmount_sdk::{Ctx, response};
use wstd::http::body::Bytes;
use wstd::http::{Body, Error, HeaderValue, Request, Response};
use wstd::time::Duration;

const CHUNK: usize = 64 * 1024;

/// Requests this instance has served.
static SERVED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    let served = SERVED.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    let mut ctx = Ctx::new(request, Vec::new());
    let query = ctx.query_form();
    if let Some(ms) = query.get("sleep_ms").and_then(|ms| ms.parse().ok()) {
        wstd::task::sleep(Duration::from_millis(ms)).await;
    }
    match ctx.path() {
        "/stream" => Ok(stream_bytes(number(&query, "bytes"))),
        "/count" => Ok(response::text(format!("{served}\n"))),
        "/trap" => panic!("trap requested"),
        "/overreach" => Ok(overreaching_headers()),
        "/env" => {
            let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
            Ok(response::text(format!(
                "{} variables\n{}",
                vars.len(),
                vars.join("\n")
            )))
        }
        "/fs" => Ok(match std::fs::read_dir("/") {
            Ok(entries) => response::text(format!("listed {} entries\n", entries.count())),
            Err(error) => response::text(format!("no files: {error}\n")),
        }),
        "/read" => Ok(
            match std::fs::read_to_string(query.get("path").unwrap_or("")) {
                Ok(text) => response::text(format!("read: {text}")),
                Err(error) => response::text(format!("refused: {error}\n")),
            },
        ),
        "/write" => Ok(
            match std::fs::write(query.get("path").unwrap_or(""), b"written") {
                Ok(()) => response::text("wrote\n"),
                Err(error) => response::text(format!("refused: {error}\n")),
            },
        ),
        "/connect" => Ok(
            match std::net::TcpStream::connect(query.get("addr").unwrap_or("")) {
                Ok(_) => response::text("connected\n"),
                Err(error) => response::text(format!("refused: {error}\n")),
            },
        ),
        "/fetch" => {
            let url = query.get("url").unwrap_or("").to_owned();
            let request = Request::get(url.as_str()).body(Body::empty())?;
            Ok(match wstd::http::Client::new().send(request).await {
                Ok(fetched) => response::text(format!("fetched: {}\n", fetched.status())),
                Err(error) => response::text(format!("refused: {error:?}\n")),
            })
        }
        "/log" => {
            let message = query.get("msg").unwrap_or("");
            println!("{message}");
            eprintln!("{message}");
            Ok(response::text("logged\n"))
        }
        _ => {
            let body_len = ctx.body_bytes().await?.len();
            Ok(response::json_text(report(&ctx, body_len)))
        }
    }
}

fn overreaching_headers() -> Response<Body> {
    let mut response = response::text("overreached\n");
    let headers = response.headers_mut();
    for (name, value) in [
        ("service-worker-allowed", "/"),
        ("set-cookie", "wide=1; Path=/"),
        ("set-cookie", "elsewhere=1; Domain=localhost"),
        ("set-cookie", "own=1; HttpOnly"),
        ("clear-site-data", "\"*\""),
        (
            "strict-transport-security",
            "max-age=31536000; includeSubDomains",
        ),
        ("x-kept", "yes"),
    ] {
        headers.append(name, HeaderValue::from_static(value));
    }
    response
}

fn number(query: &Form, name: &str) -> usize {
    query.get(name).and_then(|n| n.parse().ok()).unwrap_or(0)
}

fn stream_bytes(total: usize) -> Response<Body> {
    let chunks = stream::unfold(0usize, move |sent| async move {
        (sent < total).then(|| {
            let len = CHUNK.min(total - sent);
            let chunk: Vec<u8> = (sent..sent + len).map(|i| b'0' + (i % 10) as u8).collect();
            (Bytes::from(chunk), sent + len)
        })
    });
    let mut response = Response::new(Body::from_stream(chunks));
    response
        .headers_mut()
        .insert("content-type", "application/octet-stream".parse().unwrap());
    response
}

fn report(ctx: &Ctx, body_len: usize) -> String {
    let headers: Vec<String> = ctx
        .request()
        .headers()
        .iter()
        .map(|(name, value)| {
            format!(
                "{}:{}",
                json_string(name.as_str()),
                json_string(&String::from_utf8_lossy(value.as_bytes()))
            )
        })
        .collect();
    format!(
        "{{\"method\":{},\"path\":{},\"query\":{},\"prefix\":{},\"headers\":{{{}}},\"body_len\":{}}}\n",
        json_string(ctx.method().as_str()),
        json_string(ctx.path()),
        json_string(ctx.query().unwrap_or("")),
        json_string(ctx.prefix()),
        headers.join(","),
        body_len
    )
}

fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
