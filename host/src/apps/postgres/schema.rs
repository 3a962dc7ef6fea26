//! The store's tables and their versioned migrations, applied at start by whichever node gets
//! there first (the others wait on an advisory lock); a node refuses a schema newer than it
//! knows.

use tokio_postgres::Client;

/// Advisory lock key held while migrating ("wasm" in ASCII).
const MIGRATION_LOCK: i64 = 0x7761_736d;

/// Every migration, in order; the schema's version is how many have been applied. Never edit
/// one that shipped: add another.
const MIGRATIONS: &[&str] = &[
    // 1: components by content, apps, launches, and the log of changes.
    "CREATE TABLE wasmount_components (
         sha256 text PRIMARY KEY,
         bytes bytea NOT NULL
     );
     CREATE TABLE wasmount_apps (
         name text PRIMARY KEY,
         sha256 text NOT NULL REFERENCES wasmount_components (sha256),
         manifest text,
         version bigint NOT NULL
     );
     CREATE TABLE wasmount_instances (
         name text PRIMARY KEY,
         app text NOT NULL,
         input text,
         input_url text,
         created_ms bigint NOT NULL,
         last_used_ms bigint NOT NULL,
         version bigint NOT NULL,
         CHECK ((input IS NULL) <> (input_url IS NULL))
     );
     CREATE TABLE wasmount_changes (
         version bigint NOT NULL,
         kind text NOT NULL CHECK (kind IN ('app', 'instance')),
         name text NOT NULL,
         at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (version, kind, name)
     );",
    // 2: who may open a launch, and the label the platform is told (forward auth).
    "ALTER TABLE wasmount_instances ADD COLUMN access text, ADD COLUMN label text;",
];

/// The newest schema version this program knows.
pub(super) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Creates the schema or brings it up to [`SCHEMA_VERSION`], each migration in its own
/// transaction.
///
/// # Errors
///
/// A schema newer than this program knows (`store` names the database), or a failed query.
pub(super) async fn migrate(client: &mut Client, store: &str) -> anyhow::Result<()> {
    let failed = failed_in(store);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(&failed)?;
    let migrated = apply_missing(client, store).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
        .await;
    let applied = migrated?;
    unlocked.map_err(&failed)?;
    if applied > 0 {
        tracing::info!(store, version = SCHEMA_VERSION, "store schema migrated");
    }
    Ok(())
}

/// Applies the migrations the database lacks; returns how many.
async fn apply_missing(client: &mut Client, store: &str) -> anyhow::Result<usize> {
    let failed = failed_in(store);
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS wasmount_schema (
                 version bigint PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(&failed)?;
    let current: i64 = client
        .query_one("SELECT coalesce(max(version), 0) FROM wasmount_schema", &[])
        .await
        .map_err(&failed)?
        .get(0);
    anyhow::ensure!(
        current <= SCHEMA_VERSION,
        "the store {store} has schema version {current}, newer than this wasmount knows \
         ({SCHEMA_VERSION}): upgrade wasmount on this node"
    );
    let mut applied = 0;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as i64 + 1;
        let transaction = client.transaction().await.map_err(&failed)?;
        transaction.batch_execute(sql).await.map_err(&failed)?;
        transaction
            .execute(
                "INSERT INTO wasmount_schema (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(&failed)?;
        transaction.commit().await.map_err(&failed)?;
        applied += 1;
    }
    Ok(applied)
}

/// Turns a driver error into "migrating the store STORE: MESSAGE".
fn failed_in(store: &str) -> impl Fn(tokio_postgres::Error) -> anyhow::Error + '_ {
    move |e| {
        let reason = e
            .as_db_error()
            .map_or_else(|| e.to_string(), |db| db.message().to_owned());
        anyhow::anyhow!("migrating the store {store}: {reason}")
    }
}
