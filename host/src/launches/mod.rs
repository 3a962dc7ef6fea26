//! Launched instances (Refinery's "visualization for a dataset"): an app bound to one input,
//! name → (app, input), in the namespace apps share. Durable as one small JSON file each in
//! the store's `.instances/` folder, written atomically; expired after an idle time, never
//! while a request to it runs. An idle instance is only this record: nothing runs until a
//! request comes.

use crate::apps::names::{Holder, Namespace, is_valid_app_name};
use crate::apps::store::{TEMP_PREFIX, write_atomically};
use anyhow::Context as _;
use record::{encode, generated_name, load_file, remove_file};
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod record;

/// Folder, inside the apps folder, of the launched instances.
pub(crate) const INSTANCES_DIR: &str = ".instances";
/// The environment variable holding an instance's input, as django_docker_engine sets it.
pub(crate) const INPUT_JSON_ENV: &str = "INPUT_JSON";
/// The environment variable holding the address of an instance's input.
pub(crate) const INPUT_JSON_URL_ENV: &str = "INPUT_JSON_URL";
/// The environment variable holding the instance's own name.
pub(crate) const INSTANCE_ENV: &str = "WASMOUNT_INSTANCE";

/// What an instance's requests get as their input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// The JSON text exactly as given, set as `INPUT_JSON`.
    Json(Box<str>),
    /// An address the app fetches its input from, set as `INPUT_JSON_URL`.
    Url(Box<str>),
}

impl Input {
    /// The environment variable and its value.
    pub(crate) fn env(&self) -> (&'static str, &str) {
        match self {
            Input::Json(json) => (INPUT_JSON_ENV, json),
            Input::Url(url) => (INPUT_JSON_URL_ENV, url),
        }
    }

    /// The input's size in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::Json(text) | Input::Url(text) => text.len(),
        }
    }
}

/// One launched instance.
#[derive(Debug)]
pub(crate) struct Instance {
    /// Its name, which is also its mount point (`B/NAME/`).
    pub name: Arc<str>,
    /// The app it runs.
    pub app: Arc<str>,
    /// What its requests get as input.
    pub input: Input,
    /// When it was launched.
    pub created: SystemTime,
    /// What its reused guest instances are kept under: unique to this launch, so a later
    /// launch under the same name never gets an instance holding this one's input.
    pub reuse_key: Arc<str>,
    /// Milliseconds since the epoch of its last request's end (or launch, or the last
    /// recorded use).
    last_used_ms: AtomicU64,
    /// Requests to it running now: it never expires while one does.
    in_use: AtomicU32,
    /// Whether it was used since the last sweep recorded uses on disk.
    used_since_sweep: AtomicBool,
}

impl Instance {
    fn new(
        name: Arc<str>,
        app: Arc<str>,
        input: Input,
        created: SystemTime,
        last_used: SystemTime,
    ) -> Self {
        static LAUNCHES: AtomicU64 = AtomicU64::new(0);
        let serial = LAUNCHES.fetch_add(1, Ordering::Relaxed);
        Self {
            reuse_key: format!("{name}#{serial}").into(),
            name,
            app,
            input,
            created,
            last_used_ms: AtomicU64::new(millis_since_epoch(last_used)),
            in_use: AtomicU32::new(0),
            used_since_sweep: AtomicBool::new(false),
        }
    }

    /// When it was last used.
    pub(crate) fn last_used(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed))
    }

    fn touch(&self) {
        let now = millis_since_epoch(SystemTime::now());
        self.last_used_ms.store(now, Ordering::Relaxed);
        self.used_since_sweep.store(true, Ordering::Relaxed);
    }

    fn is_expired(&self, idle_timeout: Option<Duration>, now: SystemTime) -> bool {
        let idle_ms = |idle: Duration| u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        idle_timeout.is_some_and(|idle| {
            self.in_use.load(Ordering::Acquire) == 0
                && millis_since_epoch(now).saturating_sub(self.last_used_ms.load(Ordering::Relaxed))
                    >= idle_ms(idle)
        })
    }
}

/// A request's hold on a launched instance: it does not expire while held, and its idle
/// clock starts again when the hold ends.
pub(crate) struct InUse(Arc<Instance>);

impl InUse {
    fn new(instance: Arc<Instance>) -> Self {
        instance.in_use.fetch_add(1, Ordering::AcqRel);
        instance.touch();
        Self(instance)
    }
}

impl std::ops::Deref for InUse {
    type Target = Instance;

    fn deref(&self) -> &Instance {
        &self.0
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Why a launch was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    /// The name is taken by another instance, or by an app.
    #[error("`{0}` is {1}; choose another instance name")]
    NameTaken(String, Holder),
    /// The name cannot be used.
    #[error("instance name `{0}` is invalid: use 1-63 lowercase letters, digits and `-`")]
    BadName(String),
    /// The instance limit is reached.
    #[error("{0} instances exist, the limit (--max-launched-instances); delete some first")]
    Full(usize),
    /// The inputs of all instances together would pass their limit.
    #[error(
        "launched instances hold {held} bytes of input, and this one would pass the limit of \
         {limit} bytes (--max-launch-input-total); delete some first"
    )]
    InputsFull {
        /// Bytes held now.
        held: u64,
        /// The limit.
        limit: u64,
    },
    /// Writing it to the store failed.
    #[error("storing the instance failed: {0:#}")]
    Store(anyhow::Error),
}

#[derive(Default)]
struct Table {
    live: HashMap<Arc<str>, Arc<Instance>>,
    /// Names being written to the store, not yet live.
    reserved: HashSet<Arc<str>>,
    /// Bytes of input held, live and reserved instances together (inputs live in memory).
    input_bytes: u64,
}

impl Table {
    /// Takes `instance` out, if it is the live one under its name.
    fn take_out(&mut self, instance: &Arc<Instance>) -> bool {
        let current = self
            .live
            .get(&instance.name)
            .is_some_and(|live| Arc::ptr_eq(live, instance));
        if current {
            self.live.remove(&instance.name);
            self.input_bytes -= instance.input.len() as u64;
        }
        current
    }
}

/// How many launched instances may exist, how much input they may hold together, and how
/// long one may go unused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaunchLimits {
    /// Unused this long, an instance is removed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Instances at once (429 beyond).
    pub max_instances: usize,
    /// Bytes of input, all instances together (429 beyond).
    pub max_input_total: u64,
}

/// Every launched instance, and their folder.
pub(crate) struct Instances {
    dir: PathBuf,
    table: RwLock<Table>,
    /// The namespace shared with apps.
    names: Arc<Namespace>,
    limits: LaunchLimits,
}

impl Instances {
    /// Opens (creating it if needed) the instances folder `apps_dir/.instances` and loads what
    /// it holds. A file that cannot be read is logged and left alone. `idle_timeout` `None`:
    /// instances never expire.
    ///
    /// # Errors
    ///
    /// If the folder cannot be created or listed.
    pub(crate) fn open(
        apps_dir: &Path,
        names: Arc<Namespace>,
        limits: LaunchLimits,
    ) -> anyhow::Result<Self> {
        let dir = apps_dir.join(INSTANCES_DIR);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut live = HashMap::new();
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
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
                Ok(instance) => match names.take(name, Holder::Launch) {
                    Ok(()) => {
                        live.insert(instance.name.clone(), Arc::new(instance));
                    }
                    Err(holder) => {
                        tracing::warn!("skipping instance {}: `{name}` is {holder}", path.display())
                    }
                },
                Err(error) => tracing::warn!("skipping instance {}: {error:#}", path.display()),
            }
        }
        let input_bytes = live.values().map(|i| i.input.len() as u64).sum();
        Ok(Self {
            dir,
            table: RwLock::new(Table {
                live,
                reserved: HashSet::new(),
                input_bytes,
            }),
            names,
            limits,
        })
    }

    /// The instance called `name`, if it exists and has not expired, held for a request
    /// (it cannot expire until the hold is dropped).
    pub(crate) fn get(&self, name: &str) -> Option<InUse> {
        let table = self.table.read().unwrap();
        let instance = table.live.get(name)?;
        if instance.is_expired(self.limits.idle_timeout, SystemTime::now()) {
            return None; // the sweeper deletes it
        }
        // Taken under the table's lock, which the sweeper holds to remove: no race.
        Some(InUse::new(instance.clone()))
    }

    /// The instance called `name`, without counting a use.
    pub(crate) fn peek(&self, name: &str) -> Option<Arc<Instance>> {
        self.table.read().unwrap().live.get(name).cloned()
    }

    /// Every live instance, by name.
    pub(crate) fn list(&self) -> Vec<Arc<Instance>> {
        let mut all: Vec<_> = self.table.read().unwrap().live.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many instances exist.
    pub(crate) fn len(&self) -> usize {
        self.table.read().unwrap().live.len()
    }

    /// Launches `app` with `input` as `name` (or a fresh `APP-xxxxxxxx` name): written to the
    /// store durably first, then live. Refused without writing anything if the name is taken
    /// or invalid, or the limit is reached.
    ///
    /// # Errors
    ///
    /// See [`LaunchError`].
    pub(crate) async fn launch(
        &self,
        app: &str,
        input: Input,
        name: Option<&str>,
    ) -> Result<Arc<Instance>, LaunchError> {
        let name: Arc<str> = match name {
            Some(name) if is_valid_app_name(name) => name.into(),
            Some(name) => return Err(LaunchError::BadName(name.to_owned())),
            None => generated_name(app).into(),
        };
        {
            let mut table = self.table.write().unwrap();
            if table.live.contains_key(&name) || table.reserved.contains(&name) {
                return Err(LaunchError::NameTaken(name.to_string(), Holder::Launch));
            }
            let count = table.live.len() + table.reserved.len();
            if count >= self.limits.max_instances {
                return Err(LaunchError::Full(count));
            }
            let (held, limit) = (table.input_bytes, self.limits.max_input_total);
            if held.saturating_add(input.len() as u64) > limit {
                return Err(LaunchError::InputsFull { held, limit });
            }
            self.names
                .take(&name, Holder::Launch)
                .map_err(|holder| LaunchError::NameTaken(name.to_string(), holder))?;
            table.reserved.insert(name.clone());
            table.input_bytes += input.len() as u64;
        }
        let created = SystemTime::now();
        let instance = Arc::new(Instance::new(
            name.clone(),
            app.into(),
            input,
            created,
            created,
        ));
        let written = {
            let (dir, path) = (self.dir.clone(), self.path(&name));
            let document = encode(&instance);
            tokio::task::spawn_blocking(move || write_atomically(&dir, &path, document.as_bytes()))
                .await
                .map_err(anyhow::Error::from)
                .and_then(|written| written)
        };
        let mut table = self.table.write().unwrap();
        table.reserved.remove(&name);
        if let Err(error) = written {
            table.input_bytes -= instance.input.len() as u64;
            self.names.free(&name, Holder::Launch);
            return Err(LaunchError::Store(error));
        }
        table.live.insert(name, instance.clone());
        Ok(instance)
    }

    /// Deletes instance `name` (its URL answers 404 from now on). Returns whether it existed.
    ///
    /// # Errors
    ///
    /// If its file cannot be deleted; it is then still live.
    pub(crate) async fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let Some(instance) = self.retire(name, |_| true) else {
            return Ok(false);
        };
        let (dir, path) = (self.dir.clone(), self.path(name));
        let deleted = tokio::task::spawn_blocking(move || remove_file(&dir, &path))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|deleted| deleted);
        self.finish_retiring(&instance, deleted.is_ok());
        deleted.map(|()| true)
    }

    /// Takes the instance called `name` out of the table if `expired` says so, deciding under
    /// the table's lock (which a request takes to hold an instance); its name stays reserved,
    /// in the table and the namespace, until [`Self::finish_retiring`], so nobody can launch
    /// under it while its file is being deleted.
    fn retire(&self, name: &str, expired: impl FnOnce(&Instance) -> bool) -> Option<Arc<Instance>> {
        let mut table = self.table.write().unwrap();
        let instance = table.live.get(name)?.clone();
        if !expired(&instance) || !table.take_out(&instance) {
            return None;
        }
        table.reserved.insert(instance.name.clone());
        Some(instance)
    }

    /// Ends [`Self::retire`]: frees the name once the file is gone, or puts the instance back
    /// live when it could not be deleted.
    fn finish_retiring(&self, instance: &Arc<Instance>, file_deleted: bool) {
        let mut table = self.table.write().unwrap();
        table.reserved.remove(&instance.name);
        if file_deleted {
            self.names.free(&instance.name, Holder::Launch);
        } else {
            table.input_bytes += instance.input.len() as u64;
            table.live.insert(instance.name.clone(), instance.clone());
        }
    }

    /// Deletes every instance of `app` (the app is being deleted: its instances, and their
    /// users' inputs, must not pass to whatever is uploaded next under that name). Returns
    /// how many were deleted.
    ///
    /// # Errors
    ///
    /// If a file cannot be deleted; the instances not yet deleted are then still live.
    pub(crate) async fn remove_app(&self, app: &str) -> anyhow::Result<usize> {
        let of_app: Vec<_> = self
            .list()
            .into_iter()
            .filter(|instance| instance.app.as_ref() == app)
            .collect();
        let mut removed = 0;
        for instance in of_app {
            removed += usize::from(self.remove(&instance.name).await?);
        }
        Ok(removed)
    }

    /// Removes expired instances and records recent uses on disk (as each file's modification
    /// time, so the idle clock survives a restart). Returns how many were removed.
    pub(crate) fn sweep(&self) -> usize {
        let now = SystemTime::now();
        let all: Vec<_> = self.table.read().unwrap().live.values().cloned().collect();
        let mut removed = 0;
        let idle_timeout = self.limits.idle_timeout;
        for instance in all {
            let path = self.path(&instance.name);
            let expired = |live: &Instance| live.is_expired(idle_timeout, now);
            if let Some(retired) = self.retire(&instance.name, expired) {
                let deleted = remove_file(&self.dir, &path);
                if let Err(error) = &deleted {
                    tracing::warn!(instance = %instance.name, "expiring: {error:#}");
                }
                self.finish_retiring(&retired, deleted.is_ok());
                removed += usize::from(deleted.is_ok());
            } else if instance.used_since_sweep.swap(false, Ordering::Relaxed) {
                let touched = std::fs::File::options()
                    .write(true)
                    .open(&path)
                    .and_then(|file| file.set_modified(instance.last_used()));
                if let Err(error) = touched {
                    tracing::debug!(instance = %instance.name, "recording use: {error}");
                }
            }
        }
        if removed > 0 {
            tracing::info!("{removed} idle instance(s) expired");
        }
        removed
    }

    /// Sweeps in the background, as often as the idle timeout needs (at most every minute).
    pub(crate) fn spawn_sweeper(self: &Arc<Self>) {
        let Some(idle) = self.limits.idle_timeout else {
            return;
        };
        let period = (idle / 10).clamp(Duration::from_millis(200), Duration::from_secs(60));
        let instances = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(instances) = instances.upgrade() else {
                    return;
                };
                let _ = tokio::task::spawn_blocking(move || instances.sweep()).await;
            }
        });
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }
}

#[cfg(test)]
mod tests;
