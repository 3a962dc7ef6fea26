//! Where launches are kept: the [`InstanceStore`] trait, with the apps folder's
//! `.instances/` (one JSON file each) and the cluster's PostgreSQL store as implementations.
//! Every method blocks: callers run them off the async runtime.

use super::record::{encode, load_file, remove_file};
use super::{Gate, Input, Launch, LaunchError, LaunchLimits, millis_since_epoch};
use crate::apps::names::is_valid_app_name;
use crate::apps::postgres::{Database, LaunchRow, Launched};
use crate::apps::store::{TEMP_PREFIX, write_atomically};
use crate::config::Access;
use anyhow::Context as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An expiry's conditions: the launch created at `created`, unused since `unused_since`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Expiry {
    /// Its last use must be older than this.
    pub unused_since: SystemTime,
    /// When the expiring launch was created (a newer launch under its name is not it).
    pub created: SystemTime,
}

/// What deleting an instance did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Deleted {
    /// It is gone.
    Yes,
    /// It was already gone (another node expired or deleted it).
    AlreadyGone,
    /// It was used since (on another node): kept, with its last recorded use.
    Kept(SystemTime),
}

/// A launch table's write lock: held from before a launch or delete is stored until the
/// table reflects it, so a shared store's catch-up never applies an older view in between.
pub(crate) type WriteLock = Option<Arc<tokio::sync::Mutex<()>>>;

/// Durable storage of launches.
pub(crate) trait InstanceStore: Send + Sync {
    /// The instances stored now (the shared store's arrive by its catch-up instead).
    ///
    /// # Errors
    ///
    /// If the store cannot be read at all.
    fn load(&self) -> anyhow::Result<Vec<Launch>>;

    /// Stores a new launch, unless a limit over everything stored refuses it.
    ///
    /// # Errors
    ///
    /// [`LaunchError`]; nothing is stored then.
    fn write(&self, instance: &Launch, limits: &LaunchLimits) -> Result<(), LaunchError>;

    /// Deletes instance `name`; for an `expiry`, only if its conditions hold.
    ///
    /// # Errors
    ///
    /// If the store cannot delete it.
    fn delete(&self, name: &str, expiry: Option<Expiry>) -> anyhow::Result<Deleted>;

    /// Records the last uses of instances (best effort: a failure is logged).
    fn record_uses(&self, uses: &[(Arc<str>, SystemTime)]);

    /// Whether the store, not this node's view, decides when an instance has gone unused
    /// too long (other nodes serve it too).
    fn shared(&self) -> bool;

    /// The lock writes hold (see [`WriteLock`]); `None` when nobody else changes the table.
    fn write_lock(&self) -> WriteLock {
        None
    }
}

/// The apps folder's `.instances/`: one small JSON file per instance, its modification time
/// its last use.
pub(crate) struct FolderLaunches {
    dir: PathBuf,
}

impl FolderLaunches {
    /// Opens (creating it if needed) `apps_dir/.instances`.
    ///
    /// # Errors
    ///
    /// If the folder cannot be created.
    pub(crate) fn open(apps_dir: &Path) -> anyhow::Result<Self> {
        let dir = apps_dir.join(super::LAUNCHES_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(Self { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Writes `instance`'s file, its modification time its last use (an export).
    ///
    /// # Errors
    ///
    /// If the file cannot be written.
    pub(crate) fn write_file(&self, instance: &Launch) -> anyhow::Result<()> {
        write_atomically(
            &self.dir,
            &self.path(&instance.name),
            encode(instance).as_bytes(),
        )?;
        self.record_uses(&[(instance.name.clone(), instance.last_used())]);
        Ok(())
    }
}

impl InstanceStore for FolderLaunches {
    /// Every readable instance file; temp files a crash left are removed, and a file that
    /// cannot be read is logged and left alone.
    fn load(&self) -> anyhow::Result<Vec<Launch>> {
        let dir = &self.dir;
        let mut loaded = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            let file_name = path.file_name().unwrap_or_default().to_string_lossy();
            if file_name.starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            let Some(name) = file_name
                .strip_suffix(".json")
                .filter(|n| is_valid_app_name(n))
            else {
                continue;
            };
            match load_file(name, &path) {
                Ok(instance) => loaded.push(instance),
                Err(error) => tracing::warn!("skipping instance {}: {error:#}", path.display()),
            }
        }
        Ok(loaded)
    }

    fn write(&self, instance: &Launch, _limits: &LaunchLimits) -> Result<(), LaunchError> {
        let path = self.path(&instance.name);
        write_atomically(&self.dir, &path, encode(instance).as_bytes()).map_err(LaunchError::Store)
    }

    fn delete(&self, name: &str, _expiry: Option<Expiry>) -> anyhow::Result<Deleted> {
        remove_file(&self.dir, &self.path(name))?;
        Ok(Deleted::Yes)
    }

    fn record_uses(&self, uses: &[(Arc<str>, SystemTime)]) {
        for (name, at) in uses {
            let touched = std::fs::File::options()
                .write(true)
                .open(self.path(name))
                .and_then(|file| file.set_modified(*at));
            if let Err(error) = touched {
                tracing::debug!(instance = %name, "recording use: {error}");
            }
        }
    }

    fn shared(&self) -> bool {
        false
    }
}

/// The cluster's PostgreSQL store: limits hold over every node, a name is unique over the
/// cluster, and exactly one node's expiry of an instance succeeds.
pub(crate) struct SharedLaunches {
    db: Arc<Database>,
    runtime: tokio::runtime::Handle,
}

impl SharedLaunches {
    /// Launches in `db`, reached from blocking threads through `runtime`.
    pub(crate) fn new(db: Arc<Database>, runtime: tokio::runtime::Handle) -> Self {
        Self { db, runtime }
    }
}

impl InstanceStore for SharedLaunches {
    fn load(&self) -> anyhow::Result<Vec<Launch>> {
        Ok(Vec::new())
    }

    fn write(&self, instance: &Launch, limits: &LaunchLimits) -> Result<(), LaunchError> {
        let row = row_of(instance);
        let stored = self
            .runtime
            .block_on(
                self.db
                    .put_instance(&row, limits.max_instances, limits.max_input_total),
            )
            .map_err(|error| LaunchError::Store(error.into()))?;
        match stored {
            Launched::Stored => Ok(()),
            Launched::NameTaken(holder) => Err(LaunchError::NameTaken(row.name, holder)),
            Launched::NoApp => Err(LaunchError::NoApp(row.app)),
            Launched::Full(count) => Err(LaunchError::Full(count)),
            Launched::InputsFull(held) => Err(LaunchError::InputsFull {
                held,
                limit: limits.max_input_total,
            }),
        }
    }

    fn delete(&self, name: &str, expiry: Option<Expiry>) -> anyhow::Result<Deleted> {
        let millis = |at: SystemTime| millis_since_epoch(at) as i64;
        let condition = expiry.map(|e| (millis(e.unused_since), millis(e.created)));
        let (deleted, last_used) = self
            .runtime
            .block_on(self.db.delete_instance(name, condition))?;
        Ok(match (deleted, last_used) {
            (true, _) => Deleted::Yes,
            (false, Some(last_used)) => Deleted::Kept(time_of(last_used)),
            (false, None) => Deleted::AlreadyGone,
        })
    }

    fn record_uses(&self, uses: &[(Arc<str>, SystemTime)]) {
        if uses.is_empty() {
            return;
        }
        let uses: Vec<_> = uses
            .iter()
            .map(|(name, at)| (name.to_string(), millis_since_epoch(*at) as i64))
            .collect();
        if let Err(error) = self.runtime.block_on(self.db.record_uses(&uses)) {
            tracing::warn!("recording {} instance use(s): {error}", uses.len());
        }
    }

    fn shared(&self) -> bool {
        true
    }

    fn write_lock(&self) -> WriteLock {
        Some(self.db.sync.clone())
    }
}

fn time_of(millis: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(millis.max(0) as u64)
}

/// The stored form of `instance`.
pub(crate) fn row_of(instance: &Launch) -> LaunchRow {
    let (input, input_url) = match &instance.input {
        Input::Json(json) => (Some(json.to_string()), None),
        Input::Url(url) => (None, Some(url.to_string())),
    };
    LaunchRow {
        name: instance.name.to_string(),
        app: instance.app.to_string(),
        input,
        input_url,
        created_ms: millis_since_epoch(instance.created) as i64,
        last_used_ms: millis_since_epoch(instance.last_used()) as i64,
        access: instance
            .gate
            .access
            .map(|access| access_name(access).to_owned()),
        label: instance.gate.label.as_deref().map(str::to_owned),
    }
}

/// The instance a stored row describes.
///
/// # Errors
///
/// A row this program would never have written (bad names, both or neither input).
pub(crate) fn launch_of(row: LaunchRow) -> anyhow::Result<Launch> {
    anyhow::ensure!(
        is_valid_app_name(&row.name),
        "bad instance name `{}`",
        row.name
    );
    anyhow::ensure!(is_valid_app_name(&row.app), "bad app name `{}`", row.app);
    let input = match (row.input, row.input_url) {
        (Some(json), None) => Input::Json(json.into()),
        (None, Some(url)) => Input::Url(url.into()),
        _ => anyhow::bail!("needs exactly one of `input` and `input_url`"),
    };
    let access = match row.access.as_deref() {
        None => None,
        Some("public") => Some(Access::Public),
        Some("platform") => Some(Access::Platform),
        Some("link") => Some(Access::Link),
        Some(other) => anyhow::bail!("unknown access `{other}`"),
    };
    let gate = Gate {
        access,
        label: row.label.map(Into::into),
    };
    let (created, last_used) = (time_of(row.created_ms), time_of(row.last_used_ms));
    Ok(Launch::new(row.name.into(), row.app.into(), input, created, last_used).with_gate(gate))
}

/// How the store writes `access`.
fn access_name(access: Access) -> &'static str {
    match access {
        Access::Public => "public",
        Access::Platform => "platform",
        Access::Link => "link",
    }
}
