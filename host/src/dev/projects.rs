//! `wasmount dev DIR`: each project is built at start and on every settled save of its
//! sources (one build at a time per app; saves during a build make one more), its manifest
//! (`wasmount.toml`) applied without a rebuild after a good build, and the result swapped in
//! through the deployer's one reload path. A failed build keeps the last good version
//! serving and records the compiler's output, which responses and the live-reload overlay
//! show.

use crate::apps::deploy::{Deployer, Reload};
use crate::apps::watch::is_change;
use crate::build::{self, BuildError, Project, Toolchains};
use anyhow::Context as _;
use notify::{RecursiveMode, Watcher as _};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// How long a project's files must be quiet after a save before it is built: editors write
/// a file in several steps, and "save all" writes several files.
const SETTLE: Duration = Duration::from_millis(30);

/// The names of the apps built from source, for pages that wait on their first build.
#[derive(Debug, Default)]
pub(crate) struct Projects {
    names: BTreeSet<String>,
}

impl Projects {
    /// Whether app `name` is built from a project here.
    pub(crate) fn contains(&self, name: &str) -> bool {
        self.names.contains(name)
    }
}

/// Builds and watches each `(name, project)`, serving at `url` (for the log); runs until
/// the process ends.
///
/// # Errors
///
/// A project folder cannot be watched.
pub(crate) fn spawn(
    deployer: Arc<Deployer>,
    projects: Vec<(String, Project)>,
    tools: Arc<Toolchains>,
    url: String,
) -> anyhow::Result<Projects> {
    let mut names = BTreeSet::new();
    for (name, project) in projects {
        let (saves, saved) = mpsc::unbounded_channel::<PathBuf>();
        let watcher = watch(&project, saves)?;
        deployer.note_external(&name, &project.default_output(&name));
        names.insert(name.clone());
        let builder = Builder {
            watcher,
            deployer: deployer.clone(),
            tools: tools.clone(),
            url: format!("{url}{name}/"),
            name,
            project,
        };
        tokio::spawn(builder.run(saved));
    }
    Ok(Projects { names })
}

/// Watches `project`'s folder, sending each changed source file to `saves`: its files, and
/// every folder but build output and dependencies (`target/` alone can hold thousands of
/// folders, each an inotify watch of a limited number).
fn watch(
    project: &Project,
    saves: mpsc::UnboundedSender<PathBuf>,
) -> anyhow::Result<notify::RecommendedWatcher> {
    let filter = project.clone();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(&event.kind) => {
                for path in event.paths.into_iter().filter(|p| filter.is_source(p)) {
                    let _ = saves.send(path);
                }
            }
            Ok(_) => {}
            Err(error) => tracing::warn!("file watcher: {error}"),
        })
        .context("starting the file watcher")?;
    watcher
        .watch(&project.dir, RecursiveMode::NonRecursive)
        .with_context(|| format!("watching {}", project.dir.display()))?;
    let entries = std::fs::read_dir(&project.dir)
        .with_context(|| format!("reading {}", project.dir.display()))?;
    for entry in entries.flatten() {
        watch_folder(&mut watcher, &entry.path())?;
    }
    Ok(watcher)
}

/// Watches `path` and what it holds, if it is a folder of sources.
fn watch_folder(watcher: &mut notify::RecommendedWatcher, path: &Path) -> anyhow::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if !path.is_dir() || build::is_ignored_folder(&name) {
        return Ok(());
    }
    watcher
        .watch(path, RecursiveMode::Recursive)
        .with_context(|| format!("watching {}", path.display()))
}

/// One project's build loop.
struct Builder {
    /// Watches the project's sources (the loop adds folders created later).
    watcher: notify::RecommendedWatcher,
    deployer: Arc<Deployer>,
    tools: Arc<Toolchains>,
    name: String,
    project: Project,
    /// Where the app answers, for the log.
    url: String,
}

/// What a settled batch of saves asks for.
#[derive(Debug, PartialEq)]
enum Work {
    /// Sources changed: build, then swap.
    Build,
    /// Only the manifest changed: apply it to the current build.
    Settings,
}

impl Builder {
    async fn run(mut self, mut saved: mpsc::UnboundedReceiver<PathBuf>) {
        let mut work = Work::Build;
        let mut since = Instant::now();
        loop {
            let built = self.rebuild(&work, since).await;
            let Some(first) = saved.recv().await else {
                return;
            };
            since = Instant::now();
            let Some(changed) = settle(first, &mut saved).await else {
                return;
            };
            self.watch_new_folders(&changed);
            let manifest = self.project.dir.join(build::PROJECT_MANIFEST);
            // New settings apply to the last build only if it succeeded: else they would put the
            // previous output live and hide the compiler's error.
            work = if built && changed.iter().all(|path| *path == manifest) {
                Work::Settings
            } else {
                Work::Build
            };
        }
    }

    /// Watches the folders created right in the project (`src/` holds its own new ones).
    fn watch_new_folders(&mut self, changed: &[PathBuf]) {
        for path in changed
            .iter()
            .filter(|p| p.parent() == Some(&self.project.dir))
        {
            if let Err(error) = watch_folder(&mut self.watcher, path) {
                tracing::warn!(app = %self.name, "{error:#}");
            }
        }
    }

    /// Builds (unless only settings changed) and swaps the result in; `since` is the first
    /// save it answers. Whether the build succeeded.
    async fn rebuild(&self, work: &Work, since: Instant) -> bool {
        let output = self.project.default_output(&self.name);
        if !self.project.still_there() {
            let reason = format!(
                "{} is gone: serving the last good version",
                self.project.dir.display()
            );
            self.deployer.build_failed(&self.name, reason).await;
            return false;
        }
        if *work == Work::Build {
            let language = self.project.language.as_str();
            tracing::info!(app = %self.name, "building ({language})…");
            match build::build(&self.project, &self.tools, &output).await {
                Ok(built) => tracing::info!(
                    app = %self.name,
                    build_ms = built.took.as_millis() as u64,
                    bytes = built.bytes,
                    "built"
                ),
                Err(error) => {
                    self.failed(error).await;
                    return false;
                }
            }
        }
        if let Err(error) = self.place_manifest(&output) {
            self.failed(BuildError::Toolchain(error)).await;
            return false;
        }
        let built_at = Instant::now();
        let outcome = self.deployer.reload_file(&self.name, &output).await;
        if matches!(outcome, Reload::Added | Reload::Replaced) {
            tracing::info!(
                app = %self.name,
                save_to_live_ms = since.elapsed().as_millis() as u64,
                swap_ms = built_at.elapsed().as_millis() as u64,
                "live at {}",
                self.url
            );
        } else if outcome == Reload::Unchanged {
            tracing::info!(app = %self.name, "built the version already serving");
        }
        outcome != Reload::Failed
    }

    /// Records a failed build (the previous version keeps serving).
    async fn failed(&self, error: BuildError) {
        let reason = match error {
            BuildError::Compiler(output) => format!("build failed:\n{output}"),
            BuildError::Toolchain(error) => format!("cannot build: {error:#}"),
        };
        self.deployer.build_failed(&self.name, reason).await;
    }

    /// Puts the project's `wasmount.toml` beside the build as `NAME.toml`, where the deployer
    /// reads an app's settings (or removes a stale copy when the project has none).
    fn place_manifest(&self, output: &Path) -> anyhow::Result<()> {
        let beside = output.with_extension(crate::apps::store::MANIFEST_EXTENSION);
        match self.project.manifest() {
            Some(manifest) => std::fs::copy(&manifest, &beside)
                .map(drop)
                .with_context(|| format!("copying {}", manifest.display())),
            None => match std::fs::remove_file(&beside) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    Err(error).with_context(|| format!("removing {}", beside.display()))
                }
                _ => Ok(()),
            },
        }
    }
}

/// `first` and every path saved until the project has been quiet for [`SETTLE`]; `None` when
/// the watcher is gone.
async fn settle(
    first: PathBuf,
    saved: &mut mpsc::UnboundedReceiver<PathBuf>,
) -> Option<Vec<PathBuf>> {
    let mut changed = vec![first];
    loop {
        match tokio::time::timeout(SETTLE, saved.recv()).await {
            Ok(Some(path)) => changed.push(path),
            Ok(None) => return None,
            Err(_quiet) => return Some(changed),
        }
    }
}
