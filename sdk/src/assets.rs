//! Static files compiled into the component and served with the right content type.

/// One static file embedded in the component, usually with [`embed_assets!`](crate::embed_assets).
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The path below the assets mount, without a leading `/` (`"app.css"`, `"img/logo.svg"`).
    pub path: &'static str,
    /// The file's contents.
    pub bytes: &'static [u8],
}

/// Embeds files from a folder of the guest crate as a `&'static [Asset]`.
///
/// The first argument is the folder relative to the crate's `Cargo.toml`, then the file paths
/// inside it. Serve them with [`Router::assets`](crate::Router::assets).
///
/// # Examples
///
/// A guest would write `embed_assets!("static"; "app.css", "app.js")`; this example embeds
/// the SDK's own source so that it runs:
///
/// ```
/// static ASSETS: &[wasmount_sdk::Asset] = wasmount_sdk::embed_assets!("src"; "lib.rs");
/// assert_eq!(ASSETS[0].path, "lib.rs");
/// assert!(ASSETS[0].bytes.starts_with(b"//!"));
/// ```
#[macro_export]
macro_rules! embed_assets {
    ($dir:literal; $($file:literal),* $(,)?) => {
        &[$(
            $crate::Asset {
                path: $file,
                bytes: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/", $dir, "/", $file)),
            }
        ),*]
    };
}

/// The `content-type` for a file name, from its extension; `application/octet-stream` if unknown.
///
/// # Examples
///
/// ```
/// assert_eq!(wasmount_sdk::content_type_for("app.js"), "text/javascript; charset=utf-8");
/// assert_eq!(wasmount_sdk::content_type_for("plot.SVG"), "image/svg+xml");
/// assert_eq!(wasmount_sdk::content_type_for("blob"), "application/octet-stream");
/// ```
pub fn content_type_for(path: &str) -> &'static str {
    let extension = path
        .rsplit_once('.')
        .map(|(_, ext)| ext.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "csv" => "text/csv; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "wasm" => "application/wasm",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
