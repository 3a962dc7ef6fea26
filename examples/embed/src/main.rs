//! Run with `cargo run -p wasmount-embed -- APPS_DIR [ADDR]` (e.g. `examples/apps
//! 127.0.0.1:8000`): a site with its own home page at `/` and wasmount's apps under
//! `/visualizations/`. Set `WASMOUNT_ADMIN_TOKEN` to upload and launch through
//! `/_wasmount/` on the same address.

use std::process::ExitCode;
use tokio::net::TcpListener;
use wasmount::cli;
use wasmount::config::Config;
use wasmount::engine::WasmEngine;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let apps = args.next().unwrap_or_else(|| "examples/apps".into());
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:8000".into());
    cli::init_logging(false);
    cli::block_on_main(async move {
        let mut config = Config::builder(apps);
        if let Ok(token) = std::env::var("WASMOUNT_ADMIN_TOKEN") {
            config = config.admin_token(token);
        }
        let config = config.build()?;
        let engine = WasmEngine::new(&config.engine)?;
        let listener = TcpListener::bind(&listen).await?;
        println!("site on http://{}/", listener.local_addr()?);
        wasmount_embed::serve(listener, config, engine, cli::shutdown_signal()).await
    })
}
