//! Dispatching a request to a handler by method and path pattern.

use crate::assets::Asset;
use crate::context::{Ctx, decoded_segments};
use crate::{Body, Method, Request, Response, StatusCode, media, response};
use std::future::Future;
use std::pin::Pin;

/// What a handler returns: a response, or an [`HttpError`] that becomes one.
pub type HandlerResult = Result<Response<Body>, HttpError>;

/// An error a handler returns with `?`: a status and a short message for the client.
///
/// The [`Router`] answers it in the request's kind: as JSON, `{"error": message, "status":
/// code}` with `application/json`, when the request's body is JSON (`content-type`
/// `application/json` or `…+json`) or its `accept` names JSON and not `text/html` (a script's
/// `fetch`, not a page load); otherwise as the message in `text/plain`. [`HttpError::json`]
/// makes an error JSON whatever the request says, for API routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status the client gets.
    pub status: StatusCode,
    /// The message the client gets, as the text body or the JSON `error` field.
    pub message: String,
    /// Set by [`HttpError::json`]: JSON whatever the request prefers.
    force_json: bool,
}

/// The JSON body of an error.
#[derive(serde::Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    status: u16,
}

impl HttpError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            force_json: false,
        }
    }

    /// `400 Bad Request`: the client sent something the app cannot use.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The same error, always answered as JSON (`{"error": …, "status": …}`), whatever the
    /// request's `accept` and `content-type`: for routes that only speak JSON.
    ///
    /// # Examples
    ///
    /// ```
    /// use wasmount_sdk::{HttpError, StatusCode};
    /// let error = HttpError::new(StatusCode::CONFLICT, "name taken").json();
    /// let response = error.into_response();
    /// assert_eq!(response.status(), StatusCode::CONFLICT);
    /// assert_eq!(response.headers()["content-type"], "application/json");
    /// ```
    #[must_use]
    pub fn json(mut self) -> Self {
        self.force_json = true;
        self
    }

    /// Whether [`HttpError::json`] marked this error.
    pub fn is_json(&self) -> bool {
        self.force_json
    }

    /// The response the client sees, when no request is at hand: JSON if
    /// [`HttpError::json`] marked the error, else plain text. The [`Router`] also looks at
    /// the request (see [`HttpError`]).
    pub fn into_response(self) -> Response<Body> {
        self.into_response_as(false)
    }

    /// The response the client sees: JSON if `json` or the error is marked, else plain text.
    pub(crate) fn into_response_as(self, json: bool) -> Response<Body> {
        if json || self.force_json {
            let body = ErrorBody {
                error: &self.message,
                status: self.status.as_u16(),
            };
            response::with_status(self.status, response::json(&body))
        } else {
            response::status(self.status, format!("{}\n", self.message))
        }
    }
}

impl From<wstd::http::Error> for HttpError {
    fn from(error: wstd::http::Error) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, error.to_string())
    }
}

type BoxedHandler = Box<dyn Fn(Ctx) -> Pin<Box<dyn Future<Output = HandlerResult>>>>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param(String),
    Rest(String),
}

struct Route {
    method: Method,
    segments: Vec<Segment>,
    handler: BoxedHandler,
}

/// Routes requests by method and path pattern to async handlers.
///
/// Patterns are `/`-separated: literal segments, `{name}` for one segment, and a final
/// `{*name}` for the rest of the path. A path that matches no pattern gets 404; one that
/// matches with another method gets 405 with `allow`; both, like handler errors, are text or
/// JSON as [`HttpError`] says. `HEAD` is served by `GET` routes.
#[derive(Default)]
pub struct Router {
    routes: Vec<Route>,
}

impl Router {
    /// An empty router: every request gets 404.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a route for `method` and `pattern`.
    ///
    /// # Panics
    ///
    /// If `{*name}` is not the last segment of `pattern`: that is a programming error.
    pub fn route<F, Fut>(mut self, method: Method, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        let segments = parse_pattern(pattern);
        self.routes.push(Route {
            method,
            segments,
            handler: Box::new(move |ctx| Box::pin(handler(ctx))),
        });
        self
    }

    /// Adds a `GET` (and `HEAD`) route.
    pub fn get<F, Fut>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.route(Method::GET, pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post<F, Fut>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.route(Method::POST, pattern, handler)
    }

    /// Adds a `PUT` route.
    pub fn put<F, Fut>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.route(Method::PUT, pattern, handler)
    }

    /// Adds a `DELETE` route.
    pub fn delete<F, Fut>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Adds a `PATCH` route.
    pub fn patch<F, Fut>(self, pattern: &str, handler: F) -> Self
    where
        F: Fn(Ctx) -> Fut + 'static,
        Fut: Future<Output = HandlerResult> + 'static,
    {
        self.route(Method::PATCH, pattern, handler)
    }

    /// Serves `assets` under `mount` (`"/static"`), each with its content type.
    pub fn assets(self, mount: &str, assets: &'static [Asset]) -> Self {
        let pattern = format!("{}/{{*path}}", mount.trim_end_matches('/'));
        self.get(&pattern, move |ctx: Ctx| async move {
            let wanted = ctx.param("path").unwrap_or("");
            match assets.iter().find(|asset| asset.path == wanted) {
                Some(asset) => Ok(response::with_type(
                    crate::content_type_for(asset.path),
                    asset.bytes,
                )),
                None => Err(HttpError::new(StatusCode::NOT_FOUND, "not found")),
            }
        })
    }

    /// Handles one request. Never fails: handler errors become their status and message.
    ///
    /// # Errors
    ///
    /// None in practice; the `Result` matches what `#[wstd::http_server]` expects.
    pub async fn serve(&self, request: Request<Body>) -> Result<Response<Body>, wstd::http::Error> {
        Ok(self.handle(request).await)
    }

    /// Handles one request, turning handler errors into their responses (see [`HttpError`]
    /// for their content type). Natively, [`testing::call`](crate::testing::call) runs it
    /// without a server.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let errors_as_json = media::wants_json(request.headers());
        let path_segments = decoded_segments(request.uri().path());
        let wanted_method = if request.method() == Method::HEAD {
            Method::GET
        } else {
            request.method().clone()
        };
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &path_segments) else {
                continue;
            };
            if route.method != wanted_method {
                allow(&mut allowed, &route.method);
                continue;
            }
            let ctx = Ctx::new(request, params);
            return match (route.handler)(ctx).await {
                Ok(response) => response,
                Err(error) => error.into_response_as(errors_as_json),
            };
        }
        if allowed.is_empty() {
            return HttpError::new(StatusCode::NOT_FOUND, "not found")
                .into_response_as(errors_as_json);
        }
        let mut response = HttpError::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
            .into_response_as(errors_as_json);
        if let Ok(value) = allowed.join(", ").parse() {
            response.headers_mut().insert("allow", value);
        }
        response
    }
}

/// Adds `method` to the `allow` list once, with `HEAD` after `GET` (GET routes serve HEAD).
fn allow<'a>(allowed: &mut Vec<&'a str>, method: &'a Method) {
    let head = (method == Method::GET).then_some("HEAD");
    for name in std::iter::once(method.as_str()).chain(head) {
        if !allowed.contains(&name) {
            allowed.push(name);
        }
    }
}

fn parse_pattern(pattern: &str) -> Vec<Segment> {
    let segments: Vec<Segment> = pattern
        .split('/')
        .filter(|segment| !segment.is_empty())
        .map(
            |segment| match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => match name.strip_prefix('*') {
                    Some(rest) => Segment::Rest(rest.to_owned()),
                    None => Segment::Param(name.to_owned()),
                },
                None => Segment::Literal(segment.to_owned()),
            },
        )
        .collect();
    let rest_positions = segments
        .iter()
        .position(|segment| matches!(segment, Segment::Rest(_)));
    if let Some(position) = rest_positions {
        assert!(
            position + 1 == segments.len(),
            "`{{*name}}` must be the last segment of route pattern `{pattern}`"
        );
    }
    segments
}

fn match_segments(pattern: &[Segment], path: &[String]) -> Option<Vec<(String, String)>> {
    let mut params = Vec::new();
    for (index, segment) in pattern.iter().enumerate() {
        match segment {
            Segment::Rest(name) => {
                params.push((name.clone(), path.get(index..).unwrap_or(&[]).join("/")));
                return Some(params);
            }
            Segment::Literal(literal) => {
                if path.get(index)? != literal {
                    return None;
                }
            }
            Segment::Param(name) => params.push((name.clone(), path.get(index)?.clone())),
        }
    }
    (pattern.len() == path.len()).then_some(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{body_text, call};

    fn path(p: &str) -> Vec<String> {
        decoded_segments(p)
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        builder.body(Body::empty()).unwrap()
    }

    fn content_type(response: &Response<Body>) -> &str {
        response.headers()["content-type"].to_str().unwrap()
    }

    fn answer(text: &'static str) -> impl Fn(Ctx) -> std::future::Ready<HandlerResult> {
        move |_ctx: Ctx| std::future::ready(Ok(response::text(text)))
    }

    fn items() -> Router {
        Router::new()
            .get("/items/{id}", answer("got"))
            .put("/items/{id}", answer("put"))
            .patch("/items/{id}", answer("patched"))
            .delete("/items/{id}", answer("deleted"))
            .get("/fail", |_ctx: Ctx| async {
                Err(HttpError::bad_request("no such thing"))
            })
            .get("/fail-json", |_ctx: Ctx| async {
                Err(HttpError::bad_request("no such thing").json())
            })
    }

    #[test]
    fn put_patch_and_delete_routes_are_served() {
        let router = items();
        for (method, text) in [("PUT", "put"), ("PATCH", "patched"), ("DELETE", "deleted")] {
            let mut response = call(&router, request(method, "/items/7", &[]));
            assert_eq!(response.status(), StatusCode::OK, "{method}");
            assert_eq!(body_text(&mut response), text);
        }
    }

    #[test]
    fn another_method_gets_405_with_each_allowed_method_once() {
        let router = items().get("/items/{id}", |_ctx: Ctx| async { Ok(response::text("")) });
        let response = call(&router, request("POST", "/items/7", &[]));
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
        assert_eq!(response.headers()["allow"], "GET, HEAD, PUT, PATCH, DELETE");
    }

    fn assert_plain_text_error(headers: &[(&str, &str)]) {
        let mut response = call(&items(), request("GET", "/fail", headers));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(content_type(&response).starts_with("text/plain"));
        assert_eq!(body_text(&mut response), "no such thing\n");
    }

    #[test]
    fn errors_are_plain_text_by_default_and_for_browsers() {
        assert_plain_text_error(&[]);
        assert_plain_text_error(&[("accept", "text/html,application/json;q=0.9")]);
    }

    #[test]
    fn errors_are_json_when_the_request_accepts_or_sends_json_or_the_handler_says_so() {
        let router = items();
        let cases = [
            ("/fail", &[("accept", "application/json")][..]),
            (
                "/fail",
                &[("content-type", "application/json; charset=utf-8")][..],
            ),
            ("/fail-json", &[("accept", "text/html")][..]),
        ];
        for (uri, headers) in cases {
            let mut response = call(&router, request("GET", uri, headers));
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{uri}");
            assert_eq!(content_type(&response), "application/json", "{uri}");
            let body: serde_json::Value = serde_json::from_str(&body_text(&mut response)).unwrap();
            assert_eq!(
                body,
                serde_json::json!({"error": "no such thing", "status": 400})
            );
        }
    }

    #[test]
    fn not_found_and_405_follow_the_request_too() {
        let router = items();
        let json = [("accept", "application/json")];
        let mut missing = call(&router, request("GET", "/nothing", &json));
        assert_eq!(missing.status(), StatusCode::NOT_FOUND);
        assert_eq!(content_type(&missing), "application/json");
        assert!(body_text(&mut missing).contains("\"status\":404"));

        let mut text = call(&router, request("GET", "/nothing", &[]));
        assert_eq!(body_text(&mut text), "not found\n");

        let refused = call(&router, request("POST", "/items/1", &json));
        assert_eq!(content_type(&refused), "application/json");
        assert_eq!(refused.headers()["allow"], "GET, HEAD, PUT, PATCH, DELETE");
    }

    #[test]
    fn literal_param_and_rest_patterns_match() {
        let root = parse_pattern("/");
        assert_eq!(match_segments(&root, &path("/")), Some(vec![]));
        assert_eq!(match_segments(&root, &path("/x")), None);

        let item = parse_pattern("/items/{id}");
        assert_eq!(
            match_segments(&item, &path("/items/a%20b")),
            Some(vec![("id".into(), "a b".into())])
        );
        assert_eq!(match_segments(&item, &path("/items")), None);
        assert_eq!(match_segments(&item, &path("/items/1/2")), None);

        let files = parse_pattern("/static/{*path}");
        assert_eq!(
            match_segments(&files, &path("/static/css/app.css")),
            Some(vec![("path".into(), "css/app.css".into())])
        );
        assert_eq!(
            match_segments(&files, &path("/static")),
            Some(vec![("path".into(), String::new())])
        );
    }

    #[test]
    fn plus_in_a_path_is_not_a_space() {
        assert_eq!(path("/a+b/c%2Fd"), vec!["a+b".to_owned(), "c/d".to_owned()]);
    }

    #[test]
    #[should_panic(expected = "must be the last segment")]
    fn rest_must_be_last() {
        parse_pattern("/{*rest}/x");
    }
}
