//! The response headers a guest may send in path mode, where every app and launch shares one
//! origin: none that reaches beyond its own prefix. Removed are a `Service-Worker-Allowed`
//! outside the prefix (a worker over other apps' pages), a `Set-Cookie` with a `Path`
//! outside it or any `Domain` (cookies thrown at other apps), and the headers whose policy
//! covers the whole origin: `Clear-Site-Data` (wipes its storage),
//! `Strict-Transport-Security` (pins the host), `NEL`/`Report-To`/`Reporting-Endpoints`
//! (report every URL of the origin elsewhere), `Alt-Svc`, `Accept-CH`/`Critical-CH` and
//! `Origin-Agent-Cluster`. Knows nothing of apps: it takes the prefix and says what it
//! removed.

use http::HeaderMap;
use http::header::{HeaderName, HeaderValue, SET_COOKIE};

/// `Service-Worker-Allowed`.
const SERVICE_WORKER_ALLOWED: HeaderName = HeaderName::from_static("service-worker-allowed");
/// The headers whose policy covers the whole origin, as their metric labels.
const ORIGIN_WIDE: [&str; 9] = [
    "clear-site-data",
    "strict-transport-security",
    "nel",
    "report-to",
    "reporting-endpoints",
    "alt-svc",
    "accept-ch",
    "critical-ch",
    "origin-agent-cluster",
];

/// Removes from `headers` what reaches beyond `prefix` (`/viz`, `/visualizations/viz-…`);
/// returns the names of the headers it removed something of, for metrics and the log.
pub(crate) fn confine_to_prefix(headers: &mut HeaderMap, prefix: &str) -> Vec<&'static str> {
    let mut removed = Vec::new();
    for name in ORIGIN_WIDE {
        if headers.remove(name).is_some() {
            removed.push(name);
        }
    }
    let scopes = headers.get_all(SERVICE_WORKER_ALLOWED);
    if !scopes.iter().all(|scope| {
        scope
            .to_str()
            .is_ok_and(|scope| worker_scope_within(scope, prefix))
    }) {
        headers.remove(SERVICE_WORKER_ALLOWED);
        removed.push("service-worker-allowed");
    }
    if headers.contains_key(SET_COOKIE) {
        let cookies: Vec<HeaderValue> = headers.get_all(SET_COOKIE).iter().cloned().collect();
        let kept: Vec<HeaderValue> = cookies
            .iter()
            .filter(|cookie| cookie_stays_within(cookie, prefix))
            .cloned()
            .collect();
        if kept.len() != cookies.len() {
            headers.remove(SET_COOKIE);
            for cookie in kept {
                headers.append(SET_COOKIE, cookie);
            }
            removed.push("set-cookie");
        }
    }
    removed
}

/// Whether a `Service-Worker-Allowed` value keeps a worker under `prefix/`. Browsers compare
/// scopes as string prefixes after resolving the value as a URL, so it must start with
/// `prefix/` itself (`/viz` would cover `/viz-…` too) and hold nothing a URL parser would
/// rewrite: no dot segments, percent escapes, backslashes, control characters or spaces.
fn worker_scope_within(scope: &str, prefix: &str) -> bool {
    let plain = !scope.contains(['%', '\\', '?', '#'])
        && !scope.chars().any(|c| c.is_control() || c.is_whitespace())
        && !scope
            .split('/')
            .any(|segment| segment == "." || segment == "..");
    plain
        && scope
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Whether URL path `path` is `prefix` or lies under it.
fn within(path: &str, prefix: &str) -> bool {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.strip_prefix(prefix)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

/// Whether a `Set-Cookie` value names no `Domain` and no `Path` outside `prefix` (without a
/// `Path`, the browser takes the request's, which is under the prefix).
fn cookie_stays_within(cookie: &HeaderValue, prefix: &str) -> bool {
    let Ok(cookie) = cookie.to_str() else {
        return false;
    };
    cookie.split(';').skip(1).all(|attribute| {
        let (key, value) = attribute.split_once('=').unwrap_or((attribute, ""));
        match key.trim().to_ascii_lowercase().as_str() {
            "domain" => false,
            "path" => within(value.trim(), prefix),
            _ => true,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn headers_that_reach_beyond_the_prefix_are_removed() {
        let mut map = headers(&[
            ("service-worker-allowed", "/"),
            ("clear-site-data", "\"*\""),
            (
                "strict-transport-security",
                "max-age=63072000; includeSubDomains",
            ),
            ("set-cookie", "a=1; Path=/"),
            ("set-cookie", "b=2; Domain=example.org"),
            ("set-cookie", "c=3; Path=/viz/x; HttpOnly"),
            ("set-cookie", "d=4"),
            ("set-cookie", "e=5; path=/vizzy"),
            ("content-type", "text/html"),
        ]);
        let mut removed = confine_to_prefix(&mut map, "/viz");
        removed.sort_unstable();
        assert_eq!(
            removed,
            [
                "clear-site-data",
                "service-worker-allowed",
                "set-cookie",
                "strict-transport-security"
            ]
        );
        let cookies: Vec<_> = map.get_all(SET_COOKIE).iter().collect();
        assert_eq!(cookies, ["c=3; Path=/viz/x; HttpOnly", "d=4"]);
        assert_eq!(map["content-type"], "text/html");
    }

    #[test]
    fn a_worker_scope_must_stay_under_the_prefix_as_a_browser_resolves_it() {
        for scope in [
            "/viz",
            "/",
            "/viz/../",
            "/viz/x/../../",
            "/viz/%2e%2e/",
            "/viz/..\\",
            "/viz/.\t./",
            "/vizzy/",
            "viz/",
        ] {
            let mut map = HeaderMap::new();
            map.insert(
                "service-worker-allowed",
                HeaderValue::from_str(scope).unwrap(),
            );
            assert_eq!(
                confine_to_prefix(&mut map, "/viz"),
                ["service-worker-allowed"],
                "{scope:?}"
            );
        }
        let mut two = headers(&[
            ("service-worker-allowed", "/viz/"),
            ("service-worker-allowed", "/"),
        ]);
        assert_eq!(
            confine_to_prefix(&mut two, "/viz"),
            ["service-worker-allowed"],
            "every value"
        );
        let mut reporting = headers(&[
            ("nel", "{}"),
            ("report-to", "{}"),
            ("alt-svc", "h3=\":443\""),
        ]);
        assert_eq!(confine_to_prefix(&mut reporting, "/viz").len(), 3);
    }

    #[test]
    fn headers_within_the_prefix_stay() {
        let mut map = headers(&[
            ("service-worker-allowed", "/viz/"),
            ("set-cookie", "a=1; Path=/viz"),
            ("set-cookie", "b=2; Path=/viz/sub; Secure"),
        ]);
        assert!(confine_to_prefix(&mut map, "/viz").is_empty());
        assert_eq!(map.get_all(SET_COOKIE).iter().count(), 2);
        assert_eq!(map["service-worker-allowed"], "/viz/");
    }
}
