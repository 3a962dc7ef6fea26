//! Calling a [`Router`] without a server, for an app's unit tests.
//!
//! `wstd` compiles for the native target (its WASI imports are stubs there that panic when
//! called), and its executor runs natively as long as nothing waits on WASI. So handlers that
//! only look at the request, read an in-memory body and build a response can be tested with a
//! plain `cargo test` on the host. Handlers that do I/O through WASI (outgoing HTTP such as
//! [`fetch_text`](crate::input::fetch_text), `wstd::task::sleep`) panic natively; test those
//! under `wasm32-wasip2` (with a runner such as `wasmtime`) instead.
//!
//! In a plain `#[test]`, use [`call`]; in an async `#[wstd::test]` (which already runs on
//! `wstd`'s executor), `router.handle(request).await` instead, since executors do not nest.
//!
//! # Examples
//!
//! ```
//! use wasmount_sdk::{Body, Ctx, Request, Router, StatusCode, response, testing};
//!
//! let router = Router::new().get("/hi/{name}", |ctx: Ctx| async move {
//!     Ok(response::text(format!("hi {}", ctx.param("name").unwrap_or("?"))))
//! });
//! let request = Request::get("/hi/ada").body(Body::empty()).unwrap();
//! let mut response = testing::call(&router, request);
//! assert_eq!(response.status(), StatusCode::OK);
//! assert_eq!(testing::body_text(&mut response), "hi ada");
//! ```

use crate::{Body, Request, Response, Router};
use std::future::Future;

/// Runs `future` to completion on `wstd`'s executor.
///
/// # Panics
///
/// Inside another `block_on` (such as a handler), or natively when `future` waits on WASI.
pub fn block_on<F: Future>(future: F) -> F::Output {
    wstd::runtime::block_on(future)
}

/// The response `router` gives to `request`, as a server would get it.
///
/// # Panics
///
/// As [`block_on`].
pub fn call(router: &Router, request: Request<Body>) -> Response<Body> {
    block_on(router.handle(request))
}

/// The whole body of `response` as text; invalid UTF-8 is replaced.
///
/// # Panics
///
/// When the body cannot be read, and as [`block_on`].
pub fn body_text(response: &mut Response<Body>) -> String {
    let bytes = block_on(response.body_mut().contents()).expect("reading the response body");
    String::from_utf8_lossy(bytes).into_owned()
}
