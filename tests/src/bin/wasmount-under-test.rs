//! The `wasmount` program, built inside the tests package so tests that must kill or restart a
//! real server process can find it (`CARGO_BIN_EXE_wasmount-under-test`). Same code path as
//! the `wasmount` binary: all of it is `wasmount::cli::main`.

fn main() -> std::process::ExitCode {
    wasmount::cli::main()
}
