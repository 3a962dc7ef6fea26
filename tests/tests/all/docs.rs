//! The docs cannot drift: every ```` ```sh ```` block of `README.md` and `docs/*.md` is run,
//! in order per file, in one bash shell (`set -euo pipefail`) from a fresh folder holding the
//! demo apps (`examples/apps/{hello,viz,echo}.wasm`) and `myapp.wasm`, with `wasmount` on
//! `PATH` and the ports 8080–8082 moved to free ones. A block that starts a server in the
//! background (a line ending in `&`) is followed by a wait until its ports accept
//! connections; every process the file started is killed at its end. ```` ```bash ````
//! blocks are not run, and may not start a server or call the API outside the pages whose
//! examples need what a test cannot start ([`NOT_RUNNABLE`]).

use std::path::{Path, PathBuf};
use std::time::Duration;
use wasmount_tests::{free_port, guests};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// Pages whose server examples need an outside service (PostgreSQL, an OCI registry,
/// systemd, a certificate authority, a container engine) and are shown, not run.
const NOT_RUNNABLE: [&str; 2] = ["cluster.md", "operating.md"];

/// The ports the docs use, each replaced by a free one.
const DOC_PORTS: [&str; 3] = ["8080", "8081", "8082"];

/// How long one page's examples may take, build of nothing included.
const PAGE_DEADLINE: Duration = Duration::from_secs(300);

/// A fenced code block: its info string's first word, where it starts, its text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn blocks(markdown: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut open: Option<Block> = None;
    for (number, line) in markdown.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                let lang = info.split_whitespace().next().unwrap_or("").to_owned();
                open = Some(Block {
                    lang,
                    line: number + 1,
                    text: String::new(),
                });
            }
            (Some(_), Some(_)) => found.extend(open.take()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {}
        }
    }
    found
}

fn pages() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut pages: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ exists")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "md"))
        .collect();
    pages.sort();
    pages.insert(0, root.join("README.md"));
    pages
}

/// Whether a shell block starts a server or calls the API.
fn meets_a_server(text: &str) -> bool {
    [
        "wasmount serve",
        "wasmount dev",
        "/_wasmount/",
        "wasmount deploy",
        "wasmount launch",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

#[test]
fn shell_examples_that_meet_a_server_are_the_ones_run() {
    let mut unrun = Vec::new();
    let mut runnable = 0;
    for page in pages() {
        let name = page.file_name().unwrap().to_string_lossy().into_owned();
        for block in blocks(&std::fs::read_to_string(&page).unwrap()) {
            runnable += usize::from(block.lang == "sh");
            if block.lang == "bash"
                && meets_a_server(&block.text)
                && !NOT_RUNNABLE.contains(&name.as_str())
            {
                unrun.push(format!("{name}:{}", block.line));
            }
        }
    }
    assert!(
        unrun.is_empty(),
        "```bash blocks that start a server or call the API (make them ```sh, which a test runs): {unrun:?}"
    );
    assert!(runnable >= 5, "only {runnable} ```sh blocks in the docs");
}

/// A folder as the docs assume: the demo apps and `myapp.wasm`, `wasmount` on a `bin/`.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let apps = dir.path().join("examples/apps");
    std::fs::create_dir_all(&apps).unwrap();
    for (name, path) in [
        ("hello", guests::HELLO),
        ("viz", guests::VIZ),
        ("echo", guests::ECHO),
    ] {
        std::fs::copy(path, apps.join(format!("{name}.wasm"))).unwrap();
    }
    std::fs::copy(guests::HELLO, dir.path().join("myapp.wasm")).unwrap();
    let bin = dir.path().join(".bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(BIN, bin.join("wasmount")).unwrap();
    dir
}

/// The script that runs a page's `sh` blocks, or `None` when it has none.
fn script_of(page: &str, ports: &[(String, u16)]) -> Option<String> {
    let moved = |text: &str| {
        ports.iter().fold(text.to_owned(), |text, (from, to)| {
            text.replace(from, &to.to_string())
        })
    };
    let mut script = String::from(
        "set -euo pipefail\n\
         trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n\
         wait_for_port() { for _ in $(seq 1200); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done; echo \"port $1 never opened\" >&2; return 1; }\n",
    );
    let mut any = false;
    for block in blocks(page).into_iter().filter(|block| block.lang == "sh") {
        any = true;
        let text = moved(&block.text);
        script.push_str(&format!(
            "echo '--- block at line {}' >&2\n{text}",
            block.line
        ));
        if block
            .text
            .lines()
            .any(|line| line.trim_end().ends_with('&'))
        {
            for (from, to) in ports {
                if block.text.contains(from.as_str()) {
                    script.push_str(&format!("wait_for_port {to}\n"));
                }
            }
        }
    }
    any.then_some(script)
}

async fn run_page(path: &Path) {
    let page = std::fs::read_to_string(path).unwrap();
    let ports: Vec<(String, u16)> = DOC_PORTS
        .iter()
        .map(|p| (p.to_string(), free_port()))
        .collect();
    let Some(script) = script_of(&page, &ports) else {
        return;
    };
    let dir = workspace();
    let path_var = format!(
        "{}:{}",
        dir.path().join(".bin").display(),
        std::env::var("PATH").unwrap()
    );
    let mut command = tokio::process::Command::new("bash");
    command
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path_var)
        .env("HOME", dir.path())
        .env("RUST_LOG", "warn")
        .process_group(0)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    for (key, _) in std::env::vars().filter(|(key, _)| key.starts_with("WASMOUNT_")) {
        command.env_remove(key);
    }
    let child = command.spawn().expect("running bash");
    let pid = child.id().expect("a pid");
    let outcome = tokio::time::timeout(PAGE_DEADLINE, child.wait_with_output()).await;
    // Whatever the page left running goes with its process group.
    let _ = std::process::Command::new("kill")
        .args(["-9", &format!("-{pid}")])
        .status();
    let output = outcome
        .unwrap_or_else(|_| panic!("{}: examples took over {PAGE_DEADLINE:?}", path.display()))
        .unwrap();
    assert!(
        output.status.success(),
        "{}: an example failed ({})\nstdout:\n{}\nstderr:\n{}",
        path.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sh_example_in_the_docs_runs() {
    for page in pages() {
        run_page(&page).await;
    }
}

#[test]
fn the_block_reader_finds_fences_and_their_languages() {
    let found = blocks("text\n```sh\necho a\n```\n\n  ```bash\nls\n  ```\n");
    let langs: Vec<_> = found
        .iter()
        .map(|b| (b.lang.as_str(), b.line, b.text.as_str()))
        .collect();
    assert_eq!(langs, [("sh", 2, "echo a\n"), ("bash", 6, "ls\n")]);
}
