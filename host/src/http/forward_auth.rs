//! Asking the platform whether a client may open a launch (or an app whose manifest says
//! `access = "platform"`), with the contract nginx `auth_request` and Traefik ForwardAuth
//! established, so oauth2-proxy or a Django view answers it: a `GET` without body carrying
//! the client's `Cookie` and `Authorization`, `X-Forwarded-Method/Proto/Host/Uri/For`, and
//! which app, launch and label (`X-Wasmount-App/-Launch/-Label`). `2xx` allows, and the
//! response headers the operator names are handed to the guest; `401`, `403` and redirects
//! go back to the client as the platform wrote them (a login redirect works); anything
//! else, or no answer within the timeout, fails closed (503). Decisions are cached briefly,
//! keyed by everything sent.

use crate::refusal::{PlatformAnswer, Refusal};
use crate::runtime::client_body::ClientBody;
use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use sha2::{Digest as _, Sha256};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Decisions kept at most; past it, the expired go, then all (a flood of distinct clients
/// costs calls to the platform, never memory).
const MAX_CACHED_DECISIONS: usize = 10_000;

/// The most of a refusal's body passed back (a login page, a JSON error).
const MAX_ANSWER_BODY: usize = 64 << 10;

/// The headers of a platform's refusal passed back to the client.
const ANSWER_HEADERS: [HeaderName; 4] = [
    header::LOCATION,
    header::WWW_AUTHENTICATE,
    header::CONTENT_TYPE,
    header::SET_COOKIE,
];

/// The forward-auth settings of a server.
#[derive(Debug, Clone)]
pub(crate) struct AuthSettings {
    /// The platform's check (`http://host:port/path`).
    pub url: Uri,
    /// How long the platform may take to answer.
    pub timeout: Duration,
    /// Response headers handed to the guest on `2xx` (e.g. `X-Auth-Request-User`).
    pub pass_headers: Vec<HeaderName>,
    /// How long an allow is remembered.
    pub allow_ttl: Duration,
    /// How long a refusal is remembered.
    pub deny_ttl: Duration,
}

/// What a request is for, as the platform is told.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Subject<'a> {
    /// The app that serves it.
    pub app: &'a str,
    /// The launch, if it is one's.
    pub launch: Option<&'a str>,
    /// The label the platform attached at launch (e.g. the dataset's id).
    pub label: Option<&'a str>,
    /// What tells this launch from a later one of the same name (never sent).
    pub incarnation: Option<&'a str>,
}

/// A remembered decision.
#[derive(Clone)]
enum Decision {
    /// Allowed, with these headers for the guest.
    Allow(Vec<(HeaderName, HeaderValue)>),
    /// Refused, with the platform's answer.
    Deny(Box<PlatformAnswer>),
}

/// The platform's check, and the decisions it made lately.
pub(crate) struct ForwardAuth {
    settings: AuthSettings,
    /// `host:port` of the check.
    address: String,
    cache: Mutex<HashMap<[u8; 32], (Instant, Decision)>>,
}

impl ForwardAuth {
    /// The check at `settings.url`.
    ///
    /// # Errors
    ///
    /// The URL is not `http://host[:port]/…`.
    pub(crate) fn new(settings: AuthSettings) -> Result<Self, String> {
        let url = &settings.url;
        if url.scheme_str() != Some("http") {
            return Err(format!(
                "--auth-url `{url}`: only http:// is supported (run the check beside the server, \
                 as oauth2-proxy or the platform's own view)"
            ));
        }
        let Some(authority) = url.authority() else {
            return Err(format!("--auth-url `{url}` names no host"));
        };
        let address = match authority.port_u16() {
            Some(_) => authority.as_str().to_owned(),
            None => format!("{}:80", authority.host()),
        };
        Ok(Self {
            settings,
            address,
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The response headers the guest gets from the platform: a client's own copies of them
    /// are removed before any request reaches a guest.
    pub(crate) fn pass_headers(&self) -> &[HeaderName] {
        &self.settings.pass_headers
    }

    /// Asks (or remembers) whether `request` may open `subject`; on yes, the headers the
    /// guest gets.
    ///
    /// # Errors
    ///
    /// [`Refusal::PlatformRefused`] with the platform's answer, or
    /// [`Refusal::AuthUnavailable`] when it failed or did not answer in time.
    pub(crate) async fn check(
        &self,
        request: &Request<ClientBody>,
        peer: SocketAddr,
        subject: Subject<'_>,
    ) -> Result<Vec<(HeaderName, HeaderValue)>, Refusal> {
        let asked = self.question(request, peer, subject);
        let key = cache_key(&asked);
        if let Some(decision) = self.remembered(&key) {
            return decided(decision);
        }
        let decision = self.ask(asked).await?;
        self.remember(key, decision.clone());
        decided(decision)
    }

    /// The `GET` the platform gets for `request` from `peer` (forwarding headers as the
    /// guest would see them: a trusted proxy's, else from the connection).
    fn question(
        &self,
        request: &Request<ClientBody>,
        peer: SocketAddr,
        subject: Subject<'_>,
    ) -> Request<()> {
        let headers = request.headers();
        // Origin form (`/path?query`), as an origin server expects it; `host` says where.
        let path = self
            .settings
            .url
            .path_and_query()
            .map_or("/", |p| p.as_str());
        let mut asked = Request::get(path);
        let target = asked.headers_mut().expect("a fresh builder");
        let host = self.settings.url.authority().map_or("", |a| a.as_str());
        target.insert(
            header::HOST,
            HeaderValue::from_str(host).unwrap_or(HeaderValue::from_static("")),
        );
        // HTTP/2 may split `Cookie` into several fields: one line, in the order received.
        let cookies: Vec<&str> = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        if let Ok(joined) = HeaderValue::from_str(&cookies.join("; "))
            && !cookies.is_empty()
        {
            target.insert(header::COOKIE, joined);
        }
        for value in headers.get_all(header::AUTHORIZATION) {
            target.append(header::AUTHORIZATION, value.clone());
        }
        let forwarded = |name: &str| headers.get(name).cloned();
        let client = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
            Some(earlier) => format!("{earlier}, {}", peer.ip()),
            None => peer.ip().to_string(),
        };
        let proto = forwarded("x-forwarded-proto").unwrap_or(HeaderValue::from_static("http"));
        for (name, value) in [
            (
                "x-forwarded-method",
                HeaderValue::from_str(request.method().as_str()).ok(),
            ),
            ("x-forwarded-proto", Some(proto)),
            (
                "x-forwarded-host",
                forwarded("x-forwarded-host").or_else(|| forwarded("host")),
            ),
            (
                "x-forwarded-uri",
                request
                    .uri()
                    .path_and_query()
                    .and_then(|target| HeaderValue::from_str(target.as_str()).ok()),
            ),
            ("x-forwarded-for", HeaderValue::from_str(&client).ok()),
            ("x-wasmount-app", HeaderValue::from_str(subject.app).ok()),
            (
                "x-wasmount-launch",
                subject.launch.and_then(|l| HeaderValue::from_str(l).ok()),
            ),
            (
                "x-wasmount-label",
                subject.label.and_then(|l| HeaderValue::from_str(l).ok()),
            ),
            (
                "x-wasmount-incarnation",
                subject
                    .incarnation
                    .and_then(|i| HeaderValue::from_str(i).ok()),
            ),
        ] {
            if let Some(value) = value {
                target.insert(HeaderName::from_static(name), value);
            }
        }
        asked.method(Method::GET).body(()).expect("a valid request")
    }

    /// Sends `asked` to the platform and reads its decision.
    async fn ask(&self, mut asked: Request<()>) -> Result<Decision, Refusal> {
        // Used for the cache key only: the platform never sees it.
        asked.headers_mut().remove("x-wasmount-incarnation");
        let request = asked.map(|()| http_body_util::Empty::<Bytes>::new());
        let sent = crate::client::send(&self.address, request);
        let answer = match tokio::time::timeout(self.settings.timeout, sent).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) => {
                tracing::warn!("forward auth at {}: {error:#}", self.settings.url);
                return Err(Refusal::AuthUnavailable);
            }
            Err(_) => {
                let timeout = humantime::format_duration(self.settings.timeout);
                tracing::warn!(
                    "forward auth at {}: no answer within {timeout}",
                    self.settings.url
                );
                return Err(Refusal::AuthUnavailable);
            }
        };
        let status = answer.status();
        if status.is_success() {
            let headers = answer.headers();
            let granted = self
                .settings
                .pass_headers
                .iter()
                .flat_map(|name| {
                    headers
                        .get_all(name)
                        .iter()
                        .map(|v| (name.clone(), v.clone()))
                })
                .collect();
            return Ok(Decision::Allow(granted));
        }
        if status == StatusCode::UNAUTHORIZED
            || status == StatusCode::FORBIDDEN
            || status.is_redirection()
        {
            let mut headers = HeaderMap::new();
            for name in ANSWER_HEADERS {
                for value in answer.headers().get_all(&name) {
                    headers.append(name.clone(), value.clone());
                }
            }
            let body = answer
                .body()
                .slice(..answer.body().len().min(MAX_ANSWER_BODY));
            return Ok(Decision::Deny(Box::new(PlatformAnswer {
                status,
                headers,
                body,
            })));
        }
        tracing::warn!(%status, "forward auth at {} answered neither yes nor no: refused", self.settings.url);
        Err(Refusal::AuthUnavailable)
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Decision> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let (until, decision) = cache.get(key)?;
        (*until > Instant::now()).then(|| decision.clone())
    }

    fn remember(&self, key: [u8; 32], decision: Decision) {
        let ttl = match &decision {
            Decision::Allow(_) => self.settings.allow_ttl,
            // A refusal that sets a cookie (a CSRF or login state) is this client's alone.
            Decision::Deny(answer) if answer.headers.contains_key(header::SET_COOKIE) => {
                Duration::ZERO
            }
            Decision::Deny(_) => self.settings.deny_ttl,
        };
        if ttl.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= MAX_CACHED_DECISIONS {
            cache.retain(|_, (until, _)| *until > now);
            if cache.len() >= MAX_CACHED_DECISIONS {
                cache.clear();
            }
        }
        cache.insert(key, (now + ttl, decision));
    }
}

fn decided(decision: Decision) -> Result<Vec<(HeaderName, HeaderValue)>, Refusal> {
    match decision {
        Decision::Allow(granted) => Ok(granted),
        Decision::Deny(answer) => Err(Refusal::PlatformRefused(answer)),
    }
}

/// The digest of every header of the question: what the decision may depend on.
fn cache_key(asked: &Request<()>) -> [u8; 32] {
    let mut digest = Sha256::new();
    // By name, values of one name in the order sent (the order can change their meaning).
    let mut headers: Vec<_> = asked.headers().iter().collect();
    headers.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    for (name, value) in headers {
        digest.update(name.as_str().as_bytes());
        digest.update([0]);
        digest.update(value.as_bytes());
        digest.update([0]);
    }
    digest.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> ForwardAuth {
        ForwardAuth::new(AuthSettings {
            url: "http://127.0.0.1:9/check".parse().unwrap(),
            timeout: Duration::from_millis(100),
            pass_headers: vec![HeaderName::from_static("x-auth-request-user")],
            allow_ttl: Duration::from_secs(5),
            deny_ttl: Duration::from_secs(1),
        })
        .unwrap()
    }

    fn client(cookie: &str) -> Request<ClientBody> {
        let body = ClientBody::embedded(http_body_util::Empty::<Bytes>::new());
        Request::get("/viz-x/data?q=1")
            .header(header::COOKIE, cookie)
            .body(body)
            .unwrap()
    }

    const SUBJECT: Subject<'static> = Subject {
        app: "viz",
        launch: Some("viz-x"),
        label: Some("dataset-7"),
        incarnation: Some("1"),
    };

    #[test]
    fn the_question_carries_the_clients_credentials_and_what_it_is_for() {
        let peer = "127.0.0.9:5000".parse().unwrap();
        let asked = auth().question(&client("sessionid=s"), peer, SUBJECT);
        let header = |name: &str| asked.headers()[name].to_str().unwrap().to_owned();
        assert_eq!(asked.uri(), "/check");
        assert_eq!(asked.headers()["host"], "127.0.0.1:9");
        assert_eq!(header("cookie"), "sessionid=s");
        assert_eq!(header("x-forwarded-uri"), "/viz-x/data?q=1");
        assert_eq!(header("x-forwarded-method"), "GET");
        assert_eq!(header("x-wasmount-launch"), "viz-x");
        assert_eq!(header("x-wasmount-label"), "dataset-7");
        assert_eq!(header("x-forwarded-for"), "127.0.0.9");
        assert_eq!(header("x-forwarded-proto"), "http");
    }

    #[test]
    fn the_cache_key_covers_every_input_sent() {
        let auth = auth();
        let peer = "127.0.0.9:5000".parse().unwrap();
        let key = |cookie: &str, subject| cache_key(&auth.question(&client(cookie), peer, subject));
        assert_eq!(key("sessionid=s", SUBJECT), key("sessionid=s", SUBJECT));
        assert_ne!(key("sessionid=s", SUBJECT), key("sessionid=t", SUBJECT));
        let relaunched = Subject {
            incarnation: Some("2"),
            ..SUBJECT
        };
        assert_ne!(key("sessionid=s", SUBJECT), key("sessionid=s", relaunched));
    }

    #[tokio::test]
    async fn a_platform_that_does_not_answer_fails_closed() {
        let peer = "127.0.0.9:5000".parse().unwrap();
        let refused = auth().check(&client("sessionid=s"), peer, SUBJECT).await;
        assert_eq!(refused.unwrap_err(), Refusal::AuthUnavailable);
    }

    #[test]
    fn only_plain_http_checks_are_taken() {
        let settings = |url: &str| AuthSettings {
            url: url.parse().unwrap(),
            ..auth().settings
        };
        assert!(ForwardAuth::new(settings("https://auth.example/check")).is_err());
        assert_eq!(
            ForwardAuth::new(settings("http://auth.local/check"))
                .unwrap()
                .address,
            "auth.local:80"
        );
    }
}
