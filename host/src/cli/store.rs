//! `wasmount store import|export`: moves a folder store (apps, their manifests, launched
//! instances) into a PostgreSQL store and back, so a single node grows into a cluster
//! without uploading anything again, and backs a store up into a folder or a `.tar` file and
//! restores it. Components are copied as they are; nodes compile them.

use super::backup;
use crate::apps::names::Holder;
use crate::apps::postgres::{Database, Launched};
use crate::apps::store::{AppStore as _, FolderStore, scan_apps};
use crate::client::sha256_hex;
use crate::launches::LAUNCHES_DIR;
use crate::launches::store::{FolderLaunches, InstanceStore as _, launch_of, row_of};
use anyhow::Context as _;
use clap::Subcommand;
use std::path::{Path, PathBuf};

/// What `wasmount store` does.
#[derive(Debug, Subcommand)]
pub(crate) enum StoreCommand {
    /// Copy a store or a backup into another: an apps folder or a backup (a folder or a
    /// .tar file) into PostgreSQL, or a backup into an apps folder (a restore).
    Import {
        /// An apps folder, or a backup made by `export` (a folder or FILE.tar).
        #[arg(long, value_name = "DIR|FILE.tar")]
        from: PathBuf,
        /// `postgres://USER[:PASSWORD]@HOST:PORT/DB` (password also PGPASSWORD), or an apps
        /// folder (created if missing; apps of the same name are replaced).
        #[arg(long, value_name = "URL|DIR")]
        to: String,
    },
    /// Copy a store out: PostgreSQL or an apps folder (consistent while a server writes to
    /// it) into a folder or one FILE.tar.
    Export {
        /// `postgres://USER[:PASSWORD]@HOST:PORT/DB` (password also PGPASSWORD), or an apps
        /// folder.
        #[arg(long, value_name = "URL|DIR")]
        from: String,
        /// A folder (created if missing) or FILE.tar (written whole or not at all).
        #[arg(long, value_name = "DIR|FILE.tar")]
        to: PathBuf,
    },
}

/// Runs a `wasmount store` command.
///
/// # Errors
///
/// The store or the folder cannot be read or written, or a name in one is taken in the
/// other; what was copied before stays copied (each item is one transaction).
pub(crate) async fn run(command: StoreCommand) -> anyhow::Result<()> {
    match command {
        StoreCommand::Import { from, to } if is_database(&to) => {
            let files = backup::read(&from)?;
            let unpacked = backup::unpack(&files)?;
            import(unpacked.path(), &to).await
        }
        StoreCommand::Import { from, to } => restore(&from, Path::new(&to)),
        StoreCommand::Export { from, to } if is_database(&from) && !backup::is_tar(&to) => {
            export(&from, &to).await
        }
        StoreCommand::Export { from, to } if is_database(&from) => {
            let folder = tempfile::tempdir()?;
            export(&from, folder.path()).await?;
            save(&backup::snapshot(folder.path())?, &to)
        }
        StoreCommand::Export { from, to } => save(&backup::snapshot(Path::new(&from))?, &to),
    }
}

fn is_database(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

/// Writes a backup and says what it holds.
fn save(files: &[backup::BackupFile], to: &Path) -> anyhow::Result<()> {
    backup::write(files, to)?;
    let (apps, instances) = backup::counts(files);
    println!(
        "backed up {apps} app(s) and {instances} launch(es) into {}",
        to.display()
    );
    Ok(())
}

/// Restores a backup into an apps folder: each app with its manifest in one step (a server
/// serving the folder with --watch picks them up), then the instances.
fn restore(from: &Path, folder: &Path) -> anyhow::Result<()> {
    let files = backup::read(from)?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let store = FolderStore::open(folder)?;
    let find = |path: &str| files.iter().find(|(p, _)| p == path).map(|(_, b)| b);
    for (path, bytes) in &files {
        let Some(name) = path.strip_suffix(".wasm") else {
            continue;
        };
        let manifest = find(&format!("{name}.toml"))
            .map(|b| String::from_utf8(b.clone()))
            .transpose()
            .with_context(|| format!("{name}.toml is not text"))?;
        if manifest.is_none() {
            // The backup's app has no settings: the folder's old ones must not apply to it.
            match std::fs::remove_file(store.manifest_path(name)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).context(format!("removing the old {name}.toml"));
                }
                _ => {}
            }
        }
        if manifest.is_none() {
            // The backup's app has no settings: the folder's old ones must not apply to it.
            match std::fs::remove_file(store.manifest_path(name)) {
                Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                    return Err(error).context(format!("removing the old {name}.toml"));
                }
                _ => {}
            }
        }
        store.install(name, bytes, manifest.as_deref())?;
    }
    let instances: Vec<_> = files
        .iter()
        .filter(|(p, _)| p.starts_with(LAUNCHES_DIR))
        .cloned()
        .collect();
    backup::write(&instances, folder)?;
    let (apps, instances) = backup::counts(&files);
    println!(
        "restored {apps} app(s) and {instances} launch(es) into {}",
        folder.display()
    );
    Ok(())
}

async fn import(folder: &Path, url: &str) -> anyhow::Result<()> {
    anyhow::ensure!(folder.is_dir(), "--from {}: not a folder", folder.display());
    let db = Database::open(url).await?;
    let mut apps = 0;
    for app in scan_apps(folder)? {
        let bytes =
            std::fs::read(&app.path).with_context(|| format!("reading {}", app.path.display()))?;
        let manifest_path = app.path.with_extension("toml");
        let manifest = std::fs::read_to_string(&manifest_path).ok();
        let sha256 = sha256_hex(&bytes);
        if let Err(holder) = db
            .put_app(&app.name, &sha256, &bytes, manifest.as_deref())
            .await?
        {
            anyhow::bail!(
                "app `{}` not imported: the name is {holder} in the store",
                app.name
            );
        }
        apps += 1;
    }
    let (mut instances, mut already) = (0, 0);
    if folder.join(LAUNCHES_DIR).is_dir() {
        for instance in FolderLaunches::open(folder)?.load()? {
            let row = row_of(&instance);
            match db.put_instance(&row, usize::MAX, u64::MAX).await? {
                Launched::Stored => instances += 1,
                // Imported by an earlier run: importing again is harmless.
                Launched::NameTaken(Holder::Launch) => already += 1,
                refused => anyhow::bail!("instance `{}` not imported: {refused:?}", row.name),
            }
        }
    }
    println!(
        "imported {apps} app(s) and {instances} launch(es) into {} \
         ({already} instance(s) were there already)",
        db.shown()
    );
    Ok(())
}

async fn export(url: &str, folder: &Path) -> anyhow::Result<()> {
    let db = Database::open(url).await?;
    std::fs::create_dir_all(folder).with_context(|| format!("creating {}", folder.display()))?;
    let apps_folder = FolderStore::open(folder)?;
    let everything = db.changes_since(0).await?;
    let mut apps = 0;
    for (name, row) in &everything.apps {
        let Some(row) = row else { continue };
        let bytes = db
            .component(&row.sha256)
            .await?
            .with_context(|| format!("app `{name}`: its component is missing from the store"))?;
        apps_folder.install(name, &bytes, row.manifest.as_deref())?;
        apps += 1;
    }
    let instances_folder = FolderLaunches::open(folder)?;
    let mut instances = 0;
    for (name, row) in &everything.instances {
        let Some(row) = row else { continue };
        let instance = launch_of(row.clone()).with_context(|| format!("instance `{name}`"))?;
        instances_folder.write_file(&instance)?;
        instances += 1;
    }
    println!(
        "exported {apps} app(s) and {instances} launch(es) from {} into {}",
        db.shown(),
        folder.display()
    );
    Ok(())
}
