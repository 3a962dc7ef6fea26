//! The management API under `/_wasmount/`: `apps` (list, inspect, upload — `PUT`, the
//! component as the body — and delete) and `instances` (launch an app bound to an input,
//! list, inspect, delete). Every call needs `Authorization: Bearer TOKEN`; reading the app
//! list may be made public by a flag. Bodies are JSON; handlers return
//! `Result<_, ApiError>` and use `?`.

pub(crate) mod apps;
mod body;
pub(crate) mod launches;
mod tail;

use crate::apps::postgres::mirror::is_unavailable;
use crate::respond::{self, Body};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::time::SystemTime;
use subtle::ConstantTimeEq as _;

/// Who may call the admin API.
#[derive(Clone)]
pub(crate) struct AdminAccess {
    /// SHA-256 of the token; `None` when no token is configured (the API is then closed).
    token_hash: Option<[u8; 32]>,
    /// Whether listing and inspecting apps needs no token.
    public_list: bool,
}

impl AdminAccess {
    /// Access with `token` (none: every call refused) and the list public or not.
    pub(crate) fn new(token: Option<&str>, public_list: bool) -> Self {
        Self {
            token_hash: token.map(|token| Sha256::digest(token.trim().as_bytes()).into()),
            public_list,
        }
    }

    /// Whether `headers` carry the control plane's token (never forwarded to a guest).
    pub(crate) fn holds_admin_token(&self, headers: &HeaderMap) -> bool {
        self.token_hash.is_some()
            && headers.contains_key(header::AUTHORIZATION)
            && self.check(headers, false).is_ok()
    }

    /// Checks the bearer token in constant time (both sides are hashed first, so the
    /// comparison does not even depend on the token's length).
    pub(crate) fn check(&self, headers: &HeaderMap, read_only: bool) -> Result<(), ApiError> {
        if read_only && self.public_list {
            return Ok(());
        }
        let Some(expected) = &self.token_hash else {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: start the server with --admin-token or \
                 --admin-token-file (or WASMOUNT_ADMIN_TOKEN)",
            ));
        };
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(bearer_token)
            .map(|token| Sha256::digest(token.as_bytes()));
        match given {
            Some(given) if bool::from(given.as_slice().ct_eq(expected)) => Ok(()),
            Some(_) => Err(ApiError::new(StatusCode::UNAUTHORIZED, "wrong admin token")),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "missing admin token: send `Authorization: Bearer TOKEN`",
            )),
        }
    }
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
        access.check(&headers, false).is_ok()
    }

    #[test]
    fn tokens_are_trimmed_on_both_sides_and_the_scheme_is_case_insensitive() {
        let access = AdminAccess::new(Some("secret-token-0123456789\n"), false);
        assert!(allowed(&access, "Bearer secret-token-0123456789"));
        assert!(allowed(&access, "bearer secret-token-0123456789"));
        assert!(allowed(&access, "BEARER  secret-token-0123456789 "));
        assert!(!allowed(&access, "Basic secret-token-0123456789"));
        assert!(!allowed(&access, "Bearer secret-token-012345678"));
        assert!(!allowed(&access, "secret-token-0123456789"));
    }

    #[test]
    fn the_token_header_parser_never_panics() {
        let access = AdminAccess::new(Some("test-admin-token-0123456789"), false);
        crate::fuzz::fuzz("token", |bytes| {
            let _ = std::str::from_utf8(bytes).map(bearer_token);
            if let Ok(value) = HeaderValue::from_bytes(bytes) {
                let mut headers = HeaderMap::new();
                headers.insert(header::AUTHORIZATION, value);
                let _ = access.check(&headers, false);
            }
        });
    }
}
