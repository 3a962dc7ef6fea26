//! The apps of the shared store as the deployer sees them: [`SharedStore`] writes to the
//! database first and then to this node's mirror folder (one `NAME.wasm` and `NAME.toml` per
//! app, as in an apps folder), and the catch-up brings the mirror in line with the database,
//! fetching a component's bytes only when the mirror lacks that content.

use super::{AppRow, Database, StoreError};
use crate::apps::names::{Holder, is_valid_app_name};
use crate::apps::store::{AppFile, AppStore, FolderStore, TEMP_PREFIX};
use crate::client::sha256_hex;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A name the store refused because something else holds it somewhere in the cluster.
#[derive(Debug, thiserror::Error)]
#[error("`{0}` is {1}")]
pub(crate) struct NameHeld(pub String, pub Holder);

/// The apps of a PostgreSQL store, mirrored in a local folder.
pub(crate) struct SharedStore {
    db: Arc<Database>,
    mirror: FolderStore,
    /// Where `files` grants of manifests are resolved: the apps folder, on every node.
    files_root: PathBuf,
    runtime: tokio::runtime::Handle,
}

impl SharedStore {
    /// The store `db`, mirrored in `mirror_dir` (created if needed), compiled artifacts in
    /// `mirror_dir/.cache`; `files_root` is where manifests' `files` folders are.
    ///
    /// # Errors
    ///
    /// If the mirror folder cannot be created.
    pub(crate) fn open(
        db: Arc<Database>,
        mirror_dir: &Path,
        files_root: &Path,
        runtime: tokio::runtime::Handle,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(mirror_dir).map_err(|e| {
            anyhow::anyhow!("creating the cache folder {}: {e}", mirror_dir.display())
        })?;
        Ok(Self {
            db,
            mirror: FolderStore::open(mirror_dir)?,
            files_root: files_root.to_path_buf(),
            runtime,
        })
    }

    /// Makes the mirror's copy of app `name` what the store holds (`None`: deleted). Returns
    /// whether the mirror changed. Takes the bytes from the store only when the mirror does
    /// not already hold this content.
    ///
    /// # Errors
    ///
    /// The store cannot be read, or the mirror written.
    pub(crate) async fn mirror_app(
        &self,
        name: &str,
        row: Option<&AppRow>,
    ) -> anyhow::Result<bool> {
        anyhow::ensure!(
            is_valid_app_name(name),
            "the store holds an app named `{name}`: not a valid app name"
        );
        let Some(row) = row else {
            return self.unmirror(name).await;
        };
        let (component, manifest) = (self.mirror.app_path(name), self.mirror.manifest_path(name));
        let current = tokio::task::spawn_blocking(move || {
            (
                std::fs::read(component).ok(),
                std::fs::read_to_string(manifest).ok(),
            )
        })
        .await?;
        let same_bytes = current.0.as_deref().map(sha256_hex).as_ref() == Some(&row.sha256);
        if same_bytes && current.1 == row.manifest {
            return Ok(false);
        }
        let bytes = match current.0.filter(|_| same_bytes) {
            Some(bytes) => bytes,
            None => self.fetch(name, &row.sha256).await?,
        };
        let (mirror, owned_name, manifest) =
            (self.mirror.clone(), name.to_owned(), row.manifest.clone());
        tokio::task::spawn_blocking(move || {
            // The manifest first: a reload that reads the new component sees its settings.
            let manifest_path = mirror.manifest_path(&owned_name);
            match manifest {
                Some(text) => replace_file(&manifest_path, text.as_bytes())?,
                None => remove_if_there(&manifest_path)?,
            }
            replace_file(&mirror.app_path(&owned_name), &bytes)
        })
        .await??;
        Ok(true)
    }

    /// The bytes of component `sha256` from the store, checked against their hash.
    async fn fetch(&self, name: &str, sha256: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = self.db.component(sha256).await?.ok_or_else(|| {
            anyhow::anyhow!("app `{name}`: component {sha256} is missing from the store")
        })?;
        anyhow::ensure!(
            sha256_hex(&bytes) == sha256,
            "app `{name}`: the store's component does not match its SHA-256 {sha256}"
        );
        Ok(bytes)
    }

    /// Removes app `name` from the mirror; returns whether it was there.
    async fn unmirror(&self, name: &str) -> anyhow::Result<bool> {
        let (mirror, owned_name) = (self.mirror.clone(), name.to_owned());
        tokio::task::spawn_blocking(move || mirror.remove(&owned_name)).await?
    }

    /// The names of the apps in the mirror.
    pub(crate) fn mirrored(&self) -> anyhow::Result<Vec<String>> {
        Ok(self
            .mirror
            .scan()?
            .into_iter()
            .map(|app| app.name)
            .collect())
    }
}

impl AppStore for SharedStore {
    fn scan(&self) -> anyhow::Result<Vec<AppFile>> {
        self.mirror.scan()
    }

    fn app_path(&self, name: &str) -> PathBuf {
        self.mirror.app_path(name)
    }

    fn files_root(&self) -> &Path {
        &self.files_root
    }

    fn cache_dir(&self) -> PathBuf {
        self.mirror.cache_dir()
    }

    /// Commits the app to the database (refused with [`NameHeld`] when a launch
    /// anywhere holds the name), then writes the mirror. The caller holds the write lock.
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<&str>) -> anyhow::Result<()> {
        self.runtime.block_on(async {
            let sha256 = sha256_hex(bytes);
            if let Err(holder) = self.db.put_app(name, &sha256, bytes, manifest).await? {
                return Err(NameHeld(name.to_owned(), holder).into());
            }
            self.mirror.install(name, bytes, manifest)
        })
    }

    /// Deletes the app (and its launches) from the database, then from the
    /// mirror. The caller holds the write lock.
    fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let stored = self.runtime.block_on(self.db.delete_app(name))?;
        Ok(self.mirror.remove(name)? || stored)
    }

    fn write_lock(&self) -> Option<Arc<tokio::sync::Mutex<()>>> {
        Some(self.db.sync.clone())
    }

    fn is_shared(&self) -> bool {
        true
    }
}

/// Replaces `target` with `bytes` (a temp file renamed over it: never seen half-written). Not
/// synced to disk: the mirror is a cache, the database holds the truth.
fn replace_file(target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write as _;
    let dir = target.parent().expect("a file in the mirror folder");
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.persist(target)?;
    Ok(())
}

fn remove_if_there(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => Err(error.into()),
        _ => Ok(()),
    }
}

/// Whether `error` says the store is unreachable (a client should try again: 503).
pub(crate) fn is_unavailable(error: &anyhow::Error) -> bool {
    matches!(
        error.downcast_ref::<StoreError>(),
        Some(StoreError::Unavailable { .. })
    )
}
