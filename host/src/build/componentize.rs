//! JavaScript projects (componentize-js against the proxy world plus the environment), and
//! the componentize tools' errors without their own Rust stacks (Python's too).

use super::{BuildError, Project, Toolchains, run_captured, tail};
use std::path::Path;
use tokio::process::Command;

/// The proxy world plus the environment, for JavaScript: componentize-js links only what the world
/// imports, and apps read `INPUT_JSON` from the environment (`wit/world.wit`).
const JS_WORLD: &str = "wasmount:guest/app";

/// `componentize-js --wit WIT --world-name wasmount:guest/app -o OUTPUT ENTRY` in the project.
pub(super) async fn js(
    project: &Project,
    tools: &Toolchains,
    entry: &str,
    output: &Path,
) -> Result<(), BuildError> {
    let program = tools.componentize_js().await?;
    let wit = tools.wit_for(&project.dir)?;
    let mut command = Command::new(program);
    command
        .current_dir(&project.dir)
        .arg("--wit")
        .arg(&wit)
        .args(["--world-name", JS_WORLD, "-o"])
        .arg(output)
        .arg(entry);
    finish(command, "building with componentize-js").await
}

pub(super) async fn finish(mut command: Command, what: &str) -> Result<(), BuildError> {
    let ran = run_captured(&mut command, what).await?;
    if ran.status.success() {
        return Ok(());
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    Err(BuildError::Compiler(developer_part(&said)))
}

/// The part of a componentize tool's failure the developer wrote: the Python or JavaScript
/// error, without the tool's Rust backtrace that follows it.
fn developer_part(said: &str) -> String {
    let cut = ["\nStack backtrace:", "\nstack backtrace:", "\nBacktrace:"]
        .iter()
        .filter_map(|marker| said.find(marker))
        .min()
        .unwrap_or(said.len());
    tail(&said[..cut], 40)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tools_own_backtrace_is_cut_off() {
        let said = "Traceback (most recent call last):\n  File \"app.py\", line 3\nSyntaxError: x\n\nStack backtrace:\n   0: anyhow::error\n   1: componentize_py::x";
        assert_eq!(
            developer_part(said),
            "Traceback (most recent call last):\n  File \"app.py\", line 3\nSyntaxError: x"
        );
    }
}
