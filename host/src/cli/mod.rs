//! The top layer: the `wasmount` commands, log setup, signal handling, and bind-then-serve
//! for `wasmount serve` (also used by the demo in `examples/`).

mod args;
mod backup;
mod commands;
mod config_file;
mod declared;
mod develop;
mod oci;
mod store;
mod templates;

use anyhow::Context as _;
pub use args::ServeArgs;
use clap::{Parser, Subcommand};
use commands::{DeployArgs, LaunchArgs, RemoveArgs, ServerArgs};
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tracing_subscriber::EnvFilter;

/// Host many WebAssembly web apps (wasi:http components) in one server.
#[derive(Debug, Parser)]
#[command(name = "wasmount", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve every NAME.wasm of a folder at /NAME/, plus the admin API.
    Serve(ServeArgs),
    /// `serve` for app developers: builds each project DIR from source and rebuilds it on
    /// save, watches and reloads the apps folder, reloads open pages when their app changes,
    /// and shows a broken build over the page (and in `x-wasmount-error`).
    Dev(develop::DevArgs),
    /// Build a project (Rust, Python or JavaScript) into a component, toolchains installed
    /// on first use.
    Build(develop::BuildArgs),
    /// Create a ready app project in ./NAME/ from a template.
    New(develop::NewArgs),
    /// Upload a component to a running server (adds or replaces the app): a file, or
    /// oci://HOST[:PORT]/REPO[:TAG|@sha256:…] pulled from a registry first.
    Deploy(DeployArgs),
    /// Publish a component to an OCI registry (the wasm artifact layout wkg and wash use).
    Push(oci::PushArgs),
    /// List the apps of a running server.
    Apps(ServerArgs),
    /// Remove an app (with its launches) or one launch from a running
    /// server.
    Remove(RemoveArgs),
    /// List the launches of a running server.
    Instances(ServerArgs),
    /// Launch an instance of an app bound to an input (Refinery-style) and print its URL.
    Launch(LaunchArgs),
    /// Move a store: an apps folder into PostgreSQL (`import`), or back (`export`).
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
    /// Check a `serve --config` file without starting a server.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Validate FILE as `wasmount serve --config FILE` would read it (flags and environment
    /// variables apply as they would).
    Check {
        /// The TOML file.
        file: std::path::PathBuf,
    },
}

/// The whole `wasmount` program: parses the command line and runs the command.
pub fn main() -> std::process::ExitCode {
    *INHERITED.lock().unwrap_or_else(|e| e.into_inner()) = Some(listenfd::ListenFd::from_env());
    let cli = match config_file::parse(std::env::args_os().collect()) {
        Ok(cli) => cli,
        Err(config_file::Refusal::Clap(error)) => error.exit(),
        Err(config_file::Refusal::Config(message)) => {
            eprintln!("error: {message}");
            return std::process::ExitCode::from(2);
        }
    };
    init_logging(matches!(cli.command, Command::Dev(_)));
    // A server's failure goes to its log; a client command's is one plain line.
    let serving = matches!(cli.command, Command::Serve(_) | Command::Dev(_));
    let report = if serving { log_error } else { print_error };
    block_on_with(report, async move {
        match cli.command {
            Command::Serve(args) => serve(args).await,
            Command::Dev(args) => develop::dev(args).await,
            Command::Build(args) => develop::build(args).await,
            Command::New(args) => develop::new(args),
            Command::Deploy(args) => commands::deploy(args).await,
            Command::Push(args) => oci::push(args).await,
            Command::Apps(args) => commands::list(args).await,
            Command::Remove(args) => commands::remove(args).await,
            Command::Instances(args) => commands::instances(args).await,
            Command::Launch(args) => commands::launch(args).await,
            Command::Store { command } => store::run(command).await,
            Command::Config {
                command: ConfigCommand::Check { file },
            } => check_config(&file),
        }
    })
}

/// `wasmount config check FILE`: the settings resolved as `serve` would, the TLS pair loaded.
/// Declared apps are checked as far as can be without a registry: files exist, inline
/// settings parse, names are free.
fn check_config(file: &std::path::Path) -> anyhow::Result<()> {
    let mut args = config_file::check(file)?;
    let declared = std::mem::take(&mut args.declared_apps);
    let mut config = args.into_config()?;
    if let Some(tls) = &config.tls {
        crate::http::tls::Tls::load(tls)?;
    }
    for app in &declared {
        if let config_file::DeclaredSource::Path(path) = &app.source {
            anyhow::ensure!(
                path.is_file(),
                "app `{}`: no file {}",
                app.name,
                path.display()
            );
            config.external_apps.push((app.name.clone(), path.clone()));
        }
        if let Some(text) = &app.manifest {
            crate::apps::manifest::Manifest::parse(text, &config.apps_dir)
                .map_err(|e| anyhow::anyhow!("app `{}`: {e}", app.name))?;
        }
    }
    config.check()?;
    println!(
        "{}: ok (apps {}, {} declared app(s), {})",
        file.display(),
        config.apps_dir.display(),
        declared.len(),
        if config.tls.is_some() {
            "HTTPS"
        } else {
            "HTTP"
        }
    );
    Ok(())
}

/// The environment variable holding the log filter (`info`, `wasmount=debug`, …).
pub const LOG_ENV: &str = "WASMOUNT_LOG";

/// Logs to stderr, filtered by `WASMOUNT_LOG` (default `info`), coloured only on a terminal.
/// `friendly` (dev mode) drops module paths and uses the compact layout, for a developer
/// watching reloads rather than an operator collecting logs.
pub fn init_logging(friendly: bool) {
    let filter = EnvFilter::try_from_env(LOG_ENV).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if friendly {
        builder.compact().with_target(false).init();
    } else {
        builder.init();
    }
}

/// Binds `args.listen` and serves until SIGINT or SIGTERM, then shuts down gracefully.
///
/// # Errors
///
/// Invalid flags, an address that cannot be bound, or a server start-up failure.
pub async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let (listen, admin_listen) = (args.listen, args.admin_listen);
    let config = resolve(args).await?;
    let listeners = bind(listen, admin_listen).await?;
    crate::server::run(listeners, config, shutdown_signal()).await
}

/// The settings of `args`, with the apps a config file declares made ready to mount.
async fn resolve(mut args: ServeArgs) -> anyhow::Result<crate::config::Config> {
    let declared = std::mem::take(&mut args.declared_apps);
    let mut config = args.into_config()?;
    let ready = declared::prepare(&declared, &config.cache_folder()).await?;
    config.external_apps.extend(ready);
    config.check()?;
    Ok(config)
}

/// Sockets a service manager passed (systemd's `LISTEN_FDS`), read by [`main`] before any
/// thread starts (reading them clears the variables).
static INHERITED: std::sync::Mutex<Option<listenfd::ListenFd>> = std::sync::Mutex::new(None);

/// Binds the public address and, when given, the admin one — or adopts the sockets systemd
/// passed: the first is the public listener, a second the admin one.
async fn bind(
    listen: SocketAddr,
    admin_listen: Option<SocketAddr>,
) -> anyhow::Result<crate::server::Listeners> {
    let inherited = INHERITED.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut sockets) = inherited.filter(|sockets| sockets.len() > 0) {
        let mut adopt = |index: usize| -> anyhow::Result<Option<TcpListener>> {
            let Some(socket) = sockets.take_tcp_listener(index).with_context(|| {
                format!("socket activation: passed socket {index} is not a TCP listener")
            })?
            else {
                return Ok(None);
            };
            // With `Accept=yes` systemd passes a connection, not a listening socket.
            let listening = rustix::net::sockopt::socket_acceptconn(&socket).unwrap_or(false);
            anyhow::ensure!(
                listening,
                "socket activation: passed socket {index} is not listening (use Accept=no)"
            );
            socket.set_nonblocking(true)?;
            Ok(Some(TcpListener::from_std(socket)?))
        };
        let public = adopt(0)?.context("socket activation: no socket passed")?;
        let admin = adopt(1)?;
        anyhow::ensure!(
            admin.is_some() || admin_listen.is_none(),
            "socket activation: --admin-listen is set but only one socket was passed; add a \
             second ListenStream for the control plane (or drop --admin-listen), so the admin \
             API is never served on the public socket"
        );
        tracing::info!(
            sockets = 1 + usize::from(admin.is_some()),
            "using the sockets the service manager passed (LISTEN_FDS); --listen and --admin-listen are not used"
        );
        return Ok(crate::server::Listeners { public, admin });
    }
    let public = TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let admin = match admin_listen {
        Some(address) => Some(
            TcpListener::bind(address)
                .await
                .with_context(|| format!("listening on {address} (--admin-listen)"))?,
        ),
        None => None,
    };
    Ok(crate::server::Listeners { public, admin })
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        survive_other_signals();
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {},
                    _ = terminate.recv() => {},
                }
            }
            Err(error) => {
                tracing::warn!("cannot watch SIGTERM: {error}");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown signal received");
}

/// Catches the signals whose default action would end the process (SIGHUP — which
/// `systemctl reload` sends, and which re-reads the TLS files —, SIGUSR1, SIGUSR2): each is
/// logged and the server keeps running. Only SIGTERM and SIGINT end it.
#[cfg(unix)]
fn survive_other_signals() {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::hangup(), "SIGHUP"),
        (SignalKind::user_defined1(), "SIGUSR1"),
        (SignalKind::user_defined2(), "SIGUSR2"),
    ];
    for (kind, name) in kinds {
        match signal(kind) {
            Ok(mut received) => {
                tokio::spawn(async move {
                    while received.recv().await.is_some() {
                        tracing::info!("{name} received: still serving (SIGTERM or SIGINT stop)");
                    }
                });
            }
            Err(error) => tracing::warn!("cannot watch {name}: {error}"),
        }
    }
}

/// Runs `future` on a multi-threaded runtime and turns its outcome into an exit code,
/// logging the error chain on failure.
pub fn block_on_main(future: impl Future<Output = anyhow::Result<()>>) -> std::process::ExitCode {
    block_on_with(log_error, future)
}

fn log_error(error: &anyhow::Error) {
    tracing::error!("{error:#}");
}

fn print_error(error: &anyhow::Error) {
    eprintln!("error: {error:#}");
}

/// [`block_on_main`], reporting a failure with `report`.
fn block_on_with(
    report: fn(&anyhow::Error),
    future: impl Future<Output = anyhow::Result<()>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(future) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            report(&error);
            std::process::ExitCode::FAILURE
        }
    }
}
