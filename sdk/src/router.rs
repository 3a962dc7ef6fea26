//! Dispatching a request to a handler by method and path pattern.

use crate::assets::Asset;
use crate::context::{Ctx, decoded_segments};
use crate::{Body, Method, Request, Response, StatusCode, response};
use std::future::Future;
use std::pin::Pin;

/// What a handler returns: a response, or an [`HttpError`] that becomes one.
pub type HandlerResult = Result<Response<Body>, HttpError>;

/// An error a handler returns with `?`: a status and a short message for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The status the client gets.
    pub status: StatusCode,
    /// The plain-text body the client gets.
    pub message: String,
}

impl HttpError {
    /// An error with any status.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    /// `400 Bad Request`: the client sent something the app cannot use.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// The response the client sees.
    pub fn into_response(self) -> Response<Body> {
        response::status(self.status, format!("{}\n", self.message))
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
/// matches with another method gets 405 with `allow`. `HEAD` is served by `GET` routes.
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
                None => Ok(response::not_found()),
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

    /// Handles one request, turning handler errors into their responses.
    pub async fn handle(&self, request: Request<Body>) -> Response<Body> {
        let path_segments = decoded_segments(request.uri().path());
        let wanted_method = if request.method() == Method::HEAD {
            Method::GET
        } else {
            request.method().clone()
        };
        let mut allowed = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &path_segments) else {
                continue;
            };
            if route.method != wanted_method {
                allowed.push(route.method.as_str().to_owned());
                continue;
            }
            let ctx = Ctx::new(request, params);
            return match (route.handler)(ctx).await {
                Ok(response) => response,
                Err(error) => error.into_response(),
            };
        }
        if allowed.is_empty() {
            return response::not_found();
        }
        let mut response = response::status(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
        if let Ok(value) = allowed.join(", ").parse() {
            response.headers_mut().insert("allow", value);
        }
        response
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

    fn path(p: &str) -> Vec<String> {
        decoded_segments(p)
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
