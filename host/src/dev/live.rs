//! Live reload, in dev mode only: HTML responses of apps get a `<script>` appended that
//! follows `/_wasmount/dev/events/NAME` (server-sent events) and reloads the page when the
//! app's next version is live, or shows the failed build's output over the page. How dev
//! mode wraps the request path (failure pages, the waiting page, the host check) is in
//! `dev::wrap`.

use crate::apps::deploy::Deployer;
use crate::apps::names::is_valid_app_name;
use crate::apps::registry::Entry;
use crate::respond::{self, Body};
use crate::runtime::client_body::ClientBody;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

/// The script pages load, under `/_wasmount`.
const SCRIPT: &str = include_str!("../../ui/dev-live.js");

/// Pages following their app at once (429 beyond): one per open browser tab.
const MAX_FOLLOWERS: usize = 64;

/// How often an idle event stream sends a comment, so a vanished page is noticed.
const HEARTBEAT: std::time::Duration = std::time::Duration::from_secs(20);

/// `/_wasmount/dev/…`: the script, and each app's event stream.
pub(crate) fn handle(
    deployer: &Arc<Deployer>,
    rest: &str,
    request: &Request<ClientBody>,
    draining: tokio::sync::watch::Receiver<bool>,
) -> Response<Body> {
    if request.method() != Method::GET {
        return respond::text(StatusCode::METHOD_NOT_ALLOWED, "only GET");
    }
    if rest == "/live.js" {
        let mut response = respond::text(StatusCode::OK, SCRIPT);
        set(
            &mut response,
            header::CONTENT_TYPE,
            "text/javascript; charset=utf-8",
        );
        set(&mut response, header::CACHE_CONTROL, "no-cache");
        return response;
    }
    match rest.strip_prefix("/events/") {
        Some(name) if is_valid_app_name(name) => follow(deployer, name, draining),
        _ => respond::text(StatusCode::NOT_FOUND, "no dev endpoint here"),
    }
}

/// What a page needs to know of its app: which version serves, and the last build's error.
#[derive(Debug, PartialEq, serde::Serialize)]
pub(super) struct State {
    version: Option<String>,
    pub(super) error: Option<String>,
}

/// App `name`'s state now. The version counts deploys too, so new settings for the same
/// component also reload.
pub(super) fn state_of(deployer: &Deployer, name: &str) -> State {
    let registry = deployer.registry();
    State {
        version: version_of(deployer, name),
        error: registry.failure(name).map(|failure| failure.reason),
    }
}

fn version_of(deployer: &Deployer, name: &str) -> Option<String> {
    let registry = deployer.registry();
    match registry.get(name)? {
        Entry::Ready(app) => Some(format!(
            "{}.{}",
            &app.version().sha256[..12],
            registry.deploys(name)
        )),
        Entry::Loading(_) => None,
    }
}

/// The event stream of app `name`: its state now, then each time it changes, until the
/// server begins to shut down.
fn follow(
    deployer: &Arc<Deployer>,
    name: &str,
    draining: tokio::sync::watch::Receiver<bool>,
) -> Response<Body> {
    let changes = deployer.registry().subscribe();
    if deployer.registry().followers() > MAX_FOLLOWERS {
        return respond::text(StatusCode::TOO_MANY_REQUESTS, "too many pages follow apps");
    }
    let start = (
        deployer.clone(),
        Arc::<str>::from(name),
        changes,
        draining,
        None,
    );
    let events = futures::stream::unfold(
        start,
        |(deployer, name, mut changes, mut draining, last)| async move {
            loop {
                let now = state_of(&deployer, &name);
                if last.as_ref() != Some(&now) {
                    let event = Bytes::from(format!(
                        "event: state\ndata: {}\n\n",
                        serde_json::to_string(&now).unwrap_or_default()
                    ));
                    return Some((
                        Ok(Frame::data(event)),
                        (deployer, name, changes, draining, Some(now)),
                    ));
                }
                let pinged = tokio::select! {
                    changed = changes.changed() => {
                        changed.ok()?;
                        false
                    }
                    _ = draining.wait_for(|draining| *draining) => return None,
                    // A comment now and then: a page that went away without closing is
                    // noticed (the write fails) and frees its place.
                    () = tokio::time::sleep(HEARTBEAT) => true,
                };
                if pinged {
                    let ping = Frame::data(Bytes::from_static(b": ping\n\n"));
                    return Some((Ok(ping), (deployer, name, changes, draining, last)));
                }
            }
        },
    );
    let mut response = Response::new(StreamBody::new(events).boxed_unsync());
    set(&mut response, header::CONTENT_TYPE, "text/event-stream");
    set(&mut response, header::CACHE_CONTROL, "no-cache");
    response
}

/// Appends the live-reload script to `response` when it is an HTML page of app `app` that a
/// browser navigated to (`navigation`: not a fragment fetched by a script), with a body
/// (`content-length` grows by the script tag's length; for `HEAD` too, so it matches `GET`).
/// Compressed and partial pages are left alone: appending would corrupt them.
pub(super) fn inject(
    deployer: &Deployer,
    app: &str,
    method: &Method,
    navigation: bool,
    response: &mut Response<Body>,
) {
    if !navigation || !is_page(response) {
        return;
    }
    let tag = Bytes::from(script_tag(app, version_of(deployer, app).as_deref()));
    if *method == Method::HEAD {
        grow_length(response, tag.len());
    } else {
        append(response, tag);
    }
}

/// Whether `request` is a browser's navigation to a page (or a client that does not say,
/// such as curl), not a `fetch` or htmx request for a fragment.
pub(super) fn is_navigation<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    let destination = headers.get("sec-fetch-dest").map(|value| value.as_bytes());
    matches!(destination, None | Some(b"document" | b"iframe"))
        && !headers.contains_key("hx-request")
}

/// Whether `response` is an HTML page with a body it is safe to append to.
fn is_page(response: &Response<Body>) -> bool {
    let headers = response.headers();
    let is_html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .trim_start()
                .to_ascii_lowercase()
                .starts_with("text/html")
        });
    let encoded = headers
        .get(header::CONTENT_ENCODING)
        .is_some_and(|value| value.as_bytes() != b"identity");
    let status = response.status();
    let bodyless = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT;
    is_html && !encoded && !bodyless
}

/// Appends `tag` to the body of `response`, keeping `content-length` right.
fn append(response: &mut Response<Body>, tag: Bytes) {
    grow_length(response, tag.len());
    let body = std::mem::replace(response.body_mut(), respond::full(Bytes::new()));
    *response.body_mut() = WithTail::new(body, tag).boxed_unsync();
}

/// Adds `more` to the `content-length` of `response`, if it has one.
fn grow_length(response: &mut Response<Body>, more: usize) {
    if let Some(length) = response
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok())
    {
        let grown = HeaderValue::from(length + more as u64);
        response.headers_mut().insert(header::CONTENT_LENGTH, grown);
    }
}

fn script_tag(app: &str, version: Option<&str>) -> String {
    format!(
        "\n<script src=\"/_wasmount/dev/live.js\" data-app=\"{app}\" data-version=\"{}\"></script>\n",
        version.unwrap_or_default()
    )
}

pub(super) fn set(response: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
    response
        .headers_mut()
        .insert(name, HeaderValue::from_static(value));
}

/// A body followed by one more chunk (before any trailers).
struct WithTail {
    inner: Body,
    tail: Option<Bytes>,
    trailers: Option<http::HeaderMap>,
}

impl WithTail {
    fn new(inner: Body, tail: Bytes) -> Self {
        Self {
            inner,
            tail: Some(tail),
            trailers: None,
        }
    }
}

impl hyper::body::Body for WithTail {
    type Data = Bytes;
    type Error = <Body as hyper::body::Body>::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if this.tail.is_some() {
            match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) if frame.is_trailers() => {
                    this.trailers = frame.into_trailers().ok();
                }
                Poll::Ready(Some(other)) => return Poll::Ready(Some(other)),
                Poll::Ready(None) => {}
            }
            let tail = this.tail.take().unwrap_or_default();
            return Poll::Ready(Some(Ok(Frame::data(tail))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn collect(body: Body) -> (Bytes, Option<http::HeaderMap>) {
        let collected = body.collect().await.map_err(drop).unwrap();
        let trailers = collected.trailers().cloned();
        (collected.to_bytes(), trailers)
    }

    fn page(content_type: &str, body: &'static str) -> Response<Body> {
        let mut response = Response::new(respond::full(body));
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(content_type).unwrap(),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        response
    }

    #[tokio::test]
    async fn only_html_pages_with_a_body_get_the_script_and_their_length_follows() {
        let mut html = page("Text/HTML; charset=utf-8", "<p>hi</p>");
        assert!(is_page(&html));
        append(&mut html, Bytes::from_static(b"<s>"));
        assert_eq!(html.headers()[header::CONTENT_LENGTH], "12");
        assert_eq!(collect(html.into_body()).await.0, "<p>hi</p><s>");

        assert!(!is_page(&page("text/css", "p{}")));
        let mut partial = page("text/html", "<p>");
        *partial.status_mut() = StatusCode::PARTIAL_CONTENT;
        assert!(!is_page(&partial));
        let mut gzipped = page("text/html", "gz");
        gzipped
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        assert!(!is_page(&gzipped));
        let mut empty = page("text/html", "");
        *empty.status_mut() = StatusCode::NO_CONTENT;
        assert!(!is_page(&empty));
    }

    #[test]
    fn only_navigations_get_the_script_not_fragments_fetched_by_scripts() {
        let request = |headers: &[(&str, &str)]| {
            let mut request = Request::new(());
            for (name, value) in headers {
                request.headers_mut().insert(
                    http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            request
        };
        assert!(is_navigation(&request(&[])));
        assert!(is_navigation(&request(&[("sec-fetch-dest", "document")])));
        assert!(!is_navigation(&request(&[("sec-fetch-dest", "empty")])));
        assert!(!is_navigation(&request(&[("hx-request", "true")])));
    }

    #[tokio::test]
    async fn the_tail_follows_the_body_and_precedes_its_trailers() {
        let (bytes, _) =
            collect(WithTail::new(respond::full("<p>hi</p>"), "<s>".into()).boxed_unsync()).await;
        assert_eq!(bytes, "<p>hi</p><s>");

        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-done", HeaderValue::from_static("1"));
        let frames = futures::stream::iter([
            Ok(Frame::data(Bytes::from("a"))),
            Ok(Frame::trailers(trailers.clone())),
        ]);
        let body = StreamBody::new(frames).boxed_unsync();
        let (bytes, got) = collect(WithTail::new(body, "b".into()).boxed_unsync()).await;
        assert_eq!((bytes, got), (Bytes::from("ab"), Some(trailers)));
    }
}
