//! Turning a project folder into a component: which language it is (`Cargo.toml`, `app.py`,
//! `package.json`), which toolchain builds it, and the compiler's own words when it fails.
//! `wasmount build` and `wasmount dev DIR` share it.

mod componentize;
mod python;
mod rust;
mod toolchains;

use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub use toolchains::{Toolchains, write_wit};

/// The language of a project, from the file that marks it (and `wasmount new --lang`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Language {
    /// `Cargo.toml`: cargo for `wasm32-wasip2`.
    Rust,
    /// `app.py`: componentize-py.
    Python,
    /// `package.json` with an entry module: componentize-js.
    Js,
}

impl Language {
    /// The name the command line uses for it (`--lang`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rust => "rust",
            Self::Python => "python",
            Self::Js => "js",
        }
    }
}

/// A folder holding an app's sources.
#[derive(Debug, Clone)]
pub struct Project {
    /// The folder, absolute.
    pub dir: PathBuf,
    /// What it is written in.
    pub language: Language,
    /// The JavaScript entry module (`package.json`'s `main`); empty for other languages.
    entry: String,
}

/// The file holding an app's settings, beside its sources.
pub const PROJECT_MANIFEST: &str = "wasmount.toml";

/// Where builds put their output inside a project (ignored by the watcher and by git).
pub const OUTPUT_FOLDER: &str = ".wasmount";

impl Project {
    /// Recognizes the project in `dir`.
    ///
    /// # Errors
    ///
    /// `dir` is not a folder, or holds none of `Cargo.toml`, `app.py`, `package.json`.
    pub fn detect(dir: &Path) -> anyhow::Result<Self> {
        let dir =
            std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
        anyhow::ensure!(dir.is_dir(), "{} is not a folder", dir.display());
        let (language, entry) = if dir.join("Cargo.toml").is_file() {
            (Language::Rust, String::new())
        } else if dir.join("app.py").is_file() {
            (Language::Python, String::new())
        } else if dir.join("package.json").is_file() {
            (Language::Js, js_entry(&dir)?)
        } else {
            anyhow::bail!(
                "{} is not a project: it has no Cargo.toml (Rust), app.py (Python) or \
                 package.json (JavaScript)",
                dir.display()
            );
        };
        Ok(Self {
            dir,
            language,
            entry,
        })
    }

    /// The folder's name, which `wasmount dev` mounts it under.
    pub fn folder_name(&self) -> String {
        self.dir
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// Where a build of app `name` is written by default: `.wasmount/NAME.wasm`.
    pub fn default_output(&self, name: &str) -> PathBuf {
        self.dir.join(OUTPUT_FOLDER).join(format!("{name}.wasm"))
    }

    /// Whether the project is still there (its folder and the file that marks its language):
    /// a deleted or renamed folder is not built, nor created again by a build.
    pub fn still_there(&self) -> bool {
        let marker = match self.language {
            Language::Rust => "Cargo.toml",
            Language::Python => "app.py",
            Language::Js => "package.json",
        };
        self.dir.join(marker).is_file()
    }

    /// The app's settings file, if the project has one.
    pub fn manifest(&self) -> Option<PathBuf> {
        Some(self.dir.join(PROJECT_MANIFEST)).filter(|path| path.is_file())
    }

    /// Whether a change at `path` (inside the project) can change the build: not the build's
    /// own output, dependencies, caches, hidden files or editors' temp files.
    pub fn is_source(&self, path: &Path) -> bool {
        let Ok(inside) = path.strip_prefix(&self.dir) else {
            return false;
        };
        let mut parts = inside.components().map(|c| c.as_os_str().to_string_lossy());
        let Some(file) = parts.next_back() else {
            return false;
        };
        if parts.any(|folder| is_ignored_folder(&folder)) {
            return false;
        }
        let temp = file.starts_with('.')
            || file.ends_with('~')
            || file.ends_with(".swp")
            || file.ends_with(".tmp")
            || file.chars().all(|c| c.is_ascii_digit());
        // Cargo writes the lock file on every build that resolves.
        !temp && !is_ignored_folder(&file) && file != "Cargo.lock"
    }
}

/// Whether a folder of a project holds no sources: build output, dependencies, caches,
/// hidden folders (`.git`, `.wasmount`).
pub fn is_ignored_folder(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "target" | "node_modules" | "__pycache__" | "wit_world" | "venv" | "dist"
        )
}

/// `package.json`'s `main`, or `app.js`.
fn js_entry(dir: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(dir.join("package.json"))
        .with_context(|| format!("reading {}/package.json", dir.display()))?;
    let package: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}/package.json is not JSON", dir.display()))?;
    let entry = package["main"].as_str().unwrap_or("app.js").to_owned();
    anyhow::ensure!(
        dir.join(&entry).is_file(),
        "{}/package.json names the entry module {entry}, which does not exist",
        dir.display()
    );
    Ok(entry)
}

/// A finished build.
#[derive(Debug)]
pub struct Built {
    /// The component.
    pub output: PathBuf,
    /// Its size in bytes.
    pub bytes: u64,
    /// How long the build took.
    pub took: Duration,
}

/// Why a build produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The sources do not build: the compiler's messages, trimmed to what the developer needs.
    #[error("{0}")]
    Compiler(String),
    /// The toolchain is missing and could not be installed, or could not be run.
    #[error(transparent)]
    Toolchain(#[from] anyhow::Error),
}

/// Builds `project` into `output` with the toolchains of `tools` (installed on first use).
///
/// # Errors
///
/// [`BuildError`]; `output` is then left as it was.
pub async fn build(
    project: &Project,
    tools: &Toolchains,
    output: &Path,
) -> Result<Built, BuildError> {
    let started = Instant::now();
    if let Some(folder) = output.parent() {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating {}", folder.display()))?;
    }
    // Written beside, then renamed over: a reader never sees half a component.
    let partial = output.with_extension("wasm.partial");
    match project.language {
        Language::Rust => rust::build(project, tools, &partial).await?,
        Language::Python => python::build(project, tools, &partial).await?,
        Language::Js => componentize::js(project, tools, &project.entry, &partial).await?,
    }
    std::fs::rename(&partial, output).with_context(|| format!("writing {}", output.display()))?;
    let bytes = std::fs::metadata(output).map(|m| m.len()).unwrap_or(0);
    Ok(Built {
        output: output.to_owned(),
        bytes,
        took: started.elapsed(),
    })
}

/// Runs `command` to the end, its output captured; killed if the build is abandoned.
async fn run_captured(
    command: &mut tokio::process::Command,
    what: &str,
) -> anyhow::Result<std::process::Output> {
    command
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("{what}: cannot start {:?}", command.as_std().get_program()))
}

/// The last `lines` lines of `text`.
fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(dir: &str) -> Project {
        Project {
            dir: PathBuf::from(dir),
            language: Language::Rust,
            entry: String::new(),
        }
    }

    #[test]
    fn sources_are_what_the_developer_edits_not_what_builds_write() {
        let p = project("/p");
        for source in [
            "/p/src/main.rs",
            "/p/Cargo.toml",
            "/p/app.py",
            "/p/static/a.css",
        ] {
            assert!(p.is_source(Path::new(source)), "{source}");
        }
        for other in [
            "/p/target/release/x.wasm",
            "/p/.wasmount/p.wasm",
            "/p/node_modules/a/index.js",
            "/p/__pycache__/app.pyc",
            "/p/src/.main.rs.swp",
            "/p/src/main.rs~",
            "/p/4913",
            "/p/.git/index",
            "/p/Cargo.lock",
            "/elsewhere/main.rs",
            "/p",
        ] {
            assert!(!p.is_source(Path::new(other)), "{other}");
        }
    }

    #[test]
    fn a_folder_without_a_project_file_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let error = Project::detect(dir.path()).unwrap_err().to_string();
        assert!(error.contains("no Cargo.toml"), "{error}");
        std::fs::write(dir.path().join("app.py"), "").unwrap();
        assert_eq!(
            Project::detect(dir.path()).unwrap().language,
            Language::Python
        );
    }
}
