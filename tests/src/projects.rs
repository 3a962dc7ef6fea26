//! App projects for the developer-loop tests: `wasmount new` in a folder inside the
//! workspace, `wasmount dev` serving them, edits saved as an editor would.

use crate::ServerProcess;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A build from nothing (dependencies included) on a busy 2-core machine.
pub const FIRST_BUILD: Duration = Duration::from_secs(600);
/// A rebuild after one edit.
pub const REBUILD: Duration = Duration::from_secs(180);

/// The build's target folder (the workspace's `target/`).
pub fn target_dir() -> PathBuf {
    // OUT_DIR is TARGET/debug/build/wasmount-tests-HASH/out.
    Path::new(env!("OUT_DIR"))
        .ancestors()
        .nth(4)
        .expect("OUT_DIR lies four folders below the target folder")
        .to_owned()
}

/// A folder for projects inside the workspace, so its pinned toolchain (with the
/// `wasm32-wasip2` target `.ci/run` installs) is the one that builds them.
pub fn workdir() -> tempfile::TempDir {
    let projects = target_dir().join("tmp");
    std::fs::create_dir_all(&projects).expect("creating target/tmp");
    tempfile::tempdir_in(projects).expect("creating a project folder")
}

/// Shared build caches: cargo's target folder for projects, and the toolchains the examples'
/// build already installed.
pub fn build_env() -> Vec<(&'static str, String)> {
    let target = target_dir();
    vec![
        (
            "CARGO_TARGET_DIR",
            target.join("dev-projects").display().to_string(),
        ),
        ("WASMOUNT_TOOLS", target.join("tools").display().to_string()),
    ]
}

/// The `wasmount` binary under test: integration tests pass
/// `env!("CARGO_BIN_EXE_wasmount-under-test")`.
pub struct Wasmount(pub &'static str);

impl Wasmount {
    /// Runs `wasmount ARGS…` in `dir` to the end: (success, stdout + stderr).
    pub fn run(&self, dir: &Path, args: &[&str]) -> (bool, String) {
        let output = std::process::Command::new(self.0)
            .current_dir(dir)
            .args(args)
            .envs(build_env())
            .output()
            .expect("running wasmount");
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        (output.status.success(), said)
    }

    /// `wasmount new NAME --lang LANG` in `dir`; the project's folder.
    pub fn new_project(&self, dir: &Path, name: &str, lang: &str) -> PathBuf {
        let (ok, said) = self.run(dir, &["new", name, "--lang", lang]);
        assert!(ok, "wasmount new {name} --lang {lang}: {said}");
        dir.join(name)
    }

    /// `wasmount dev` serving `projects` with a fresh apps folder.
    pub fn start_dev(&self, apps: &Path, projects: &[&Path]) -> ServerProcess {
        let mut args = vec!["--apps".to_owned(), apps.display().to_string()];
        args.extend(projects.iter().map(|p| p.display().to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs = build_env();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        ServerProcess::start_dev(self.0, &args, &envs)
    }
}

/// Saves `file` with its first `from` replaced by `to`.
pub fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("reading a source file");
    assert!(text.contains(from), "{} holds no {from:?}", file.display());
    // As editors save: a whole new file renamed over the old one.
    let saved = file.with_extension("wasmount-test-save");
    std::fs::write(&saved, text.replacen(from, to, 1)).expect("saving a source file");
    std::fs::rename(&saved, file).expect("saving a source file");
}
