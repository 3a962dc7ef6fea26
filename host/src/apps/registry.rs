//! The live table of mounted apps, name → entry, with the custom-route table built from it in
//! the same swap. Lookups are lock-free; replacing an app is one atomic swap, so requests in
//! flight finish on the old version and new ones see the new.
//! An entry may still be loading (compiling in the background at start-up): requests wait for
//! it instead of failing. The last load failure of each name is kept for the admin API.

use crate::apps::app::{App, Source};
use crate::apps::routes::CustomRoutes;
use arc_swap::ArcSwap;
use futures::FutureExt as _;
use futures::future::{BoxFuture, Shared};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The outcome of a background load: the app, or why it failed.
pub(crate) type LoadOutcome = Result<Arc<App>, Arc<str>>;

/// An app whose first version is still being compiled.
#[derive(Clone)]
pub(crate) struct Loading {
    id: u64,
    outcome: Shared<BoxFuture<'static, LoadOutcome>>,
}

impl Loading {
    /// Waits for the load to finish.
    pub(crate) async fn wait(&self) -> LoadOutcome {
        self.outcome.clone().await
    }
}

/// What is mounted under a name.
#[derive(Clone)]
pub(crate) enum Entry {
    /// Serving this version.
    Ready(Arc<App>),
    /// Compiling; requests wait for it.
    Loading(Loading),
}

impl Entry {
    /// The app, waiting for it if it is still loading.
    pub(crate) async fn app(&self) -> LoadOutcome {
        match self {
            Entry::Ready(app) => Ok(app.clone()),
            Entry::Loading(loading) => loading.wait().await,
        }
    }
}

/// The last failed attempt to load a name.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    /// Why it failed.
    pub reason: String,
    /// Where the failed version came from.
    pub source: Source,
    /// When.
    pub at: SystemTime,
}

type Apps = BTreeMap<Arc<str>, Entry>;

/// One version of the table: the apps, and the custom routes of those serving.
#[derive(Default)]
pub(crate) struct Snapshot {
    /// Name → what is mounted.
    pub apps: Apps,
    /// Built from `apps` in the same swap, so the two always agree.
    pub routes: CustomRoutes,
}

impl Snapshot {
    fn with(apps: Apps) -> Self {
        // Names in order: when two apps claim one route, the first name wins, consistently.
        let routes = apps
            .iter()
            .filter_map(|(name, entry)| match entry {
                Entry::Ready(app) => app.manifest().route.clone().map(|r| (r, name.clone())),
                Entry::Loading(_) => None,
            })
            .collect();
        Self {
            apps,
            routes: CustomRoutes::new(routes),
        }
    }
}

/// The mounted apps.
#[derive(Default)]
pub(crate) struct Registry {
    table: ArcSwap<Snapshot>,
    failures: Mutex<BTreeMap<Arc<str>, Failure>>,
    /// How many versions of each name went live since start (upgrades of one version to its
    /// optimized build do not count).
    deploys: Mutex<BTreeMap<Arc<str>, u64>>,
    next_loading_id: AtomicU64,
    /// Counts every change of the table or of a failure, for those who wait on one (dev
    /// mode's live reload).
    changes: tokio::sync::watch::Sender<u64>,
}

impl Registry {
    /// An empty registry.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// What is mounted as `name`.
    pub(crate) fn get(&self, name: &str) -> Option<Entry> {
        self.table.load().apps.get(name).cloned()
    }

    /// The current table, for resolving one request against one consistent version.
    pub(crate) fn snapshot(&self) -> Arc<Snapshot> {
        self.table.load_full()
    }

    /// Mounts `app` under its name (one atomic swap) and clears its last failure. Returns
    /// what it replaced.
    pub(crate) fn insert(&self, app: Arc<App>) -> Option<Entry> {
        self.clear_failure(app.name());
        self.count_deploy(app.name());
        self.swap(app.name().clone(), Some(Entry::Ready(app)))
    }

    /// Mounts a placeholder for `name` that requests wait on until `outcome` resolves; the
    /// returned id is what [`Registry::finish_loading`] needs.
    pub(crate) fn insert_loading(
        &self,
        name: Arc<str>,
        outcome: BoxFuture<'static, LoadOutcome>,
    ) -> u64 {
        let id = self.next_loading_id.fetch_add(1, Ordering::Relaxed);
        let entry = Entry::Loading(Loading {
            id,
            outcome: outcome.shared(),
        });
        self.swap(name, Some(entry));
        id
    }

    /// Replaces the placeholder `id` of `name` with the loaded app, or removes it and records
    /// the failure. Does nothing if something else was mounted meanwhile. Returns whether the
    /// app went live.
    pub(crate) fn finish_loading(
        &self,
        name: &Arc<str>,
        id: u64,
        outcome: Result<Arc<App>, Failure>,
    ) -> bool {
        let is_placeholder =
            |entry: Option<&Entry>| matches!(entry, Some(Entry::Loading(l)) if l.id == id);
        if let Err(failure) = &outcome {
            self.record_failure(name.clone(), failure.clone());
        }
        let replacement = outcome.ok().map(Entry::Ready);
        let mut mounted = false;
        self.update(|apps| {
            mounted = false;
            if is_placeholder(apps.get(name)) {
                mounted = replacement.is_some();
                match &replacement {
                    Some(entry) => apps.insert(name.clone(), entry.clone()),
                    None => apps.remove(name),
                };
            }
        });
        if mounted {
            self.clear_failure(name);
            self.count_deploy(name);
        }
        mounted
    }

    /// Swaps in `new` if `current` is still what is mounted under its name (one atomic step);
    /// returns whether it did. Used to upgrade a version without undoing a newer deployment.
    pub(crate) fn replace_if_current(&self, current: &Arc<App>, new: Arc<App>) -> bool {
        let name = current.name().clone();
        let is_current = |apps: &Apps| matches!(apps.get(&name), Some(Entry::Ready(app)) if Arc::ptr_eq(app, current));
        let mut replaced = false;
        self.update(|apps| {
            replaced = is_current(apps);
            if replaced {
                apps.insert(name.clone(), Entry::Ready(new.clone()));
            }
        });
        replaced
    }

    /// Unmounts `name`, returning what was mounted.
    pub(crate) fn remove(&self, name: &str) -> Option<Entry> {
        self.clear_failure(name);
        self.swap(name.into(), None)
    }

    fn swap(&self, name: Arc<str>, entry: Option<Entry>) -> Option<Entry> {
        let mut previous = None;
        self.update(|apps| {
            previous = match &entry {
                Some(entry) => apps.insert(name.clone(), entry.clone()),
                None => apps.remove(&name),
            };
        });
        previous
    }

    /// Applies `change` to a copy of the apps and swaps in that copy with its route table, in
    /// one step (retried if another swap came first, so `change` may run more than once).
    fn update(&self, mut change: impl FnMut(&mut Apps)) {
        self.table.rcu(|snapshot| {
            let mut apps = snapshot.apps.clone();
            change(&mut apps);
            Snapshot::with(apps)
        });
        self.changed();
    }

    /// Wakes whoever waits on a change.
    fn changed(&self) {
        self.changes
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// How many receivers wait on changes.
    pub(crate) fn followers(&self) -> usize {
        self.changes.receiver_count()
    }

    /// A receiver that sees every later change of the table or of a failure.
    pub(crate) fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// An app other than `name` whose custom route equals, covers or lies within `route`.
    pub(crate) fn route_overlapping(&self, route: &str, name: &str) -> Option<Arc<str>> {
        self.table.load().routes.overlapping(route, name).cloned()
    }

    fn count_deploy(&self, name: &Arc<str>) {
        *self
            .deploys
            .lock()
            .unwrap()
            .entry(name.clone())
            .or_default() += 1;
    }

    /// How many versions of `name` went live since start.
    pub(crate) fn deploys(&self, name: &str) -> u64 {
        self.deploys.lock().unwrap().get(name).copied().unwrap_or(0)
    }

    /// Records that loading `name` failed (the mounted version, if any, is untouched).
    pub(crate) fn record_failure(&self, name: Arc<str>, failure: Failure) {
        self.failures.lock().unwrap().insert(name, failure);
        self.changed();
    }

    /// Forgets `name`'s last load failure; whether there was one.
    pub(crate) fn clear_failure(&self, name: &str) -> bool {
        let cleared = self.failures.lock().unwrap().remove(name).is_some();
        if cleared {
            self.changed();
        }
        cleared
    }

    /// The last load failure of `name`, if it has not loaded successfully since.
    pub(crate) fn failure(&self, name: &str) -> Option<Failure> {
        self.failures.lock().unwrap().get(name).cloned()
    }

    /// Every name with a recorded failure.
    pub(crate) fn failures(&self) -> Vec<(Arc<str>, Failure)> {
        let failures = self.failures.lock().unwrap();
        failures
            .iter()
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect()
    }

    /// Every mounted entry, ordered by name.
    pub(crate) fn list(&self) -> Vec<(Arc<str>, Entry)> {
        let table = self.table.load();
        table
            .apps
            .iter()
            .map(|(n, e)| (n.clone(), e.clone()))
            .collect()
    }

    /// How many names are mounted (loaded or loading).
    pub(crate) fn len(&self) -> usize {
        self.table.load().apps.len()
    }
}
