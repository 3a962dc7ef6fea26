//! The live table of mounted apps, name → `Arc<App>`. Lookups are lock-free; replacing an app
//! is one atomic swap, so requests in flight finish on the old version and new ones see the new.

use crate::app::App;
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::sync::Arc;

type Table = BTreeMap<Arc<str>, Arc<App>>;

/// The mounted apps.
#[derive(Default)]
pub struct Registry {
    apps: ArcSwap<Table>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The app mounted as `name`.
    pub fn get(&self, name: &str) -> Option<Arc<App>> {
        self.apps.load().get(name).cloned()
    }

    /// Mounts `app` under its name, returning the version it replaced.
    pub fn insert(&self, app: App) -> Option<Arc<App>> {
        let app = Arc::new(app);
        let previous = self.apps.rcu(|table| {
            let mut table = Table::clone(table);
            table.insert(app.name().clone(), app.clone());
            table
        });
        previous.get(app.name().as_ref()).cloned()
    }

    /// Unmounts `name`, returning what was mounted.
    pub fn remove(&self, name: &str) -> Option<Arc<App>> {
        let previous = self.apps.rcu(|table| {
            let mut table = Table::clone(table);
            table.remove(name);
            table
        });
        previous.get(name).cloned()
    }

    /// Every mounted app, ordered by name.
    pub fn list(&self) -> Vec<Arc<App>> {
        self.apps.load().values().cloned().collect()
    }

    /// How many apps are mounted.
    pub fn len(&self) -> usize {
        self.apps.load().len()
    }

    /// Whether no app is mounted.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
