//! `wasmount-sdk`: a small layer over [`wstd`] for writing wasmount guest apps.
//!
//! A guest is a standard `wasi:http/proxy` component; this crate only makes the common parts
//! short: routing by method and path, responses with the right content type, the mount prefix
//! the host forwards in `x-forwarded-prefix`, forms, and static assets embedded in the component.
//! Nothing here is wasmount-specific at run time: the same component runs under
//! `wasmtime serve` and Spin.
//!
//! # Examples
//!
//! A whole guest (`src/main.rs` of a crate built with `cargo build --target wasm32-wasip2`):
//!
//! ```no_run
//! use wasmount_sdk::{Ctx, Router, response};
//! use wstd::http::{Body, Error, Request, Response};
//!
//! #[wstd::http_server]
//! async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
//!     Router::new()
//!         .get("/", |_ctx: Ctx| async { Ok(response::text("hello\n")) })
//!         .get("/hi/{name}", |ctx: Ctx| async move {
//!             Ok(response::text(format!("hi {}\n", ctx.param("name").unwrap_or("?"))))
//!         })
//!         .serve(request)
//!         .await
//! }
//! ```
//!
//! A JSON API: [`serde`] and [`serde_json`] are re-exported, so an app needs no dependency of
//! its own on them; derives then name the path with `#[serde(crate = "wasmount_sdk::serde")]`.
//! [`Ctx::json`] reads a body, [`response::json`] answers one, and errors of a request that
//! sent or accepts JSON are JSON too (see [`HttpError`]):
//!
//! ```
//! use wasmount_sdk::serde::{Deserialize, Serialize};
//! use wasmount_sdk::{Body, Ctx, Request, Router, StatusCode, response, testing};
//!
//! #[derive(Deserialize, Serialize)]
//! #[serde(crate = "wasmount_sdk::serde")]
//! struct Note {
//!     text: String,
//! }
//!
//! let router = Router::new().post("/notes", |mut ctx: Ctx| async move {
//!     let note: Note = ctx.json().await?;
//!     Ok(response::with_status(StatusCode::CREATED, response::json(&note)))
//! });
//! let request = Request::post("/notes")
//!     .header("content-type", "application/json")
//!     .body(Body::from(r#"{"text": "hi"}"#))
//!     .unwrap();
//! let mut created = testing::call(&router, request);
//! assert_eq!(created.status(), StatusCode::CREATED);
//! assert_eq!(testing::body_text(&mut created), r#"{"text":"hi"}"#);
//! ```
#![deny(missing_docs)]

mod assets;
mod context;
pub mod form;
pub mod html;
pub mod input;
mod media;
pub mod response;
mod router;
pub mod testing;

pub use assets::{Asset, content_type_for};
pub use context::Ctx;
pub use router::{HandlerResult, HttpError, Router};
pub use serde;
pub use serde_json;
pub use wstd;
pub use wstd::http::{Body, Method, Request, Response, StatusCode};

/// The request header in which wasmount (and any WSGI-style proxy) passes the mount prefix.
pub const FORWARDED_PREFIX_HEADER: &str = "x-forwarded-prefix";
