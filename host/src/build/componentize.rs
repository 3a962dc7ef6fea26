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
    let cut = [
        "\nStack backtrace:",
        "\nstack backtrace:",
        "\nBacktrace:",
        "\n\nCaused by:",
    ]
    .iter()
    .filter_map(|marker| said.find(marker))
    .min()
    .unwrap_or(said.len());
    let said = &said[..cut];
    // componentize-py reports the app's error as an AssertionError of its own script.
    let said = said
        .split_once("AssertionError: ")
        .map_or(said, |(_, error)| error);
    tail(&unmount_paths(said), 40)
}

/// `File "/0/app.py"` → `File "app.py"`: componentize-py mounts each folder of the Python
/// path as `/0`, `/1`, … while building.
fn unmount_paths(text: &str) -> String {
    let mut plain = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("File \"/") {
        let (before, from) = rest.split_at(at + "File \"".len());
        plain.push_str(before);
        let digits = from[1..].bytes().take_while(u8::is_ascii_digit).count();
        let mounted = digits > 0 && from[1 + digits..].starts_with('/');
        rest = if mounted { &from[digits + 2..] } else { from };
    }
    plain.push_str(rest);
    plain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_python_error_comes_without_the_tools_wrapper_and_mount_paths() {
        let said = "Traceback (most recent call last):\n  File \"/t/bin/componentize-py\", line 8, in <module>\n    sys.exit(script())\nAssertionError:   File \"/0/app.py\", line 14\n    def broken(:\n               ^\nSyntaxError: invalid syntax\n\n\nCaused by:\n    SyntaxError: invalid syntax (app.py, line 14)";
        assert_eq!(
            developer_part(said),
            "  File \"app.py\", line 14\n    def broken(:\n               ^\nSyntaxError: invalid syntax"
        );
        assert_eq!(unmount_paths("File \"/usr/x.py\""), "File \"/usr/x.py\"");
    }

    #[test]
    fn the_tools_own_backtrace_is_cut_off() {
        let said = "Traceback (most recent call last):\n  File \"app.py\", line 3\nSyntaxError: x\n\nStack backtrace:\n   0: anyhow::error\n   1: componentize_py::x";
        assert_eq!(
            developer_part(said),
            "Traceback (most recent call last):\n  File \"app.py\", line 3\nSyntaxError: x"
        );
    }
}
