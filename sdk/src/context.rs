//! What a handler sees of one request: method, path, parameters, query, body, mount prefix.

use crate::form::{Form, decode_component};
use crate::{Body, FORWARDED_PREFIX_HEADER, Method, Request};
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
}

/// Splits a path into its decoded, non-empty segments.
pub(crate) fn decoded_segments(path: &str) -> Vec<String> {
    path.split('/')
        .filter(|segment| !segment.is_empty())
        .map(|segment| decode_component(&segment.replace('+', "%2B")))
        .collect()
}
