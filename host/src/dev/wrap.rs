//! How dev mode wraps the request path, without branching inside it: the hosts it answers
//! (loopback and `--allow-host`), and what it does to an answer — a project not built yet
//! gets a page that waits for its build, a guest failure is explained (in the page for a
//! browser, in `x-wasmount-error` for anyone), a failed build's error rides on every
//! response, and pages get the live-reload script (`dev::live`).

use crate::apps::deploy::Deployer;
use crate::dev::live::{inject, is_navigation, set, state_of};
use crate::dev::projects::Projects;
use crate::respond::{self, Body};
use crate::runtime::invoke::GuestFailure;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};

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
}
