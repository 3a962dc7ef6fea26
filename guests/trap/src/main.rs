//! A hostile guest for tests: it panics (a wasm trap) before sending any response.
//! `/ok` answers normally, so tests can show the next request still works.

use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    match request.uri().path() {
        "/ok" => Ok(Response::new("still alive\n".into())),
        path => panic!("trap guest asked to fail at {path}"),
    }
}
