//! Following the shared store: a node of a cluster keeps its own tables and serves from
//! them, and this brings them in line with PostgreSQL. It LISTENs first, then reads the whole
//! state; after that every notification, every reconnect, a timer, and a request for a name
//! this node does not know start a catch-up that reads what changed since the last version
//! it applied. A catch-up mirrors changed components (fetching only content the node lacks)
//! and applies launches; new versions then go live through the deployer as folder
//! changes do.

use crate::apps::deploy::Deployer;
use crate::apps::postgres::mirror::{SharedStore, is_unavailable};
use crate::apps::postgres::{AppRow, CHANNEL, Changes, Database, StoreError};
use crate::apps::registry::Entry;
use crate::apps::store::AppStore as _;
use crate::launches::Launches;
use crate::launches::store::launch_of;
use futures::StreamExt as _;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};
use tokio_postgres::{AsyncMessage, Client};

/// The first wait before connecting again to a store that went away.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest wait between attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How long a request for an unknown name waits for the store before its 404.
const READ_THROUGH_TIMEOUT: Duration = Duration::from_secs(3);
/// While the store fails, requests for unknown names ask it again at most this often.
const READ_THROUGH_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How often the timer's catch-up reads the whole state instead of the change log.
const FULL_RESYNC_EVERY: Duration = Duration::from_secs(600);
/// The listening connection's `application_name` (operators see it in pg_stat_activity).
const LISTENER_NAME: &str = "wasmount listener";
/// How often the listening connection is checked with a query (a partition can leave it
/// open but silent).
const LISTEN_PING_EVERY: Duration = Duration::from_secs(30);

/// Where this node stands with the store.
#[derive(Debug, Default)]
struct SyncState {
    /// The last version applied.
    version: i64,
    /// Whether notifications are arriving (the listening connection is up).
    listening: bool,
    /// Whether the last catch-up succeeded.
    caught_up: bool,
    /// When the last catch-up started.
    last_started: Option<Instant>,
}

/// What health tells about the store.
#[derive(Debug, serde::Serialize)]
pub(crate) struct SyncStatus {
    /// The store: `postgres://HOST:PORT/DB` (no user, no password: health is public).
    pub store: String,
    /// Notifications arrive and the last catch-up succeeded.
    pub in_sync: bool,
    /// The last version applied.
    pub version: i64,
    /// Why this node is not in sync, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'static str>,
}

/// Keeps one node in line with the shared store.
pub(crate) struct Follower {
    db: Arc<Database>,
    apps: Arc<SharedStore>,
    deployer: Arc<Deployer>,
    launches: Arc<Launches>,
    state: Mutex<SyncState>,
    /// Wakes the catch-up task.
    nudge: Arc<Notify>,
    /// Names whose new version (or deletion) the reloader takes live, one at a time.
    reloads: mpsc::UnboundedSender<String>,
}

impl Follower {
    /// Listens, reads the whole state, mounts it, and starts following: the listener (which
    /// reconnects with backoff), the catch-up task (also every `resync_every`) and the
    /// reloader.
    ///
    /// # Errors
    ///
    /// If the store cannot be reached or read now.
    pub(crate) async fn start(
        db: Arc<Database>,
        apps: Arc<SharedStore>,
        deployer: Arc<Deployer>,
        launches: Arc<Launches>,
        resync_every: Duration,
    ) -> anyhow::Result<Arc<Self>> {
        let (reloads, queued) = mpsc::unbounded_channel();
        let follower = Arc::new(Self {
            db,
            apps,
            deployer,
            launches,
            state: Mutex::default(),
            nudge: Arc::default(),
            reloads,
        });
        let listening = follower.listen().await?;
        let changes = follower.db.changes_since(0).await?;
        follower.mirror_apps(&changes).await?;
        follower.deployer.mount_stored().await?;
        follower.apply_instances(&changes);
        {
            let mut state = follower.state.lock().unwrap();
            state.version = changes.version;
            state.caught_up = true;
        }
        tracing::info!(
            store = follower.db.shown(),
            version = changes.version,
            "in sync with the store"
        );
        tokio::spawn(follower.clone().keep_listening(listening));
        tokio::spawn(follower.clone().keep_up(resync_every));
        tokio::spawn(follower.clone().reload_each(queued));
        Ok(follower)
    }

    /// Opens the listening connection and LISTENs; the returned task ends when the
    /// connection does. Every notification nudges the catch-up.
    async fn listen(&self) -> Result<(Client, tokio::task::JoinHandle<()>), StoreError> {
        let (client, mut connection) = self.db.connect_raw(LISTENER_NAME).await?;
        let nudge = self.nudge.clone();
        let driver = tokio::spawn(async move {
            let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
            while let Some(message) = messages.next().await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => nudge.notify_one(),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::debug!("store notifications: {error}");
                        break;
                    }
                }
            }
        });
        let listened = client.batch_execute(&format!("LISTEN {CHANNEL}")).await;
        if let Err(error) = listened {
            driver.abort();
            return Err(StoreError::Unavailable {
                store: self.db.shown().to_owned(),
                reason: format!("LISTEN failed: {error}"),
            });
        }
        self.state.lock().unwrap().listening = true;
        Ok((client, driver))
    }

    /// Keeps a listening connection open: when it ends, connects again with backoff, then
    /// catches up (notifications sent meanwhile were lost).
    async fn keep_listening(self: Arc<Self>, first: (Client, tokio::task::JoinHandle<()>)) {
        let mut current = Some(first);
        let mut backoff = FIRST_BACKOFF;
        loop {
            let (client, driver) = match current.take() {
                Some(listening) => listening,
                None => match self.listen().await {
                    Ok(listening) => {
                        tracing::info!(store = self.db.shown(), "listening to the store again");
                        backoff = FIRST_BACKOFF;
                        self.nudge.notify_one();
                        listening
                    }
                    Err(error) => {
                        tracing::debug!("{error}");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        continue;
                    }
                },
            };
            let mut driver = driver;
            tokio::select! {
                _ = &mut driver => {}
                () = ping_until_silent(&client) => driver.abort(),
            }
            drop(client);
            {
                // Changes may be missed from now on: in sync again after the next catch-up.
                let mut state = self.state.lock().unwrap();
                state.listening = false;
                state.caught_up = false;
            }
            tracing::warn!(
                store = self.db.shown(),
                "lost the store's notifications; serving what this node has, reconnecting"
            );
        }
    }

    /// Catches up whenever nudged, and every `resync_every` in any case; after a failure,
    /// tries again with backoff.
    async fn keep_up(self: Arc<Self>, resync_every: Duration) {
        let mut backoff = FIRST_BACKOFF;
        let mut last_full = Instant::now();
        loop {
            tokio::select! {
                () = self.nudge.notified() => {}
                () = tokio::time::sleep(resync_every) => {}
            }
            let full = last_full.elapsed() >= FULL_RESYNC_EVERY;
            match self.catch_up(None, full).await {
                Ok(()) => {
                    backoff = FIRST_BACKOFF;
                    if full {
                        last_full = Instant::now();
                    }
                }
                Err(_) => {
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    self.nudge.notify_one();
                }
            }
        }
    }

    /// Brings this node up to the store's current version (`full`: reading the whole state,
    /// which also repairs anything a change log cannot tell). With `asked_at`, does nothing
    /// if a catch-up started after that instant (concurrent askers share one).
    ///
    /// # Errors
    ///
    /// The store cannot be read, or a component cannot be mirrored; the version stays, so
    /// the next catch-up does it again.
    async fn catch_up(&self, asked_at: Option<Instant>, full: bool) -> anyhow::Result<()> {
        let _sync = self.db.sync.lock().await;
        let since = {
            let mut state = self.state.lock().unwrap();
            if let (Some(asked), Some(started)) = (asked_at, state.last_started)
                && started >= asked
            {
                return if state.caught_up {
                    Ok(())
                } else {
                    Err(anyhow::anyhow!("the store is unavailable"))
                };
            }
            state.last_started = Some(Instant::now());
            if full { 0 } else { state.version }
        };
        let outcome = self.apply_changes_since(since).await;
        let mut state = self.state.lock().unwrap();
        match &outcome {
            Ok(version) => {
                state.version = *version;
                if !state.caught_up {
                    tracing::info!(
                        store = self.db.shown(),
                        version,
                        "in sync with the store again"
                    );
                }
                state.caught_up = true;
            }
            Err(error) => {
                if state.caught_up {
                    tracing::warn!("catching up with the store: {error:#}");
                }
                state.caught_up = false;
            }
        }
        outcome.map(|_| ())
    }

    /// Reads and applies what changed after `since`; returns the version reached. Deleted
    /// apps are unmounted and deleted instances forgotten first, so their names are free for
    /// what the same changes bring.
    async fn apply_changes_since(&self, since: i64) -> anyhow::Result<i64> {
        let changes = self.db.changes_since(since).await?;
        if changes.version == since && !changes.full {
            return Ok(since);
        }
        for name in self.deleted_apps(&changes)? {
            self.apps.mirror_app(&name, None).await?;
            if self.deployer.registry().get(&name).is_some() {
                let path = self.apps.app_path(&name);
                self.deployer.reload_file(&name, &path).await; // the file is gone: unmounts
            }
        }
        for (name, row) in &changes.instances {
            if row.is_none() {
                self.launches.forget(name);
            }
        }
        for (name, row) in &changes.apps {
            let Some(row) = row else { continue };
            match self.apps.mirror_app(name, Some(row)).await {
                Ok(mirror_changed) => self.go_live(name, row, mirror_changed),
                // The store cannot be read now: this whole catch-up is done again.
                Err(error) if is_unavailable(&error) => return Err(error),
                // One bad app (a name no node would write; a component replaced since this
                // snapshot, whose newer change follows) must not hold back the others.
                Err(error) => tracing::warn!(app = %name, "not taken from the store: {error:#}"),
            }
        }
        self.apply_instances(&changes);
        Ok(changes.version)
    }

    /// The apps `changes` delete (for the whole state: also every mirrored or mounted app
    /// not in it).
    fn deleted_apps(&self, changes: &Changes) -> anyhow::Result<Vec<String>> {
        let mut deleted: Vec<String> = changes
            .apps
            .iter()
            .filter(|(_, row)| row.is_none())
            .map(|(name, _)| name.clone())
            .collect();
        if changes.full {
            let stored: HashSet<&str> = changes.apps.iter().map(|(n, _)| n.as_str()).collect();
            let mut known = self.apps.mirrored()?;
            let mounted = self.deployer.registry().list();
            known.extend(mounted.into_iter().map(|(name, _)| name.to_string()));
            deleted.extend(
                known
                    .into_iter()
                    .filter(|name| !stored.contains(name.as_str())),
            );
            deleted.sort();
            deleted.dedup();
        }
        Ok(deleted)
    }

    /// Mirrors the apps of the whole state `changes` (first sync: the deployer mounts them).
    /// As in a catch-up, one bad app is logged and skipped; an unreachable store is an error.
    async fn mirror_apps(&self, changes: &Changes) -> anyhow::Result<()> {
        for name in self.deleted_apps(changes)? {
            self.apps.mirror_app(&name, None).await?;
        }
        for (name, row) in &changes.apps {
            match self.apps.mirror_app(name, row.as_ref()).await {
                Err(error) if is_unavailable(&error) => return Err(error),
                Err(error) => tracing::warn!(app = %name, "not taken from the store: {error:#}"),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// Applies the instances of `changes` to the launch table (for the whole state, also
    /// forgetting those not in it).
    fn apply_instances(&self, changes: &Changes) {
        for (name, row) in &changes.instances {
            match row.clone().map(launch_of) {
                Some(Ok(instance)) => self.launches.apply_stored(instance),
                Some(Err(error)) => tracing::warn!("instance `{name}` in the store: {error:#}"),
                None => self.launches.forget(name),
            }
        }
        if changes.full {
            let stored: HashSet<&str> = changes.instances.iter().map(|(n, _)| n.as_str()).collect();
            for name in self.launches.names() {
                if !stored.contains(name.as_ref()) {
                    self.launches.forget(&name);
                }
            }
        }
    }

    /// Takes the mirrored version of app `name` live, unless it already serves: a new name
    /// is mounted at once (its requests wait for the compile), a mounted one goes through
    /// the reloader. Decided against what serves, not only against the mirror, so a
    /// version mirrored by an interrupted catch-up still goes live.
    fn go_live(&self, name: &str, row: &AppRow, mirror_changed: bool) {
        let path = self.apps.app_path(name);
        match self.deployer.registry().get(name) {
            None => self.deployer.mount_external(&[(name.to_owned(), path)]),
            Some(Entry::Ready(app)) if mirror_changed || app.version().sha256 != row.sha256 => {
                let _ = self.reloads.send(name.to_owned());
            }
            Some(Entry::Loading(_)) if mirror_changed => {
                let _ = self.reloads.send(name.to_owned());
            }
            Some(_) => {}
        }
    }

    /// Takes changed apps live one at a time, so an older version never lands after a newer.
    async fn reload_each(self: Arc<Self>, mut names: mpsc::UnboundedReceiver<String>) {
        while let Some(name) = names.recv().await {
            let path = self.apps.app_path(&name);
            self.deployer.reload_file(&name, &path).await;
        }
    }

    /// For a request naming something this node does not know: catches up (sharing a
    /// catch-up already under way), within a few seconds. Returns whether it did.
    /// The catch-up runs on its own task: a request that gives up (or whose client goes
    /// away) never cuts one short. While the store is failing, it is asked at most once a
    /// second on behalf of requests.
    pub(crate) async fn read_through(self: &Arc<Self>) -> bool {
        let asked_at = Instant::now();
        {
            let state = self.state.lock().unwrap();
            let failing_recently = !state.caught_up
                && state
                    .last_started
                    .is_some_and(|started| started.elapsed() < READ_THROUGH_RETRY_AFTER);
            if failing_recently {
                return false;
            }
        }
        let this = self.clone();
        let catch_up = tokio::spawn(async move { this.catch_up(Some(asked_at), false).await });
        matches!(
            tokio::time::timeout(READ_THROUGH_TIMEOUT, catch_up).await,
            Ok(Ok(Ok(())))
        )
    }

    /// Where this node stands with the store.
    pub(crate) fn status(&self) -> SyncStatus {
        let state = self.state.lock().unwrap();
        let in_sync = state.listening && state.caught_up;
        SyncStatus {
            store: self.db.address(),
            in_sync,
            version: state.version,
            // Fixed phrases: health is public, the details are in the log.
            error: if in_sync {
                None
            } else if !state.listening {
                Some("not receiving the store's notifications")
            } else {
                Some("reading the store's changes failed; see the log")
            },
        }
    }
}

/// Returns when the listening connection stops answering a `SELECT 1` (sent every
/// [`LISTEN_PING_EVERY`], each given 10 s).
async fn ping_until_silent(client: &Client) {
    loop {
        tokio::time::sleep(LISTEN_PING_EVERY).await;
        let ping = tokio::time::timeout(Duration::from_secs(10), client.simple_query("SELECT 1"));
        if !matches!(ping.await, Ok(Ok(_))) {
            return;
        }
    }
}
