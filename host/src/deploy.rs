//! The one way an app goes live: load (compile, or take from the cache), validate, store,
//! swap. Start-up, uploads (and the folder watcher) all go through here, so they behave alike:
//! a bad version never replaces a good one, and nothing half-written is ever mounted.

use crate::app::{self, App, Compiled, LoadError, Origin, Source, Version};
use crate::cache::CompiledCache;
use crate::engine::WasmEngine;
use crate::manifest::Manifest;
use crate::registry::{Entry, Failure, LoadOutcome, Registry};
use crate::store::{AppFile, AppStore};
use anyhow::Context as _;
use bytes::Bytes;
use futures::{FutureExt as _, StreamExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use tokio::sync::{Mutex, Semaphore};
use wasmtime::component::Component;

/// At start-up, components at least this big go live on the baseline compiler first (as
/// uploads do); smaller ones compile with Cranelift in well under a second, straight into the
/// cache, without compiling twice.
const BASELINE_FIRST_AT_START_BYTES: usize = 2 << 20;

/// Why a deployment was refused. Nothing stored or serving changed.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// The component is not acceptable.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// It could not be stored (disk full, permissions, …).
    #[error("storing the app failed: {0:#}")]
    Store(anyhow::Error),
}

/// A version that went live.
pub struct Deployed {
    /// The app now serving.
    pub app: Arc<App>,
    /// Whether it replaced a mounted version.
    pub replaced: bool,
}

/// What a reload did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reload {
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

/// Loads, stores and mounts apps.
pub struct Deployer {
    engine: WasmEngine,
    registry: Registry,
    store: AppStore,
    cache: CompiledCache,
    /// Serializes the store-and-swap step, so disk and registry agree on the last version.
    commit: Mutex<()>,
    /// Bounds background compilations: each already uses every core.
    compile_slots: Semaphore,
    /// Concurrent requests per app when its manifest does not say.
    default_max_concurrent: Option<u32>,
}

impl Deployer {
    /// Opens the apps folder (cleaning up after a crash) with `engine`.
    ///
    /// # Errors
    ///
    /// If the folder cannot be opened.
    /// `default_max_concurrent` applies to apps whose manifest sets no
    /// `max_concurrent_requests`.
    pub fn open(
        engine: WasmEngine,
        apps_dir: &Path,
        default_max_concurrent: Option<u32>,
    ) -> anyhow::Result<Arc<Self>> {
        let store = AppStore::open(apps_dir)?;
        let cache = CompiledCache::new(store.cache_dir(), engine.engine());
        Ok(Arc::new(Self {
            engine,
            default_max_concurrent,
            registry: Registry::new(),
            store,
            cache,
            commit: Mutex::new(()),
            compile_slots: Semaphore::new(parallelism()),
        }))
    }

    /// The engine apps run on.
    pub fn engine(&self) -> &WasmEngine {
        &self.engine
    }

    /// The mounted apps.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Mounts every app of the folder. Apps with a cached artifact are routable when this
    /// returns; the others compile in the background and their requests wait for them. A bad
    /// file is logged and recorded as failed; the rest are served.
    ///
    /// # Errors
    ///
    /// If the folder cannot be read.
    pub async fn mount_folder(self: &Arc<Self>) -> anyhow::Result<()> {
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
        let (mut from_cache, mut compiling) = (0, 0);
        for joined in cached {
            let (file, app) = joined.context("loading an app panicked")?;
            match app {
                Some(app) => {
                    from_cache += 1;
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

    fn load_cached(&self, file: &AppFile) -> Option<App> {
        let started = Instant::now();
        // An invalid manifest is reported by the background load that follows a miss.
        let manifest = self.manifest_for(&file.path).ok()?;
        let (component, version) = self
            .cache
            .load(self.engine.engine(), &file.name, &file.path)?;
        let origin = Origin {
            version,
            source: Source::Folder,
            manifest,
        };
        App::from_cache(
            self.engine.optimized(),
            &file.name,
            &component,
            origin,
            started,
        )
        .ok()
    }

    /// The settings of the app whose component is at `wasm_path` (`NAME.toml` beside it).
    fn manifest_for(&self, wasm_path: &Path) -> Result<Arc<Manifest>, LoadError> {
        let manifest =
            Manifest::read_beside(wasm_path, self.store.dir()).map_err(LoadError::Manifest)?;
        Ok(self.with_defaults(manifest))
    }

    /// Refuses a custom route another serving app already has.
    fn check_route(&self, name: &str, manifest: &Manifest) -> Result<(), LoadError> {
        let Some(route) = &manifest.route else {
            return Ok(());
        };
        let routes = self.registry.custom_routes();
        match routes
            .iter()
            .find(|(taken, by)| taken == route && by.as_ref() != name)
        {
            Some((_, by)) => Err(LoadError::RouteTaken {
                route: route.clone(),
                by: by.to_string(),
            }),
            None => Ok(()),
        }
    }

    /// `manifest` with the server's defaults filled in where it is silent.
    fn with_defaults(&self, mut manifest: Manifest) -> Arc<Manifest> {
        if manifest.max_concurrent_requests.is_none() {
            manifest.max_concurrent_requests = self.default_max_concurrent;
        }
        Arc::new(manifest)
    }

    /// Mounts a placeholder for `file` and compiles it in the background.
    fn compile_in_background(self: &Arc<Self>, file: AppFile) {
        let name: Arc<str> = file.name.as_str().into();
        let (done, outcome) = tokio::sync::oneshot::channel::<LoadOutcome>();
        let outcome = outcome
            .map(|received| received.unwrap_or_else(|_| Err("loading was interrupted".into())))
            .boxed();
        let id = self.registry.insert_loading(name.clone(), outcome);
        let this = self.clone();
        tokio::spawn(async move {
            let slot = this.compile_slots.acquire().await;
            let compiler = this.clone();
            let path = file.path.clone();
            let result = tokio::task::spawn_blocking(move || compiler.compile_file(&file))
                .await
                .unwrap_or_else(|panic| Err(format!("compiling panicked: {panic}")));
            let failure = |reason: &str| Failure {
                reason: reason.to_owned(),
                source: Source::Folder,
                at: SystemTime::now(),
            };
            match result {
                Ok((app, baseline_bytes)) => {
                    log_mounted(&app);
                    this.registry.finish_loading(&name, id, Ok(app.clone()));
                    let _ = done.send(Ok(app.clone()));
                    drop(slot);
                    if let Some(bytes) = baseline_bytes {
                        this.upgrade_in_background(app, bytes, path);
                    }
                }
                Err(reason) => {
                    tracing::warn!(app = %name, "not mounted: {reason}");
                    this.registry
                        .finish_loading(&name, id, Err(failure(&reason)));
                    let _ = done.send(Err(reason.into()));
                }
            }
        });
    }

    /// Loads a folder file that has no cached build: a big one the quickest way (see
    /// [`Self::load_quick`]), a small one straight with the optimizing compiler. An optimized
    /// build is cached before this returns (so the app serves with its cache written, as
    /// after a restart); returns the app and, when it was built by the baseline compiler, the
    /// bytes to build the optimized version from. Blocking.
    fn compile_file(&self, file: &AppFile) -> Result<(Arc<App>, Option<Bytes>), String> {
        let bytes = Bytes::from(
            std::fs::read(&file.path)
                .map_err(|e| format!("reading {}: {e}", file.path.display()))?,
        );
        let manifest = self.manifest_for(&file.path).map_err(|e| e.to_string())?;
        let version = Version::of(&bytes);
        let (app, optimized) = if bytes.len() < BASELINE_FIRST_AT_START_BYTES {
            let (app, component) = self
                .load_bytes(&file.name, &bytes, version, Source::Folder, manifest)
                .map_err(|e| e.to_string())?;
            (app, Some(component))
        } else {
            self.load_quick(&file.name, &bytes, version, Source::Folder, manifest)
                .map_err(|e| e.to_string())?
        };
        match optimized {
            Some(component) => {
                self.cache
                    .save(&file.name, &file.path, app.version(), &component);
                Ok((Arc::new(app), None))
            }
            None => Ok((Arc::new(app), Some(bytes))),
        }
    }

    /// Validates `bytes` as app `name` and compiles it with the optimizing compiler, or takes
    /// the artifact from the cache when this exact content was compiled before (under any
    /// name). Blocking.
    fn load_bytes(
        &self,
        name: &str,
        bytes: &[u8],
        version: Version,
        source: Source,
        manifest: Arc<Manifest>,
    ) -> Result<(App, Component), LoadError> {
        app::precheck(name, bytes)?;
        self.check_route(name, &manifest)?;
        self.load_optimized(name, bytes, version, source, manifest)
    }

    /// [`Self::load_bytes`] after its checks: the cached artifact or a Cranelift compile.
    fn load_optimized(
        &self,
        name: &str,
        bytes: &[u8],
        version: Version,
        source: Source,
        manifest: Arc<Manifest>,
    ) -> Result<(App, Component), LoadError> {
        let started = Instant::now();
        let tier = self.engine.optimized();
        let cached = self.cache.load_by_content(tier.engine(), &version);
        let origin = Origin {
            version,
            source,
            manifest,
        };
        match cached {
            Some(component) => {
                let app = App::from_cache(tier, name, &component, origin, started)?;
                Ok((app, component))
            }
            None => App::compile(tier, name, bytes, origin, Compiled::Fresh),
        }
    }

    /// The quickest way to a serving app for a new version: the cache, else the baseline compiler
    /// (the optimized build follows in the background), else the optimizing one. Returns the
    /// component when it is the optimized one, to be cached. Blocking.
    fn load_quick(
        &self,
        name: &str,
        bytes: &[u8],
        version: Version,
        source: Source,
        manifest: Arc<Manifest>,
    ) -> Result<(App, Option<Component>), LoadError> {
        app::precheck(name, bytes)?;
        self.check_route(name, &manifest)?;
        if let Some(baseline) = self.engine.baseline()
            && !self.cache.has_content(&version)
        {
            let origin = Origin {
                version: version.clone(),
                source,
                manifest: manifest.clone(),
            };
            match App::compile(baseline, name, bytes, origin, Compiled::Baseline) {
                Ok((app, _)) => return Ok((app, None)),
                // Refusals that do not depend on the compiler are final.
                Err(error @ LoadError::Incompatible(_)) => return Err(error),
                Err(error) => {
                    tracing::debug!(
                        app = name,
                        "baseline compiler declined, using Cranelift: {error}"
                    );
                }
            }
        }
        let (app, component) = self.load_optimized(name, bytes, version, source, manifest)?;
        Ok((app, Some(component)))
    }

    /// After a version went live: cache its optimized build (which only saves a recompile
    /// later), or, if it was compiled by the baseline compiler, build the optimized one.
    fn finish_in_background(
        self: &Arc<Self>,
        app: Arc<App>,
        optimized: Option<Component>,
        bytes: Bytes,
        path: PathBuf,
    ) {
        match optimized {
            Some(component) => {
                let this = self.clone();
                tokio::task::spawn_blocking(move || {
                    this.cache
                        .save(app.name(), &path, app.version(), &component);
                });
            }
            None => self.upgrade_in_background(app, bytes, path),
        }
    }

    /// Compiles the optimized version of a baseline-compiled app, caches it (as the build of
    /// the file at `path`), and swaps it in if that version is still the one serving.
    fn upgrade_in_background(self: &Arc<Self>, baseline: Arc<App>, bytes: Bytes, path: PathBuf) {
        let this = self.clone();
        tokio::spawn(async move {
            let _slot = this.compile_slots.acquire().await;
            let compiler = this.clone();
            let name = baseline.name().clone();
            let (source, manifest) = (baseline.source(), baseline.manifest().clone());
            let version = baseline.version().clone();
            let optimized = tokio::task::spawn_blocking(move || {
                let loaded = compiler.load_bytes(&name, &bytes, version, source, manifest);
                if let Ok((app, component)) = &loaded {
                    compiler.cache.save(&name, &path, app.version(), component);
                }
                loaded
            })
            .await;
            match optimized {
                Ok(Ok((app, _))) => {
                    let app = Arc::new(app);
                    if this.registry.replace_if_current(&baseline, app.clone()) {
                        log_mounted(&app);
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(app = %baseline.name(), "optimized build failed, keeping the baseline one: {error}");
                }
                Err(panic) => {
                    tracing::error!(app = %baseline.name(), "optimized build panicked: {panic}")
                }
            }
        });
    }

    /// Validates and compiles `bytes` as app `name` (with `manifest_text` as its settings, if
    /// given), stores both durably, and swaps it in.
    /// Compilation happens before anything is written; the store-and-swap is one step under
    /// a lock. In-flight requests finish on the old version.
    ///
    /// # Errors
    ///
    /// [`DeployError`]: nothing was stored and the previous version keeps serving.
    pub async fn deploy_upload(
        self: &Arc<Self>,
        name: &str,
        bytes: Bytes,
        manifest_text: Option<String>,
    ) -> Result<Deployed, DeployError> {
        // Settings sent with the component replace the stored ones; otherwise those apply.
        let manifest = match &manifest_text {
            Some(text) => self.with_defaults(
                Manifest::parse(text, self.store.dir()).map_err(LoadError::Manifest)?,
            ),
            None => self.manifest_for(&self.store.app_path(name))?,
        };
        let this = self.clone();
        let owned_name = name.to_owned();
        let compile_bytes = bytes.clone();
        let (app, component) = tokio::task::spawn_blocking(move || {
            let version = Version::of(&compile_bytes);
            this.load_quick(
                &owned_name,
                &compile_bytes,
                version,
                Source::Upload,
                manifest,
            )
        })
        .await
        .map_err(|panic| DeployError::Store(anyhow::anyhow!("compiling panicked: {panic}")))??;
        let app = Arc::new(app);

        let commit = self.commit.lock().await;
        let this = self.clone();
        let owned_name = name.to_owned();
        let bytes_for_upgrade = bytes.clone();
        tokio::task::spawn_blocking(move || {
            this.store
                .install(&owned_name, &bytes, manifest_text.as_deref())
        })
        .await
        .map_err(|panic| DeployError::Store(anyhow::anyhow!("storing panicked: {panic}")))?
        .map_err(DeployError::Store)?;
        let previous = self.registry.insert(app.clone());
        drop(commit);

        log_mounted(&app);
        let path = self.store.app_path(name);
        self.finish_in_background(app.clone(), component, bytes_for_upgrade, path);
        Ok(Deployed {
            app,
            replaced: previous.is_some(),
        })
    }

    /// Mounts apps whose files live outside the apps folder (a build's output, in dev mode):
    /// routable at once, compiled (or taken from the cache) in the background.
    pub fn mount_external(self: &Arc<Self>, apps: &[(String, PathBuf)]) {
        for (name, path) in apps {
            self.compile_in_background(AppFile {
                name: name.clone(),
                path: path.clone(),
            });
        }
    }

    /// Loads app `name` again from `path` after the file changed, unless it holds the content
    /// already serving. A new version goes live like an upload (baseline first, optimized
    /// after); a broken one is recorded and logged, and the serving version stays.
    pub async fn reload_file(self: &Arc<Self>, name: &str, path: &Path) -> Reload {
        let bytes = match tokio::fs::read(path).await {
            Ok(bytes) => Bytes::from(bytes),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                return self.unmount(name);
            }
            Err(error) => {
                return self.reload_failed(name, format!("reading {}: {error}", path.display()));
            }
        };
        let manifest = match self.manifest_for(path) {
            Ok(manifest) => manifest,
            Err(error) => return self.reload_failed(name, error.to_string()),
        };
        let version = Version::of(&bytes);
        if let Some(Entry::Ready(current)) = self.registry.get(name)
            && current.version().sha256 == version.sha256
            && current.manifest() == &manifest
        {
            return Reload::Unchanged;
        }
        let this = self.clone();
        let owned_name = name.to_owned();
        let compile_bytes = bytes.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            this.load_quick(
                &owned_name,
                &compile_bytes,
                version,
                Source::Folder,
                manifest,
            )
        })
        .await;
        let (app, component) = match loaded {
            Ok(Ok(loaded)) => loaded,
            Ok(Err(error)) => return self.reload_failed(name, error.to_string()),
            Err(panic) => return self.reload_failed(name, format!("compiling panicked: {panic}")),
        };
        let app = Arc::new(app);
        let replaced = self.registry.insert(app.clone()).is_some();
        log_mounted(&app);
        self.finish_in_background(app, component, bytes, path.to_owned());
        if replaced {
            Reload::Replaced
        } else {
            Reload::Added
        }
    }

    fn reload_failed(&self, name: &str, reason: String) -> Reload {
        let serving = self.registry.get(name).is_some();
        if serving {
            tracing::warn!(
                app = name,
                "new build not loaded, still serving the previous one: {reason}"
            );
        } else {
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

    /// Unmounts app `name` whose file is gone (nothing to delete).
    fn unmount(&self, name: &str) -> Reload {
        self.cache.forget(name);
        match self.registry.remove(name) {
            Some(_) => {
                tracing::info!(app = name, "file removed: unmounted");
                Reload::Removed
            }
            None => Reload::Unchanged,
        }
    }

    /// Unmounts app `name` and deletes its file. Returns whether there was anything to remove.
    ///
    /// # Errors
    ///
    /// If the file cannot be deleted; the app then stays mounted.
    pub async fn remove(self: &Arc<Self>, name: &str) -> anyhow::Result<bool> {
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
        if had_file || was_mounted {
            tracing::info!(app = name, "removed");
        }
        Ok(had_file || was_mounted)
    }
}

fn log_mounted(app: &App) {
    tracing::info!(
        app = %app.name(),
        bytes = app.size(),
        sha256 = %&app.version().sha256[..12],
        compiled = ?app.compiled(),
        load_ms = app.load_time().as_millis() as u64,
        "mounted"
    );
}

fn parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}
