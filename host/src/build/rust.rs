//! Rust projects: `cargo build --release --target wasm32-wasip2`, the target installed with
//! rustup when missing, and the compiler's errors as cargo renders them.

use super::{BuildError, Project, Toolchains, run_captured, tail};
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// The target every Rust guest is built for.
pub(super) const TARGET: &str = "wasm32-wasip2";

/// Builds `project` and copies its component to `output`.
pub(super) async fn build(
    project: &Project,
    tools: &Toolchains,
    output: &Path,
) -> Result<(), BuildError> {
    tools.ensure_rust_target(&project.dir).await?;
    let mut cargo = Command::new("cargo");
    cargo
        .current_dir(&project.dir)
        .args(["build", "--release", "--target", TARGET])
        .args([
            "--message-format=json-diagnostic-rendered-ansi",
            "--color=never",
        ]);
    let ran = run_captured(&mut cargo, "building with cargo (is Rust installed?)").await?;
    let messages = Messages::read(&String::from_utf8_lossy(&ran.stdout));
    if !ran.status.success() {
        return Err(BuildError::Compiler(messages.failure(&ran.stderr)));
    }
    let built = messages.component(&project.dir).ok_or_else(|| {
        anyhow::anyhow!(
            "cargo built no .wasm for {TARGET} in {} (is the package a binary using \
             #[wstd::http_server], or a cdylib?)",
            project.dir.display()
        )
    })?;
    std::fs::copy(&built, output)
        .with_context(|| format!("copying {} to {}", built.display(), output.display()))?;
    Ok(())
}

/// How many of rustc's errors a failure shows: the first are the ones to fix.
const SHOWN_ERRORS: usize = 3;

/// What cargo said, from its JSON messages on stdout.
#[derive(Debug, Default)]
struct Messages {
    /// Each error as rustc renders it (with `--> file:line:col`).
    errors: Vec<String>,
    /// Every `.wasm` built: (target name, path).
    wasm: Vec<(String, PathBuf)>,
}

impl Messages {
    fn read(stdout: &str) -> Self {
        let mut messages = Self::default();
        for line in stdout.lines() {
            let Ok(message) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            match message["reason"].as_str() {
                Some("compiler-message") if message["message"]["level"] == "error" => {
                    if let Some(rendered) = message["message"]["rendered"].as_str() {
                        messages.errors.push(strip_ansi(rendered));
                    }
                }
                Some("compiler-artifact") => messages.add_artifact(&message),
                _ => {}
            }
        }
        messages
    }

    fn add_artifact(&mut self, artifact: &serde_json::Value) {
        let name = artifact["target"]["name"].as_str().unwrap_or_default();
        let files = artifact["filenames"].as_array().into_iter().flatten();
        for file in files.filter_map(|f| f.as_str()) {
            if file.ends_with(".wasm") {
                self.wasm.push((name.to_owned(), PathBuf::from(file)));
            }
        }
    }

    /// The component built for the package in `dir`: the one named after it, else the last.
    fn component(&self, dir: &Path) -> Option<PathBuf> {
        let package = dir.file_name()?.to_string_lossy().replace('-', "_");
        self.wasm
            .iter()
            .find(|(name, _)| name.replace('-', "_") == package)
            .or(self.wasm.last())
            .map(|(_, path)| path.clone())
    }

    /// What to show for a failed build: rustc's errors, or cargo's own complaint (a bad
    /// `Cargo.toml`, a missing dependency) when rustc said nothing.
    fn failure(&self, stderr: &[u8]) -> String {
        if self.errors.is_empty() {
            let said = strip_ansi(&String::from_utf8_lossy(stderr));
            // From cargo's first error on: not its "Updating"/"Locking"/"Compiling" lines.
            let from = said.find("error").unwrap_or(0);
            return tail(&said[from..], 30);
        }
        let mut shown = self.errors[..self.errors.len().min(SHOWN_ERRORS)].join("\n");
        let more = self.errors.len().saturating_sub(SHOWN_ERRORS);
        if more > 0 {
            shown.push_str(&format!(
                "\n… and {more} more error(s): run `cargo build` to see all"
            ));
        }
        shown
    }
}

/// `text` without terminal colour codes.
fn strip_ansi(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte in @..~
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            plain.push(c);
        }
    }
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_and_the_component_are_read_from_cargos_messages() {
        let stdout = [
            r#"{"reason":"compiler-message","message":{"level":"warning","rendered":"warning: unused"}}"#,
            r#"{"reason":"compiler-message","message":{"level":"error","rendered":"\u001b[31merror\u001b[0m: expected `;`\n --> src/main.rs:3:5"}}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"wstd"},"filenames":["/t/libwstd.rlib"]}"#,
            r#"{"reason":"compiler-artifact","target":{"name":"my-app"},"filenames":["/t/my-app.wasm"]}"#,
            "not json",
        ]
        .join("\n");
        let messages = Messages::read(&stdout);
        assert_eq!(
            messages.failure(b""),
            "error: expected `;`\n --> src/main.rs:3:5"
        );
        assert_eq!(
            messages.component(Path::new("/p/my-app")),
            Some(PathBuf::from("/t/my-app.wasm"))
        );
    }

    #[test]
    fn cargos_own_complaint_is_shown_when_rustc_said_nothing() {
        let messages = Messages::read("");
        let stderr = b"error: failed to parse manifest at `/p/Cargo.toml`\n";
        assert_eq!(
            messages.failure(stderr),
            "error: failed to parse manifest at `/p/Cargo.toml`"
        );
    }
}
