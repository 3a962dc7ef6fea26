//! {{name}}: a wasmount app, a standard `wasi:http/proxy` component written with `wasmount-sdk`.
//!
//! Routes, as the app sees them (the host strips the mount prefix, `/{{name}}`):
//! `GET /` a page, `GET /api/hello` JSON, `POST /greet` a form, `GET /static/style.css`.
//! Every link is relative, so the app works under any prefix. Launched as an instance, the
//! page also shows the instance's input (`INPUT_JSON`, or fetched from `INPUT_JSON_URL`).
//!
//! Run `wasmount dev .` in this folder: it builds, serves and rebuilds on every save.

use wasmount_sdk::input::Input;
use wasmount_sdk::serde_json::{self, Value};
use wasmount_sdk::{Asset, Ctx, HandlerResult, Router, embed_assets, html, response};
use wstd::http::{Body, Error, Request, Response};

/// The app's name, as `wasmount new` wrote it.
const APP: &str = "{{name}}";

/// Files of `static/` compiled into the component, served under `/static/`.
static ASSETS: &[Asset] = embed_assets!("static"; "style.css");

#[wstd::http_server]
async fn main(request: Request<Body>) -> Result<Response<Body>, Error> {
    Router::new()
        .get("/", index)
        .get("/api/hello", |_ctx: Ctx| async {
            // Any `Serialize` value works; `json!` is the shortest for a small reply.
            Ok(response::json(&serde_json::json!({
                "app": APP,
                "message": "hello from Rust",
                "instance": Input::instance_name(), // null unless launched as an instance
            })))
        })
        .post("/greet", greet)
        .assets("/static", ASSETS)
        .serve(request)
        .await
}

/// `GET /`: the home page, with the instance's input when the app was launched with one.
async fn index(ctx: Ctx) -> HandlerResult {
    let input = match Input::from_env().await {
        Ok(Some(input)) => input_section(&input),
        Ok(None) => String::new(), // not launched as an instance
        Err(error) => format!("<p class=\"error\">{}</p>", html::escape(&error.0)),
    };
    let body = format!(
        "<p>This app is mounted at <code>{prefix}/</code>; its links are relative, so it \
         works under any prefix.</p>\n\
         <form method=\"post\" action=\"greet\">\
         <label>Your name <input name=\"name\" required></label> <button>Greet me</button></form>\n\
         <p>JSON: <a href=\"api/hello\">api/hello</a></p>\n{input}",
        prefix = html::escape(ctx.prefix()),
    );
    Ok(response::html(page(APP, &body)))
}

/// `POST /greet`: reads the form and answers with a page.
async fn greet(mut ctx: Ctx) -> HandlerResult {
    let form = ctx.form().await?;
    let name = form
        .get("name")
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .unwrap_or("stranger");
    let body = format!(
        "<p>Hello, {}!</p>\n<p><a href=\"./\">Back</a></p>",
        html::escape(name)
    );
    Ok(response::html(page("Hello", &body)))
}

/// The input of a launched instance: its data file URLs and its parameters.
fn input_section(input: &Input) -> String {
    let files = list(input.file_urls().iter().map(|url| html::escape(url)));
    let params = list(parameters(&input.parameters).iter().map(|(name, value)| {
        format!(
            "<code>{}</code> = {}",
            html::escape(name),
            html::escape(value)
        )
    }));
    format!("<h2>Input</h2>\n<h3>Files</h3>\n{files}\n<h3>Parameters</h3>\n{params}\n")
}

/// Every parameter as (name, value): Refinery sends a list of `{"name", "value"}` objects,
/// other launchers an object of name → value.
fn parameters(value: &Value) -> Vec<(String, String)> {
    match value {
        Value::Object(map) => map
            .iter()
            .map(|(name, v)| (name.clone(), show(v)))
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|item| {
                let field = |key: &str| item.get(key).map(show).unwrap_or_default();
                (field("name"), field("value"))
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// A JSON value as text: strings without their quotes.
fn show(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// An HTML list of `items` (already escaped), or "none".
fn list(items: impl Iterator<Item = String>) -> String {
    let items: String = items.map(|item| format!("<li>{item}</li>")).collect();
    if items.is_empty() {
        "<p>none</p>".to_owned()
    } else {
        format!("<ul>{items}</ul>")
    }
}

/// A whole HTML page; the style sheet's link is relative, like every other link.
fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"static/style.css\"></head>\n\
         <body><main>\n<h1>{title}</h1>\n{body}\n\
         <footer>{app}, Rust on wasmount</footer>\n</main></body></html>\n",
        title = html::escape(title),
        app = html::escape(APP),
    )
}
