//! The `wasmount` binary: everything is in the library (`wasmount::cli`).

fn main() -> std::process::ExitCode {
    wasmount::cli::main()
}
