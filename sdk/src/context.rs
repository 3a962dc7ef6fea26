//! What a handler sees of one request: method, path, parameters, query, body, mount prefix.

use crate::form::{Form, decode_component};
use crate::{Body, FORWARDED_PREFIX_HEADER, HttpError, Method, Request, StatusCode, media};
use serde::de::DeserializeOwned;
use wstd::http::Error;

/// One request as a handler sees it, with the path parameters its route captured.
pub struct Ctx {
    request: Request<Body>,
    params: Vec<(String, String)>,
}

impl Ctx {
    /// Wraps a request; `params` are the `{name}` captures of the matched route.
    pub fn new(request: Request<Body>, params: Vec<(String, String)>) -> Self {
        Self { request, params }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        self.request.method()
    }

    /// The path as the app sees it: the mount prefix is already removed by the host.
    pub fn path(&self) -> &str {
        self.request.uri().path()
    }

    /// The raw query string, without the `?`.
    pub fn query(&self) -> Option<&str> {
        self.request.uri().query()
    }

    /// The query string's fields, decoded.
    pub fn query_form(&self) -> Form {
        Form::parse(self.query().unwrap_or(""))
    }

    /// The decoded value of the `{name}` (or `{*name}`) capture of the matched route.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// A request header as text, if present and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request.headers().get(name)?.to_str().ok()
    }

    /// The prefix the app is mounted under (`/viz`), from `x-forwarded-prefix`; `""` if none.
    pub fn prefix(&self) -> &str {
        self.header(FORWARDED_PREFIX_HEADER)
            .unwrap_or("")
            .trim_end_matches('/')
    }

    /// An absolute path to `path` inside this app: the mount prefix followed by `path`.
    /// Prefer relative links where you can; they work under any prefix without this.
    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.prefix(), path.trim_start_matches('/'))
    }

    /// The underlying request.
    pub fn request(&self) -> &Request<Body> {
        &self.request
    }

    /// Gives the request back, for code that wants all of it.
    pub fn into_request(self) -> Request<Body> {
        self.request
    }

    /// Reads the whole body.
    ///
    /// # Errors
    ///
    /// When the body cannot be read from the host.
    pub async fn body_bytes(&mut self) -> Result<Vec<u8>, Error> {
        Ok(self.request.body_mut().contents().await?.to_vec())
    }

    /// Reads the whole body as text; invalid UTF-8 is replaced.
    ///
    /// # Errors
    ///
    /// When the body cannot be read from the host.
    pub async fn body_text(&mut self) -> Result<String, Error> {
        let bytes = self.request.body_mut().contents().await?;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }

    /// Reads an `application/x-www-form-urlencoded` body (an HTML form post).
    ///
    /// # Errors
    ///
    /// When the body cannot be read from the host.
    pub async fn form(&mut self) -> Result<Form, Error> {
        Ok(Form::parse(&self.body_text().await?))
    }

    /// Reads a JSON body as a `T`. The body size is bounded by the host (its
    /// `--max-request-body`, or the app manifest's own limit), not here.
    ///
    /// Its errors are [`HttpError::json`]-marked: a route that reads JSON answers in JSON.
    ///
    /// # Errors
    ///
    /// `415` when `content-type` is present and not JSON (`application/json` or `…+json`);
    /// `400` saying what is wrong when the body is empty, not JSON, or not the shape of `T`;
    /// `500` when the body cannot be read from the host.
    pub async fn json<T: DeserializeOwned>(&mut self) -> Result<T, HttpError> {
        self.check_json_content_type().map_err(HttpError::json)?;
        let bytes = self
            .request
            .body_mut()
            .contents()
            .await
            .map_err(|error| HttpError::from(error).json())?;
        parse_json(bytes).map_err(HttpError::json)
    }

    /// `Ok` when `content-type` is absent or JSON; a `415` naming it otherwise.
    fn check_json_content_type(&self) -> Result<(), HttpError> {
        let Some(value) = self.request.headers().get("content-type") else {
            return Ok(());
        };
        let content_type = String::from_utf8_lossy(value.as_bytes());
        if media::is_json(&content_type) {
            return Ok(());
        }
        Err(HttpError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("expected a JSON body (content-type application/json), got `{content_type}`"),
        ))
    }
}

/// Parses a request body as JSON; a `400` saying what is wrong if it cannot be a `T`.
fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, HttpError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(HttpError::bad_request(
            "the request body is empty; expected JSON",
        ));
    }
    serde_json::from_slice(bytes).map_err(|error| {
        HttpError::bad_request(format!(
            "the request body is not the JSON expected: {error}"
        ))
    })
}

/// Splits a path into its decoded, non-empty segments.
pub(crate) fn decoded_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| decode_component(&segment.replace('+', "%2B")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Point {
        x: i32,
        y: i32,
    }

    fn ctx_with_body(content_type: Option<&str>, body: &str) -> Ctx {
        let mut builder = Request::builder().method("POST").uri("/points");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        Ctx::new(
            builder.body(Body::from(body.to_owned())).unwrap(),
            Vec::new(),
        )
    }

    fn read_point(content_type: Option<&str>, body: &str) -> Result<Point, HttpError> {
        let mut ctx = ctx_with_body(content_type, body);
        block_on(ctx.json::<Point>())
    }

    #[test]
    fn a_json_body_is_read_with_or_without_a_json_content_type() {
        let body = r#"{"x": 1, "y": -2}"#;
        for content_type in [
            Some("application/json"),
            Some("application/geo+json; charset=utf-8"),
            None,
        ] {
            assert_eq!(read_point(content_type, body), Ok(Point { x: 1, y: -2 }));
        }
    }

    #[test]
    fn a_body_that_is_not_the_json_expected_is_a_400_saying_what_is_wrong() {
        let error = read_point(Some("application/json"), r#"{"x": 1}"#).unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("missing field `y`"),
            "{}",
            error.message
        );
        assert!(error.is_json());

        let error = read_point(None, "{oops").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(
            error.message.contains("not the JSON expected"),
            "{}",
            error.message
        );

        let error = read_point(None, " \n").unwrap_err();
        assert_eq!(error.status, StatusCode::BAD_REQUEST);
        assert!(error.message.contains("empty"), "{}", error.message);
    }

    #[test]
    fn a_body_of_another_content_type_is_a_415() {
        let error = read_point(Some("application/x-www-form-urlencoded"), "x=1&y=2").unwrap_err();
        assert_eq!(error.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert!(
            error.message.contains("x-www-form-urlencoded"),
            "{}",
            error.message
        );
        assert!(error.is_json());
    }
}
