//! Why the host answers a request itself instead of a guest: one type for every refusal on
//! the request path, each with its status, the message the client sees, the detail the log
//! keeps and the kind metrics count. It becomes a response in one place,
//! [`Refusal::into_response`]. A leaf: every stage of the path, down to the runtime, may
//! refuse.

use crate::respond::{self, Body};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use std::time::Duration;

/// A platform's refusal as it wrote it (forward auth): `401`, `403` or a redirect, with its
/// `Location`, `WWW-Authenticate`, `Content-Type`, `Set-Cookie` and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlatformAnswer {
    /// Its status.
    pub status: StatusCode,
    /// The headers passed on.
    pub headers: HeaderMap,
    /// Its body, bounded.
    pub body: Bytes,
}

/// A request the host refuses before (or instead of) a guest answering it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The request head is larger than `--max-header-size`; the connection closes.
    HeadTooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// Nothing can be mounted at this path, or this listener does not serve it.
    NotFound,
    /// No app or launch has this name.
    NoSuchName {
        /// The name asked for.
        name: String,
    },
    /// The app's only version failed to load.
    AppFailed {
        /// The app.
        name: String,
        /// Why loading failed (the manifest's or compiler's message).
        reason: String,
    },
    /// A launch of an app that is no longer mounted.
    LaunchWithoutApp {
        /// The launch.
        launch: String,
        /// Its app.
        app: String,
    },
    /// The request cannot be given to a guest as sent (its path, host or body).
    BadRequest(String),
    /// The request body is over the app's `max_request_body`.
    BodyTooLarge {
        /// How big it is, as far as known (`123`, `more than 100`).
        size: String,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The start of the body did not arrive in time; the connection closes.
    BodyTooSlow {
        /// How many bytes were waited for.
        want: u64,
        /// For how long.
        timeout: Duration,
    },
    /// The app is at its own limit of concurrent requests.
    AppBusy {
        /// The app.
        name: String,
    },
    /// The node is at its limit of instances running at once.
    ServerBusy,
    /// Dev mode answers only the hosts it was told (a DNS-rebinding page in the
    /// developer's browser must not read it).
    HostNotAllowed {
        /// The `Host` the client sent.
        host: String,
    },
    /// The platform said no (forward auth): its answer goes back as written.
    PlatformRefused(Box<PlatformAnswer>),
    /// The platform could not be asked, or answered neither yes nor no: closed.
    AuthUnavailable,
    /// The app or launch is `platform`, and no `--auth-url` is set to ask: closed.
    NoPlatformToAsk,
    /// The launch opens with a signed link only, and none (or no valid cookie) came.
    LinkRequired,
    /// A valid signed link: the host answers with the cookie that keeps the launch open and
    /// a redirect to the URL without the link's token.
    LinkAccepted {
        /// The clean URL.
        location: String,
        /// The `Set-Cookie` value.
        cookie: String,
    },
}

impl Refusal {
    /// The status the client gets.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Self::HeadTooLarge { .. } => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            Self::NotFound
            | Self::NoSuchName { .. }
            | Self::AppFailed { .. }
            | Self::LaunchWithoutApp { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::BodyTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyTooSlow { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::AppBusy { .. } | Self::ServerBusy => StatusCode::SERVICE_UNAVAILABLE,
            Self::HostNotAllowed { .. } => StatusCode::FORBIDDEN,
            Self::PlatformRefused(answer) => answer.status,
            Self::AuthUnavailable | Self::NoPlatformToAsk => StatusCode::SERVICE_UNAVAILABLE,
            Self::LinkRequired => StatusCode::UNAUTHORIZED,
            Self::LinkAccepted { .. } => StatusCode::SEE_OTHER,
        }
    }

    /// The short, true message the client reads.
    pub(crate) fn public_message(&self) -> String {
        match self {
            Self::HeadTooLarge { limit } => {
                format!("the request head is larger than {limit} bytes (--max-header-size)")
            }
            Self::NotFound => "not found".to_owned(),
            Self::NoSuchName { name } => format!("no app named `{name}` is mounted"),
            Self::AppFailed { name, reason } => {
                format!("app `{name}` is not mounted: loading it failed: {reason}")
            }
            // As for an unknown name: a launch's existence is not told by its answer.
            Self::LaunchWithoutApp { launch, .. } => {
                format!("no app named `{launch}` is mounted")
            }
            Self::BadRequest(message) => message.clone(),
            Self::BodyTooLarge { size, limit } => {
                format!("request body is {size} bytes, limit is {limit} bytes (max_request_body)")
            }
            Self::BodyTooSlow { want, timeout } => format!(
                "the request body's first {want} bytes did not arrive within {}",
                humantime::format_duration(*timeout)
            ),
            Self::AppBusy { name } => {
                format!("app `{name}` is at its limit of concurrent requests")
            }
            Self::ServerBusy => "server busy: too many requests running at once".to_owned(),
            Self::HostNotAllowed { host } => format!(
                "dev mode answers localhost only, not `{host}` (start with --allow-host {host} \
                 to answer it)"
            ),
            Self::PlatformRefused(_) => "refused by the platform".to_owned(),
            Self::AuthUnavailable => {
                "the platform could not be asked who may open this; try again".to_owned()
            }
            Self::NoPlatformToAsk => {
                "this is open only to whom the platform allows, and no platform is set up to ask"
                    .to_owned()
            }
            Self::LinkRequired => "this opens with a signed link only".to_owned(),
            Self::LinkAccepted { location, .. } => format!("opened: see {location}"),
        }
    }

    /// What the log keeps beyond the public message, if anything.
    pub(crate) fn log_detail(&self) -> Option<String> {
        match self {
            Self::AppFailed { reason, .. } => Some(reason.clone()),
            Self::ServerBusy => Some("the pool has no free instance slot".to_owned()),
            Self::LaunchWithoutApp { app, .. } => Some(format!("its app `{app}` is not mounted")),
            _ => None,
        }
    }

    /// The kind the log names it by (metrics count refusals by status, not yet by kind).
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::HeadTooLarge { .. } => "head_too_large",
            Self::NotFound => "not_found",
            Self::NoSuchName { .. } => "no_such_name",
            Self::AppFailed { .. } => "app_failed",
            Self::LaunchWithoutApp { .. } => "launch_without_app",
            Self::BadRequest(_) => "bad_request",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::BodyTooSlow { .. } => "body_too_slow",
            Self::AppBusy { .. } => "app_busy",
            Self::ServerBusy => "server_busy",
            Self::HostNotAllowed { .. } => "host_not_allowed",
            Self::PlatformRefused(_) => "platform_refused",
            Self::AuthUnavailable => "auth_unavailable",
            Self::NoPlatformToAsk => "no_platform_to_ask",
            Self::LinkRequired => "link_required",
            Self::LinkAccepted { .. } => "link_accepted",
        }
    }

    /// Whether the connection should close after the answer (the rest of what the client
    /// sends would not be read).
    fn closes_connection(&self) -> bool {
        matches!(self, Self::HeadTooLarge { .. } | Self::BodyTooSlow { .. })
    }

    /// The one place a refusal becomes a response: status, message, `retry-after` for a
    /// busy app or server, `connection: close` where the request is not read to its end.
    pub(crate) fn into_response(self) -> Response<Body> {
        if let Self::PlatformRefused(answer) = self {
            let mut response = Response::new(respond::full(answer.body));
            *response.status_mut() = answer.status;
            *response.headers_mut() = answer.headers;
            return response;
        }
        tracing::debug!(
            kind = self.kind(),
            status = self.status().as_u16(),
            detail = self.log_detail().as_deref().unwrap_or("-"),
            "refused: {}",
            self.public_message()
        );
        let mut response = respond::text(self.status(), self.public_message());
        let headers = response.headers_mut();
        if let Self::LinkAccepted { location, cookie } = &self {
            for (name, value) in [(header::LOCATION, location), (header::SET_COOKIE, cookie)] {
                if let Ok(value) = HeaderValue::from_str(value) {
                    headers.insert(name, value);
                }
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if matches!(
            self,
            Self::AppBusy { .. } | Self::ServerBusy | Self::AuthUnavailable
        ) {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(1));
        }
        if self.closes_connection() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refusal_names_the_value_and_the_limit_with_its_status() {
        let large = Refusal::BodyTooLarge {
            size: "60".into(),
            limit: 50,
        };
        assert_eq!(large.status(), StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(
            large.public_message(),
            "request body is 60 bytes, limit is 50 bytes (max_request_body)"
        );
        let response = Refusal::HeadTooLarge { limit: 8192 }.into_response();
        assert_eq!(
            response.status(),
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE
        );
        assert_eq!(response.headers()[header::CONNECTION], "close");
        let busy = Refusal::AppBusy { name: "viz".into() }.into_response();
        assert_eq!(busy.headers()[header::RETRY_AFTER], "1");
        assert!(!busy.headers().contains_key(header::CONNECTION));
    }

    #[test]
    fn a_load_failure_keeps_its_reason_for_the_log() {
        let failed = Refusal::AppFailed {
            name: "viz".into(),
            reason: "bad manifest".into(),
        };
        assert_eq!(failed.log_detail().as_deref(), Some("bad manifest"));
        assert_eq!(failed.kind(), "app_failed");
    }
}
