//! A hostile guest for tests: each path misbehaves in one way a host must survive.
//!
//! - `/loop`: spins forever before responding;
//! - `/loop-after-headers`: sends headers and a first chunk, then spins forever;
//! - `/alloc`: allocates memory until it runs out;
//! - `/fill?mib=N`: grows its memory by N MiB (48 by default), writes every page, then answers
//!   with a 4 MiB body — a heavy but well-behaved request, for memory benchmarks;
//! - `/recurse`: recurses until the stack is exhausted;
//! - `/headers`: answers with 10,000 headers;
//! - `/big-header`: answers with one 1 MiB header;
//! - `/no-response`: returns without ever setting a response;
//! - anything else: `ok`, so tests can show the app itself still answers.

use futures_lite::stream;
use wstd::__internal::wasip2;
use wstd::http::body::Bytes;
use wstd::http::server::Responder;
use wstd::http::{Body, Error, Request, Response};

/// The export by hand (what `#[wstd::http_server]` generates), so one path can skip setting
/// the response at all.
struct Hostile;

impl wasip2::exports::http::incoming_handler::Guest for Hostile {
    fn handle(
        request: wasip2::http::types::IncomingRequest,
        response_out: wasip2::http::types::ResponseOutparam,
    ) {
        let request = match wstd::http::request::try_from_incoming(request) {
            Ok(request) => request,
            Err(error) => return Responder::new(response_out).fail(error),
        };
        if request.uri().path() == "/no-response" {
            drop(response_out);
            return;
        }
        let responder = Responder::new(response_out);
        wstd::runtime::block_on(async move {
            match handle(request).await {
                Ok(response) => responder.respond(response).await.unwrap(),
                Err(error) => responder.fail(error),
            }
        })
    }
}

wasip2::http::proxy::export!(Hostile with_types_in wasip2);

/// Never called: the component's entry point is the exported handler above (a binary crate
/// still needs a `main`, as with `#[wstd::http_server]`).
fn main() {}

async fn handle(request: Request<Body>) -> Result<Response<Body>, Error> {
    match request.uri().path() {
        "/loop" => spin(),
        "/loop-after-headers" => {
            let mut sent = false;
            let chunks = stream::poll_fn(move |_| {
                if !sent {
                    sent = true;
                    return std::task::Poll::Ready(Some(Bytes::from_static(b"first chunk\n")));
                }
                spin()
            });
            Ok(Response::new(Body::from_stream(chunks)))
        }
        "/alloc" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "/fill" => {
            let mib = query_number(request.uri().query(), "mib").unwrap_or(48);
            let hoard = vec![1u8; mib << 20];
            std::hint::black_box(&hoard);
            Ok(Response::new(vec![b'x'; 4 << 20].into()))
        }
        "/recurse" => Ok(Response::new(format!("{}\n", recurse(u64::MAX)).into())),
        "/headers" => {
            let mut response = Response::new(Body::empty());
            for i in 0..10_000 {
                response.headers_mut().append(
                    format!("x-flood-{i}").parse::<wstd::http::HeaderName>()?,
                    "flood".parse()?,
                );
            }
            Ok(response)
        }
        "/big-header" => {
            let mut response = Response::new(Body::empty());
            response
                .headers_mut()
                .insert("x-big", "x".repeat(1 << 20).parse()?);
            Ok(response)
        }
        _ => Ok(Response::new("ok\n".into())),
    }
}

/// The number after `NAME=` in a query string.
fn query_number(query: Option<&str>, name: &str) -> Option<usize> {
    query?
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?
        .parse()
        .ok()
}

fn spin() -> ! {
    let mut counter: u64 = 0;
    loop {
        counter = std::hint::black_box(counter.wrapping_add(1));
    }
}

fn recurse(depth: u64) -> u64 {
    if std::hint::black_box(depth) == 0 {
        return 0;
    }
    let mut frame = [0u8; 256];
    frame[0] = depth as u8;
    std::hint::black_box(&mut frame);
    recurse(depth - 1) + u64::from(frame[0])
}
