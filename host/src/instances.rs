//! Launched instances (Refinery's "visualization for a dataset"): an app bound to one input,
//! name → (app, input). Durable as one small JSON file each in the store's `.instances/`
//! folder, written atomically; expired after an idle time. An idle instance is only this
//! record: nothing runs until a request comes.

use crate::router::is_valid_app_name;
use crate::store::{TEMP_PREFIX, sync_dir, write_atomically};
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Folder, inside the apps folder, of the launched instances.
pub const INSTANCES_DIR: &str = ".instances";
/// How long an instance may go unused before it is removed, unless a flag says otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);
/// The largest input an instance may hold, unless a flag says otherwise.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 1 << 20;
/// How many instances may exist at once, unless a flag says otherwise.
pub const DEFAULT_MAX_INSTANCES: usize = 100_000;
/// The environment variable holding an instance's input, as django_docker_engine sets it.
pub const INPUT_JSON_ENV: &str = "INPUT_JSON";
/// The environment variable holding the address of an instance's input.
pub const INPUT_JSON_URL_ENV: &str = "INPUT_JSON_URL";
/// The environment variable holding the instance's own name.
pub const INSTANCE_ENV: &str = "WASMOUNT_INSTANCE";

/// What an instance's requests get as their input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The JSON text exactly as given, set as `INPUT_JSON`.
    Json(Box<str>),
    /// An address the app fetches its input from, set as `INPUT_JSON_URL`.
    Url(Box<str>),
}

impl Input {
    /// The environment variable and its value.
    pub fn env(&self) -> (&'static str, &str) {
        match self {
            Input::Json(json) => (INPUT_JSON_ENV, json),
            Input::Url(url) => (INPUT_JSON_URL_ENV, url),
        }
    }

    /// The input's size in bytes.
    pub fn len(&self) -> usize {
        match self {
            Input::Json(text) | Input::Url(text) => text.len(),
        }
    }

    /// Whether the input is empty (never, for a valid instance).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One launched instance.
#[derive(Debug)]
pub struct Instance {
    /// Its name, which is also its mount point (`B/NAME/`).
    pub name: Arc<str>,
    /// The app it runs.
    pub app: Arc<str>,
    /// What its requests get as input.
    pub input: Input,
    /// When it was launched.
    pub created: SystemTime,
    /// Seconds since the epoch of its last request (or launch, or the last recorded use).
    last_used: AtomicU64,
    /// Whether it was used since the last sweep recorded uses on disk.
    used_since_sweep: AtomicBool,
}

impl Instance {
    /// When it was last used.
    pub fn last_used(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.last_used.load(Ordering::Relaxed))
    }

    fn touch(&self) {
        self.last_used.store(now_secs(), Ordering::Relaxed);
        self.used_since_sweep.store(true, Ordering::Relaxed);
    }

    fn is_expired(&self, idle_timeout: Option<Duration>, now: u64) -> bool {
        idle_timeout.is_some_and(|idle| {
            now.saturating_sub(self.last_used.load(Ordering::Relaxed)) >= idle.as_secs().max(1)
        })
    }
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The file format of one instance.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct InstanceFile<'a> {
    app: &'a str,
    #[serde(borrow, default, skip_serializing_if = "Option::is_none")]
    input: Option<&'a RawValue>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    input_url: Option<&'a str>,
    /// Milliseconds since the epoch.
    created_ms: u64,
}

/// Why a launch was refused.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The name is taken by another instance.
    #[error("an instance named `{0}` exists")]
    NameTaken(String),
    /// The name cannot be used.
    #[error("instance name `{0}` is invalid: use 1-63 lowercase letters, digits and `-`")]
    BadName(String),
    /// The instance limit is reached.
    #[error("{0} instances exist, the limit (--max-launched-instances); delete some first")]
    Full(usize),
    /// Writing it to the store failed.
    #[error("storing the instance failed: {0:#}")]
    Store(anyhow::Error),
}

#[derive(Default)]
struct Table {
    live: HashMap<Arc<str>, Arc<Instance>>,
    /// Names being written to the store, not yet live.
    reserved: HashSet<Arc<str>>,
}

/// Every launched instance, and their folder.
pub struct Instances {
    dir: PathBuf,
    table: RwLock<Table>,
    idle_timeout: Option<Duration>,
    max: usize,
}

impl Instances {
    /// Opens (creating it if needed) the instances folder `apps_dir/.instances` and loads what
    /// it holds. A file that cannot be read is logged and left alone. `idle_timeout` `None`:
    /// instances never expire.
    ///
    /// # Errors
    ///
    /// If the folder cannot be created or listed.
    pub fn open(
        apps_dir: &Path,
        idle_timeout: Option<Duration>,
        max: usize,
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
                Ok(instance) => {
                    live.insert(instance.name.clone(), Arc::new(instance));
                }
                Err(error) => tracing::warn!("skipping instance {}: {error:#}", path.display()),
            }
        }
        Ok(Self {
            dir,
            table: RwLock::new(Table {
                live,
                reserved: HashSet::new(),
            }),
            idle_timeout,
            max,
        })
    }

    /// The instance called `name`, if it exists and has not expired; counts as a use.
    pub fn get(&self, name: &str) -> Option<Arc<Instance>> {
        let instance = self.table.read().unwrap().live.get(name).cloned()?;
        if instance.is_expired(self.idle_timeout, now_secs()) {
            return None; // the sweeper deletes it
        }
        instance.touch();
        Some(instance)
    }

    /// The instance called `name`, without counting a use.
    pub fn peek(&self, name: &str) -> Option<Arc<Instance>> {
        self.table.read().unwrap().live.get(name).cloned()
    }

    /// Every live instance, by name.
    pub fn list(&self) -> Vec<Arc<Instance>> {
        let mut all: Vec<_> = self.table.read().unwrap().live.values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    /// How many instances exist.
    pub fn len(&self) -> usize {
        self.table.read().unwrap().live.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Launches `app` with `input` as `name` (or a fresh `APP-xxxxxxxx` name): written to the
    /// store durably first, then live. Refused without writing anything if the name is taken
    /// or invalid, or the limit is reached.
    ///
    /// # Errors
    ///
    /// See [`LaunchError`].
    pub async fn launch(
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
                return Err(LaunchError::NameTaken(name.to_string()));
            }
            let count = table.live.len() + table.reserved.len();
            if count >= self.max {
                return Err(LaunchError::Full(count));
            }
            table.reserved.insert(name.clone());
        }
        let created = SystemTime::now();
        let instance = Arc::new(Instance {
            name: name.clone(),
            app: app.into(),
            input,
            created,
            last_used: AtomicU64::new(now_secs()),
            used_since_sweep: AtomicBool::new(false),
        });
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
        written.map_err(LaunchError::Store)?;
        table.live.insert(name, instance.clone());
        Ok(instance)
    }

    /// Deletes instance `name` (its URL answers 404 from now on). Returns whether it existed.
    ///
    /// # Errors
    ///
    /// If its file cannot be deleted; it is then still live.
    pub async fn remove(&self, name: &str) -> anyhow::Result<bool> {
        if self.peek(name).is_none() {
            return Ok(false);
        }
        let (dir, path) = (self.dir.clone(), self.path(name));
        tokio::task::spawn_blocking(move || remove_file(&dir, &path)).await??;
        Ok(self.table.write().unwrap().live.remove(name).is_some())
    }

    /// Removes expired instances and records recent uses on disk (as each file's modification
    /// time, so the idle clock survives a restart). Returns how many were removed.
    pub fn sweep(&self) -> usize {
        let now = now_secs();
        let all: Vec<_> = self.table.read().unwrap().live.values().cloned().collect();
        let mut removed = 0;
        for instance in all {
            let path = self.path(&instance.name);
            if instance.is_expired(self.idle_timeout, now) {
                match remove_file(&self.dir, &path) {
                    Ok(()) => {
                        let mut table = self.table.write().unwrap();
                        if table
                            .live
                            .get(&instance.name)
                            .is_some_and(|live| Arc::ptr_eq(live, &instance))
                        {
                            table.live.remove(&instance.name);
                            removed += 1;
                        }
                    }
                    Err(error) => tracing::warn!(instance = %instance.name, "expiring: {error:#}"),
                }
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
    pub fn spawn_sweeper(self: &Arc<Self>) {
        let Some(idle) = self.idle_timeout else {
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

fn encode(instance: &Instance) -> String {
    let (input, input_url) = match &instance.input {
        // The text was checked to be JSON when the instance was launched.
        Input::Json(json) => (serde_json::from_str::<&RawValue>(json).ok(), None),
        Input::Url(url) => (None, Some(url.as_ref())),
    };
    let created_ms = instance
        .created
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    serde_json::to_string(&InstanceFile {
        app: &instance.app,
        input,
        input_url,
        created_ms,
    })
    .expect("serializing strings and numbers cannot fail")
}

fn load_file(name: &str, path: &Path) -> anyhow::Result<Instance> {
    let text = std::fs::read_to_string(path)?;
    let file: InstanceFile<'_> = serde_json::from_str(&text)?;
    let input = match (file.input, file.input_url) {
        (Some(json), None) => Input::Json(json.get().into()),
        (None, Some(url)) => Input::Url(url.into()),
        _ => anyhow::bail!("needs exactly one of `input` and `input_url`"),
    };
    anyhow::ensure!(is_valid_app_name(file.app), "bad app name `{}`", file.app);
    let modified = std::fs::metadata(path)?.modified()?;
    Ok(Instance {
        name: name.into(),
        app: file.app.into(),
        input,
        created: UNIX_EPOCH + Duration::from_millis(file.created_ms),
        last_used: AtomicU64::new(
            modified
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        ),
        used_since_sweep: AtomicBool::new(false),
    })
}

fn remove_file(dir: &Path, path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => sync_dir(dir),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(error) => Err(error).with_context(|| format!("removing {}", path.display())),
    }
}

/// `APP-` and 8 random hex digits (32 bits: guessing a live instance's URL is impractical at
/// the rates a server answers), the app part shortened so the whole fits a name.
fn generated_name(app: &str) -> String {
    let mut random = [0u8; 4];
    if getrandom::fill(&mut random).is_err() {
        // No OS randomness: fall back to the clock, still unique per launch in practice.
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        random = nanos.to_le_bytes();
    }
    let prefix: String = app
        .chars()
        .take(crate::router::MAX_APP_NAME_LEN - 9)
        .collect();
    format!(
        "{}-{}",
        prefix.trim_end_matches('-'),
        crate::app::hex(&random)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn launched_instances_survive_reopening_with_their_input_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let input = r#"{ "file_relationships": ["http://x/a.tsv"],  "parameters": [] }"#;
        let runtime = runtime();
        let instances = Instances::open(dir.path(), None, 10).unwrap();
        let launched = runtime
            .block_on(instances.launch("heatmap", Input::Json(input.into()), Some("one")))
            .unwrap();
        let generated = runtime
            .block_on(instances.launch("heatmap", Input::Url("http://x/in.json".into()), None))
            .unwrap();
        assert!(generated.name.starts_with("heatmap-") && generated.name.len() == 16);
        drop(instances);

        let reopened = Instances::open(dir.path(), None, 10).unwrap();
        assert_eq!(reopened.len(), 2);
        let one = reopened.get("one").unwrap();
        assert_eq!(one.input, Input::Json(input.into()));
        assert_eq!(one.app.as_ref(), "heatmap");
        assert_eq!(
            launched
                .created
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_millis(),
            one.created.duration_since(UNIX_EPOCH).unwrap().as_millis()
        );
        assert_eq!(
            reopened.get(&generated.name).unwrap().input,
            Input::Url("http://x/in.json".into())
        );
    }

    #[test]
    fn refusals_store_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime();
        let instances = Instances::open(dir.path(), None, 1).unwrap();
        let json = || Input::Json("{}".into());
        runtime
            .block_on(instances.launch("app", json(), Some("taken")))
            .unwrap();
        let taken = runtime.block_on(instances.launch("app", json(), Some("taken")));
        assert!(matches!(taken, Err(LaunchError::NameTaken(_))), "{taken:?}");
        let bad = runtime.block_on(instances.launch("app", json(), Some("Bad/Name")));
        assert!(matches!(bad, Err(LaunchError::BadName(_))), "{bad:?}");
        let full = runtime.block_on(instances.launch("app", json(), Some("second")));
        assert!(matches!(full, Err(LaunchError::Full(1))), "{full:?}");
        let files = std::fs::read_dir(dir.path().join(INSTANCES_DIR))
            .unwrap()
            .count();
        assert_eq!(files, 1);
        assert!(runtime.block_on(instances.remove("taken")).unwrap());
        assert!(!runtime.block_on(instances.remove("taken")).unwrap());
        assert!(instances.get("taken").is_none());
        let files = std::fs::read_dir(dir.path().join(INSTANCES_DIR))
            .unwrap()
            .count();
        assert_eq!(files, 0);
    }

    #[test]
    fn idle_instances_expire_and_used_ones_stay() {
        let dir = tempfile::tempdir().unwrap();
        let runtime = runtime();
        let instances = Instances::open(dir.path(), Some(Duration::from_secs(1)), 10).unwrap();
        for name in ["idle", "busy"] {
            runtime
                .block_on(instances.launch("app", Input::Json("1".into()), Some(name)))
                .unwrap();
        }
        // Pretend both were last used long ago, then use one.
        for instance in instances.list() {
            instance.last_used.store(now_secs() - 10, Ordering::Relaxed);
        }
        assert!(
            instances.get("idle").is_none(),
            "expired instances are not served"
        );
        instances.peek("busy").unwrap().touch();
        assert_eq!(instances.sweep(), 1);
        assert!(instances.peek("idle").is_none());
        assert!(instances.get("busy").is_some());
        assert!(!dir.path().join(INSTANCES_DIR).join("idle.json").exists());
    }
}
