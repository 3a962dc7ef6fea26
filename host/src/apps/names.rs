//! What a name or a path under the server may be: app and launch names (one namespace),
//! base paths, custom routes, and the [`Namespace`] that decides who holds a name.

use std::collections::HashMap;
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

/// What holds a name: an app, or a launched instance. Both are mounted at `B/NAME/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Holder {
    /// A mounted (or loading, or being deployed) app.
    App,
    /// A launched instance.
    Launch,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Holder::App => "an app",
            Holder::Launch => "a launched instance",
        })
    }
}

/// The one namespace of apps and launched instances: a name is taken by one kind at a time,
/// decided under one lock, so an upload and a launch racing for one name cannot both win.
#[derive(Default)]
pub(crate) struct Namespace {
    taken: Mutex<HashMap<Arc<str>, Holder>>,
}

impl Namespace {
    /// Takes `name` for `holder`; taking a name it already holds is fine.
    ///
    /// # Errors
    ///
    /// The other kind that holds it.
    pub(crate) fn take(&self, name: &str, holder: Holder) -> Result<(), Holder> {
        let mut taken = self.taken.lock().unwrap();
        match taken.get(name) {
            Some(other) if *other != holder => Err(*other),
            Some(_) => Ok(()),
            None => {
                taken.insert(name.into(), holder);
                Ok(())
            }
        }
    }

    /// Gives `name` back, if `holder` holds it.
    pub(crate) fn free(&self, name: &str, holder: Holder) {
        let mut taken = self.taken.lock().unwrap();
        if taken.get(name) == Some(&holder) {
            taken.remove(name);
        }
    }

    /// Who holds `name`.
    #[cfg(test)]
    pub(crate) fn holder(&self, name: &str) -> Option<Holder> {
        self.taken.lock().unwrap().get(name).copied()
    }
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
}
