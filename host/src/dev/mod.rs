//! Developer mode's own parts: projects built from source and rebuilt on save
//! ([`projects`]), and the browser's side of the loop — pages that reload themselves when a
//! new version is live and show a failed build over the page ([`live`]), and how dev mode
//! wraps the request path ([`wrap`]).

pub(crate) mod live;
pub(crate) mod projects;
pub(crate) mod wrap;
