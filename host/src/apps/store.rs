//! Where apps are kept: the [`AppStore`] trait, and the apps folder as its implementation,
//! each `NAME.wasm` one app. Folder writes are atomic (temp file in the same folder, fsync,
//! rename, fsync the folder), and temp files left by a crash are removed when it is opened.

use crate::apps::names::is_valid_app_name;
use anyhow::Context as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The file extension of an app component.
pub(crate) const APP_EXTENSION: &str = "wasm";
/// The file extension of an app's manifest, beside its component.
pub(crate) const MANIFEST_EXTENSION: &str = "toml";
/// Prefix of temp files; never a valid app name, so never mounted.
pub(crate) const TEMP_PREFIX: &str = ".tmp-";
/// Folder, inside the apps folder, of the host's own compiled artifacts.
pub(crate) const CACHE_DIR: &str = ".cache";

/// One app file found in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppFile {
    /// The app name: the file name without `.wasm`.
    pub name: String,
    /// Where the component is.
    pub path: PathBuf,
}

/// Where the apps of a server are kept, durably. The request path never reads it: apps are
/// loaded from it at start and when it changes, then served from memory.
pub(crate) trait AppStore: Send + Sync {
    /// Every stored app, each with a local file holding its component.
    ///
    /// # Errors
    ///
    /// If the store cannot be read.
    fn scan(&self) -> anyhow::Result<Vec<AppFile>>;

    /// The local file that holds (or would hold) app `name`'s component.
    fn app_path(&self, name: &str) -> PathBuf;

    /// The folder an app's `files` grant is resolved in.
    fn files_root(&self) -> &Path;

    /// The folder of this node's compiled artifacts.
    fn cache_dir(&self) -> PathBuf;

    /// Stores app `name`: its component and, when given, its manifest text. Durable when it
    /// returns. Blocking.
    ///
    /// # Errors
    ///
    /// Any I/O failure.
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<&str>) -> anyhow::Result<()>;

    /// Deletes app `name`. Returns whether it existed. Blocking.
    ///
    /// # Errors
    ///
    /// Any I/O failure other than the app being absent.
    fn remove(&self, name: &str) -> anyhow::Result<bool>;

    /// The lock a write holds from before it is stored until the live table reflects it, when
    /// others (a shared store's catch-up) change the table too. Take it before
    /// [`AppStore::install`] or [`AppStore::remove`], in async code.
    fn write_lock(&self) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        None
    }

    /// Whether other nodes share this store (their versions arrive here to be compiled).
    fn is_shared(&self) -> bool {
        false
    }
}

impl<T: AppStore + ?Sized> AppStore for std::sync::Arc<T> {
    fn scan(&self) -> anyhow::Result<Vec<AppFile>> {
        (**self).scan()
    }
    fn app_path(&self, name: &str) -> PathBuf {
        (**self).app_path(name)
    }
    fn files_root(&self) -> &Path {
        (**self).files_root()
    }
    fn cache_dir(&self) -> PathBuf {
        (**self).cache_dir()
    }
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<&str>) -> anyhow::Result<()> {
        (**self).install(name, bytes, manifest)
    }
    fn remove(&self, name: &str) -> anyhow::Result<bool> {
        (**self).remove(name)
    }
    fn write_lock(&self) -> Option<std::sync::Arc<tokio::sync::Mutex<()>>> {
        (**self).write_lock()
    }
    fn is_shared(&self) -> bool {
        (**self).is_shared()
    }
}

/// The apps folder.
#[derive(Debug, Clone)]
pub(crate) struct FolderStore {
    dir: PathBuf,
    /// This node's compiled artifacts (`.cache/` inside the folder unless `--cache-dir`).
    cache: PathBuf,
}

impl FolderStore {
    /// Opens the apps folder: creates the cache folder and removes temp files a crash left.
    ///
    /// # Errors
    ///
    /// If the folder does not exist or cannot be written.
    pub(crate) fn open(dir: &Path) -> anyhow::Result<Self> {
        Self::open_with_cache(dir, &dir.join(CACHE_DIR))
    }

    /// [`FolderStore::open`], keeping compiled artifacts in `cache` (created if needed).
    ///
    /// # Errors
    ///
    /// As [`FolderStore::open`].
    pub(crate) fn open_with_cache(dir: &Path, cache: &Path) -> anyhow::Result<Self> {
        anyhow::ensure!(
            dir.is_dir(),
            "reading apps folder {}: not a folder (create it, or pass --apps)",
            dir.display()
        );
        let store = Self {
            dir: dir.to_path_buf(),
            cache: cache.to_path_buf(),
        };
        std::fs::create_dir_all(store.cache_dir())
            .with_context(|| format!("creating {}", store.cache_dir().display()))?;
        let removed = remove_temp_files(&store.dir)? + remove_temp_files(&store.cache_dir())?;
        if removed > 0 {
            tracing::info!("removed {removed} temp file(s) left by an interrupted write");
        }
        Ok(store)
    }

    /// Where app `name`'s manifest lives.
    pub(crate) fn manifest_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.{MANIFEST_EXTENSION}"))
    }
}

impl AppStore for FolderStore {
    fn files_root(&self) -> &Path {
        &self.dir
    }

    fn cache_dir(&self) -> PathBuf {
        self.cache.clone()
    }

    fn app_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.{APP_EXTENSION}"))
    }

    fn scan(&self) -> anyhow::Result<Vec<AppFile>> {
        scan_apps(&self.dir)
    }

    /// Writes `bytes` as app `name` atomically and durably: when this returns, the new file
    /// is in place and survives a crash; if it fails or the process dies first, the previous
    /// file (if any) is still there, whole.
    ///
    /// With `manifest`, both or neither: both are written and synced under temp names first,
    /// then the component is renamed into place, then the manifest; if that last rename
    /// fails, the previous component is put back. (A crash between the two renames leaves
    /// the new component with the previous settings, each whole and valid on its own.)
    fn install(&self, name: &str, bytes: &[u8], manifest: Option<&str>) -> anyhow::Result<()> {
        let component_path = self.app_path(name);
        let Some(manifest) = manifest else {
            return write_atomically(&self.dir, &component_path, bytes)
                .with_context(|| format!("storing {}", component_path.display()));
        };
        let manifest_path = self.manifest_path(name);
        let component = synced_temp_file(&self.dir, bytes)?;
        let manifest = synced_temp_file(&self.dir, manifest.as_bytes())?;
        // A backup reading the folder meanwhile sees both renames or neither.
        let _pair = FolderLock::exclusive(&self.dir)?;
        let backup = self.dir.join(format!("{TEMP_PREFIX}{name}.previous"));
        let _ = std::fs::remove_file(&backup);
        let had_previous = match std::fs::hard_link(&component_path, &backup) {
            Ok(()) => true,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => false,
            // No hard links here: a copy does, or nothing is replaced.
            Err(_) => std::fs::copy(&component_path, &backup)
                .map(|_| true)
                .context("keeping the previous component")?,
        };
        component
            .persist(&component_path)
            .with_context(|| format!("storing {}", component_path.display()))?;
        if let Err(error) = manifest.persist(&manifest_path) {
            let restored = if had_previous {
                std::fs::rename(&backup, &component_path)
            } else {
                std::fs::remove_file(&component_path)
            };
            if let Err(restoring) = restored {
                tracing::error!(
                    app = name,
                    "putting the previous component back: {restoring}"
                );
            }
            sync_dir(&self.dir)?;
            return Err(error).with_context(|| format!("storing {}", manifest_path.display()));
        }
        let _ = std::fs::remove_file(&backup);
        sync_dir(&self.dir)
    }

    fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let _pair = FolderLock::exclusive(&self.dir)?;
        match std::fs::remove_file(self.manifest_path(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(error) => return Err(error).context("removing the manifest"),
        }
        let path = self.app_path(name);
        match std::fs::remove_file(&path) {
            Ok(()) => {
                sync_dir(&self.dir)?;
                Ok(true)
            }
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
        }
    }
}

/// A lock on the apps folder between processes (`flock` on the folder itself, opened read-only:
/// no lock file, so it works in a read-only folder and for any user who may read it): a
/// writer of an app's component and manifest holds it exclusively for the two renames, a
/// backup holds it shared while it reads, so a backup never pairs one version's component
/// with another's settings. Released on drop.
pub(crate) struct FolderLock {
    _held: std::fs::File,
}

impl FolderLock {
    /// Waits for the folder's lock, exclusively.
    ///
    /// # Errors
    ///
    /// The lock file cannot be opened or locked.
    pub(crate) fn exclusive(dir: &Path) -> anyhow::Result<Self> {
        Self::take(dir, rustix::fs::FlockOperation::LockExclusive)
    }

    /// Waits for the folder's lock, shared with other readers.
    ///
    /// # Errors
    ///
    /// The lock file cannot be opened or locked.
    pub(crate) fn shared(dir: &Path) -> anyhow::Result<Self> {
        Self::take(dir, rustix::fs::FlockOperation::LockShared)
    }

    fn take(dir: &Path, operation: rustix::fs::FlockOperation) -> anyhow::Result<Self> {
        let folder = std::fs::File::open(dir)
            .with_context(|| format!("opening {} to lock it", dir.display()))?;
        rustix::fs::flock(&folder, operation)
            .with_context(|| format!("locking {}", dir.display()))?;
        Ok(Self { _held: folder })
    }
}

/// Why a file of the apps folder was not read.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// There is no such file (it was removed).
    Missing,
    /// It cannot be an app's file: not a regular file, too big, unreadable. The message names
    /// the file, not its folder.
    Refused(String),
}

/// Reads the regular file at `path` (a symbolic link is followed), at most `limit` bytes
/// (`flag` names the setting in the refusal). Never blocks on a FIFO or a device and never
/// reads past the limit, whatever the file turns out to be.
///
/// # Errors
///
/// [`ReadError::Missing`], or [`ReadError::Refused`] saying why.
pub(crate) fn read_regular_file(path: &Path, limit: u64, flag: &str) -> Result<Vec<u8>, ReadError> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    // Opening a FIFO without a writer returns at once instead of blocking.
    let nonblocking = rustix::fs::OFlags::NONBLOCK.bits() as i32;
    let name = crate::apps::manifest::file_name(path);
    let refused = |why: String| ReadError::Refused(format!("{name}: {why}"));
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nonblocking)
        .open(path)
    {
        Ok(file) => file,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(ReadError::Missing);
        }
        Err(error) => return Err(refused(error.to_string())),
    };
    let metadata = file.metadata().map_err(|e| refused(e.to_string()))?;
    if !metadata.is_file() {
        return Err(refused("not a regular file".into()));
    }
    if metadata.len() > limit {
        return Err(refused(format!(
            "{} bytes, limit is {limit} bytes ({flag})",
            metadata.len()
        )));
    }
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refused(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(refused(format!("more than {limit} bytes ({flag})")));
    }
    Ok(bytes)
}

/// Writes `bytes` to `target` through a temp file in `dir` (same file system): write, fsync,
/// rename over `target`, fsync `dir`.
///
/// # Errors
///
/// Any I/O failure; the temp file is removed.
pub(crate) fn write_atomically(dir: &Path, target: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    synced_temp_file(dir, bytes)?
        .persist(target)
        .context("renaming the temp file into place")?;
    sync_dir(dir)
}

/// `bytes` in a new temp file in `dir`, synced; removed when dropped unless persisted.
fn synced_temp_file(dir: &Path, bytes: &[u8]) -> anyhow::Result<tempfile::NamedTempFile> {
    let mut temp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .tempfile_in(dir)
        .context("creating a temp file")?;
    temp.write_all(bytes).context("writing the temp file")?;
    temp.as_file().sync_all().context("syncing the temp file")?;
    Ok(temp)
}

/// Makes a rename or delete in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing folder {}", dir.display()))
}

fn remove_temp_files(dir: &Path) -> anyhow::Result<usize> {
    let mut removed = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// Lists the `NAME.wasm` files of `dir`, ordered by name. Files whose name is not a valid app
/// name are skipped with a warning; other files are ignored.
///
/// # Errors
///
/// If the folder cannot be read.
pub(crate) fn scan_apps(dir: &Path) -> anyhow::Result<Vec<AppFile>> {
    let entries =
        std::fs::read_dir(dir).with_context(|| format!("reading apps folder {}", dir.display()))?;
    let mut apps = Vec::new();
    for entry in entries {
        let path = entry
            .with_context(|| format!("reading apps folder {}", dir.display()))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some(APP_EXTENSION) || !path.is_file() {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            tracing::warn!(path = %path.display(), "skipping app file: name is not UTF-8");
            continue;
        };
        if !is_valid_app_name(name) {
            if !name.starts_with(TEMP_PREFIX) {
                tracing::warn!(
                    path = %path.display(),
                    "skipping app file: `{name}` is not a valid app name \
                     (lowercase letters, digits and `-`, at most 63 characters)"
                );
            }
            continue;
        }
        apps.push(AppFile {
            name: name.to_owned(),
            path,
        });
    }
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(apps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_component_and_its_manifest_are_not_replaced_while_a_backup_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = FolderStore::open(dir.path()).unwrap();
        store.install("pair", b"old", Some("# old\n")).unwrap();
        let reading = FolderLock::shared(dir.path()).unwrap();
        let writer = {
            let store = store.clone();
            std::thread::spawn(move || store.install("pair", b"new", Some("# new\n")))
        };
        std::thread::sleep(std::time::Duration::from_millis(300));
        let read = |file: &str| std::fs::read(dir.path().join(file)).unwrap();
        assert_eq!(read("pair.wasm"), b"old", "replaced under a reader's lock");
        assert_eq!(read("pair.toml"), b"# old\n");
        drop(reading);
        writer.join().unwrap().unwrap();
        assert_eq!(read("pair.wasm"), b"new");
        assert_eq!(read("pair.toml"), b"# new\n");
        store.remove("pair").unwrap();
        assert!(scan_apps(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn only_valid_wasm_names_are_listed() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["b.wasm", "a-1.wasm", "Bad.wasm", "notes.txt", "c.wasm.tmp"] {
            std::fs::write(dir.path().join(file), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("d.wasm")).unwrap();
        let names: Vec<_> = scan_apps(dir.path())
            .unwrap()
            .into_iter()
            .map(|app| app.name)
            .collect();
        assert_eq!(names, ["a-1", "b"]);
    }

    #[test]
    fn only_regular_files_are_read_and_never_past_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        std::fs::write(path("ok.wasm"), b"1234").unwrap();
        assert_eq!(
            read_regular_file(&path("ok.wasm"), 4, "--x").unwrap(),
            b"1234"
        );
        let refusal = |name: &str, limit| match read_regular_file(&path(name), limit, "--x") {
            Err(ReadError::Refused(why)) => why,
            other => panic!("{name}: {other:?}"),
        };
        assert!(refusal("ok.wasm", 3).contains("limit is 3 bytes (--x)"));
        std::os::unix::fs::symlink("/dev/zero", path("zero.wasm")).unwrap();
        assert!(refusal("zero.wasm", 1 << 20).contains("not a regular file"));
        let fifo = std::process::Command::new("mkfifo")
            .arg(path("fifo.wasm"))
            .status()
            .unwrap();
        assert!(fifo.success());
        assert!(refusal("fifo.wasm", 1 << 20).contains("not a regular file"));
        assert!(!refusal("fifo.wasm", 1).contains(&dir.path().display().to_string()));
        assert!(matches!(
            read_regular_file(&path("gone.wasm"), 1, "--x"),
            Err(ReadError::Missing)
        ));
    }

    #[test]
    fn a_missing_folder_is_an_error_naming_it() {
        let error = FolderStore::open(Path::new("/no/such/folder")).unwrap_err();
        assert!(format!("{error:#}").contains("/no/such/folder"));
    }

    #[test]
    fn opening_removes_leftover_temp_files_and_installs_are_atomic() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(".tmp-abc"), b"half").unwrap();
        std::fs::create_dir(dir.path().join(CACHE_DIR)).unwrap();
        std::fs::write(dir.path().join(CACHE_DIR).join(".tmp-x"), b"half").unwrap();
        let store = FolderStore::open(dir.path()).unwrap();
        assert!(!dir.path().join(".tmp-abc").exists());
        assert!(!dir.path().join(CACHE_DIR).join(".tmp-x").exists());

        store.install("app", b"one", None).unwrap();
        store.install("app", b"two", None).unwrap();
        assert_eq!(std::fs::read(store.app_path("app")).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "only app.wasm and .cache: {names:?}");
        assert!(store.remove("app").unwrap());
        assert!(!store.remove("app").unwrap());

        // A component and its manifest: both or neither.
        std::fs::create_dir(store.app_path("blocked")).unwrap();
        assert!(store.install("blocked", b"one", Some("x = 1")).is_err());
        assert!(
            !store.manifest_path("blocked").exists(),
            "no manifest alone"
        );
        store.install("pair", b"old", Some("old = 1")).unwrap();
        std::fs::remove_file(store.manifest_path("pair")).unwrap();
        std::fs::create_dir(store.manifest_path("pair")).unwrap();
        assert!(store.install("pair", b"new", Some("new = 1")).is_err());
        assert_eq!(std::fs::read(store.app_path("pair")).unwrap(), b"old");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}
