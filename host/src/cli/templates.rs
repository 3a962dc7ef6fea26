//! `wasmount new`'s project templates, embedded in the binary: a Rust app on the SDK, and
//! Python and JavaScript apps on the WIT this server pins. `{{name}}`, `{{crate_name}}` and
//! `{{sdk}}` are filled in when a project is written.

use crate::apps::names::is_valid_app_name;
use crate::build::Language;
use anyhow::Context as _;
use std::path::Path;

macro_rules! template {
    ($lang:literal: $($path:literal),+ $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $lang, "/", $path)))),+]
    };
}

const RUST: &[(&str, &str)] = template!("rust":
    "Cargo.toml", ".cargo/config.toml", "src/main.rs", "static/style.css", "wasmount.toml",
    ".gitignore", "README.md",
);
const PYTHON: &[(&str, &str)] = template!("python":
    "app.py", "wasmount.toml", ".gitignore", "README.md",
);
const JS: &[(&str, &str)] = template!("js":
    "package.json", "app.js", "wasmount.toml", ".gitignore", "README.md",
);

/// Writes a `lang` project for app `name` into `folder` (created; it must not hold anything
/// yet). `sdk` is the Rust SDK dependency as a TOML value.
///
/// # Errors
///
/// `name` is not an app name, `folder` is not empty, or a file cannot be written.
pub(crate) fn write(
    folder: &Path,
    name: &str,
    lang: Language,
    sdk: Option<&str>,
) -> anyhow::Result<()> {
    anyhow::ensure!(
        is_valid_app_name(name),
        "`{name}` is not an app name: use lowercase letters, digits and inner hyphens, \
         at most 63 characters (e.g. my-chart)"
    );
    let occupied = std::fs::read_dir(folder).is_ok_and(|mut entries| entries.next().is_some());
    anyhow::ensure!(
        !occupied,
        "{} already exists and is not empty: choose another name or remove it",
        folder.display()
    );
    anyhow::ensure!(
        !folder.exists() || folder.is_dir(),
        "{} exists and is not a folder",
        folder.display()
    );
    let files = match lang {
        Language::Rust => RUST,
        Language::Python => PYTHON,
        Language::Js => JS,
    };
    let sdk = sdk.map_or_else(default_sdk, str::to_owned);
    for (path, text) in files {
        let filled = text
            .replace("{{name}}", name)
            .replace("{{crate_name}}", &name.replace('-', "_"))
            .replace("{{sdk}}", &sdk);
        let path = folder.join(path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, filled).with_context(|| format!("writing {}", path.display()))?;
    }
    if lang != Language::Rust {
        crate::build::write_wit(&folder.join("wit"))?;
    }
    Ok(())
}

/// The SDK sources this binary was built from, when they are still there (a checkout of
/// wasmount), else the SDK's release on crates.io.
fn default_sdk() -> String {
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
    match std::fs::canonicalize(&sources) {
        Ok(path) if path.join("Cargo.toml").is_file() => {
            format!("{{ path = {:?} }}", path.display().to_string())
        }
        _ => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_is_written_with_its_name_filled_in() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("my-app");
        write(
            &folder,
            "my-app",
            Language::Rust,
            Some("{ path = \"/sdk\" }"),
        )
        .unwrap();
        let manifest = std::fs::read_to_string(folder.join("Cargo.toml")).unwrap();
        assert!(manifest.contains("name = \"my-app\""), "{manifest}");
        assert!(manifest.contains("{ path = \"/sdk\" }"), "{manifest}");
        for (path, _) in RUST.iter().chain(PYTHON).chain(JS) {
            assert!(!path.contains("{{"), "{path}");
        }
        write(&dir.path().join("py"), "py", Language::Python, None).unwrap();
        assert!(dir.path().join("py/wit/deps/http.wit").is_file());
    }

    #[test]
    fn a_bad_name_or_an_occupied_folder_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = write(&dir.path().join("My App"), "My App", Language::Js, None).unwrap_err();
        assert!(error.to_string().contains("not an app name"), "{error}");
        std::fs::write(dir.path().join("keep.txt"), "mine").unwrap();
        let error = write(dir.path(), "x", Language::Js, None).unwrap_err();
        assert!(error.to_string().contains("not empty"), "{error}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("keep.txt")).unwrap(),
            "mine"
        );
    }
}
