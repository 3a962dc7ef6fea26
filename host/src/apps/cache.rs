//! The compiled-artifact cache: machine code the host compiled itself, kept in the apps
//! folder's `.cache/` so a restart does not recompile. Artifacts are keyed by the component's
//! SHA-256 and the engine's compatibility hash; a small index per app (`NAME.json`) records
//! which artifact belongs to the app file of a given size and modification time, so start-up
//! needs neither to read nor to hash the components.
//!
//! Only files this module wrote are ever deserialized: uploads can only create `NAME.wasm`
//! (names cannot start with `.`), and precompiled uploads are refused as not-wasm. Anyone who
//! can write the apps folder itself is trusted like the server's own binary.

use crate::apps::app::Version;
use crate::apps::store::write_atomically;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::UNIX_EPOCH;
use wasmtime::Engine;
use wasmtime::component::Component;

/// What the index says about one app file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct IndexEntry {
    sha256: String,
    size: u64,
    modified_ns: u128,
    artifact: String,
}

/// The cache of one apps folder, for one engine configuration.
#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
    /// Artifacts mapped by [`CompiledCache::load`] since the last
    /// [`CompiledCache::forget_loaded`]: copies of one component, mounted at start-up, share
    /// one mapped module instead of each mapping and registering it again.
    loaded: Mutex<HashMap<String, Component>>,
}

impl CompiledCache {
    /// The cache in `dir` for artifacts compatible with `engine`.
    pub(crate) fn new(dir: PathBuf, engine: &Engine) -> Self {
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Self {
            dir,
            engine_key: format!("{:016x}", hasher.finish()),
            loaded: Mutex::new(HashMap::new()),
        }
    }

    fn index_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// The cached component for app file `app_path` (named `name`), if the index matches the
    /// file's current size and modification time and the artifact deserializes. Blocking.
    pub(crate) fn load(
        &self,
        engine: &Engine,
        name: &str,
        app_path: &Path,
    ) -> Option<(Component, Version)> {
        let (size, modified_ns) = file_stamp(app_path)?;
        let index: IndexEntry =
            serde_json::from_slice(&std::fs::read(self.index_path(name)).ok()?).ok()?;
        if index.size != size
            || index.modified_ns != modified_ns
            || !index.artifact.contains(&self.engine_key)
        {
            return None;
        }
        let artifact = self.dir.join(&index.artifact);
        match self.map_once(engine, &index.artifact, &artifact) {
            Ok(component) => Some((
                component,
                Version {
                    sha256: index.sha256,
                    size,
                },
            )),
            Err(error) => {
                tracing::warn!(
                    app = name,
                    "ignoring cached artifact {}: {error:#}",
                    artifact.display()
                );
                None
            }
        }
    }

    /// The component of artifact `name` at `path`, mapped once however many apps load it.
    fn map_once(&self, engine: &Engine, name: &str, path: &Path) -> anyhow::Result<Component> {
        if let Some(component) = self.loaded.lock().unwrap().get(name) {
            return Ok(component.clone());
        }
        let component = deserialize_own_artifact(engine, path)?;
        let mut loaded = self.loaded.lock().unwrap();
        Ok(loaded.entry(name.to_owned()).or_insert(component).clone())
    }

    /// Stops sharing the artifacts [`CompiledCache::load`] mapped (at the end of start-up), so
    /// a module is unmapped once the last app using it goes.
    pub(crate) fn forget_loaded(&self) {
        self.loaded.lock().unwrap().clear();
    }

    /// Whether an artifact for content `version` exists.
    pub(crate) fn has_content(&self, version: &Version) -> bool {
        self.dir
            .join(artifact_name(&version.sha256, &self.engine_key))
            .exists()
    }

    /// The cached artifact for content `version`, whatever app it was compiled for (copies
    /// of one component share one artifact). Blocking.
    pub(crate) fn load_by_content(&self, engine: &Engine, version: &Version) -> Option<Component> {
        let artifact = self
            .dir
            .join(artifact_name(&version.sha256, &self.engine_key));
        if !artifact.exists() {
            return None;
        }
        deserialize_own_artifact(engine, &artifact)
            .inspect_err(|error| {
                tracing::warn!("ignoring cached artifact {}: {error:#}", artifact.display())
            })
            .ok()
    }

    /// Records `component` as the compiled form of app file `app_path` (version `version`).
    /// Blocking. Failures only cost a recompile later, so they are logged, not returned.
    pub(crate) fn save(
        &self,
        name: &str,
        app_path: &Path,
        version: &Version,
        component: &Component,
    ) {
        if let Err(error) = self.try_save(name, app_path, version, component) {
            tracing::warn!(app = name, "could not cache the compiled app: {error:#}");
        }
    }

    fn try_save(
        &self,
        name: &str,
        app_path: &Path,
        version: &Version,
        component: &Component,
    ) -> anyhow::Result<()> {
        let artifact = artifact_name(&version.sha256, &self.engine_key);
        let artifact_path = self.dir.join(&artifact);
        if !artifact_path.exists() {
            let bytes = component.serialize().map_err(anyhow::Error::from)?;
            write_atomically(&self.dir, &artifact_path, &bytes)?;
        }
        let (size, modified_ns) = stamp_of_content(app_path, version)?;
        let index = IndexEntry {
            sha256: version.sha256.clone(),
            size,
            modified_ns,
            artifact,
        };
        write_atomically(
            &self.dir,
            &self.index_path(name),
            &serde_json::to_vec(&index)?,
        )
    }

    /// Forgets app `name` (its index; artifacts are shared by content and pruned at start).
    pub(crate) fn forget(&self, name: &str) {
        let _ = std::fs::remove_file(self.index_path(name));
    }

    /// Deletes artifacts no index refers to (old versions, removed apps). Blocking.
    pub(crate) fn prune(&self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut referenced = std::collections::HashSet::new();
        let mut artifacts = Vec::new();
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.ends_with(".json") {
                if let Ok(index) = std::fs::read(entry.path())
                    .map_err(anyhow::Error::from)
                    .and_then(|b| Ok(serde_json::from_slice::<IndexEntry>(&b)?))
                {
                    referenced.insert(index.artifact);
                }
            } else if file_name.ends_with(".cwasm") {
                artifacts.push(file_name);
            }
        }
        for artifact in artifacts.into_iter().filter(|a| !referenced.contains(a)) {
            let _ = std::fs::remove_file(self.dir.join(artifact));
        }
    }
}

fn artifact_name(sha256: &str, engine_key: &str) -> String {
    format!("{sha256}-{engine_key}.cwasm")
}

/// Size and modification time (ns since the epoch) of a file.
/// The stamp (size, modification time) of the file at `path`, if it holds exactly the content
/// `version` names: hashed between two stamps that agree, so an index never maps a file to
/// another version's artifact (a later upload of the same size may have replaced it while
/// this version compiled).
fn stamp_of_content(path: &Path, version: &Version) -> anyhow::Result<(u64, u128)> {
    let vanished = || anyhow::anyhow!("app file vanished");
    let before = file_stamp(path).ok_or_else(vanished)?;
    anyhow::ensure!(
        before.0 == version.size,
        "app file changed: another version is current"
    );
    let bytes = std::fs::read(path)?;
    anyhow::ensure!(
        Version::of(&bytes) == *version,
        "app file changed: another version is current"
    );
    let after = file_stamp(path).ok_or_else(vanished)?;
    anyhow::ensure!(before == after, "app file changed while caching");
    Ok(after)
}

fn file_stamp(path: &Path) -> Option<(u64, u128)> {
    let metadata = std::fs::metadata(path).ok()?;
    let modified = metadata.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
    Some((metadata.len(), modified.as_nanos()))
}

/// Maps an artifact this cache wrote back into memory as a component.
#[allow(unsafe_code)]
fn deserialize_own_artifact(engine: &Engine, path: &Path) -> anyhow::Result<Component> {
    // SAFETY: wasmtime requires that deserialized bytes come from its own `serialize` and are
    // not modified while mapped. The path is in the host-private `.cache/` folder, which only
    // `CompiledCache::save` writes (atomically, via a temp file and rename), and the file is
    // never rewritten in place: a new version gets a new content-addressed name. wasmtime
    // still checks the header and engine compatibility and refuses anything else.
    unsafe { Component::deserialize_file(engine, path) }.map_err(anyhow::Error::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smallest component: the preamble alone.
    const EMPTY_COMPONENT: &[u8] = b"\0asm\x0d\0\x01\0";

    /// A cache in a temp folder, its engine, and the smallest component compiled with it.
    fn empty_cache() -> (tempfile::TempDir, Engine, CompiledCache, Component) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::default();
        let cache = CompiledCache::new(dir.path().join("cache"), &engine);
        std::fs::create_dir(dir.path().join("cache")).unwrap();
        let component = Component::new(&engine, EMPTY_COMPONENT).unwrap();
        (dir, engine, cache, component)
    }

    #[test]
    fn the_index_is_written_only_for_the_content_the_file_holds() {
        let (dir, engine, cache, component) = empty_cache();
        let app = dir.path().join("app.wasm");

        // A's build finishes after B (same size) replaced A in the file: no index for A.
        let version_a = Version::of(b"version A");
        std::fs::write(&app, b"version B").unwrap();
        cache.save("app", &app, &version_a, &component);
        assert!(
            cache.load(&engine, "app", &app).is_none(),
            "A's artifact under B's file"
        );

        std::fs::write(&app, b"version A").unwrap();
        cache.save("app", &app, &version_a, &component);
        let (_, version) = cache.load(&engine, "app", &app).expect("cached");
        assert_eq!(version, version_a);
    }

    #[test]
    fn copies_loaded_at_start_share_one_mapped_module_until_forgotten() {
        let (dir, engine, cache, component) = empty_cache();
        let version = Version::of(EMPTY_COMPONENT);
        for name in ["a", "b"] {
            let app = dir.path().join(format!("{name}.wasm"));
            std::fs::write(&app, EMPTY_COMPONENT).unwrap();
            cache.save(name, &app, &version, &component);
        }
        let load = |name: &str| {
            let app = dir.path().join(format!("{name}.wasm"));
            cache.load(&engine, name, &app).expect("cached").0
        };
        let (a, b) = (load("a"), load("b"));
        assert_eq!(
            a.image_range(),
            b.image_range(),
            "one mapping for both copies"
        );
        cache.forget_loaded();
        assert_ne!(
            load("b").image_range(),
            a.image_range(),
            "mapped anew after start-up"
        );
    }
}
