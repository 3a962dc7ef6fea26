//! Backups of a folder store: every app's component and manifest and every launch
//! (`NAME.wasm`, `NAME.toml`, `.instances/NAME.json`), read under the folder's shared lock so
//! a server writing meanwhile never splits a component from its settings; kept as a folder
//! or one `.tar` file, and restored from either (names checked, nothing outside the layout).

use crate::apps::names::is_valid_app_name;
use crate::apps::store::{FolderLock, read_regular_file, scan_apps, write_atomically};
use crate::launches::LAUNCHES_DIR;
use anyhow::Context as _;
use std::path::Path;

/// The largest file a backup takes (a component is far smaller).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// One file of a backup: its path in the layout, and its bytes.
pub(crate) type BackupFile = (String, Vec<u8>);

/// Every file of the folder store at `dir`, as one consistent snapshot.
///
/// # Errors
///
/// The folder or one of its files cannot be read.
pub(crate) fn snapshot(dir: &Path) -> anyhow::Result<Vec<BackupFile>> {
    let _reading = FolderLock::shared(dir)?;
    let mut files = Vec::new();
    for app in scan_apps(dir)? {
        let read = |path: &Path| {
            read_regular_file(path, MAX_FILE_BYTES, "the backup limit")
                .map_err(|e| anyhow::anyhow!("reading {}: {e:?}", path.display()))
        };
        files.push((format!("{}.wasm", app.name), read(&app.path)?));
        let manifest = app.path.with_extension("toml");
        if manifest.is_file() {
            files.push((format!("{}.toml", app.name), read(&manifest)?));
        }
    }
    let instances = dir.join(LAUNCHES_DIR);
    if instances.is_dir() {
        for entry in std::fs::read_dir(&instances)? {
            let path = entry?.path();
            let file_name = path
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            if layout_path(&format!("{LAUNCHES_DIR}/{file_name}")).is_some() {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                files.push((format!("{LAUNCHES_DIR}/{file_name}"), bytes));
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Whether `path` belongs to the layout: `NAME.wasm`, `NAME.toml` or `.instances/NAME.json`
/// with a valid app name; its name if so.
fn layout_path(path: &str) -> Option<&str> {
    let name = match path
        .strip_prefix(LAUNCHES_DIR)
        .and_then(|rest| rest.strip_prefix('/'))
    {
        Some(file) => file.strip_suffix(".json")?,
        None => path
            .strip_suffix(".wasm")
            .or_else(|| path.strip_suffix(".toml"))?,
    };
    is_valid_app_name(name).then_some(name)
}

/// Whether `path` names a `.tar` file rather than a folder.
pub(crate) fn is_tar(path: &Path) -> bool {
    path.extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("tar"))
}

/// Writes `files` to `target`: a new `.tar` file (whole or not at all) or a folder.
///
/// # Errors
///
/// The target cannot be written.
pub(crate) fn write(files: &[BackupFile], target: &Path) -> anyhow::Result<()> {
    if !is_tar(target) {
        for (path, bytes) in files {
            let file = target.join(path);
            let folder = file.parent().unwrap_or(target);
            std::fs::create_dir_all(folder)
                .with_context(|| format!("creating {}", folder.display()))?;
            write_atomically(folder, &file, bytes)?;
        }
        return Ok(());
    }
    let folder = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temp = tempfile::NamedTempFile::new_in(folder)
        .with_context(|| format!("writing in {}", folder.display()))?;
    let mut archive = tar::Builder::new(std::io::BufWriter::new(temp));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    for (path, bytes) in files {
        let mut header = tar::Header::new_ustar();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(now);
        header.set_entry_type(tar::EntryType::Regular);
        archive.append_data(&mut header, path, bytes.as_slice())?;
    }
    let temp = archive
        .into_inner()?
        .into_inner()
        .map_err(|e| e.into_error())?;
    temp.as_file().sync_all()?;
    temp.persist(target)
        .with_context(|| format!("writing {}", target.display()))?;
    Ok(())
}

/// The files of a backup at `source` (a folder store or a `.tar` file), every path checked
/// against the layout.
///
/// # Errors
///
/// The source cannot be read, or the archive holds anything but the layout's files.
pub(crate) fn read(source: &Path) -> anyhow::Result<Vec<BackupFile>> {
    if !is_tar(source) {
        anyhow::ensure!(
            source.is_dir(),
            "--from {}: not a folder or a .tar file",
            source.display()
        );
        return snapshot(source);
    }
    let file =
        std::fs::File::open(source).with_context(|| format!("opening {}", source.display()))?;
    let mut archive = tar::Archive::new(std::io::BufReader::new(file));
    let mut files = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.to_string_lossy().into_owned();
        let regular = entry.header().entry_type() == tar::EntryType::Regular;
        anyhow::ensure!(
            regular && layout_path(&path).is_some(),
            "{}: `{path}` is not part of a wasmount backup (NAME.wasm, NAME.toml, \
             .instances/NAME.json)",
            source.display()
        );
        anyhow::ensure!(
            entry.size() <= MAX_FILE_BYTES,
            "{}: `{path}` is too large",
            source.display()
        );
        let mut bytes = Vec::with_capacity(usize::try_from(entry.size()).unwrap_or(0));
        std::io::Read::read_to_end(&mut entry, &mut bytes)?;
        files.push((path, bytes));
    }
    Ok(files)
}

/// Writes `files` into a folder made for them, for the import code that reads folders.
///
/// # Errors
///
/// The folder cannot be written.
pub(crate) fn unpack(files: &[BackupFile]) -> anyhow::Result<tempfile::TempDir> {
    let dir = tempfile::tempdir()?;
    write(files, dir.path())?;
    Ok(dir)
}

/// How many apps and instances `files` hold.
pub(crate) fn counts(files: &[BackupFile]) -> (usize, usize) {
    let apps = files.iter().filter(|(p, _)| p.ends_with(".wasm")).count();
    let instances = files
        .iter()
        .filter(|(p, _)| p.starts_with(LAUNCHES_DIR))
        .count();
    (apps, instances)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_layout_is_taken() {
        assert_eq!(layout_path("viz.wasm"), Some("viz"));
        assert_eq!(layout_path("viz.toml"), Some("viz"));
        assert_eq!(layout_path(".instances/dataset-7.json"), Some("dataset-7"));
        for bad in [
            "../etc/passwd",
            "/etc/viz.wasm",
            "a/viz.wasm",
            ".instances/../x.json",
            "Viz.wasm",
            ".cache/x.wasm",
            ".instances/x.wasm",
        ] {
            assert_eq!(layout_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tar_round_trip_keeps_every_file_and_refuses_strangers() {
        let dir = tempfile::tempdir().unwrap();
        let files = vec![
            ("a.toml".to_owned(), b"route = \"/x\"\n".to_vec()),
            ("a.wasm".to_owned(), b"\0asm-ish".to_vec()),
            (".instances/b.json".to_owned(), b"{}".to_vec()),
        ];
        let tar = dir.path().join("backup.tar");
        write(&files, &tar).unwrap();
        assert_eq!(read(&tar).unwrap(), files);

        let evil = dir.path().join("evil.tar");
        let mut archive = tar::Builder::new(std::fs::File::create(&evil).unwrap());
        let mut header = tar::Header::new_gnu();
        header.set_size(1);
        header.set_entry_type(tar::EntryType::Regular);
        archive
            .append_data(&mut header, "cron.d/x", &b"x"[..])
            .unwrap();
        archive.finish().unwrap();
        let refused = read(&evil).unwrap_err().to_string();
        assert!(
            refused.contains("not part of a wasmount backup"),
            "{refused}"
        );
    }
}
