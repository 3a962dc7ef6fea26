//! Launches (Refinery's "visualization for a dataset"): an app bound to one input,
//! name → (app, input), in the namespace apps share. Durable in a store (the apps folder's
//! `.instances/`, or the cluster's database: see `store`); expired after an idle time, never
//! while a request to it runs. An idle instance is only this record: nothing runs until a
//! request comes.

use crate::apps::names::{Holder, Namespace, is_valid_app_name};
use record::generated_name;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use store::{Deleted, Expiry, FolderLaunches, InstanceStore};

mod launch;
mod record;
pub(crate) mod store;

use launch::millis_since_epoch;
pub(crate) use launch::{Gate, INSTANCE_ENV, InUse, Input, LAUNCHES_DIR, Launch, MAX_LABEL_LEN};

/// Why a launch was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LaunchError {
    /// The name is taken by another instance, or by an app.
    #[error("`{0}` is {1}; choose another instance name")]
    NameTaken(String, Holder),
    /// The app is not stored (deleted meanwhile, perhaps on another node).
    #[error("no app named `{0}` is mounted")]
    NoApp(String),
    /// The name cannot be used.
    #[error("instance name `{0}` is invalid: use 1-63 lowercase letters, digits and `-`")]
    BadName(String),
    /// The instance limit is reached.
    #[error("{0} instances exist, the limit (--max-launched-instances); delete some first")]
    Full(usize),
    /// The inputs of all instances together would pass their limit.
    #[error(
        "launches hold {held} bytes of input, and this one would pass the limit of \
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
    /// The OS random source failed: a name that cannot be guessed cannot be made now.
    #[error("no launch name can be made: the OS random source failed ({0})")]
    NoRandomness(String),
}

#[derive(Default)]
struct Table {
    live: HashMap<Arc<str>, Arc<Launch>>,
    /// Names being written to the store, not yet live.
    reserved: HashSet<Arc<str>>,
    /// Bytes of input held, live and reserved instances together (inputs live in memory).
    input_bytes: u64,
}

impl Table {
    /// Takes `instance` out, if it is the live one under its name.
    fn take_out(&mut self, instance: &Arc<Launch>) -> bool {
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

/// How many launches may exist, how much input they may hold together, and how
/// long one may go unused.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LaunchLimits {
    /// Unused this long, an instance is removed; `None`: never.
    pub idle_timeout: Option<Duration>,
    /// Launches at once (429 beyond).
    pub max_instances: usize,
    /// Bytes of input, all instances together (429 beyond).
    pub max_input_total: u64,
}

/// Every launch, and where they are stored.
pub(crate) struct Launches {
    store: Arc<dyn InstanceStore>,
    table: RwLock<Table>,
    /// The namespace shared with apps.
    names: Arc<Namespace>,
    limits: LaunchLimits,
}

impl Launches {
    /// Opens (creating it if needed) the instances folder `apps_dir/.instances` and loads what
    /// it holds. `idle_timeout` `None`: instances never expire.
    ///
    /// # Errors
    ///
    /// If the folder cannot be created or listed.
    pub(crate) fn open(
        apps_dir: &Path,
        names: Arc<Namespace>,
        limits: LaunchLimits,
    ) -> anyhow::Result<Self> {
        Self::with_store(Box::new(FolderLaunches::open(apps_dir)?), names, limits)
    }

    /// The instances kept in `store`, loading what it holds now. An instance whose name is
    /// taken is logged and skipped.
    ///
    /// # Errors
    ///
    /// If the store cannot be read.
    pub(crate) fn with_store(
        store: Box<dyn InstanceStore>,
        names: Arc<Namespace>,
        limits: LaunchLimits,
    ) -> anyhow::Result<Self> {
        let mut live = HashMap::new();
        for instance in store.load()? {
            match names.take(&instance.name, Holder::Launch) {
                Ok(()) => {
                    live.insert(instance.name.clone(), Arc::new(instance));
                }
                Err(holder) => {
                    tracing::warn!(
                        "skipping instance `{}`: the name is {holder}",
                        instance.name
                    )
                }
            }
        }
        let input_bytes = live.values().map(|i| i.input.len() as u64).sum();
        Ok(Self {
            store: Arc::from(store),
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
        // In a cluster, other nodes may have used it since: only the store decides.
        if !self.store.shared() && instance.is_expired(self.limits.idle_timeout, SystemTime::now())
        {
            return None; // the sweeper deletes it
        }
        // Taken under the table's lock, which the sweeper holds to remove: no race.
        Some(InUse::new(instance.clone()))
    }

    /// The instance called `name`, without counting a use.
    pub(crate) fn peek(&self, name: &str) -> Option<Arc<Launch>> {
        self.table.read().unwrap().live.get(name).cloned()
    }

    /// Every live instance, by name.
    pub(crate) fn list(&self) -> Vec<Arc<Launch>> {
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
        gate: Gate,
    ) -> Result<Arc<Launch>, LaunchError> {
        let name: Arc<str> = match name {
            Some(name) if is_valid_app_name(name) => name.into(),
            Some(name) => return Err(LaunchError::BadName(name.to_owned())),
            None => generated_name(app)
                .map_err(|error| LaunchError::NoRandomness(error.to_string()))?
                .into(),
        };
        let _write = self.write_lock().await;
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
        // Whole milliseconds, as stored: the store's copy is recognized as this same launch.
        let created = UNIX_EPOCH + Duration::from_millis(millis_since_epoch(SystemTime::now()));
        let instance = Arc::new(
            Launch::new(name.clone(), app.into(), input, created, created).with_gate(gate),
        );
        let written = {
            let (store, limits, stored) = (self.store.clone(), self.limits, instance.clone());
            tokio::task::spawn_blocking(move || store.write(&stored, &limits))
                .await
                .unwrap_or_else(|panic| Err(LaunchError::Store(panic.into())))
        };
        let mut table = self.table.write().unwrap();
        table.reserved.remove(&name);
        match written {
            Ok(()) => {
                table.live.insert(name, instance.clone());
                Ok(instance)
            }
            Err(error) => {
                table.input_bytes -= instance.input.len() as u64;
                self.names.free(&name, Holder::Launch);
                Err(error)
            }
        }
    }

    /// Deletes instance `name` (its URL answers 404 from now on). Returns whether it existed.
    ///
    /// # Errors
    ///
    /// If its file cannot be deleted; it is then still live.
    pub(crate) async fn remove(&self, name: &str) -> anyhow::Result<bool> {
        let _write = self.write_lock().await;
        let Some(instance) = self.retire(name, |_| true) else {
            return Ok(false);
        };
        let (store, owned_name) = (self.store.clone(), name.to_owned());
        let deleted = tokio::task::spawn_blocking(move || store.delete(&owned_name, None))
            .await
            .map_err(anyhow::Error::from)
            .and_then(|deleted| deleted);
        match deleted {
            Ok(_) => {
                self.finish_retiring(&instance, true);
                Ok(true)
            }
            Err(error) => {
                self.finish_retiring(&instance, false);
                Err(error)
            }
        }
    }

    /// Takes the instance called `name` out of the table if `expired` says so, deciding under
    /// the table's lock (which a request takes to hold an instance); its name stays reserved,
    /// in the table and the namespace, until [`Self::finish_retiring`], so nobody can launch
    /// under it while its file is being deleted.
    fn retire(&self, name: &str, expired: impl FnOnce(&Launch) -> bool) -> Option<Arc<Launch>> {
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
    fn finish_retiring(&self, instance: &Arc<Launch>, file_deleted: bool) {
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
        if self.store.shared() {
            // The shared store deleted them with the app, in the same transaction.
            let _write = self.write_lock().await;
            for instance in &of_app {
                self.forget_launch(instance);
            }
            return Ok(of_app.len());
        }
        let mut removed = 0;
        for instance in of_app {
            removed += usize::from(self.remove(&instance.name).await?);
        }
        Ok(removed)
    }

    /// Records recent uses in the store (so the idle clock survives a restart, and other
    /// nodes see them), then removes expired instances. Returns how many were removed.
    /// Blocking.
    pub(crate) fn sweep(&self) -> usize {
        let all: Vec<_> = self.table.read().unwrap().live.values().cloned().collect();
        let used: Vec<_> = all
            .iter()
            .filter(|i| i.used_since_sweep.swap(false, Ordering::Relaxed) || i.in_use())
            .map(|i| (i.name.clone(), i.last_used_or_now()))
            .collect();
        self.store.record_uses(&used);
        let Some(idle_timeout) = self.limits.idle_timeout else {
            return 0;
        };
        let now = SystemTime::now();
        let Some(unused_since) = now.checked_sub(idle_timeout) else {
            return 0;
        };
        let mut removed = 0;
        for instance in all {
            if !instance.is_expired(Some(idle_timeout), now) {
                continue;
            }
            let expiry = Expiry {
                unused_since,
                created: instance.created,
            };
            let expired = if self.store.shared() {
                self.expire_shared(&instance, expiry)
            } else {
                self.expire_here(&instance, expiry)
            };
            removed += usize::from(expired);
        }
        if removed > 0 {
            tracing::info!("{removed} idle instance(s) expired");
        }
        removed
    }

    /// Expires `instance` from this node's own store: taken out first (a request cannot start
    /// on it meanwhile), then deleted, or put back if that fails. Returns whether it expired.
    fn expire_here(&self, instance: &Launch, expiry: Expiry) -> bool {
        let Some(retired) = self.retire(&instance.name, |live| {
            live.is_expired(self.limits.idle_timeout, SystemTime::now())
        }) else {
            return false;
        };
        let deleted = self.store.delete(&instance.name, Some(expiry));
        if let Err(error) = &deleted {
            tracing::warn!(instance = %instance.name, "expiring: {error:#}");
        }
        self.finish_retiring(&retired, deleted.is_ok());
        deleted.is_ok()
    }

    /// Expires `instance` from the shared store, where exactly one node's expiry wins and a
    /// use recorded by another node keeps it; only then is it taken out here (it keeps
    /// serving meanwhile). Returns whether this node expired it. Blocking.
    fn expire_shared(&self, instance: &Arc<Launch>, expiry: Expiry) -> bool {
        let lock = self.store.write_lock();
        let _write = lock.as_ref().map(|lock| lock.blocking_lock());
        match self.store.delete(&instance.name, Some(expiry)) {
            Ok(Deleted::Yes) => {
                self.forget_launch(instance);
                true
            }
            Ok(Deleted::AlreadyGone) => {
                self.forget_launch(instance);
                false
            }
            Ok(Deleted::Kept(last_used)) => {
                instance.used_at(last_used);
                false
            }
            Err(error) => {
                tracing::warn!(instance = %instance.name, "expiring: {error:#}");
                false
            }
        }
    }

    /// Takes `instance` out of the table and frees its name, if it is still the live one.
    fn forget_launch(&self, instance: &Arc<Launch>) {
        let mut table = self.table.write().unwrap();
        if table.take_out(instance) {
            self.names.free(&instance.name, Holder::Launch);
        }
    }

    /// The store's write lock, held (when it has one) across a write and the table's update.
    async fn write_lock(&self) -> Option<tokio::sync::OwnedMutexGuard<()>> {
        match self.store.write_lock() {
            Some(lock) => Some(lock.lock_owned().await),
            None => None,
        }
    }

    /// Sweeps in the background, as often as the idle timeout needs (at most every minute;
    /// every 10 s without one, to record uses).
    pub(crate) fn spawn_sweeper(self: &Arc<Self>) {
        let period = match self.limits.idle_timeout {
            Some(idle) => (idle / 10).clamp(Duration::from_millis(200), Duration::from_secs(60)),
            None => Duration::from_secs(10),
        };
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

    /// Makes the table hold `instance` as the store has it (a catch-up from the shared
    /// store): added, replaced, or only its last use brought forward. A name being written
    /// here right now is left to that write.
    pub(crate) fn apply_stored(&self, instance: Launch) {
        let mut table = self.table.write().unwrap();
        if table.reserved.contains(&instance.name) {
            return;
        }
        if let Some(live) = table.live.get(&instance.name).cloned() {
            if live.app == instance.app
                && live.input == instance.input
                && live.created == instance.created
            {
                live.used_at(instance.last_used());
                return;
            }
            table.take_out(&live);
        } else if let Err(holder) = self.names.take(&instance.name, Holder::Launch) {
            tracing::warn!(
                "instance `{}` not loaded: the name is {holder}",
                instance.name
            );
            return;
        }
        table.input_bytes += instance.input.len() as u64;
        table.live.insert(instance.name.clone(), Arc::new(instance));
    }

    /// Takes instance `name` out of the table (it was deleted from the shared store).
    pub(crate) fn forget(&self, name: &str) {
        let live = self.table.read().unwrap().live.get(name).cloned();
        if let Some(live) = live {
            self.forget_launch(&live);
        }
    }

    /// The names of every live instance.
    pub(crate) fn names(&self) -> Vec<Arc<str>> {
        self.table.read().unwrap().live.keys().cloned().collect()
    }
}

#[cfg(test)]
mod tests;
