//! `GET /_wasmount/apps/NAME/log`: one app's guest output as it is written, as server-sent
//! events (`data: {"request_id", "stream", "line"}`); lines a slow follower missed are
//! reported as `event: lagged` with their count. At most [`MAX_FOLLOWERS`] at once; every
//! stream ends when the server begins to shut down, so followers never hold up the drain.

use crate::http::admin::ApiError;
use crate::respond::Body;
use crate::runtime::guest_log::{GuestLine, LogTail};
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// Followers of guest output at once, over all apps (429 beyond).
pub(crate) const MAX_FOLLOWERS: usize = 16;

/// The event stream of app `app`'s output, from now on, until `draining` turns true.
///
/// # Errors
///
/// `429` when [`MAX_FOLLOWERS`] already follow.
pub(crate) fn follow(
    tail: &LogTail,
    app: &str,
    draining: tokio::sync::watch::Receiver<bool>,
) -> Result<Response<Body>, ApiError> {
    if tail.receiver_count() >= MAX_FOLLOWERS {
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            format_args!("{MAX_FOLLOWERS} clients already follow guest output; try again later"),
        ));
    }
    let app: Arc<str> = app.into();
    let opening = Bytes::from(format!(": following the output of app {app}\n\n"));
    let first = futures::stream::once(async move { Ok(Frame::data(opening)) });
    let state = (tail.subscribe(), app, draining);
    let lines = futures::stream::unfold(state, |(mut lines, app, mut draining)| async move {
        let event = tokio::select! {
            event = next_event(&mut lines, &app) => event?,
            _ = draining.wait_for(|draining| *draining) => return None,
        };
        Some((Ok(Frame::data(event)), (lines, app, draining)))
    });
    let body = StreamBody::new(futures::StreamExt::chain(first, lines)).boxed_unsync();
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

/// The next event for `app`: one of its lines, or how many lines were missed.
async fn next_event(
    lines: &mut tokio::sync::broadcast::Receiver<GuestLine>,
    app: &str,
) -> Option<Bytes> {
    loop {
        match lines.recv().await {
            Ok(line) if *line.app == *app => {
                let data = serde_json::json!({
                    "request_id": &*line.request_id,
                    "stream": line.stream,
                    "line": &*line.text,
                });
                return Some(Bytes::from(format!("data: {data}\n\n")));
            }
            Ok(_) => {}
            Err(RecvError::Lagged(missed)) => {
                return Some(Bytes::from(format!("event: lagged\ndata: {missed}\n\n")));
            }
            Err(RecvError::Closed) => return None,
        }
    }
}
