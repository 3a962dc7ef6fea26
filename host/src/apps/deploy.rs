//! The one way an app goes live: load (compile, or take from the cache), validate, store,
//! swap. Start-up, uploads and the folder watcher all go through here, so they behave alike:
//! a bad version never replaces a good one, and nothing half-written is ever mounted. How a
//! version is compiled (cache, baseline tier, optimized tier) is in `compile`.

use crate::apps::app::{App, LinkContext, LoadError, Source, Version};
use crate::apps::cache::CompiledCache;
use crate::apps::manifest::Manifest;
use crate::apps::names::{Holder, Namespace};
use crate::apps::postgres::mirror::NameHeld;
use crate::apps::registry::{Entry, Failure, Registry};
use crate::apps::store::{AppFile, AppStore, ReadError, read_regular_file};
use anyhow::Context as _;
use bytes::Bytes;
use futures::StreamExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{Mutex, Semaphore};
use wasmtime::component::Component;

/// Why a deployment was refused. Nothing stored or serving changed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeployError {
    /// The component is not acceptable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// The name is held by a launch, or lies within another app's custom route.
    #[error("`{0}` is {1}")]
    NameTaken(String, Holder),
    /// Its custom route begins with the URL of another app or a launch.
    #[error("route `{route}` overlaps `/{name}/`, {holder}")]
    RouteCovers {
        /// The route.
        route: String,
        /// The name whose URL it overlaps.
        name: String,
        /// What holds that name.
        holder: Holder,
    },
    /// It could not be stored (disk full, permissions, …).
    #[error("storing the app failed: {0:#}")]
    Store(anyhow::Error),
    /// The name is an app mounted from a file outside the store (`--app`, a project `wasmount
    /// dev` builds): an upload would shadow it until the next save.
    #[error("`{0}` is mounted from {1}: change that file (or its project) instead of uploading")]
    External(String, String),
}

/// A version that went live.
pub(crate) struct Deployed {
    /// The app now serving.
    pub app: Arc<App>,
    /// Whether it replaced a mounted version.
    pub replaced: bool,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reload {
    /// A new app was mounted.
    Added,
    /// A new version replaced the serving one.
    Replaced,
    /// The file holds the content already serving (or was already gone): nothing to do.
    Unchanged,
    /// The new version is broken: the previous one (if any) keeps serving.
    Failed,
    /// The file was deleted: the app is unmounted.
    Removed,
}

/// Why a changed file does not go live.
enum Change {
    /// It was deleted.
    Removed,
    /// It cannot be loaded, for this reason.
    Broken(String),
}

/// Loads, stores and mounts apps.
pub(crate) struct Deployer {
    /// What apps are linked with: engines, defaults, fairness.
    pub(super) context: LinkContext,
    /// The mounted apps.
    pub(super) registry: Registry,
    /// Where apps are kept.
    pub(super) store: Box<dyn AppStore>,
    /// This node's compiled artifacts.
    pub(super) cache: CompiledCache,
    /// The namespace apps share with launches.
    pub(super) names: Arc<Namespace>,
    /// Apps mounted from files outside the store, and their files.
    pub(super) external: std::sync::Mutex<std::collections::BTreeMap<String, PathBuf>>,
    /// Serializes the store-and-swap step, so disk and registry agree on the last version.
    pub(super) commit: Mutex<()>,
    /// Bounds background compilations: each already uses every core.
    pub(super) compile_slots: Semaphore,
    /// Apps waiting for their first version to load (optimized upgrades wait for none).
    pub(super) first_loads: tokio::sync::watch::Sender<usize>,
    /// The largest component file read (the upload limit).
    pub(super) max_component: u64,
}

impl Deployer {
    /// A deployer over `store`, linking apps with `context`, taking their names in `names`
    /// and reading component files of at most `max_component` bytes.
    pub(crate) fn new(
        context: LinkContext,
        store: Box<dyn AppStore>,
        names: Arc<Namespace>,
        max_component: u64,
    ) -> Arc<Self> {
        let cache = CompiledCache::new(store.cache_dir(), context.engine.optimized().engine());
        Arc::new(Self {
            context,
            registry: Registry::new(),
            store,
            cache,
            names,
            external: Default::default(),
            commit: Mutex::new(()),
            compile_slots: Semaphore::new(parallelism()),
            first_loads: tokio::sync::watch::Sender::new(0),
            max_component,
        })
    }

    /// The engines apps run on.
    pub(crate) fn engine(&self) -> &crate::runtime::engine::WasmEngine {
        &self.context.engine
    }

    /// The mounted apps.
    pub(crate) fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Mounts every stored app. Apps with a cached artifact are routable when this returns;
    /// the others compile in the background and their requests wait for them. A bad file is
    /// logged and recorded as failed; the rest are served.
    ///
    /// # Errors
    ///
    /// If the store cannot be read.
    pub(crate) async fn mount_stored(self: &Arc<Self>) -> anyhow::Result<()> {
        let started = Instant::now();
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.cache.prune())
            .await
            .context("pruning the cache")?;
        let files = self.store.scan()?;
        let cached: Vec<_> = futures::stream::iter(files)
            .map(|file| {
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
                    let app = this.load_cached(&file);
                    (file, app)
                })
            })
            .buffer_unordered(parallelism())
            .collect()
            .await;
        self.cache.forget_loaded();
        let (mut from_cache, mut compiling) = (0, 0);
        for joined in cached {
            let (file, app) = joined.context("loading an app panicked")?;
            let _ = self.names.take(&file.name, Holder::App);
            match app {
                Some(app) => {
                    from_cache += 1;
                    self.claim_at_start(&app);
                    self.registry.insert(Arc::new(app));
                }
                None => {
                    compiling += 1;
                    self.compile_in_background(file);
                }
            }
        }
        tracing::info!(
            from_cache,
            compiling,
            "apps routable after {:.1} ms",
            started.elapsed().as_secs_f64() * 1000.0
        );
        Ok(())
    }

    /// [`Self::claim`] for an app found at start-up, which goes live either way: the
    /// conflict is logged (a launch cannot take the name meanwhile: launches load later).
    pub(super) fn claim_at_start(&self, app: &App) {
        if let Err(conflict) = self.claim_name(app) {
            tracing::warn!(app = %app.name(), "{conflict}");
        }
    }

    /// Mounts apps from files the store does not manage (a build's output in dev mode, a
    /// cluster node's mirror of the shared store): routable at once, compiled (or taken from
    /// the cache) in the background.
    pub(crate) fn mount_external(self: &Arc<Self>, apps: &[(String, PathBuf)]) {
        for (name, path) in apps {
            let _ = self.names.take(name, Holder::App);
            self.compile_in_background(AppFile {
                name: name.clone(),
                path: path.clone(),
            });
        }
    }

    /// Records that app `name` is mounted from `path`, outside the store: uploads under its
    /// name are refused.
    pub(crate) fn note_external(&self, name: &str, path: &Path) {
        let mut external = self.external.lock().unwrap_or_else(|e| e.into_inner());
        external.insert(name.to_owned(), path.to_owned());
    }

    /// The file outside the store app `name` is mounted from, if it is.
    pub(crate) fn external_file(&self, name: &str) -> Option<PathBuf> {
        let external = self.external.lock().unwrap_or_else(|e| e.into_inner());
        external.get(name).cloned()
    }

    /// Validates and compiles `bytes` as app `name` (with `manifest_text` as its settings, if
    /// given), stores both durably, and swaps it in. Compilation happens before anything is
    /// written; taking the name, storing and swapping are one step under a lock. In-flight
    /// requests finish on the old version.
    ///
    /// # Errors
    ///
    /// [`DeployError`]: nothing was stored and the previous version keeps serving.
    pub(crate) async fn deploy_upload(
        self: &Arc<Self>,
        name: &str,
        bytes: Bytes,
        manifest_text: Option<String>,
    ) -> Result<Deployed, DeployError> {
        if let Some(path) = self.external_file(name) {
            return Err(DeployError::External(
                name.to_owned(),
                path.display().to_string(),
            ));
        }
        // Settings sent with the component replace the stored ones; otherwise those apply.
        let manifest = match &manifest_text {
            Some(text) => Arc::new(
                Manifest::parse(text, self.store.files_root()).map_err(LoadError::Manifest)?,
            ),
            None => self.manifest_for(name, &self.store.app_path(name))?,
        };
        let (app, component) = self
            .compile_off_runtime(name, bytes.clone(), Source::Upload, manifest)
            .await?;
        let app = Arc::new(app);

        // Held until the registry has the new version: a shared store's catch-up waits.
        let _write = self.write_lock().await;
        let commit = self.commit.lock().await;
        self.claim(&app)?;
        let this = self.clone();
        let (owned_name, stored_bytes) = (name.to_owned(), bytes.clone());
        let stored = tokio::task::spawn_blocking(move || {
            this.store
                .install(&owned_name, &stored_bytes, manifest_text.as_deref())
        })
        .await
        .map_err(|panic| anyhow::anyhow!("storing panicked: {panic}"))
        .and_then(|stored| stored);
        if let Err(error) = stored {
            if self.registry.get(name).is_none() {
                self.names.free(name, Holder::App);
            }
            return Err(match error.downcast::<NameHeld>() {
                Ok(NameHeld(name, holder)) => DeployError::NameTaken(name, holder),
                Err(error) => DeployError::Store(error),
            });
        }
        let previous = self.registry.insert(app.clone());
        drop(commit);

        log_mounted(&app);
        let path = self.store.app_path(name);
        self.finish_in_background(app.clone(), component, bytes, path);
        Ok(Deployed {
            app,
            replaced: previous.is_some(),
        })
    }

    /// Loads app `name` again from `path` after the file changed, unless it holds the content
    /// already serving. A new version goes live like an upload (baseline first, optimized
    /// after); a broken one is recorded and logged, and the serving version stays.
    pub(crate) async fn reload_file(self: &Arc<Self>, name: &str, path: &Path) -> Reload {
        let stamp = file_identity(path);
        let loaded = match self.load_changed(name, path).await {
            Ok(Some(loaded)) => loaded,
            Ok(None) => return Reload::Unchanged,
            Err(change) => {
                let _commit = self.commit.lock().await;
                return match change {
                    // A build output outside the store (`--app`) deleted by `cargo clean`:
                    // the app stays, as it was, until the file is built again.
                    Change::Removed if self.is_external(name, path) => {
                        let file = path.file_name().unwrap_or_default().to_string_lossy();
                        let reason = format!(
                            "{file} is gone (cleaned?): serving the last good version until it is built again"
                        );
                        self.reload_failed(name, reason)
                    }
                    Change::Removed => self.unmount(name),
                    Change::Broken(reason) => self.reload_failed(name, reason),
                };
            }
        };
        let (app, component, bytes) = loaded;
        let commit = self.commit.lock().await;
        if file_identity(path) != stamp {
            // Rewritten while this version compiled (an upload, a newer save): whatever wrote
            // it takes its content live; this older one must not land after it.
            return Reload::Unchanged;
        }
        if let Err(refusal) = self.claim(&app) {
            return self.reload_failed(name, refusal.to_string());
        }
        let replaced = self.registry.insert(app.clone()).is_some();
        drop(commit);
        log_mounted(&app);
        self.finish_in_background(app, component, bytes, path.to_owned());
        if replaced {
            Reload::Replaced
        } else {
            Reload::Added
        }
    }

    /// The new version in the changed file at `path`, compiled; `None` when it holds what
    /// already serves.
    ///
    /// # Errors
    ///
    /// The file is gone, or the version in it cannot go live.
    async fn load_changed(
        self: &Arc<Self>,
        name: &str,
        path: &Path,
    ) -> Result<Option<(Arc<App>, Option<Component>, Bytes)>, Change> {
        let (owned_path, limit) = (path.to_owned(), self.max_component);
        let read = tokio::task::spawn_blocking(move || {
            read_regular_file(&owned_path, limit, "--max-upload")
        })
        .await;
        let bytes = match read {
            Ok(Ok(bytes)) => Bytes::from(bytes),
            Ok(Err(ReadError::Missing)) => return Err(Change::Removed),
            Ok(Err(ReadError::Refused(why))) => return Err(Change::Broken(why)),
            Err(panic) => return Err(Change::Broken(format!("reading panicked: {panic}"))),
        };
        let manifest = self
            .manifest_for(name, path)
            .map_err(|error| Change::Broken(error.to_string()))?;
        if let Some(Entry::Ready(current)) = self.registry.get(name)
            && current.version() == &Version::of(&bytes)
            && current.manifest() == &manifest
        {
            // A build that failed, then one identical to what serves: the error is over.
            if self.registry.clear_failure(name) {
                tracing::info!(
                    app = name,
                    "the file again holds the version serving: its last error is cleared"
                );
            }
            return Ok(None);
        }
        let (app, component) = self
            .compile_off_runtime(name, bytes.clone(), Source::Folder, manifest)
            .await
            .map_err(|error| Change::Broken(error.to_string()))?;
        Ok(Some((Arc::new(app), component, bytes)))
    }

    /// Takes the app's name, and the root of its custom route, in the namespace it shares
    /// with launches; call under the commit lock, right before it goes live.
    ///
    /// # Errors
    ///
    /// [`LoadError::RouteTaken`], [`DeployError::NameTaken`] or [`DeployError::RouteCovers`];
    /// nothing is taken then (unless the name was already this app's).
    pub(super) fn claim(&self, app: &App) -> Result<(), DeployError> {
        self.route_free(app)?;
        self.claim_name(app)
    }

    /// Refuses a custom route that equals, covers or lies within another serving app's. The
    /// one place routes are checked against each other, always under the commit lock: two
    /// uploads whose routes overlap cannot both pass.
    pub(super) fn route_free(&self, app: &App) -> Result<(), LoadError> {
        let Some(route) = &app.manifest().route else {
            return Ok(());
        };
        match self.registry.route_overlapping(route, app.name()) {
            Some(by) => Err(LoadError::RouteTaken {
                route: route.clone(),
                by: by.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// [`Self::claim`] without the route check.
    fn claim_name(&self, app: &App) -> Result<(), DeployError> {
        let name = app.name();
        self.names
            .take(name, Holder::App)
            .map_err(|holder| DeployError::NameTaken(name.to_string(), holder))?;
        let route = app.manifest().route.as_deref();
        self.names
            .set_route(name, route)
            .map_err(|(covered, holder)| {
                if self.registry.get(name).is_none() {
                    self.names.free(name, Holder::App);
                }
                DeployError::RouteCovers {
                    route: route.unwrap_or_default().to_owned(),
                    name: covered,
                    holder,
                }
            })
    }

    /// Records that a new build of app `name` failed before it produced a component (dev
    /// mode's builds from source): the serving version, if any, stays.
    pub(crate) async fn build_failed(&self, name: &str, reason: String) {
        let _commit = self.commit.lock().await;
        self.reload_failed(name, reason);
    }

    fn reload_failed(&self, name: &str, reason: String) -> Reload {
        let serving = self.registry.get(name).is_some();
        if serving {
            tracing::warn!(
                app = name,
                "new build not loaded, still serving the previous one: {reason}"
            );
        } else {
            self.names.free(name, Holder::App);
            tracing::warn!(app = name, "not mounted: {reason}");
        }
        self.registry.record_failure(
            name.into(),
            Failure {
                reason,
                source: Source::Folder,
                at: SystemTime::now(),
            },
        );
        Reload::Failed
    }

    /// Whether `path` is app `name`'s file outside the store (`--app NAME=PATH`) while the
    /// app serves.
    fn is_external(&self, name: &str, path: &Path) -> bool {
        path != self.store.app_path(name) && self.registry.get(name).is_some()
    }

    /// Unmounts app `name` whose file is gone (nothing to delete).
    fn unmount(&self, name: &str) -> Reload {
        self.cache.forget(name);
        let removed = self.registry.remove(name);
        self.names.free(name, Holder::App);
        match removed {
            Some(_) => {
                tracing::info!(app = name, "file removed: unmounted");
                Reload::Removed
            }
            None => Reload::Unchanged,
        }
    }

    /// Unmounts app `name` and deletes it from the store. Returns whether there was anything
    /// to remove.
    ///
    /// # Errors
    ///
    /// If it cannot be deleted; the app then stays mounted.
    pub(crate) async fn remove(self: &Arc<Self>, name: &str) -> anyhow::Result<bool> {
        let _write = self.write_lock().await;
        let _commit = self.commit.lock().await;
        let this = self.clone();
        let owned_name = name.to_owned();
        let had_file = tokio::task::spawn_blocking(move || {
            let removed = this.store.remove(&owned_name);
            this.cache.forget(&owned_name);
            removed
        })
        .await??;
        let was_mounted = self.registry.remove(name).is_some();
        self.names.free(name, Holder::App);
        if had_file || was_mounted {
            tracing::info!(app = name, "removed");
        }
        Ok(had_file || was_mounted)
    }
}

impl Deployer {
    /// The store's write lock, held (when it has one) from storing to the registry's swap.
    async fn write_lock(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.store.write_lock() {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        }
    }
}

/// What tells one write of a file from another: its inode (a rename puts a new one in place),
/// size and modification time.
fn file_identity(path: &Path) -> Option<(u64, u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt as _;
    let metadata = std::fs::metadata(path).ok()?;
    Some((metadata.ino(), metadata.len(), metadata.modified().ok()?))
}

/// Logs a version that went live.
pub(super) fn log_mounted(app: &App) {
    tracing::info!(
        app = %app.name(),
        bytes = app.size(),
        sha256 = %&app.version().sha256[..12],
        compiled = ?app.compiled(),
        load_ms = app.load_time().as_millis() as u64,
        "mounted"
    );
}

/// How many compilations may run at once.
pub(super) fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
