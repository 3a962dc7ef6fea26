//! Maps a request path to a mounted app and the path the app sees. Knows nothing of wasmtime.
//!
//! Layout, with an optional base path `B` (`""` or `/visualizations`):
//! - `/_wasmount/…` — the server's own endpoints, always at the root;
//! - `B/` — the index page;
//! - `B/NAME/rest?q` — app `NAME`, which sees `/rest?q` and the prefix `B/NAME`;
//! - `B/NAME` — a redirect to `B/NAME/`, so the app's relative links resolve.

/// The path prefix reserved for the server's own endpoints.
pub const RESERVED_PREFIX: &str = "/_wasmount";

/// The longest app name accepted, so a name fits in a DNS label too.
pub const MAX_APP_NAME_LEN: usize = 63;

/// Where a request path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// The page listing the mounted apps.
    Index,
    /// A server endpoint; the value is the path after `/_wasmount` (`/health`).
    Reserved(&'a str),
    /// An app, with the path it sees (always starting with `/`).
    App {
        /// The app's name.
        name: &'a str,
        /// The path inside the app, prefix removed.
        rest: &'a str,
    },
    /// `B/NAME` without the trailing slash: answer with a redirect to `B/NAME/`.
    AddTrailingSlash {
        /// The app's name.
        name: &'a str,
    },
    /// Nothing can be mounted here.
    NotFound,
}

/// Whether `name` can name an app: `[a-z0-9][a-z0-9-]*`, at most [`MAX_APP_NAME_LEN`] bytes.
pub fn is_valid_app_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_APP_NAME_LEN
        && (bytes[0].is_ascii_lowercase() || bytes[0].is_ascii_digit())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
}

/// Normalizes a base path: `""`, `"/"` → `""`; `"viz/"` → `"/viz"`.
///
/// # Errors
///
/// A segment that is empty, `.`/`..`, or has characters outside `[A-Za-z0-9._~-]`.
pub fn normalize_base_path(raw: &str) -> Result<String, String> {
    let trimmed = raw.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._~-".contains(c);
        if segment.is_empty() || segment == "." || segment == ".." || !segment.chars().all(allowed)
        {
            return Err(format!(
                "base path `{raw}` is invalid: segments must be non-empty and use [A-Za-z0-9._~-]"
            ));
        }
    }
    Ok(format!("/{trimmed}"))
}

/// Resolves `path` (no query) against the normalized `base` path.
pub fn resolve<'a>(base: &str, path: &'a str) -> Route<'a> {
    if let Some(rest) = path.strip_prefix(RESERVED_PREFIX)
        && (rest.is_empty() || rest.starts_with('/'))
    {
        return Route::Reserved(rest);
    }
    let Some(inside) = path.strip_prefix(base) else {
        return Route::NotFound;
    };
    if inside.is_empty() || inside == "/" {
        return Route::Index;
    }
    let Some(inside) = inside.strip_prefix('/') else {
        return Route::NotFound;
    };
    let (name, rest) = match inside.find('/') {
        Some(slash) => (&inside[..slash], &inside[slash..]),
        None => (inside, ""),
    };
    if !is_valid_app_name(name) {
        return Route::NotFound;
    }
    if rest.is_empty() {
        Route::AddTrailingSlash { name }
    } else {
        Route::App { name, rest }
    }
}

/// The prefix app `name` is mounted under: `B/NAME`, no trailing slash.
pub fn mount_prefix(base: &str, name: &str) -> String {
    format!("{base}/{name}")
}

/// Checks and normalizes a custom route from a manifest: `"viz/heat/"` → `"/viz/heat"`.
///
/// # Errors
///
/// An empty route, one under the reserved prefix, or a segment that is empty, `.`/`..`, or
/// has characters outside `[A-Za-z0-9._~-]`.
pub fn normalize_route(raw: &str) -> Result<String, String> {
    let route = normalize_base_path(raw).map_err(|_| {
        format!("route `{raw}` is invalid: segments must be non-empty and use [A-Za-z0-9._~-]")
    })?;
    if route.is_empty() {
        return Err(format!("route `{raw}` is invalid: it cannot be the root"));
    }
    if route == RESERVED_PREFIX || route.starts_with(&format!("{RESERVED_PREFIX}/")) {
        return Err(format!("route `{raw}` is reserved for the server"));
    }
    Ok(route)
}

/// Resolves `path` against apps with custom routes, longest route first. `routes` are
/// `(route, app name)` with routes already including the base path.
pub fn resolve_custom<'a, 'r>(
    routes: &'r [(String, std::sync::Arc<str>)],
    path: &'a str,
) -> Option<Route<'a>>
where
    'r: 'a,
{
    let mut best: Option<(&'r str, &'r str)> = None;
    for (route, name) in routes {
        let matches = path == route
            || path
                .strip_prefix(route.as_str())
                .is_some_and(|rest| rest.starts_with('/'));
        if matches && best.is_none_or(|(longest, _)| route.len() > longest.len()) {
            best = Some((route.as_str(), name.as_ref()));
        }
    }
    let (route, name) = best?;
    let rest = &path[route.len()..];
    Some(if rest.is_empty() {
        Route::AddTrailingSlash { name }
    } else {
        Route::App { name, rest }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apps_get_the_path_without_their_prefix() {
        assert_eq!(
            resolve("", "/hello/"),
            Route::App {
                name: "hello",
                rest: "/"
            }
        );
        assert_eq!(
            resolve("", "/viz/static/app.css"),
            Route::App {
                name: "viz",
                rest: "/static/app.css"
            }
        );
        assert_eq!(
            resolve("", "/hello"),
            Route::AddTrailingSlash { name: "hello" }
        );
    }

    #[test]
    fn index_reserved_and_unknown_paths() {
        assert_eq!(resolve("", "/"), Route::Index);
        assert_eq!(resolve("", ""), Route::Index);
        assert_eq!(resolve("", "/_wasmount/health"), Route::Reserved("/health"));
        assert_eq!(resolve("", "/_wasmount"), Route::Reserved(""));
        assert_eq!(resolve("", "/_wasmountx/"), Route::NotFound);
        assert_eq!(resolve("", "/Hello/"), Route::NotFound);
        assert_eq!(resolve("", "/-x/"), Route::NotFound);
        assert_eq!(resolve("", "/a%2Fb/"), Route::NotFound);
    }

    #[test]
    fn base_path_is_required_before_app_names() {
        let base = "/visualizations";
        assert_eq!(
            resolve(base, "/visualizations/heatmap/x?no"),
            Route::App {
                name: "heatmap",
                rest: "/x?no"
            }
        );
        assert_eq!(resolve(base, "/visualizations"), Route::Index);
        assert_eq!(resolve(base, "/visualizations/"), Route::Index);
        assert_eq!(resolve(base, "/visualizationsX/a/"), Route::NotFound);
        assert_eq!(resolve(base, "/heatmap/"), Route::NotFound);
        assert_eq!(
            resolve(base, "/_wasmount/health"),
            Route::Reserved("/health")
        );
        assert_eq!(mount_prefix(base, "heatmap"), "/visualizations/heatmap");
    }

    #[test]
    fn custom_routes_match_longest_first_on_segment_boundaries() {
        let routes: Vec<(String, std::sync::Arc<str>)> = vec![
            ("/viz".into(), "outer".into()),
            ("/viz/heat".into(), "heat".into()),
        ];
        assert_eq!(
            resolve_custom(&routes, "/viz/heat/x"),
            Some(Route::App {
                name: "heat",
                rest: "/x"
            })
        );
        assert_eq!(
            resolve_custom(&routes, "/viz/heatmap/"),
            Some(Route::App {
                name: "outer",
                rest: "/heatmap/"
            })
        );
        assert_eq!(
            resolve_custom(&routes, "/viz/heat"),
            Some(Route::AddTrailingSlash { name: "heat" })
        );
        assert_eq!(resolve_custom(&routes, "/vizzy/"), None);
        assert_eq!(normalize_route("viz/heat/").unwrap(), "/viz/heat");
        assert!(normalize_route("/").is_err());
        assert!(normalize_route("/_wasmount/x").is_err());
        assert!(normalize_route("/a/../b").is_err());
    }

    #[test]
    fn app_names_follow_the_dns_label_rule() {
        assert!(is_valid_app_name("hello"));
        assert!(is_valid_app_name("0-viz-2"));
        assert!(is_valid_app_name(&"a".repeat(63)));
        assert!(!is_valid_app_name(&"a".repeat(64)));
        assert!(!is_valid_app_name(""));
        assert!(!is_valid_app_name("-viz"));
        assert!(!is_valid_app_name("Viz"));
        assert!(!is_valid_app_name("v_z"));
        assert!(!is_valid_app_name("_wasmount"));
    }

    #[test]
    fn base_paths_are_normalized_or_refused() {
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert_eq!(normalize_base_path("viz/").unwrap(), "/viz");
        assert_eq!(normalize_base_path("/a/b").unwrap(), "/a/b");
        assert!(normalize_base_path("/a//b").is_err());
        assert!(normalize_base_path("/../x").is_err());
        assert!(normalize_base_path("/a b").is_err());
    }
}
