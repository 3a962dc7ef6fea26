//! The app developer's commands: `wasmount new` (a project from a template), `wasmount
//! build` (a project into a component) and `wasmount dev` (serve, building projects from
//! source on every save).

use crate::build::{self, BuildError, Project, Toolchains};
use anyhow::Context as _;
use clap::Args;
use std::path::{Path, PathBuf};

/// `wasmount dev [DIR…]`.
#[derive(Debug, Clone, Args)]
pub(crate) struct DevArgs {
    /// Project folders to build from source and mount under their folder's name (a
    /// `Cargo.toml`, an `app.py`, or a `package.json` with an entry module); rebuilt on save.
    #[arg(value_name = "DIR")]
    projects: Vec<PathBuf>,

    /// Where build toolchains (componentize-py, componentize-js) are installed on first use.
    #[arg(long, env = "WASMOUNT_TOOLS", value_name = "DIR")]
    tools: Option<PathBuf>,

    #[command(flatten)]
    pub(crate) serve: super::ServeArgs,
}

/// `wasmount build DIR`.
#[derive(Debug, Clone, Args)]
pub(crate) struct BuildArgs {
    /// The project folder.
    #[arg(value_name = "DIR", default_value = ".")]
    dir: PathBuf,

    /// Where to write the component (default: DIR/.wasmount/NAME.wasm).
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Where build toolchains are installed on first use.
    #[arg(long, env = "WASMOUNT_TOOLS", value_name = "DIR")]
    tools: Option<PathBuf>,
}

/// `wasmount new NAME`.
#[derive(Debug, Clone, Args)]
pub(crate) struct NewArgs {
    /// The app's name (lowercase letters, digits, inner hyphens): the folder created, and
    /// where `wasmount dev` mounts it.
    name: String,

    /// The language of the project.
    #[arg(long, value_enum, default_value = "rust")]
    lang: crate::build::Language,

    /// The wasmount-sdk dependency of a Rust project, as a TOML value (default: the SDK
    /// sources this binary was built from, when they exist, else crates.io's).
    #[arg(long, value_name = "TOML")]
    sdk: Option<String>,
}

/// `wasmount dev`: `serve` with watching on, the apps folder created if missing, each project
/// built and rebuilt on save, and build errors shown to the developer.
pub(crate) async fn dev(args: DevArgs) -> anyhow::Result<()> {
    for dir in &args.projects {
        Project::detect(dir)?;
    }
    let mut serve = args.serve;
    if let Some(apps) = dev_state_folder(&serve.apps, &args.projects) {
        serve.apps = apps;
    }
    std::fs::create_dir_all(&serve.apps)
        .with_context(|| format!("creating apps folder {}", serve.apps.display()))?;
    let (listen, admin_listen) = (serve.listen, serve.admin_listen);
    let mut config = super::resolve(serve).await?;
    config.watch = true;
    config.dev = true;
    config.dev_projects = args.projects;
    config.tools_dir = args.tools;
    let listeners = super::bind(listen, admin_listen).await?;
    crate::server::run(listeners, config, super::shutdown_signal()).await
}

/// Where dev mode keeps its apps folder (compiled cache, launches) when given projects and
/// no apps folder of the caller's (`--apps` left at its default, and no `./apps` here): a
/// cache folder of the first project's, never a folder made in the caller's directory.
fn dev_state_folder(apps: &Path, projects: &[PathBuf]) -> Option<PathBuf> {
    let first = projects.first()?;
    if apps != Path::new(crate::config::DEFAULT_APPS_DIR) || apps.exists() {
        return None;
    }
    let absolute = std::path::absolute(first).unwrap_or_else(|_| first.clone());
    let digest = crate::client::sha256_hex(absolute.as_os_str().as_encoded_bytes());
    let name = absolute.file_name().unwrap_or_default().to_string_lossy();
    let cache = crate::build::Toolchains::default_dir();
    let root = cache.parent().unwrap_or(&cache);
    Some(
        root.join("dev")
            .join(format!("{name}-{}", &digest[..12]))
            .join("apps"),
    )
}

/// `wasmount build`: one build, its output's size and time printed.
pub(crate) async fn build(args: BuildArgs) -> anyhow::Result<()> {
    let project = Project::detect(&args.dir)?;
    let name = project.folder_name();
    let output = args.output.unwrap_or_else(|| project.default_output(&name));
    let tools = Toolchains::new(args.tools.unwrap_or_else(Toolchains::default_dir));
    eprintln!(
        "building {} ({})…",
        project.dir.display(),
        project.language.as_str()
    );
    match build::build(&project, &tools, &output).await {
        Ok(built) => {
            println!(
                "{} ({}, built in {:.1} s)",
                built.output.display(),
                bytesize::ByteSize(built.bytes),
                built.took.as_secs_f64()
            );
            Ok(())
        }
        Err(BuildError::Compiler(said)) => anyhow::bail!("the build failed:\n{said}"),
        Err(BuildError::Toolchain(error)) => Err(error),
    }
}

/// `wasmount new`: writes the template into `./NAME/`.
pub(crate) fn new(args: NewArgs) -> anyhow::Result<()> {
    let folder = PathBuf::from(&args.name);
    super::templates::write(&folder, &args.name, args.lang, args.sdk.as_deref())?;
    println!(
        "created {}/ ({}). Run it with live reload:\n\n    wasmount dev {}\n\nthen open http://127.0.0.1:8080/{}/",
        args.name,
        args.lang.as_str(),
        args.name,
        args.name
    );
    Ok(())
}
