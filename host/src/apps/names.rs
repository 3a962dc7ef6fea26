//! What a name or a path under the server may be: app and launch names (one namespace),
//! base paths, custom routes, and the [`Namespace`] that decides who holds a name.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

/// The path prefix reserved for the server's own endpoints.
pub(crate) const RESERVED_PREFIX: &str = "/_wasmount";

/// The longest app name accepted, so a name fits in a DNS label too.
pub(crate) const MAX_APP_NAME_LEN: usize = 63;

/// Whether `name` can name an app: `[a-z0-9][a-z0-9-]*`, at most [`MAX_APP_NAME_LEN`] bytes.
pub(crate) fn is_valid_app_name(name: &str) -> bool {
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
pub(crate) fn normalize_base_path(raw: &str) -> Result<String, String> {
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

/// The prefix app `name` is mounted under: `B/NAME`, no trailing slash.
pub(crate) fn mount_prefix(base: &str, name: &str) -> String {
    format!("{base}/{name}")
}

/// Checks and normalizes a custom route from a manifest: `"viz/heat/"` → `"/viz/heat"`.
///
/// # Errors
///
/// An empty route, one under the reserved prefix, or a segment that is empty, `.`/`..`, or
/// has characters outside `[A-Za-z0-9._~-]`.
pub(crate) fn normalize_route(raw: &str) -> Result<String, String> {
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

/// What holds a name: an app, a launch (both mounted at `B/NAME/`), or an app's
/// custom route that begins with `/NAME/` (it would cover, or be covered by, `B/NAME/`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A mounted (or loading, or being deployed) app.
    App,
    /// A launch.
    Launch,
    /// The custom route of this app.
    Route(Arc<str>),
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Holder::App => f.write_str("the name of an app"),
            Holder::Launch => f.write_str("the name of a launch"),
            Holder::Route(app) => write!(f, "within the custom route of app `{app}`"),
        }
    }
}

/// Names and route roots, under one lock.
#[derive(Default)]
struct Names {
    /// Name → the app or launch mounted at `B/NAME/`.
    holders: HashMap<Arc<str>, Holder>,
    /// First segment of a custom route → the apps whose route begins with it.
    route_roots: HashMap<Arc<str>, BTreeSet<Arc<str>>>,
}

/// The one namespace of apps, launches and custom routes: a name is taken by one
/// kind at a time, decided under one lock, so an upload and a launch racing for one name
/// cannot both win, and no custom route covers another's URL.
#[derive(Default)]
pub(crate) struct Namespace {
    names: Mutex<Names>,
}

impl Namespace {
    /// Takes `name` for `holder`; taking a name it already holds is fine.
    ///
    /// # Errors
    ///
    /// What else holds it: the other kind, or another app's custom route.
    pub(crate) fn take(&self, name: &str, holder: Holder) -> Result<(), Holder> {
        let mut names = self.names.lock().unwrap();
        if let Some(apps) = names.route_roots.get(name)
            && let Some(app) = apps
                .iter()
                .find(|app| !(holder == Holder::App && &***app == name))
        {
            return Err(Holder::Route(app.clone()));
        }
        match names.holders.get(name) {
            Some(other) if *other != holder => Err(other.clone()),
            Some(_) => Ok(()),
            None => {
                names.holders.insert(name.into(), holder);
                Ok(())
            }
        }
    }

    /// Gives `name` back, if `holder` holds it; an app gives back its route too.
    pub(crate) fn free(&self, name: &str, holder: Holder) {
        let mut names = self.names.lock().unwrap();
        if names.holders.get(name) == Some(&holder) {
            names.holders.remove(name);
        }
        if holder == Holder::App {
            remove_route(&mut names, name);
        }
    }

    /// Records that app `app` is mounted at custom route `route` (normalized, `/a/b`), or
    /// at none.
    ///
    /// # Errors
    ///
    /// What holds the route's first segment: another app or a launch, whose URL
    /// `B/SEGMENT/` covers the route.
    pub(crate) fn set_route(&self, app: &str, route: Option<&str>) -> Result<(), (String, Holder)> {
        let mut names = self.names.lock().unwrap();
        if let Some(root) = route.and_then(route_root) {
            match names.holders.get(root) {
                Some(Holder::App) if root == app => {}
                Some(holder) => return Err((root.to_owned(), holder.clone())),
                None => {}
            }
            remove_route(&mut names, app);
            names
                .route_roots
                .entry(root.into())
                .or_default()
                .insert(app.into());
        } else {
            remove_route(&mut names, app);
        }
        Ok(())
    }

    /// Who holds `name`.
    #[cfg(test)]
    pub(crate) fn holder(&self, name: &str) -> Option<Holder> {
        self.names.lock().unwrap().holders.get(name).cloned()
    }
}

/// The first segment of a normalized route: `/a/b` → `a`.
pub(crate) fn route_root(route: &str) -> Option<&str> {
    route
        .strip_prefix('/')?
        .split('/')
        .next()
        .filter(|root| !root.is_empty())
}

fn remove_route(names: &mut Names, app: &str) {
    names.route_roots.retain(|_, apps| {
        apps.remove(app);
        !apps.is_empty()
    });
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn base_paths_and_routes_are_normalized_or_refused() {
        assert_eq!(normalize_base_path("").unwrap(), "");
        assert_eq!(normalize_base_path("/").unwrap(), "");
        assert_eq!(normalize_base_path("viz/").unwrap(), "/viz");
        assert_eq!(normalize_base_path("/a/b").unwrap(), "/a/b");
        assert!(normalize_base_path("/a//b").is_err());
        assert!(normalize_base_path("/../x").is_err());
        assert!(normalize_base_path("/a b").is_err());
        assert_eq!(normalize_route("viz/heat/").unwrap(), "/viz/heat");
        assert!(normalize_route("/").is_err());
        assert!(normalize_route("/_wasmount/x").is_err());
        assert!(normalize_route("/a/../b").is_err());
        assert_eq!(
            mount_prefix("/visualizations", "heatmap"),
            "/visualizations/heatmap"
        );
    }

    #[test]
    fn a_name_is_held_by_one_kind_at_a_time() {
        let names = Namespace::default();
        assert_eq!(names.take("viz", Holder::App), Ok(()));
        assert_eq!(names.take("viz", Holder::App), Ok(()));
        assert_eq!(names.take("viz", Holder::Launch), Err(Holder::App));
        names.free("viz", Holder::Launch);
        assert_eq!(names.holder("viz"), Some(Holder::App));
        names.free("viz", Holder::App);
        assert_eq!(names.take("viz", Holder::Launch), Ok(()));
    }

    #[test]
    fn a_custom_route_and_a_name_never_cover_each_other() {
        let names = Namespace::default();
        names.take("hello", Holder::App).unwrap();
        names.take("inst", Holder::Launch).unwrap();
        names.take("tools", Holder::App).unwrap();
        let taken = |route| names.set_route("tools", Some(route)).unwrap_err().1;
        assert_eq!(taken("/hello"), Holder::App);
        assert_eq!(taken("/inst/a"), Holder::Launch);
        // Its own name is fine, and so is a free one, which then nobody else may take.
        names.set_route("tools", Some("/tools/x")).unwrap();
        names.set_route("tools", Some("/reports/x")).unwrap();
        let route = Holder::Route("tools".into());
        assert_eq!(names.take("reports", Holder::Launch), Err(route.clone()));
        assert_eq!(names.take("reports", Holder::App), Err(route));
        names.free("tools", Holder::App);
        assert_eq!(names.take("reports", Holder::App), Ok(()));
    }

    #[test]
    fn name_and_route_checks_never_panic() {
        let names = Namespace::default();
        crate::fuzz::fuzz("route", |bytes| {
            let text = String::from_utf8_lossy(bytes);
            let _ = is_valid_app_name(&text);
            let _ = normalize_base_path(&text);
            if let Ok(route) = normalize_route(&text) {
                assert!(route.starts_with('/') && !route.ends_with('/'), "{route}");
                let _ = names.set_route("app", Some(&route));
            }
        });
    }
}
