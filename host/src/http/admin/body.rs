//! Request bodies of the admin API: read whole up to a limit (refused as early as the size
//! is known, the rest drained so the client reads the refusal), and multipart uploads.

use crate::headers::content_length;
use crate::http::admin::ApiError;
use crate::runtime::client_body::ClientBody;
use bytes::{Bytes, BytesMut};
use http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;

/// The parts of a `multipart/form-data` upload: `component` (required) and `manifest`
/// (optional, the `NAME.toml` text), so a component and its settings go live together.
async fn split_multipart(
    body: Bytes,
    boundary: String,
) -> Result<(Bytes, Option<String>), ApiError> {
    let bad = |message: String| ApiError::bad_request(message);
    let stream = futures::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let (mut component, mut manifest) = (None, None);
    while let Some(field) = multipart
        .next_field()
        .await
        .map_err(|e| bad(format!("bad multipart body: {e}")))?
    {
        match field.name() {
            Some("component") => {
                component = Some(
                    field
                        .bytes()
                        .await
                        .map_err(|e| bad(format!("reading `component`: {e}")))?,
                );
            }
            Some("manifest") => {
                manifest = Some(
                    field
                        .text()
                        .await
                        .map_err(|e| bad(format!("reading `manifest`: {e}")))?,
                );
            }
            other => {
                return Err(bad(format!(
                    "unexpected part `{}`: send `component` and optionally `manifest`",
                    other.unwrap_or("")
                )));
            }
        }
    }
    let component =
        component.ok_or_else(|| bad("the multipart body has no `component` part".into()))?;
    Ok((component, manifest))
}

/// How much of an oversized upload is read and thrown away before answering 413, at least.
const MIN_DRAIN_BYTES: u64 = 1 << 20;
/// How long that may take.
const DRAIN_TIME: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads and discards up to `budget` more bytes of a refused body (within [`DRAIN_TIME`]), so
/// a client still sending gets to read the refusal: closing a connection with unread data
/// resets it, and the client loses the answer.
async fn drain(mut body: ClientBody, budget: u64) {
    let mut left = budget;
    let _ = tokio::time::timeout(DRAIN_TIME, async {
        while let Some(Ok(frame)) = body.frame().await {
            let len = frame.data_ref().map_or(0, |d| d.len() as u64);
            match left.checked_sub(len) {
                Some(rest) => left = rest,
                None => break,
            }
        }
    })
    .await;
}

/// The most a request body may hold, and how to tell the client so.
#[derive(Clone, Copy)]
pub(super) struct BodyLimit {
    /// The most it may hold.
    pub bytes: u64,
    /// What the body is, for the message (`upload`).
    pub what: &'static str,
    /// The flag that sets the limit.
    pub flag: &'static str,
}

/// Reads a request body of at most `limit` bytes, refusing as soon as it is known to be
/// larger: from `content-length` before reading, or while streaming.
pub(super) async fn read_limited(
    request: Request<ClientBody>,
    limit: BodyLimit,
) -> Result<Bytes, ApiError> {
    let declared = content_length(request.headers());
    let mut body = request.into_body();
    let BodyLimit {
        bytes: limit,
        what,
        flag,
    } = limit;
    let too_large = |size: String| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{what} is {size}, limit is {} ({flag})",
                bytesize::ByteSize(limit)
            ),
        )
    };
    if let Some(declared) = declared
        && declared > limit
    {
        return Err(too_large(bytesize::ByteSize(declared).to_string()));
    }
    let mut buffer = BytesMut::with_capacity(declared.unwrap_or(0).min(limit) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ApiError::bad_request(format!("reading the {what}: {e}")))?;
        if let Ok(data) = frame.into_data() {
            if (buffer.len() + data.len()) as u64 > limit {
                drain(body, limit.max(MIN_DRAIN_BYTES)).await;
                return Err(too_large(format!(
                    "more than {}",
                    bytesize::ByteSize(limit)
                )));
            }
            buffer.extend_from_slice(&data);
        }
    }
    Ok(buffer.freeze())
}

/// An upload: the component, and the manifest text when one was sent with it (as the
/// `manifest` part of a `multipart/form-data` body; otherwise the body is the component).
///
/// # Errors
///
/// A body over `limit`, or a malformed multipart body.
pub(super) async fn read_upload(
    request: Request<ClientBody>,
    limit: BodyLimit,
) -> Result<(Bytes, Option<String>), ApiError> {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.starts_with("multipart/form-data"))
        .map(multer::parse_boundary)
        .transpose()
        .map_err(|problem| {
            ApiError::bad_request(format!("bad multipart content type: {problem}"))
        })?;
    let body = read_limited(request, limit).await?;
    match boundary {
        None => Ok((body, None)),
        Some(boundary) => split_multipart(body, boundary).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_multipart_parser_never_panics() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        crate::fuzz::fuzz("multipart", |bytes| {
            let body = Bytes::copy_from_slice(bytes);
            let _ = runtime.block_on(split_multipart(body, "b".into()));
        });
    }
}
