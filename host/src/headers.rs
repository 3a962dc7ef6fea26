//! Header helpers every layer shares.

use http::{HeaderMap, header};

/// The header carrying a request's id: kept from a sane client, else made by the server;
/// the guest sees it and the response carries it.
pub(crate) const X_REQUEST_ID: &str = "x-request-id";

/// Response header carrying, in dev mode, why the app's newer build failed or why the guest
/// failed this request.
pub(crate) const X_WASMOUNT_ERROR: &str = "x-wasmount-error";

/// The `content-length` a request or response declares, if it is a valid number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
