//! Live reload, in dev mode only: HTML responses of apps get a `<script>` appended that
//! follows `/_wasmount/dev/events/NAME` (server-sent events) and reloads the page when the
//! app's next version is live, or shows the failed build's output over the page. An app
//! built from source that is not serving yet answers a page that waits for its first build.

use crate::apps::deploy::Deployer;
use crate::apps::names::is_valid_app_name;
use crate::apps::registry::Entry;
use crate::dev::projects::Projects;
use crate::respond::{self, Body};
use crate::runtime::client_body::ClientBody;
use crate::runtime::invoke::GuestFailure;
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
struct State {
    version: Option<String>,
    error: Option<String>,
}

/// App `name`'s state now. The version counts deploys too, so new settings for the same
/// component also reload.
fn state_of(deployer: &Deployer, name: &str) -> State {
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

/// Whether dev mode answers `request`: its `Host` (or the URI's authority) is `localhost`
/// (or a name under it, which browsers keep on loopback), `127.0.0.1`, `[::1]`, or one of
/// `allowed` (`--allow-host`), with any port. Anything else is a page elsewhere that made
/// the browser resolve its own name to this machine (DNS rebinding): the host is returned.
pub(crate) fn host_allowed<B>(request: &Request<B>, allowed: &[String]) -> Result<(), String> {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| request.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().map(|inside| &host[..inside.len() + 2]),
        None => host.split(':').next(),
    }
    .unwrap_or_default()
    .to_ascii_lowercase();
    let loopback = name == "localhost"
        || name.ends_with(".localhost")
        || name == "127.0.0.1"
        || name == "[::1]";
    if loopback
        || allowed
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(&name))
    {
        Ok(())
    } else {
        Err(host.to_owned())
    }
}

/// The most of a failed build's message that goes into `x-wasmount-error`.
const MAX_ERROR_HEADER_CHARS: usize = 1024;

/// What dev mode needs of a request to explain its answer, taken before the request is
/// served: dev mode wraps the request path, it does not branch inside it.
pub(crate) struct Wrap {
    method: Method,
    /// A browser's navigation (or a client that does not say), not a fragment.
    navigation: bool,
    /// The client reads pages.
    wants_page: bool,
}

impl Wrap {
    /// Takes what is needed of `request` before it is handed on.
    pub(crate) fn of<B>(request: &Request<B>) -> Self {
        Self {
            method: request.method().clone(),
            navigation: is_navigation(request),
            wants_page: wants_page(request),
        }
    }

    /// The answer to a request for `name`, for the developer: the waiting page of a project
    /// not built yet, a guest failure explained, a failed build's error, the live-reload
    /// script. `app` is the app that served it (a launch shows its app's build error).
    pub(crate) fn explain(
        self,
        deployer: &Deployer,
        projects: &Projects,
        name: &str,
        app: Option<&str>,
        mut response: Response<Body>,
    ) -> Response<Body> {
        if app.is_none() && projects.contains(name) && deployer.registry().get(name).is_none() {
            response = waiting_page(deployer, name);
        }
        let app = app.unwrap_or(name);
        explain_failure(app, self.wants_page, &mut response);
        show_build_error(deployer, app, &mut response);
        inject(deployer, app, &self.method, self.navigation, &mut response);
        response
    }
}

/// Tells the developer on every response of an app whose latest build failed (the previous
/// build is what answered). A header, not a banner in the body: it reaches the browser's
/// network panel and `curl -i` without altering what the app sent.
fn show_build_error(deployer: &Deployer, name: &str, response: &mut Response<Body>) {
    if let Some(failure) = deployer.registry().failure(name) {
        let reason: String = failure
            .reason
            .chars()
            .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
            .take(MAX_ERROR_HEADER_CHARS)
            .collect();
        if let Ok(value) = HeaderValue::from_str(&reason) {
            response
                .headers_mut()
                .insert(crate::headers::X_WASMOUNT_ERROR, value);
        }
    }
}

/// Appends the live-reload script to `response` when it is an HTML page of app `app` that a
/// browser navigated to (`navigation`: not a fragment fetched by a script), with a body
/// (`content-length` grows by the script tag's length; for `HEAD` too, so it matches `GET`).
/// Compressed and partial pages are left alone: appending would corrupt them.
fn inject(
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
fn is_navigation<B>(request: &Request<B>) -> bool {
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

/// Tells the developer why a guest failed a request (a panic, a trap, an exception): the
/// gist in `x-wasmount-error`, and for a page a browser asked for, the whole report — the
/// request, what the guest last wrote to stderr, the backtrace — as an HTML page in place of
/// "the app failed" (the live-reload script is appended like on any page). An API client
/// (`Accept: application/json`) keeps the response the app sent.
fn explain_failure(app: &str, wants_page: bool, response: &mut Response<Body>) {
    let Some(GuestFailure(details)) = response.extensions().get::<GuestFailure>().cloned() else {
        return;
    };
    if wants_page {
        let page = format!(
            "<!doctype html><meta charset=\"utf-8\"><title>{app} failed</title>\
             <body style=\"font-family:system-ui,sans-serif;margin:2rem\">\
             <h1 style=\"color:#b91c1c;font-size:1.2rem\">{app} failed while handling the request</h1>\
             <pre style=\"white-space:pre-wrap;background:#f4f4f5;padding:1rem\">{}</pre>",
            escape_html(&details)
        );
        *response = respond::html(response.status(), page);
    }
    let gist: String = gist(&details)
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { ' ' })
        .take(512)
        .collect();
    if let Ok(value) = HeaderValue::from_str(&gist) {
        let headers = response.headers_mut();
        headers.insert(crate::headers::X_WASMOUNT_ERROR, value);
    }
}

/// The line of a failure report that says what went wrong: a traceback's exception (its last
/// line that is not indented), or a panic's location and message.
fn gist(details: &str) -> String {
    let said = details
        .lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty());
    if details.contains("Traceback (most recent call last)") {
        let exception = said.filter(|line| !line.starts_with(' ')).last();
        return exception.unwrap_or_default().to_owned();
    }
    said.take(2).collect::<Vec<_>>().join(" ")
}

/// Whether the client of `request` reads a page (a browser, or one that does not say).
fn wants_page<B>(request: &Request<B>) -> bool {
    let accept = request
        .headers()
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    is_navigation(request)
        && accept.is_none_or(|accept| accept.contains("text/html") || accept.contains("*/*"))
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What an app built from source answers before its first build is live: building, or the
/// failed build's output; either way the page reloads once a version is live.
fn waiting_page(deployer: &Deployer, name: &str) -> Response<Body> {
    let state = state_of(deployer, name);
    let what = match &state.error {
        Some(_) => "failed to build; the page reloads when a build succeeds",
        None => "is building; the page reloads when it is live",
    };
    let page = format!(
        "<!doctype html><meta charset=\"utf-8\"><title>{name}</title>\
         <body style=\"font-family:system-ui,sans-serif;margin:2rem\"><h1>{name}</h1><p>{name} {what}.</p>"
    );
    let mut response = respond::html(StatusCode::SERVICE_UNAVAILABLE, page);
    set(&mut response, header::RETRY_AFTER, "1");
    response
}

fn set(response: &mut Response<Body>, name: header::HeaderName, value: &'static str) {
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

    #[test]
    fn dev_mode_answers_loopback_names_and_the_hosts_it_is_told() {
        let with_host = |host: &str| {
            Request::builder()
                .header(header::HOST, host)
                .body(())
                .unwrap()
        };
        for host in [
            "localhost:8080",
            "127.0.0.1:9",
            "[::1]:8080",
            "viz.localhost",
            "LOCALHOST",
        ] {
            assert_eq!(host_allowed(&with_host(host), &[]), Ok(()), "{host}");
        }
        for host in [
            "evil.example",
            "localhost.evil.example",
            "127.0.0.2",
            "[::2]:80",
        ] {
            assert_eq!(host_allowed(&with_host(host), &[]), Err(host.to_owned()));
        }
        assert_eq!(
            host_allowed(&with_host("dev.lan:80"), &["dev.lan".into()]),
            Ok(())
        );
    }

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
    fn the_gist_of_a_failure_is_its_exception_or_its_panic() {
        let traceback = "GET /boom answered 500:\nTraceback (most recent call last):\n  File \"app.py\", line 3, in boom\n    1 / 0\nZeroDivisionError: division by zero";
        assert_eq!(gist(traceback), "ZeroDivisionError: division by zero");
        let panic =
            "GET /x failed:\nthread 'main' panicked at src/main.rs:3:5:\nboom\nnote: run with";
        assert_eq!(
            gist(panic),
            "thread 'main' panicked at src/main.rs:3:5: boom"
        );
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
