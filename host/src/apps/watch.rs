//! Hot reload: watches the apps folder (and, in dev mode, build outputs elsewhere) and sends
//! every settled change through the deployer's one load-validate-swap path. Events are
//! debounced per app (editors and compilers write in bursts and via temp files), and a file
//! holding the content already serving changes nothing.

use crate::apps::deploy::{Deployer, Reload};
use crate::apps::names::is_valid_app_name;
use crate::apps::store::{APP_EXTENSION, MANIFEST_EXTENSION};
use anyhow::Context as _;
use notify::event::{AccessKind, AccessMode, ModifyKind};
use notify::{EventKind, RecursiveMode, Watcher as _};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::time::Instant;

/// Which app a changed path belongs to.
#[derive(Debug, Clone)]
struct Targets {
    apps_dir: PathBuf,
    /// External file → app name.
    external: HashMap<PathBuf, String>,
}

impl Targets {
    fn app_for(&self, path: &Path) -> Option<String> {
        if let Some(name) = self.external.get(path) {
            return Some(name.clone());
        }
        // A component, or its manifest (`NAME.toml`), which re-applies the app's settings.
        let extension = path.extension().and_then(|e| e.to_str());
        if let Some(wasm) = self.external.get(&path.with_extension(APP_EXTENSION))
            && extension == Some(MANIFEST_EXTENSION)
        {
            return Some(wasm.clone());
        }
        if path.parent()? != self.apps_dir
            || !matches!(extension, Some(APP_EXTENSION | MANIFEST_EXTENSION))
        {
            return None;
        }
        let name = path.file_stem()?.to_str()?;
        // Temp files (`.tmp-…`) and other names are not apps.
        is_valid_app_name(name).then(|| name.to_owned())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        self.external
            .iter()
            .find(|(_, external)| external.as_str() == name)
            .map(|(path, _)| path.clone())
            .unwrap_or_else(|| self.apps_dir.join(format!("{name}.{APP_EXTENSION}")))
    }
}

/// Starts watching `apps_dir` and the `external` app files, loading a changed file once its
/// events have been quiet for `debounce`; runs until the process ends.
///
/// # Errors
///
/// If a folder cannot be watched (missing, or out of inotify watches).
pub(crate) fn spawn(
    deployer: Arc<Deployer>,
    apps_dir: &Path,
    external: &[(String, PathBuf)],
    debounce: Duration,
) -> anyhow::Result<()> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let targets = Targets {
        apps_dir: absolute(apps_dir),
        external: external
            .iter()
            .map(|(name, path)| (absolute(path), name.clone()))
            .collect(),
    };
    let (events, changed) = mpsc::unbounded_channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
            Ok(event) if is_change(&event.kind) => event.paths.into_iter().for_each(|path| {
                let _ = events.send(path);
            }),
            Ok(_) => {}
            Err(error) => tracing::warn!("file watcher: {error}"),
        })
        .context("starting the file watcher")?;
    // Watch folders, not files: builds and editors replace files by renaming over them.
    let mut folders: Vec<PathBuf> = vec![targets.apps_dir.clone()];
    for path in targets.external.keys() {
        let parent = path.parent().map(Path::to_owned).unwrap_or_default();
        std::fs::create_dir_all(&parent)
            .with_context(|| format!("creating {}", parent.display()))?;
        if !folders.contains(&parent) {
            folders.push(parent);
        }
    }
    for folder in &folders {
        watcher
            .watch(folder, RecursiveMode::NonRecursive)
            .with_context(|| format!("watching {}", folder.display()))?;
        tracing::info!("watching {} for changes", folder.display());
    }

    tokio::spawn(async move {
        let _watcher = watcher; // lives as long as this task
        reload_on_changes(&deployer, &targets, changed, debounce).await;
    });
    Ok(())
}

/// Reloads each app a changed path belongs to, once its events have been quiet for
/// `debounce`; runs until the watcher is gone.
async fn reload_on_changes(
    deployer: &Arc<Deployer>,
    targets: &Targets,
    mut changed: mpsc::UnboundedReceiver<PathBuf>,
    debounce: Duration,
) {
    let mut pending: HashMap<String, Instant> = HashMap::new();
    loop {
        let next_due = pending.values().min().copied();
        tokio::select! {
            event = changed.recv() => match event {
                Some(path) => {
                    if let Some(name) = targets.app_for(&path) {
                        pending.insert(name, Instant::now() + debounce);
                    }
                }
                None => return,
            },
            () = sleep_until(next_due) => {
                let now = Instant::now();
                let due: Vec<String> = pending
                    .iter()
                    .filter(|(_, at)| **at <= now)
                    .map(|(name, _)| name.clone())
                    .collect();
                for name in due {
                    pending.remove(&name);
                    // One at a time: a later change of an app never overtakes an earlier one.
                    // An app built from a file outside the store (a `wasmount dev` project):
                    // its settings in the apps folder changed, its file is elsewhere.
                    let path = deployer
                        .external_file(&name)
                        .unwrap_or_else(|| targets.path_of(&name));
                    let outcome = deployer.reload_file(&name, &path).await;
                    if outcome != Reload::Unchanged {
                        tracing::debug!(app = %name, ?outcome, "reloaded");
                    }
                }
            }
        }
    }
}

/// Whether an event can change what a file holds. Reads (our own included: loading a file
/// opens it) and metadata changes such as access times are not changes; reacting to them
/// would reload a file every time it is read.
pub(crate) fn is_change(kind: &EventKind) -> bool {
    match kind {
        EventKind::Create(_) | EventKind::Remove(_) => true,
        EventKind::Modify(ModifyKind::Metadata(_)) => false,
        EventKind::Modify(_) => true,
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        _ => false,
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
