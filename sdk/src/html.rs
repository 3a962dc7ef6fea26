//! Escaping text for HTML and XML (SVG) output.

/// Escapes `text` so it can be placed in HTML or SVG element content or a quoted attribute.
///
/// # Examples
///
/// ```
/// assert_eq!(wasmount_sdk::html::escape("<a href=\"x\">&</a>"),
///            "&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
