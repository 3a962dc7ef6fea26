//! How a version gets its machine code: the compiled cache, the baseline compiler (Winch,
//! quick, so a new version answers at once) or the optimizing one (Cranelift, what apps run
//! on in the long run, and what is cached). Baseline builds are upgraded in the background.

use crate::apps::app::{self, App, Compiled, LoadError, Origin, Source, Version};
use crate::apps::deploy::{DeployError, Deployer, log_mounted};
use crate::apps::manifest::Manifest;
use crate::apps::names::Holder;
use crate::apps::registry::{Entry, Failure, LoadOutcome};
use crate::apps::store::{AppFile, ReadError, read_regular_file};
use bytes::Bytes;
use futures::FutureExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};
use wasmtime::component::Component;

/// At start-up, components at least this big go live on the baseline compiler first (as
/// uploads do); smaller ones compile with Cranelift in well under a second, straight into the
/// cache, without compiling twice.
const BASELINE_FIRST_AT_START_BYTES: usize = 2 << 20;

impl Deployer {
    pub(super) fn load_cached(&self, file: &AppFile) -> Option<App> {
        let started = Instant::now();
        // An invalid manifest is reported by the background load that follows a miss.
        let manifest = self.manifest_for(&file.name, &file.path).ok()?;
        let tier = self.context.engine.optimized();
        let (component, version) = self.cache.load(tier.engine(), &file.name, &file.path)?;
        let origin = Origin {
            version,
            source: Source::Folder,
            manifest,
        };
        App::from_cache(&self.context, tier, &file.name, &component, origin, started).ok()
    }

    /// The settings of app `name` whose component is at `wasm_path`: `NAME.toml` beside it,
    /// or for a component outside the store (`--app NAME=PATH`, a build's output) with none
    /// beside it, `NAME.toml` in the apps folder — settings kept with the sources, not in a
    /// build folder that `cargo clean` deletes.
    pub(super) fn manifest_for(
        &self,
        name: &str,
        wasm_path: &Path,
    ) -> Result<Arc<Manifest>, LoadError> {
        let stored = self.store.app_path(name);
        let beside = wasm_path.with_extension(crate::apps::store::MANIFEST_EXTENSION);
        let source = if wasm_path != stored && !beside.exists() {
            stored.as_path()
        } else {
            wasm_path
        };
        Manifest::read_beside(source, self.store.files_root())
            .map(Arc::new)
            .map_err(LoadError::Manifest)
    }

    /// Mounts a placeholder for `file` and compiles it in the background.
    pub(super) fn compile_in_background(self: &Arc<Self>, file: AppFile) {
        let name: Arc<str> = file.name.as_str().into();
        let (done, outcome) = tokio::sync::oneshot::channel::<LoadOutcome>();
        let outcome = outcome
            .map(|received| received.unwrap_or_else(|_| Err("loading was interrupted".into())))
            .boxed();
        let id = self.registry.insert_loading(name.clone(), outcome);
        let this = self.clone();
        self.first_loads.send_modify(|waiting| *waiting += 1);
        tokio::spawn(async move {
            let slot = this.compile_slots.acquire().await;
            let _counted = FirstLoad(&this.first_loads);
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
            let commit = this.commit.lock().await;
            let result = result.and_then(|(app, baseline_bytes)| match this.route_free(&app) {
                Ok(()) => Ok((app, baseline_bytes)),
                Err(taken) => Err(taken.to_string()),
            });
            match result {
                Ok((app, baseline_bytes)) => {
                    if this.registry.finish_loading(&name, id, Ok(app.clone())) {
                        this.claim_at_start(&app);
                        log_mounted(&app);
                    }
                    drop(commit);
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
                    if this.registry.get(&name).is_none() {
                        this.names.free(&name, Holder::App);
                    }
                    drop(commit);
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
        let bytes = match read_regular_file(&file.path, self.max_component, "--max-upload") {
            Ok(bytes) => Bytes::from(bytes),
            Err(ReadError::Missing) => return Err(format!("{}: no such file", file.name)),
            Err(ReadError::Refused(why)) => return Err(why),
        };
        let manifest = self
            .manifest_for(&file.name, &file.path)
            .map_err(|e| e.to_string())?;
        let version = Version::of(&bytes);
        // A shared store's versions go live on the baseline compiler first, as uploads do:
        // a cluster's other nodes and a fresh node serve them at once.
        let (app, optimized) =
            if bytes.len() < BASELINE_FIRST_AT_START_BYTES && !self.store.is_shared() {
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
        let tier = self.context.engine.optimized();
        let cached = self.cache.load_by_content(tier.engine(), &version);
        let origin = Origin {
            version,
            source,
            manifest,
        };
        match cached {
            Some(component) => {
                let app = App::from_cache(&self.context, tier, name, &component, origin, started)?;
                Ok((app, component))
            }
            None => App::compile(&self.context, tier, name, bytes, origin, Compiled::Fresh),
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
        if let Some(baseline) = self.context.engine.baseline()
            && !self.cache.has_content(&version)
        {
            let origin = Origin {
                version: version.clone(),
                source,
                manifest: manifest.clone(),
            };
            match App::compile(
                &self.context,
                baseline,
                name,
                bytes,
                origin,
                Compiled::Baseline,
            ) {
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
    pub(super) fn finish_in_background(
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
            // Upgrades wait for every first load: a cold node serves all its apps first.
            let mut first_loads = this.first_loads.subscribe();
            let _ = first_loads.wait_for(|waiting| *waiting == 0).await;
            let _slot = this.compile_slots.acquire().await;
            let still_serving = matches!(
                this.registry.get(baseline.name()),
                Some(Entry::Ready(app)) if Arc::ptr_eq(&app, &baseline)
            );
            if !still_serving {
                return; // replaced or removed while it waited: nothing to upgrade
            }
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
                        // The same version, faster: not a second reload.
                        tracing::info!(
                            app = %app.name(),
                            load_ms = app.load_time().as_millis() as u64,
                            "optimized code swapped in"
                        );
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

    /// [`Self::load_quick`] on a blocking thread: the quickest way to a serving app for a new
    /// version, and the optimized component when that is what it got. A panic of the compiler
    /// is reported as such, not as a storage failure.
    pub(super) async fn compile_off_runtime(
        self: &Arc<Self>,
        name: &str,
        bytes: Bytes,
        source: Source,
        manifest: Arc<Manifest>,
    ) -> Result<(App, Option<Component>), DeployError> {
        let this = self.clone();
        let owned_name = name.to_owned();
        let joined = tokio::task::spawn_blocking(move || {
            let version = Version::of(&bytes);
            this.load_quick(&owned_name, &bytes, version, source, manifest)
        })
        .await;
        Ok(compiled_or_crashed(name, joined)?)
    }
}

/// One first load under way, counted in [`Deployer::first_loads`] until dropped.
struct FirstLoad<'a>(&'a tokio::sync::watch::Sender<usize>);

impl Drop for FirstLoad<'_> {
    fn drop(&mut self) {
        self.0.send_modify(|waiting| *waiting -= 1);
    }
}

/// A compile's outcome, a panic of the compiler counted as [`LoadError::CompilerCrashed`].
fn compiled_or_crashed<T>(
    name: &str,
    joined: Result<Result<T, LoadError>, tokio::task::JoinError>,
) -> Result<T, LoadError> {
    joined.unwrap_or_else(|panic| {
        tracing::error!(app = name, "the compiler crashed: {panic}");
        Err(LoadError::CompilerCrashed)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_compiler_panic_is_reported_as_a_crash_not_a_storage_failure() {
        let joined =
            tokio::task::spawn_blocking(|| -> Result<(), LoadError> { panic!("cranelift bug") })
                .await;
        let error = compiled_or_crashed("app", joined).unwrap_err();
        assert!(matches!(error, LoadError::CompilerCrashed), "{error}");
        assert!(error.to_string().contains("compiler crashed"));
    }
}
