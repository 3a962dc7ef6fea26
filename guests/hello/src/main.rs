//! The smallest wasmount app: a greeting, with a link that works under any mount prefix.
//! Build with `cargo build --release --target wasm32-wasip2` in `guests/`.

use wasmount_sdk::{Ctx, Router, html, response};
use wstd::http::{Body, Error, Request, Response};

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    Router::new()
        .get("/", |ctx: Ctx| async move {
            Ok(response::html(format!(
                "<!doctype html><title>hello</title><h1>Hello from wasmount!</h1>\
                 <p>This app is mounted at <code>{}/</code>. \
                 <a href=\"greet/world\">Say hi</a> (a relative link).</p>\n",
                html::escape(ctx.prefix())
            )))
        })
        .get("/greet/{name}", |ctx: Ctx| async move {
            Ok(response::text(format!(
                "Hello, {}!\n",
                ctx.param("name").unwrap_or("stranger")
            )))
        })
        .serve(request)
        .await
}
