//! Recognizing JSON in `content-type` and `accept` headers, to answer errors in kind.

use wstd::http::HeaderMap;

/// Whether `media_type` is JSON: `application/json` or any `…+json`, parameters ignored
/// (`application/json; charset=utf-8`, `application/problem+json`).
pub(crate) fn is_json(media_type: &str) -> bool {
    let essence = essence(media_type);
    essence == "application/json" || essence.ends_with("+json")
}

/// Whether errors for a request with `headers` should be JSON: its body is JSON, or it
/// accepts JSON and not HTML (a script's `fetch`, not a browser's page load).
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    let accepted: Vec<String> = header_text(headers, "accept")
        .split(',')
        .map(essence)
        .collect();
    let accepts_json = accepted.iter().any(|range| is_json(range));
    let accepts_html = accepted.iter().any(|range| range.as_str() == "text/html");
    is_json(header_text(headers, "content-type")) || (accepts_json && !accepts_html)
}

/// The lowercase `type/subtype` of a media type or media range, without parameters.
fn essence(media_type: &str) -> String {
    media_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Header `name` as text; `""` when absent or not valid text.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().unwrap());
        }
        map
    }

    #[test]
    fn json_media_types_are_recognized_with_parameters_and_suffixes() {
        assert!(is_json("application/json"));
        assert!(is_json("Application/JSON; charset=utf-8"));
        assert!(is_json("application/problem+json"));
        assert!(!is_json("text/plain"));
        assert!(!is_json("application/jsonp"));
        assert!(!is_json(""));
    }

    #[test]
    fn errors_are_json_for_json_bodies_and_for_clients_that_accept_json_not_html() {
        assert!(wants_json(&headers(&[("accept", "application/json")])));
        assert!(wants_json(&headers(&[(
            "content-type",
            "application/json"
        )])));
        assert!(!wants_json(&headers(&[(
            "accept",
            "text/html,application/json;q=0.9"
        )])));
        assert!(!wants_json(&headers(&[("accept", "*/*")])));
        assert!(!wants_json(&HeaderMap::new()));
    }
}
