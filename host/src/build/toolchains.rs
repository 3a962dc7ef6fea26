//! The toolchains builds need, installed on first use into a cache folder and pinned to the
//! versions wasmount is tested with: the `wasm32-wasip2` target (rustup), componentize-py
//! (pip, in a virtual environment) and componentize-js (npm). Also the WIT of
//! `wasi:http/proxy`, embedded, for projects without a `wit/` folder of their own.

use super::run_captured;
use super::rust::TARGET;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use tokio::process::Command;
use tokio::sync::Mutex;

/// The componentize-py release guests are built and tested with.
pub const COMPONENTIZE_PY: &str = "0.25.1";
/// The componentize-js release guests are built and tested with.
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// componentize-js imports this package without depending on it.
const PREVIEW2_SHIM: &str = "0.25.0";

/// The WIT files of the world guests implement (`wasi:http/proxy`), as the repository pins it.
pub const WIT_FILES: &[(&str, &str)] = &[
    ("world.wit", include_str!("../../../wit/world.wit")),
    ("deps/cli.wit", include_str!("../../../wit/deps/cli.wit")),
    (
        "deps/clocks.wit",
        include_str!("../../../wit/deps/clocks.wit"),
    ),
    (
        "deps/filesystem.wit",
        include_str!("../../../wit/deps/filesystem.wit"),
    ),
    ("deps/http.wit", include_str!("../../../wit/deps/http.wit")),
    ("deps/io.wit", include_str!("../../../wit/deps/io.wit")),
    (
        "deps/random.wit",
        include_str!("../../../wit/deps/random.wit"),
    ),
    (
        "deps/sockets.wit",
        include_str!("../../../wit/deps/sockets.wit"),
    ),
];

/// The cache folder toolchains are installed in; one install at a time.
#[derive(Debug)]
pub struct Toolchains {
    dir: PathBuf,
    /// Held while something is installed into the cache.
    pub(super) installing: Mutex<()>,
    /// Toolchain folders (`rustup` resolves one per project) known to have the target.
    have_target: std::sync::Mutex<std::collections::BTreeSet<PathBuf>>,
}

impl Toolchains {
    /// Toolchains kept in `dir`.
    pub fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            installing: Mutex::new(()),
            have_target: Default::default(),
        }
    }

    /// The cache folder.
    pub(super) fn dir(&self) -> &Path {
        &self.dir
    }

    /// The default cache folder: `$XDG_CACHE_HOME/wasmount/tools`, else
    /// `~/.cache/wasmount/tools`.
    pub fn default_dir() -> PathBuf {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
            .unwrap_or_else(std::env::temp_dir);
        cache.join("wasmount/tools")
    }

    /// Adds the `wasm32-wasip2` target with rustup if the toolchain `dir` builds with lacks
    /// it (saying so).
    pub(super) async fn ensure_rust_target(&self, dir: &Path) -> anyhow::Result<()> {
        if self.has_target(dir) {
            return Ok(()); // asked once per project: rustup takes tens of milliseconds
        }
        let _one = self.installing.lock().await;
        let mut list = Command::new("rustup");
        list.current_dir(dir)
            .args(["target", "list", "--installed"]);
        let Ok(listed) = run_captured(&mut list, "listing Rust targets").await else {
            // No rustup: a toolchain installed otherwise; cargo says if the target is missing.
            return Ok(());
        };
        if !String::from_utf8_lossy(&listed.stdout)
            .lines()
            .any(|line| line.trim() == TARGET)
        {
            tracing::info!("installing the {TARGET} Rust target with rustup (first use)");
            let mut add = Command::new("rustup");
            add.current_dir(dir).args(["target", "add", TARGET]);
            succeed(add, "rustup target add wasm32-wasip2").await?;
        }
        let mut known = self.have_target.lock().unwrap_or_else(|e| e.into_inner());
        known.insert(dir.to_owned());
        Ok(())
    }

    fn has_target(&self, dir: &Path) -> bool {
        let known = self.have_target.lock().unwrap_or_else(|e| e.into_inner());
        known.contains(dir)
    }

    /// componentize-py, installed with pip into `TOOLS/python` on first use.
    pub(super) async fn componentize_py(&self) -> anyhow::Result<PathBuf> {
        let _one = self.installing.lock().await;
        let venv = self.dir.join("python");
        let program = venv.join("bin/componentize-py");
        if version_of(&program).await.as_deref() == Some(COMPONENTIZE_PY) {
            return Ok(program);
        }
        tracing::info!(
            "installing componentize-py {COMPONENTIZE_PY} into {} (first use)",
            venv.display()
        );
        let mut create = Command::new("python3");
        create.args(["-m", "venv"]).arg(&venv);
        succeed(
            create,
            "creating a Python virtual environment (python3 with venv is needed)",
        )
        .await?;
        let mut pip = Command::new(venv.join("bin/pip"));
        pip.args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(format!("componentize-py=={COMPONENTIZE_PY}"));
        succeed(pip, "installing componentize-py with pip").await?;
        Ok(program)
    }

    /// componentize-js, installed with npm into `TOOLS/js` on first use.
    pub(super) async fn componentize_js(&self) -> anyhow::Result<PathBuf> {
        let _one = self.installing.lock().await;
        let folder = self.dir.join("js");
        let program = folder.join("node_modules/.bin/componentize-js");
        let package = folder.join("node_modules/@bytecodealliance/componentize-js/package.json");
        if program.exists() && package_version(&package).as_deref() == Some(COMPONENTIZE_JS) {
            return Ok(program);
        }
        tracing::info!(
            "installing componentize-js {COMPONENTIZE_JS} into {} (first use)",
            folder.display()
        );
        std::fs::create_dir_all(&folder)
            .with_context(|| format!("creating {}", folder.display()))?;
        let mut npm = Command::new("npm");
        npm.current_dir(&folder)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--no-save",
            ])
            .arg(format!(
                "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
            ))
            .arg(format!("@bytecodealliance/preview2-shim@{PREVIEW2_SHIM}"));
        succeed(
            npm,
            "installing componentize-js with npm (node and npm are needed)",
        )
        .await?;
        Ok(program)
    }

    /// The project's own `wit/` folder, else the embedded one written into the cache.
    pub(super) fn wit_for(&self, project: &Path) -> anyhow::Result<PathBuf> {
        let own = project.join("wit");
        if own.join("world.wit").is_file() {
            return Ok(own);
        }
        let wit = self.dir.join("wit");
        write_wit(&wit)?;
        Ok(wit)
    }
}

/// Writes the embedded WIT files into `folder`.
///
/// # Errors
///
/// If a file cannot be written.
pub fn write_wit(folder: &Path) -> anyhow::Result<()> {
    for (path, text) in WIT_FILES {
        write_if_changed(&folder.join(path), text)?;
    }
    Ok(())
}

/// Writes `text` to `path` unless it already holds it: into a file of its own, renamed over
/// `path`, so another build reading it meanwhile never sees half of it.
pub(super) fn write_if_changed(path: &Path, text: &str) -> anyhow::Result<()> {
    if std::fs::read_to_string(path).ok().as_deref() == Some(text) {
        return Ok(());
    }
    let parent = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    crate::apps::store::write_atomically(parent, path, text.as_bytes())
        .with_context(|| format!("writing {}", path.display()))
}

/// `PROGRAM --version`'s last word, if it runs.
async fn version_of(program: &Path) -> Option<String> {
    let mut command = Command::new(program);
    command.arg("--version");
    let ran = run_captured(&mut command, "").await.ok()?;
    let text = String::from_utf8_lossy(&ran.stdout);
    text.split_whitespace().last().map(str::to_owned)
}

/// The `version` of an npm `package.json`.
fn package_version(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let package: serde_json::Value = serde_json::from_str(&text).ok()?;
    package["version"].as_str().map(str::to_owned)
}

/// Runs an install step; its output becomes the error when it fails.
async fn succeed(mut command: Command, what: &str) -> anyhow::Result<()> {
    let ran = run_captured(&mut command, what).await?;
    anyhow::ensure!(
        ran.status.success(),
        "{what} failed ({}):\n{}{}",
        ran.status,
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    Ok(())
}
