//! What the store is asked: writes (each one transaction that takes the cluster's write
//! lock, numbers the change, logs it and notifies at commit), reading what changed since a
//! version, and fetching a component's bytes.

use super::{CHANNEL, Database, QUERY_TIMEOUT, StoreError};
use crate::apps::names::Holder;
use tokio_postgres::Transaction;

/// Advisory lock key of writes: one write at a time over the cluster, so versions commit in
/// order and a reader that saw version N has seen every change up to N.
const WRITE_LOCK: i64 = 0x7761_736e;
/// Changes kept in the log; a node further behind reads the whole state instead.
const CHANGES_KEPT: i64 = 100_000;

/// An app as stored (its bytes are fetched separately, by content).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppRow {
    /// SHA-256 of the component, lowercase hex.
    pub sha256: String,
    /// The manifest text, if it has one.
    pub manifest: Option<String>,
}

/// A launch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LaunchRow {
    /// Its name.
    pub name: String,
    /// The app it runs.
    pub app: String,
    /// Its input, JSON text exactly as given (or `input_url`).
    pub input: Option<String>,
    /// The address of its input.
    pub input_url: Option<String>,
    /// Milliseconds since the epoch.
    pub created_ms: i64,
    /// Milliseconds since the epoch of its last recorded use.
    pub last_used_ms: i64,
    /// Who may open it (`public`, `platform`); `None`: as the server decides.
    pub access: Option<String>,
    /// What the platform is told it is.
    pub label: Option<String>,
}

/// What changed since a version.
#[derive(Debug, Default)]
pub(crate) struct Changes {
    /// The version these changes bring a node to.
    pub version: i64,
    /// Whether this is the whole state (a name not listed no longer exists).
    pub full: bool,
    /// Each changed app: its row, or `None` when it was deleted.
    pub apps: Vec<(String, Option<AppRow>)>,
    /// Each changed instance: its row, or `None` when it was deleted.
    pub instances: Vec<(String, Option<LaunchRow>)>,
}

/// The outcome of storing a launch.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Launched {
    /// Stored, and announced.
    Stored,
    /// The name is held, somewhere in the cluster.
    NameTaken(Holder),
    /// The app is not in the store (it was deleted meanwhile).
    NoApp,
    /// This many instances exist, the limit.
    Full(usize),
    /// The inputs already stored hold this many bytes: this one would pass the limit.
    InputsFull(u64),
}

type Result<T> = std::result::Result<T, tokio_postgres::Error>;

/// Takes the write lock, and returns the version this write will have.
async fn begin_change(transaction: &Transaction<'_>) -> Result<i64> {
    transaction
        .execute("SELECT pg_advisory_xact_lock($1)", &[&WRITE_LOCK])
        .await?;
    let row = transaction
        .query_one(
            "SELECT coalesce(max(version), 0) + 1 FROM wasmount_changes",
            &[],
        )
        .await?;
    Ok(row.get(0))
}

/// Logs change `version` of `kind` `name` (one write may log several under one version),
/// drops the oldest log entries, and notifies the other nodes (delivered, once per version,
/// when the transaction commits).
async fn log_change(
    transaction: &Transaction<'_>,
    version: i64,
    kind: &str,
    name: &str,
) -> Result<()> {
    transaction
        .execute(
            "INSERT INTO wasmount_changes (version, kind, name) VALUES ($1, $2, $3)",
            &[&version, &kind, &name],
        )
        .await?;
    transaction
        .execute(
            "DELETE FROM wasmount_changes WHERE version <= $1",
            &[&(version - CHANGES_KEPT)],
        )
        .await?;
    transaction
        .execute(
            "SELECT pg_notify($1, $2)",
            &[&CHANNEL, &version.to_string()],
        )
        .await?;
    Ok(())
}

/// Deletes component `sha256` unless an app still uses it.
async fn drop_unused_component(transaction: &Transaction<'_>, sha256: Option<&str>) -> Result<()> {
    if let Some(sha256) = sha256 {
        transaction
            .execute(
                "DELETE FROM wasmount_components WHERE sha256 = $1 \
                 AND NOT EXISTS (SELECT 1 FROM wasmount_apps WHERE sha256 = $1)",
                &[&sha256],
            )
            .await?;
    }
    Ok(())
}

impl Database {
    /// Stores app `name` (component and, when given, manifest; without one the stored
    /// manifest stays). Returns who holds the name instead, when a launch does.
    pub(crate) async fn put_app(
        &self,
        name: &str,
        sha256: &str,
        bytes: &[u8],
        manifest: Option<&str>,
    ) -> std::result::Result<std::result::Result<(), Holder>, StoreError> {
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            let transaction = client.transaction().await?;
            let version = begin_change(&transaction).await?;
            let held = transaction
                .query_opt("SELECT 1 FROM wasmount_instances WHERE name = $1", &[&name])
                .await?;
            if held.is_some() {
                return Ok(Err(Holder::Launch));
            }
            let previous: Option<String> = transaction
                .query_opt("SELECT sha256 FROM wasmount_apps WHERE name = $1", &[&name])
                .await?
                .map(|row| row.get(0));
            transaction
                .execute(
                    "INSERT INTO wasmount_components (sha256, bytes) VALUES ($1, $2) \
                         ON CONFLICT (sha256) DO NOTHING",
                    &[&sha256, &bytes],
                )
                .await?;
            transaction
                .execute(
                    "INSERT INTO wasmount_apps (name, sha256, manifest, version) \
                         VALUES ($1, $2, $3, $4) ON CONFLICT (name) DO UPDATE SET \
                         sha256 = excluded.sha256, version = excluded.version, \
                         manifest = coalesce(excluded.manifest, wasmount_apps.manifest)",
                    &[&name, &sha256, &manifest, &version],
                )
                .await?;
            drop_unused_component(&transaction, previous.as_deref()).await?;
            log_change(&transaction, version, "app", name).await?;
            transaction.commit().await?;
            Ok(Ok(()))
        })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// Deletes app `name` and every instance launched from it (their inputs must not pass to
    /// whatever is uploaded next under that name); returns whether it existed.
    pub(crate) async fn delete_app(&self, name: &str) -> std::result::Result<bool, StoreError> {
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            let transaction = client.transaction().await?;
            let version = begin_change(&transaction).await?;
            let deleted: Option<String> = transaction
                .query_opt(
                    "DELETE FROM wasmount_apps WHERE name = $1 RETURNING sha256",
                    &[&name],
                )
                .await?
                .map(|row| row.get(0));
            if deleted.is_none() {
                return Ok(false);
            }
            drop_unused_component(&transaction, deleted.as_deref()).await?;
            let instances = transaction
                .query(
                    "DELETE FROM wasmount_instances WHERE app = $1 RETURNING name",
                    &[&name],
                )
                .await?;
            for instance in &instances {
                log_change(&transaction, version, "instance", instance.get(0)).await?;
            }
            log_change(&transaction, version, "app", name).await?;
            transaction.commit().await?;
            Ok(true)
        })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// Stores a launch, unless its name is held anywhere in the cluster or the cluster-wide
    /// limits (`max_instances`, `max_input_total` bytes of input) would be passed.
    pub(crate) async fn put_instance(
        &self,
        row: &LaunchRow,
        max_instances: usize,
        max_input_total: u64,
    ) -> std::result::Result<Launched, StoreError> {
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
                let transaction = client.transaction().await?;
                let version = begin_change(&transaction).await?;
                let holder = transaction
                    .query_opt(
                        "SELECT 'app' FROM wasmount_apps WHERE name = $1 \
                         UNION ALL SELECT 'instance' FROM wasmount_instances WHERE name = $1",
                        &[&row.name],
                    )
                    .await?
                    .map(|found| match found.get::<_, &str>(0) {
                        "app" => Holder::App,
                        _ => Holder::Launch,
                    });
                if let Some(holder) = holder {
                    return Ok(Launched::NameTaken(holder));
                }
                let app = transaction
                    .query_opt("SELECT 1 FROM wasmount_apps WHERE name = $1", &[&row.app])
                    .await?;
                if app.is_none() {
                    return Ok(Launched::NoApp);
                }
                let totals = transaction
                    .query_one(
                        "SELECT count(*), coalesce(sum(octet_length(coalesce(input, input_url))), 0)::bigint \
                         FROM wasmount_instances",
                        &[],
                    )
                    .await?;
                let (count, held): (i64, i64) = (totals.get(0), totals.get(1));
                if count as usize >= max_instances {
                    return Ok(Launched::Full(count as usize));
                }
                let size = row.input.as_ref().or(row.input_url.as_ref()).map_or(0, String::len);
                if held as u64 + size as u64 > max_input_total {
                    return Ok(Launched::InputsFull(held as u64));
                }
                transaction
                    .execute(
                        "INSERT INTO wasmount_instances \
                         (name, app, input, input_url, created_ms, last_used_ms, version, \
                          access, label) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            &row.name,
                            &row.app,
                            &row.input,
                            &row.input_url,
                            &row.created_ms,
                            &row.last_used_ms,
                            &version,
                            &row.access,
                            &row.label,
                        ],
                    )
                    .await?;
                log_change(&transaction, version, "instance", &row.name).await?;
                transaction.commit().await?;
                Ok(Launched::Stored)
            })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// Deletes instance `name`; for an expiry (`Some((unused_since_ms, created_ms))`), only
    /// the launch created then, and only if its last recorded use is older (exactly one
    /// node's expiry succeeds). Returns whether it was deleted, and otherwise the last
    /// recorded use of that same launch, if it still exists.
    pub(crate) async fn delete_instance(
        &self,
        name: &str,
        expiry: Option<(i64, i64)>,
    ) -> std::result::Result<(bool, Option<i64>), StoreError> {
        let (before, created) = expiry.map_or((i64::MAX, None), |(b, c)| (b, Some(c)));
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            let transaction = client.transaction().await?;
            let version = begin_change(&transaction).await?;
            let same_launch = "name = $1 AND ($2::bigint IS NULL OR created_ms = $2)";
            let deleted = transaction
                .execute(
                    &format!(
                        "DELETE FROM wasmount_instances WHERE {same_launch} AND last_used_ms < $3"
                    ),
                    &[&name, &created, &before],
                )
                .await?;
            if deleted == 0 {
                let last_used = transaction
                    .query_opt(
                        &format!("SELECT last_used_ms FROM wasmount_instances WHERE {same_launch}"),
                        &[&name, &created],
                    )
                    .await?
                    .map(|row| row.get(0));
                return Ok((false, last_used));
            }
            log_change(&transaction, version, "instance", name).await?;
            transaction.commit().await?;
            Ok((true, None))
        })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// Records the last uses of instances (name, milliseconds since the epoch), in one
    /// statement; an older use never overwrites a newer one. Not a change: no version.
    pub(crate) async fn record_uses(
        &self,
        uses: &[(String, i64)],
    ) -> std::result::Result<(), StoreError> {
        let names: Vec<&str> = uses.iter().map(|(name, _)| name.as_str()).collect();
        let times: Vec<i64> = uses.iter().map(|(_, at)| *at).collect();
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            client
                .execute(
                    "UPDATE wasmount_instances AS i SET last_used_ms = u.at \
                         FROM unnest($1::text[], $2::bigint[]) AS u(name, at) \
                         WHERE i.name = u.name AND i.last_used_ms < u.at",
                    &[&names, &times],
                )
                .await?;
            Ok(())
        })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// The bytes of component `sha256`, if stored.
    pub(crate) async fn component(
        &self,
        sha256: &str,
    ) -> std::result::Result<Option<Vec<u8>>, StoreError> {
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            let row = client
                .query_opt(
                    "SELECT bytes FROM wasmount_components WHERE sha256 = $1",
                    &[&sha256],
                )
                .await?;
            Ok(row.map(|row| row.get(0)))
        })
        .await;
        self.settle(&mut slot, outcome)
    }

    /// What changed after version `since`, from one consistent snapshot: the changed names
    /// with their rows, or the whole state when `since` is 0, no longer in the log, or ahead
    /// of the store (a store restored from a backup).
    pub(crate) async fn changes_since(
        &self,
        since: i64,
    ) -> std::result::Result<Changes, StoreError> {
        let mut slot = self.connection().await?;
        let client = slot.as_mut().expect("connected");
        let outcome = tokio::time::timeout(QUERY_TIMEOUT, async {
            let transaction = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let bounds = transaction
                .query_one(
                    "SELECT coalesce(min(version), 0), coalesce(max(version), 0) \
                         FROM wasmount_changes",
                    &[],
                )
                .await?;
            let (oldest, newest): (i64, i64) = (bounds.get(0), bounds.get(1));
            if newest == since && since != 0 {
                return Ok(Changes {
                    version: since,
                    ..Changes::default()
                });
            }
            let full = since == 0 || oldest > since + 1 || newest < since;
            let changes = if full {
                read_all(&transaction).await?
            } else {
                read_changed(&transaction, since).await?
            };
            transaction.commit().await?;
            Ok(Changes {
                version: newest,
                full,
                ..changes
            })
        })
        .await;
        self.settle(&mut slot, outcome)
    }
}

const APP_COLUMNS: &str = "SELECT name, sha256, manifest FROM wasmount_apps";
const INSTANCE_COLUMNS: &str = "SELECT name, app, input, input_url, created_ms, last_used_ms, access, label \
     FROM wasmount_instances";

async fn read_all(transaction: &Transaction<'_>) -> Result<Changes> {
    let apps = transaction.query(APP_COLUMNS, &[]).await?;
    let instances = transaction.query(INSTANCE_COLUMNS, &[]).await?;
    Ok(Changes {
        apps: apps
            .iter()
            .map(app_row)
            .map(|(n, r)| (n, Some(r)))
            .collect(),
        instances: instances
            .iter()
            .map(|row| {
                let row = launch_row(row);
                (row.name.clone(), Some(row))
            })
            .collect(),
        ..Changes::default()
    })
}

async fn read_changed(transaction: &Transaction<'_>, since: i64) -> Result<Changes> {
    let changed = transaction
        .query(
            "SELECT kind, name FROM wasmount_changes WHERE version > $1 GROUP BY kind, name",
            &[&since],
        )
        .await?;
    let of_kind = |kind: &str| -> Vec<String> {
        changed
            .iter()
            .filter(|row| row.get::<_, &str>(0) == kind)
            .map(|row| row.get(1))
            .collect()
    };
    let (app_names, instance_names) = (of_kind("app"), of_kind("instance"));
    let apps = transaction
        .query(
            &format!("{APP_COLUMNS} WHERE name = ANY($1)"),
            &[&app_names],
        )
        .await?;
    let instances = transaction
        .query(
            &format!("{INSTANCE_COLUMNS} WHERE name = ANY($1)"),
            &[&instance_names],
        )
        .await?;
    let mut apps: std::collections::HashMap<_, _> = apps.iter().map(app_row).collect();
    let mut instances: std::collections::HashMap<_, _> = instances
        .iter()
        .map(|row| {
            let row = launch_row(row);
            (row.name.clone(), row)
        })
        .collect();
    Ok(Changes {
        apps: app_names
            .into_iter()
            .map(|name| {
                let row = apps.remove(&name);
                (name, row)
            })
            .collect(),
        instances: instance_names
            .into_iter()
            .map(|name| {
                let row = instances.remove(&name);
                (name, row)
            })
            .collect(),
        ..Changes::default()
    })
}

fn app_row(row: &tokio_postgres::Row) -> (String, AppRow) {
    (
        row.get(0),
        AppRow {
            sha256: row.get(1),
            manifest: row.get(2),
        },
    )
}

fn launch_row(row: &tokio_postgres::Row) -> LaunchRow {
    LaunchRow {
        name: row.get(0),
        app: row.get(1),
        input: row.get(2),
        input_url: row.get(3),
        created_ms: row.get(4),
        last_used_ms: row.get(5),
        access: row.get(6),
        label: row.get(7),
    }
}
