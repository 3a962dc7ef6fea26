//! Responses the host itself writes (index, health, errors), in the body type shared with
//! guests. A leaf every layer may use.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};

/// The body of every response the server sends, guest or host.
pub type Body = wasmtime_wasi_http::p2::body::HyperOutgoingBody;

/// A body holding `bytes`.
pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A short plain-text message; a newline is added.
pub(crate) fn text(status: StatusCode, message: impl std::fmt::Display) -> Response<Body> {
    with_type(status, "text/plain; charset=utf-8", format!("{message}\n"))
}

/// An HTML page.
pub(crate) fn html(status: StatusCode, page: String) -> Response<Body> {
    with_type(status, "text/html; charset=utf-8", page)
}

/// A JSON document (already serialized).
pub(crate) fn json(status: StatusCode, document: String) -> Response<Body> {
    with_type(status, "application/json", document)
}

/// `308 Permanent Redirect` to `location`, keeping the method and body.
pub(crate) fn permanent_redirect(location: &str) -> Response<Body> {
    let mut response = text(
        StatusCode::PERMANENT_REDIRECT,
        format_args!("moved to {location}"),
    );
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
