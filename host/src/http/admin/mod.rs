//! The management API under `/_wasmount/`: `apps` (list, inspect, upload — `PUT`, the
//! component as the body — and delete) and `instances` (launch an app bound to an input,
//! list, inspect, delete). Every call needs `Authorization: Bearer TOKEN`; reading the app
//! list may be made public by a flag. Bodies are JSON; handlers return
//! `Result<_, ApiError>` and use `?`.

pub(crate) mod apps;
mod body;
pub(crate) mod launches;
mod tail;
pub(crate) mod tokens;

use crate::apps::postgres::mirror::is_unavailable;
use crate::respond::{self, Body};
use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use std::sync::Arc;
use std::time::SystemTime;
use tokens::{Scope, TokenRefusal, TokenSet};

/// Who may call the admin API: the tokens in force (replaced whole when the tokens file
/// is re-read), and whether reading the app list needs one.
#[derive(Clone)]
pub(crate) struct AdminAccess {
    tokens: Arc<ArcSwap<TokenSet>>,
    /// Whether listing and inspecting apps needs no token.
    public_list: bool,
}

impl AdminAccess {
    /// Access with `tokens` (none: every call refused) and the list public or not.
    pub(crate) fn new(tokens: TokenSet, public_list: bool) -> Self {
        Self {
            tokens: Arc::new(ArcSwap::from_pointee(tokens)),
            public_list,
        }
    }

    /// Puts `tokens` in force: from now on only they are accepted.
    pub(crate) fn replace(&self, tokens: TokenSet) {
        self.tokens.store(Arc::new(tokens));
    }

    /// Whether `headers` carry a token of the control plane's (never forwarded to a guest).
    /// Every `Authorization` value is looked at: a second one must not smuggle a token.
    pub(crate) fn holds_admin_token(&self, headers: &HeaderMap) -> bool {
        let tokens = self.tokens.load();
        headers
            .get_all(header::AUTHORIZATION)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .filter_map(bearer_token)
            .any(|given| {
                matches!(
                    tokens.allow(Some(given), Scope::Read),
                    Ok(_) | Err(TokenRefusal::Lacks { .. })
                )
            })
    }

    /// The name of the token in `headers` if it holds `scope`.
    pub(crate) fn check(&self, headers: &HeaderMap, scope: Scope) -> Result<Arc<str>, ApiError> {
        self.tokens
            .load()
            .allow(given_token(headers), scope)
            .map_err(|refusal| match refusal {
                TokenRefusal::Closed => ApiError::new(
                    StatusCode::FORBIDDEN,
                    "the admin API is disabled: start the server with --admin-token, \
                     --admin-token-file or --tokens-file (or WASMOUNT_ADMIN_TOKEN)",
                ),
                TokenRefusal::Missing => ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "missing admin token: send `Authorization: Bearer TOKEN`",
                ),
                TokenRefusal::Wrong => ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token"),
                TokenRefusal::Lacks { name, scope } => ApiError::new(
                    StatusCode::FORBIDDEN,
                    format_args!("token `{name}` may not {scope}: it lacks the `{scope}` scope"),
                ),
            })
    }

    /// [`Self::check`], except that reading the app list passes without a token when it is
    /// public (`None` then).
    pub(crate) fn check_or_public(
        &self,
        headers: &HeaderMap,
        scope: Scope,
    ) -> Result<Option<Arc<str>>, ApiError> {
        if scope == Scope::Read && self.public_list && given_token(headers).is_none() {
            return Ok(None);
        }
        self.check(headers, scope).map(Some)
    }
}

/// The bearer token of `headers`, if any.
fn given_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(bearer_token)
}

/// The token of an `Authorization: Bearer TOKEN` header; the scheme name in any case
/// (RFC 9110), surrounding white space ignored.
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// A refusal: a status and a short, true message for the client (`{"error": message}`).
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    message: String,
    /// For `405`: the methods that are allowed.
    allow: Option<&'static str>,
}

impl ApiError {
    /// A refusal with `status` and `message`.
    pub(crate) fn new(status: StatusCode, message: impl std::fmt::Display) -> Self {
        Self {
            status,
            message: message.to_string(),
            allow: None,
        }
    }

    /// Its status.
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    /// `404` with `message`.
    pub(crate) fn not_found(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// `400` with `message`.
    pub(crate) fn bad_request(message: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// `500`: the full `error` goes to the log, the client learns only what failed.
    /// A store that cannot be reached is `503` instead, its message naming the store.
    pub(crate) fn internal(what: &str, error: &anyhow::Error) -> Self {
        if is_unavailable(error) {
            tracing::warn!("{what} refused: {error:#}");
            return Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format_args!("{what} failed: {error:#}; try again later"),
            );
        }
        tracing::error!("{what} failed: {error:#}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format_args!("{what} failed; see the server log"),
        )
    }

    /// `405`, naming the methods that are allowed.
    pub(crate) fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
        }
    }

    /// The response the client gets.
    pub(crate) fn into_response(self) -> Response<Body> {
        let mut response = json(self.status, &serde_json::json!({ "error": self.message }));
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(allow) = self.allow {
            headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}

/// A handler's outcome.
pub(crate) type ApiResult = Result<Response<Body>, ApiError>;

/// The response for `outcome`, whichever way it went.
pub(crate) fn respond(outcome: ApiResult) -> Response<Body> {
    outcome.unwrap_or_else(ApiError::into_response)
}

/// `value` as pretty JSON with `status`.
pub(crate) fn json(status: StatusCode, value: &impl Serialize) -> Response<Body> {
    let document =
        serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    respond::json(status, document + "\n")
}

/// `204 No Content`.
pub(crate) fn no_content() -> Response<Body> {
    let mut response = Response::new(respond::full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    response
}

/// A time as the API shows it (RFC 3339, milliseconds).
pub(crate) fn timestamp(at: SystemTime) -> String {
    humantime::format_rfc3339_millis(at).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(access: &AdminAccess, header: &str) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(header).unwrap(),
        );
        access.check(&headers, Scope::Read).is_ok()
    }

    #[test]
    fn tokens_are_trimmed_on_both_sides_and_the_scheme_is_case_insensitive() {
        let tokens = TokenSet::load(Some("secret-token-0123456789\n"), None).unwrap();
        let access = AdminAccess::new(tokens, false);
        assert!(allowed(&access, "Bearer secret-token-0123456789"));
        assert!(allowed(&access, "bearer secret-token-0123456789"));
        assert!(allowed(&access, "BEARER  secret-token-0123456789 "));
        assert!(!allowed(&access, "Basic secret-token-0123456789"));
        assert!(!allowed(&access, "Bearer secret-token-012345678"));
        assert!(!allowed(&access, "secret-token-0123456789"));
    }

    #[test]
    fn the_token_header_parser_never_panics() {
        let tokens = TokenSet::load(Some("test-admin-token-0123456789"), None).unwrap();
        let access = AdminAccess::new(tokens, false);
        crate::fuzz::fuzz("token", |bytes| {
            let _ = std::str::from_utf8(bytes).map(bearer_token);
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, value);
                let _ = access.check(&headers, Scope::Deploy);
            }
        });
    }
}
