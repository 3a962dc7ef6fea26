//! A test guest that serves one request per instance, as some runtimes do
//! (componentize-js): a reused instance returns without setting a response. Written against
//! the raw `wasi:http` bindings, since an SDK always responds.
//!
//! - on a fresh instance, `?sleep_ms=N` waits N ms, then answers `served`;
//! - on a reused one, it returns at once without a response.

use std::sync::atomic::{AtomicU32, Ordering};
use wasip2::exports::http::incoming_handler::Guest;
use wasip2::http::types::{
    Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

static SERVED: AtomicU32 = AtomicU32::new(0);

struct Once;

impl Guest for Once {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        if SERVED.fetch_add(1, Ordering::Relaxed) > 0 {
            return; // reused: no response
        }
        if let Some(ms) = sleep_ms(&request) {
            wasip2::clocks::monotonic_clock::subscribe_duration(ms * 1_000_000).block();
        }
        let response = OutgoingResponse::new(Fields::new());
        let body = response.body().expect("a response body");
        ResponseOutparam::set(response_out, Ok(response));
        let stream = body.write().expect("a body stream");
        stream
            .blocking_write_and_flush(b"served\n")
            .expect("writing the body");
        drop(stream);
        OutgoingBody::finish(body, None).expect("finishing the body");
    }
}

fn sleep_ms(request: &IncomingRequest) -> Option<u64> {
    let path = request.path_with_query()?;
    let (_, query) = path.split_once('?')?;
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("sleep_ms="))
        .and_then(|ms| ms.parse().ok())
}

wasip2::http::proxy::export!(Once);

fn main() {}
