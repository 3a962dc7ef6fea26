//! Maps a request path to what serves it: the index, a server endpoint, or a name (app or
//! launch) with the path it sees. Knows nothing of wasmtime.
//!
//! Layout, with an optional base path `B` (`""` or `/visualizations`):
//! - `/_wasmount/…` — the server's own endpoints, always at the root;
//! - `B/ROUTE/rest?q` — an app whose manifest sets a custom route (longest route wins);
//! - `B/` — the index page;
//! - `B/NAME/rest?q` — app or launch `NAME`, which sees `/rest?q` and the prefix
//!   `B/NAME`;
//! - `B/NAME` (or `B/ROUTE`) — a redirect to the same with a trailing slash, so the app's
//!   relative links resolve.

use crate::apps::names::{RESERVED_PREFIX, is_valid_app_name};
use std::sync::Arc;

/// Where a request path goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    /// The page listing the mounted apps.
    Index,
    /// A server endpoint; the value is the path after `/_wasmount` (`/health`).
    Reserved(&'a str),
    /// An app, with the path it sees (always starting with `/`).
    App {
        /// The app's (or launch's) name.
        name: &'a str,
        /// The path inside the app, prefix removed.
        rest: &'a str,
        /// Whether the path matched the app's custom route (rather than `B/NAME`).
        custom: bool,
    },
    /// `B/NAME` without the trailing slash: answer with a redirect to `B/NAME/`.
    AddTrailingSlash {
        /// The app's name.
        name: &'a str,
        /// Whether the path matched the app's custom route.
        custom: bool,
    },
    /// Nothing can be mounted here.
    NotFound,
}

/// The custom routes of the serving apps, `(route under the base path, app name)`: built
/// once per registry change, inside the same swap as the app table.
#[derive(Debug, Clone, Default)]
pub(crate) struct CustomRoutes(Vec<(String, Arc<str>)>);

impl CustomRoutes {
    /// The table of `routes`; when two apps claim one route the first one listed wins.
    pub(crate) fn new(routes: Vec<(String, Arc<str>)>) -> Self {
        Self(routes)
    }

    /// An app other than `name` whose route equals, covers or lies within `route`.
    pub(crate) fn overlapping(&self, route: &str, name: &str) -> Option<&Arc<str>> {
        let within = |inner: &str, outer: &str| {
            inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        };
        self.0
            .iter()
            .find(|(r, by)| by.as_ref() != name && (within(r, route) || within(route, r)))
            .map(|(_, by)| by)
    }

    /// Resolves `path` (no query) against the custom routes, then the `B/NAME` layout.
    pub(crate) fn resolve<'a>(&'a self, base: &str, path: &'a str) -> Route<'a> {
        path.strip_prefix(base)
            .and_then(|under_base| self.resolve_custom(under_base))
            .unwrap_or_else(|| resolve(base, path))
    }

    /// Resolves `path` (under the base path) against the custom routes, longest first.
    fn resolve_custom<'a>(&'a self, path: &'a str) -> Option<Route<'a>> {
        let mut best: Option<(&str, &str)> = None;
        for (route, name) in &self.0 {
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
            Route::AddTrailingSlash { name, custom: true }
        } else {
            Route::App {
                name,
                rest,
                custom: true,
            }
        })
    }
}

/// Resolves `path` (no query) against the normalized `base` path.
fn resolve<'a>(base: &str, path: &'a str) -> Route<'a> {
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
        Route::AddTrailingSlash {
            name,
            custom: false,
        }
    } else {
        Route::App {
            name,
            rest,
            custom: false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app<'a>(name: &'a str, rest: &'a str) -> Route<'a> {
        Route::App {
            name,
            rest,
            custom: false,
        }
    }

    fn resolve_plain<'a>(base: &str, path: &'a str) -> Route<'a> {
        resolve(base, path)
    }

    #[test]
    fn apps_get_the_path_without_their_prefix() {
        assert_eq!(resolve_plain("", "/hello/"), app("hello", "/"));
        assert_eq!(
            resolve_plain("", "/viz/static/app.css"),
            app("viz", "/static/app.css")
        );
        assert_eq!(
            resolve_plain("", "/hello"),
            Route::AddTrailingSlash {
                name: "hello",
                custom: false
            }
        );
    }

    #[test]
    fn index_reserved_and_unknown_paths() {
        assert_eq!(resolve_plain("", "/"), Route::Index);
        assert_eq!(resolve_plain("", ""), Route::Index);
        assert_eq!(
            resolve_plain("", "/_wasmount/health"),
            Route::Reserved("/health")
        );
        assert_eq!(resolve_plain("", "/_wasmount"), Route::Reserved(""));
        assert_eq!(resolve_plain("", "/_wasmountx/"), Route::NotFound);
        assert_eq!(resolve_plain("", "/Hello/"), Route::NotFound);
        assert_eq!(resolve_plain("", "/-x/"), Route::NotFound);
        assert_eq!(resolve_plain("", "/a%2Fb/"), Route::NotFound);
    }

    #[test]
    fn base_path_is_required_before_app_names() {
        let base = "/visualizations";
        assert_eq!(
            resolve_plain(base, "/visualizations/heatmap/x?no"),
            app("heatmap", "/x?no")
        );
        assert_eq!(resolve_plain(base, "/visualizations"), Route::Index);
        assert_eq!(resolve_plain(base, "/visualizations/"), Route::Index);
        assert_eq!(resolve_plain(base, "/visualizationsX/a/"), Route::NotFound);
        assert_eq!(resolve_plain(base, "/heatmap/"), Route::NotFound);
        assert_eq!(
            resolve_plain(base, "/_wasmount/health"),
            Route::Reserved("/health")
        );
    }

    #[test]
    fn custom_routes_match_longest_first_on_segment_boundaries() {
        let routes = CustomRoutes::new(vec![
            ("/viz".into(), "outer".into()),
            ("/viz/heat".into(), "heat".into()),
        ]);
        let custom = |name, rest| Route::App {
            name,
            rest,
            custom: true,
        };
        assert_eq!(routes.resolve("", "/viz/heat/x"), custom("heat", "/x"));
        assert_eq!(
            routes.resolve("", "/viz/heatmap/"),
            custom("outer", "/heatmap/")
        );
        assert_eq!(
            routes.resolve("", "/viz/heat"),
            Route::AddTrailingSlash {
                name: "heat",
                custom: true
            }
        );
        assert_eq!(routes.resolve("", "/vizzy/"), app("vizzy", "/"));
        assert_eq!(routes.resolve("/b", "/b/viz/x"), custom("outer", "/x"));
        assert_eq!(routes.resolve("/b", "/viz/x"), Route::NotFound);
        let overlapping = |route| routes.overlapping(route, "new").map(|n| n.to_string());
        assert_eq!(overlapping("/viz").as_deref(), Some("outer"));
        assert_eq!(overlapping("/viz/heat/x").as_deref(), Some("outer"));
        assert_eq!(overlapping("/vizzy"), None);
        assert_eq!(
            routes
                .overlapping("/viz/heat", "heat")
                .map(|n| n.to_string())
                .as_deref(),
            Some("outer")
        );
    }
}
