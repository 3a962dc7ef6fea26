//! Header helpers every layer shares.

use http::{HeaderMap, header};

/// The `content-length` a request or response declares, if it is a valid number.
pub(crate) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}
