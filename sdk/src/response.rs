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

/// An `application/json` response with `value` serialized; if it cannot be serialized
/// (a map with non-string keys, a failing `Serialize` impl), a `500` text response saying why.
///
/// # Examples
///
/// ```
/// use wasmount_sdk::{response, serde_json::json};
/// let ok = response::json(&json!({"rows": 3}));
/// assert_eq!(ok.headers()["content-type"], "application/json");
/// ```
pub fn json<T: serde::Serialize + ?Sized>(value: &T) -> Response<Body> {
    match serde_json::to_string(value) {
        Ok(text) => json_text(text),
        Err(error) => status(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot serialize the response as JSON: {error}\n"),
        ),
    }
}

/// An `application/json` response; `body` must already be JSON text.
pub fn json_text(body: impl Into<String>) -> Response<Body> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::body_text;

    struct Unserializable;

    impl serde::Serialize for Unserializable {
        fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no way"))
        }
    }

    #[derive(serde::Serialize)]
    struct Point {
        x: i32,
        label: &'static str,
    }

    #[test]
    fn json_serializes_the_value_with_its_content_type() {
        let mut response = json(&Point { x: 2, label: "a" });
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(body_text(&mut response), r#"{"x":2,"label":"a"}"#);

        let mut unsized_value = json("plain str");
        assert_eq!(body_text(&mut unsized_value), r#""plain str""#);
    }

    #[test]
    fn a_value_that_cannot_be_serialized_is_a_500_saying_why() {
        let mut response = json(&Unserializable);
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert!(body_text(&mut response).contains("no way"));
    }

    #[test]
    fn json_text_sends_text_that_is_already_json() {
        let mut response = json_text("[1,2]");
        assert_eq!(response.headers()["content-type"], "application/json");
        assert_eq!(body_text(&mut response), "[1,2]");
    }
}
