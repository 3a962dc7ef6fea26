//! The `wasmount` command line: parses arguments and calls the library.

use clap::{Parser, Subcommand};
use std::process::ExitCode;
use wasmount::cli;
use wasmount::config::ServeArgs;

/// Host many WebAssembly web apps (wasi:http components) in one server.
#[derive(Debug, Parser)]
#[command(name = "wasmount", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every NAME.wasm of a folder at /NAME/.
    Serve(ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_logging();
    match cli.command {
        Command::Serve(args) => cli::block_on_main(cli::serve(args)),
    }
}
