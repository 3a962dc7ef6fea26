//! Apps on disk: the apps folder, where each `NAME.wasm` is one app.

use crate::router::is_valid_app_name;
use anyhow::Context as _;
use std::path::{Path, PathBuf};

/// The file extension of an app component.
pub const APP_EXTENSION: &str = "wasm";

/// One app file found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppFile {
    /// The app name: the file name without `.wasm`.
    pub name: String,
    /// Where the component is.
    pub path: PathBuf,
}

/// Lists the `NAME.wasm` files of `dir`, ordered by name. Files whose name is not a valid app
/// name are skipped with a warning; other files are ignored.
///
/// # Errors
///
/// If the folder cannot be read.
pub fn scan_apps(dir: &Path) -> anyhow::Result<Vec<AppFile>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading apps folder {}", dir.display()))?;
    let mut apps = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading apps folder {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some(APP_EXTENSION) || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            tracing::warn!(path = %path.display(), "skipping app file: name is not UTF-8");
            continue;
        };
        if !is_valid_app_name(name) {
            tracing::warn!(
                path = %path.display(),
                "skipping app file: `{name}` is not a valid app name \
                 (lowercase letters, digits and `-`, at most 63 characters)"
            );
            continue;
        }
        apps.push(AppFile {
            name: name.to_owned(),
            path,
        });
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_valid_wasm_names_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["b.wasm", "a-1.wasm", "Bad.wasm", "notes.txt", "c.wasm.tmp"] {
            std::fs::write(dir.path().join(file), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.wasm")).unwrap();
        let names: Vec<_> = scan_apps(dir.path())
            .unwrap()
            .into_iter()
            .map(|app| app.name)
            .collect();
        assert_eq!(names, ["a-1", "b"]);
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let error = scan_apps(Path::new("/no/such/folder")).unwrap_err();
        assert!(format!("{error:#}").contains("/no/such/folder"));
    }
}
