//! The dashboard under `/_wasmount/ui/`: one page and its script, style and icon, embedded
//! in the binary (no other origin is ever asked). The page itself is public and holds no
//! data; everything it shows comes from the admin API with the token the user types in.

use crate::http::admin::ApiError;
use crate::respond::{self, Body};
use bytes::Bytes;
use http::{HeaderValue, Method, Response, StatusCode, header};

/// One embedded file.
struct Asset {
    path: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

const ASSETS: [Asset; 4] = [
    Asset {
        path: "/",
        content_type: "text/html; charset=utf-8",
        bytes: include_bytes!("../../ui/index.html"),
    },
    Asset {
        path: "/dashboard.js",
        content_type: "text/javascript; charset=utf-8",
        bytes: include_bytes!("../../ui/dashboard.js"),
    },
    Asset {
        path: "/dashboard.css",
        content_type: "text/css; charset=utf-8",
        bytes: include_bytes!("../../ui/dashboard.css"),
    },
    Asset {
        path: "/favicon.svg",
        content_type: "image/svg+xml",
        bytes: include_bytes!("../../ui/favicon.svg"),
    },
];

/// Only this server's own files and API: no inline script, no other origin, no framing.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; \
    form-action 'none'; frame-ancestors 'none'";

/// Serves `rest`, the path after `/_wasmount/ui`.
pub(crate) fn serve(method: &Method, rest: &str) -> Response<Body> {
    if !matches!(*method, Method::GET | Method::HEAD) {
        return ApiError::method_not_allowed("GET, HEAD").into_response();
    }
    if rest.is_empty() {
        // Relative, so the page's own relative links work under any base path.
        return respond::permanent_redirect("ui/");
    }
    let wanted = if rest == "/index.html" { "/" } else { rest };
    let Some(asset) = ASSETS.iter().find(|asset| asset.path == wanted) else {
        return respond::text(
            StatusCode::NOT_FOUND,
            format_args!("no dashboard file at {rest}"),
        );
    };
    let mut response = Response::new(respond::full(Bytes::from_static(asset.bytes)));
    let headers = response.headers_mut();
    let fixed = [
        (header::CONTENT_TYPE, asset.content_type),
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-cache"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}
