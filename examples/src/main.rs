//! Run with `cargo run --release -p wasmount-demo` (from the repository root).
//!
//! Builds the demo apps (hello, viz, echo) from `guests/`, puts them in `examples/apps/`, and
//! runs `wasmount serve --apps examples/apps` on http://127.0.0.1:8080/. Every `wasmount serve`
//! flag works here too (`-- --listen 127.0.0.1:0`); after one run, plain
//! `cargo run --release -- serve --apps examples/apps` serves the same folder.

use anyhow::Context as _;
use clap::{Args, Command, FromArgMatches};
use std::path::Path;
use std::process::ExitCode;
use wasmount::cli;
use wasmount::cli::ServeArgs;

include!(concat!(env!("OUT_DIR"), "/demo_apps.rs"));

/// The folder the demo serves: `examples/apps/`.
const DEMO_APPS_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/apps");

fn main() -> ExitCode {
    let command = ServeArgs::augment_args(Command::new("wasmount-demo"))
        .about("Serve the demo apps, built from source")
        .mut_arg("apps", |arg| arg.default_value(DEMO_APPS_DIR));
    let args = ServeArgs::from_arg_matches(&command.get_matches()).unwrap_or_else(|e| e.exit());
    cli::init_logging(false);
    cli::block_on_main(async move {
        install_demo_apps(&args.apps)?;
        cli::serve(args).await
    })
}

/// Copies the freshly built demo components into `dir` as `NAME.wasm`.
fn install_demo_apps(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, built) in DEMO_APPS {
        let target = dir.join(format!("{name}.wasm"));
        std::fs::copy(built, &target)
            .with_context(|| format!("copying {built} to {}", target.display()))?;
    }
    Ok(())
}
