//! The shared store of a cluster, in PostgreSQL: the connection (made again when it breaks),
//! the schema and its migrations, and what every failure means to a client (the store is
//! unavailable → 503; it refused → 500). The queries are in `queries`, the local mirror of the
//! components (what the deployer loads from) in `mirror`.

pub(crate) mod mirror;
mod queries;
mod schema;
mod tls;

pub(crate) use queries::{AppRow, Changes, LaunchRow, Launched};

use std::time::Duration;
use tls::TlsSettings;
use tokio_postgres::Client;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How long connecting may take before the store counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one read or transaction may take before the store counts as unavailable.
const QUERY_TIMEOUT: Duration = Duration::from_secs(30);
/// The channel every committed change is announced on (payload: its version).
pub(crate) const CHANNEL: &str = "wasmount_changes";

/// Why the store did not do what was asked. Its text names the store.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database cannot be reached (down, restarting, too slow): try again later.
    #[error("the store {store} is unavailable: {reason}")]
    Unavailable {
        /// The store's address, without password.
        store: String,
        /// What failed.
        reason: String,
    },
    /// The database answered with an error.
    #[error("the store {store} refused: {reason}")]
    Failed {
        /// The store's address, without password.
        store: String,
        /// Its message.
        reason: String,
    },
}

/// A PostgreSQL database holding the apps and launches of a cluster.
pub(crate) struct Database {
    config: tokio_postgres::Config,
    /// TLS as the URL's `sslmode` asks.
    tls: MakeRustlsConnect,
    /// The URL as shown in messages: user, host, port and database, never the password.
    shown: String,
    /// The connection for reads and writes; `None` after it broke (made again on next use).
    client: tokio::sync::Mutex<Option<Client>>,
    /// Held while the database and this node's copy are brought in line: by every local
    /// write, and by a catch-up from reading the changes to applying them.
    pub(crate) sync: std::sync::Arc<tokio::sync::Mutex<()>>,
}

impl Database {
    /// Parses `url` (a libpq-style `postgres://USER[:PASSWORD]@HOST[:PORT]/DB`; the password
    /// may come from `PGPASSWORD`), connects, and creates or migrates the schema.
    ///
    /// # Errors
    ///
    /// A URL that does not parse, a refused login, an unreachable server, or a schema newer
    /// than this program knows; each a one-line message.
    pub(crate) async fn open(url: &str) -> anyhow::Result<Self> {
        let (config, tls) = parse_url(url)?;
        let tls = tls
            .connector()
            .map_err(|why| anyhow::anyhow!("--store `{}`: {why}", redact(url)))?;
        let database = Self {
            tls,
            shown: shown_url(&config),
            config,
            client: tokio::sync::Mutex::new(None),
            sync: std::sync::Arc::default(),
        };
        let mut client = database
            .connect()
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        schema::migrate(&mut client, &database.shown).await?;
        *database.client.lock().await = Some(client);
        Ok(database)
    }

    /// The store's address as shown to people (no password).
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    /// `postgres://HOST:PORT/DB`: the store without its user, for public pages.
    pub(crate) fn address(&self) -> String {
        format!("postgres://{}", place(&self.config))
    }

    /// A new connection, driven on its own task; errors name the store.
    async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.connect_raw("wasmount").await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!("store connection ended: {error}");
            }
        });
        Ok(client)
    }

    /// A new connection, named `application_name` in the server's activity view, and the
    /// future that drives it (for the listener, which reads the notifications off it).
    pub(crate) async fn connect_raw(
        &self,
        application_name: &str,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, TlsStream>,
        ),
        StoreError,
    > {
        let mut config = self.config.clone();
        config.application_name(application_name);
        match tokio::time::timeout(CONNECT_TIMEOUT, config.connect(self.tls.clone())).await {
            Ok(Ok(connected)) => Ok(connected),
            Ok(Err(error)) => Err(self.error(&error)),
            Err(_) => Err(self.unavailable(format!(
                "no connection within {}s",
                CONNECT_TIMEOUT.as_secs()
            ))),
        }
    }

    /// The shared connection for reads and writes, connecting first if there is none (or
    /// it broke). Use it within [`QUERY_TIMEOUT`] and pass the outcome to [`Self::settle`].
    async fn connection(&self) -> Result<tokio::sync::MutexGuard<'_, Option<Client>>, StoreError> {
        let mut slot = self.client.lock().await;
        if slot.as_ref().is_none_or(Client::is_closed) {
            *slot = Some(self.connect().await?);
        }
        Ok(slot)
    }

    /// What a query's `outcome` means; a connection that broke or timed out is dropped, so
    /// the next query connects again.
    fn settle<T>(
        &self,
        slot: &mut Option<Client>,
        outcome: Result<Result<T, tokio_postgres::Error>, tokio::time::error::Elapsed>,
    ) -> Result<T, StoreError> {
        match outcome {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                if error.is_closed() || error.as_db_error().is_none() {
                    *slot = None;
                }
                Err(self.error(&error))
            }
            Err(_) => {
                *slot = None;
                Err(self.unavailable(format!("no answer within {}s", QUERY_TIMEOUT.as_secs())))
            }
        }
    }

    fn unavailable(&self, reason: String) -> StoreError {
        StoreError::Unavailable {
            store: self.shown.clone(),
            reason,
        }
    }

    /// What a driver error means: the server's own error is a refusal, anything else (a
    /// socket, a closed connection) makes the store unavailable.
    fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        match error.as_db_error() {
            // Worth trying again: connection trouble (08), too many connections or out of
            // resources (53), shutting down or cancelled (57), a serialization failure or
            // deadlock (40), a lock timeout (55P03).
            Some(db) if is_transient(db.code().code()) => self.unavailable(db.message().into()),
            Some(db) => StoreError::Failed {
                store: self.shown.clone(),
                reason: db.message().into(),
            },
            None => self.unavailable(one_line(error)),
        }
    }
}

/// Whether an SQLSTATE says the database may well do it on a later try.
fn is_transient(code: &str) -> bool {
    ["08", "53", "57", "40"]
        .iter()
        .any(|class| code.starts_with(class))
        || code == "55P03"
}

/// A driver error on one line: its own text and its source's.
fn one_line(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(source) => format!("{error}: {source}"),
        None => error.to_string(),
    }
}

/// The stream of a connection: TLS or plain, as the server and `sslmode` agreed.
type TlsStream =
    <MakeRustlsConnect as tokio_postgres::tls::MakeTlsConnect<tokio_postgres::Socket>>::Stream;

/// Parses a store URL; the password comes from `PGPASSWORD` when the URL has none.
///
/// # Errors
///
/// Anything but a `postgres://` or `postgresql://` URL naming a user, a host and a
/// database, or an `sslmode` libpq does not know.
fn parse_url(url: &str) -> anyhow::Result<(tokio_postgres::Config, TlsSettings)> {
    let bad = |why: &str| anyhow::anyhow!("--store `{}`: {why}", redact(url));
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(bad(
            "not a PostgreSQL URL (expected postgres://USER@HOST:PORT/DATABASE)",
        ));
    }
    let (rest, tls) = TlsSettings::split_from(url).map_err(|why| bad(&why))?;
    let mut config: tokio_postgres::Config = rest.parse().map_err(|e| bad(&format!("{e}")))?;
    config.ssl_mode(tls.driver_mode());
    if config.get_hosts().is_empty() {
        return Err(bad("no host"));
    }
    if config.get_dbname().is_none() {
        return Err(bad("no database name"));
    }
    if config.get_user().is_none() {
        return Err(bad("no user name"));
    }
    if config.get_password().is_none()
        && let Ok(password) = std::env::var("PGPASSWORD")
    {
        config.password(password);
    }
    config.application_name("wasmount");
    config.connect_timeout(CONNECT_TIMEOUT);
    // A node that stalls (paused, cut off) mid-write must not hold the cluster's write lock
    // for long: the server ends its transaction, and the socket notices a dead peer.
    let options = format!(
        "{} -c lock_timeout=10s -c idle_in_transaction_session_timeout=30s",
        config.get_options().unwrap_or_default()
    );
    config.options(options.trim());
    config.keepalives(true);
    config.keepalives_idle(Duration::from_secs(15));
    config.tcp_user_timeout(Duration::from_secs(30));
    Ok((config, tls))
}

/// `postgres://USER@HOST:PORT/DB` of a parsed URL.
fn shown_url(config: &tokio_postgres::Config) -> String {
    let user = config.get_user().unwrap_or_default();
    format!("postgres://{user}@{}", place(config))
}

/// `HOST:PORT/DB` of a parsed URL.
fn place(config: &tokio_postgres::Config) -> String {
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or_default())
}

/// `url` before its query, and the query: the first `?` after the credentials (a password may
/// hold a `?`; the driver, like libpq, takes the credentials up to the last `@`).
pub(super) fn split_query(url: &str) -> (&str, Option<&str>) {
    let after_credentials = url.rfind('@').map_or(0, |at| at + 1);
    match url[after_credentials..].find('?') {
        Some(at) => {
            let at = after_credentials + at;
            (&url[..at], Some(&url[at + 1..]))
        }
        None => (url, None),
    }
}

/// `url` with any password (in the user part or a `password=` parameter) replaced by
/// `***`, for messages.
pub(crate) fn redact(url: &str) -> String {
    let (url, query) = split_query(url);
    let mut shown = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => match userinfo.split_once(':') {
                Some((user, _password)) => format!("{scheme}://{user}:***@{host}"),
                None => format!("{scheme}://{rest}"),
            },
            None => format!("{scheme}://{rest}"),
        },
        None => url.to_owned(),
    };
    if let Some(query) = query {
        let parameters: Vec<String> = query
            .split('&')
            .map(|parameter| match parameter.split_once('=') {
                Some((key, _))
                    if key.eq_ignore_ascii_case("password")
                        || key.eq_ignore_ascii_case("sslpassword") =>
                {
                    format!("{key}=***")
                }
                _ => parameter.to_owned(),
            })
            .collect();
        shown.push('?');
        shown.push_str(&parameters.join("&"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_never_shown_with_their_password() {
        let (config, _) = parse_url("postgres://app:secret@127.0.0.1:6543/wasm").unwrap();
        assert_eq!(shown_url(&config), "postgres://app@127.0.0.1:6543/wasm");
        let refusal = |url: &str| parse_url(url).unwrap_err().to_string();
        assert!(refusal("mysql://a@b/c").contains("not a PostgreSQL URL"));
        assert!(refusal("postgres://app:secret@/wasm").contains("no host"));
        assert!(!refusal("postgres://app:secret@h:notaport/db").contains("secret"));
        assert!(refusal("postgres://app@h:5432/db?sslmode=always").contains("sslmode=always"));
        assert!(refusal("postgres://app@h:5432").contains("no database"));
        assert_eq!(redact("postgres://u:p@h/d"), "postgres://u:***@h/d");
        assert_eq!(redact("postgres://u:p@ss@h/d"), "postgres://u:***@h/d");
        let query = "postgres://u@h/d?password=p&x=1";
        assert_eq!(redact(query), "postgres://u@h/d?password=***&x=1");
        assert_eq!(redact("postgres://u@h/d"), "postgres://u@h/d");
        assert_eq!(
            redact("postgres://u:p?x@h/d?a=1"),
            "postgres://u:***@h/d?a=1"
        );
        assert!(!refusal("postgres://app@h:5432?password=hunter2").contains("hunter2"));
    }
}
