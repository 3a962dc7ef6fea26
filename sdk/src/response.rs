//! Building responses with the right `content-type`.

use crate::{Body, Response, StatusCode};

/// A response with `body` and `content-type`, status 200.
pub fn with_type(content_type: &str, body: impl Into<Body>) -> Response<Body> {
    let mut response = Response::new(body.into());
    if let Ok(value) = content_type.parse() {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// A `text/plain` response.
pub fn text(body: impl Into<String>) -> Response<Body> {
    with_type("text/plain; charset=utf-8", body.into())
}

/// A `text/html` response.
pub fn html(body: impl Into<String>) -> Response<Body> {
    with_type("text/html; charset=utf-8", body.into())
}

/// An `application/json` response; `body` must already be JSON.
pub fn json(body: impl Into<String>) -> Response<Body> {
    with_type("application/json", body.into())
}

/// An `image/svg+xml` response.
pub fn svg(body: impl Into<String>) -> Response<Body> {
    with_type("image/svg+xml", body.into())
}

/// `response` with its status set to `status`.
///
/// # Examples
///
/// ```
/// use wasmount_sdk::{response, StatusCode};
/// let created = response::with_status(StatusCode::CREATED, response::text("made"));
/// assert_eq!(created.status(), StatusCode::CREATED);
/// ```
pub fn with_status(status: StatusCode, mut response: Response<Body>) -> Response<Body> {
    *response.status_mut() = status;
    response
}

/// A plain-text response with `status` and a short message.
pub fn status(status: StatusCode, message: impl Into<String>) -> Response<Body> {
    with_status(status, text(message))
}

/// `404 Not Found` with a short text body.
pub fn not_found() -> Response<Body> {
    status(StatusCode::NOT_FOUND, "not found\n")
}

/// `303 See Other` to `location`, which may be relative (`"./"`, `"plot"`).
pub fn redirect(location: &str) -> Response<Body> {
    let mut response = status(StatusCode::SEE_OTHER, "");
    if let Ok(value) = location.parse() {
        response.headers_mut().insert("location", value);
    }
    response
}
