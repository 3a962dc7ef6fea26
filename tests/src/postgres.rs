//! A private PostgreSQL server for one test: `initdb` into a temp folder, started on a free
//! loopback port with password logins (as the `postgres` OS user when the tests run as
//! root), stopped and started again on demand, and stopped when dropped. Never a shared
//! server, never a mock.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database and login role the tests' nodes use.
pub const DATABASE: &str = "wasmount";
/// The password of [`DATABASE`]'s role.
pub const PASSWORD: &str = "test-store-password";
const SUPERUSER_PASSWORD: &str = "test-superuser-password";

/// A running PostgreSQL server of a test's own.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// `(uid, gid)` of the `postgres` user when running as root.
    run_as: Option<(u32, u32)>,
    running: bool,
    /// Whether it serves TLS (with a certificate for 127.0.0.1 from [`Postgres::ca_cert`]).
    tls: bool,
}

impl Postgres {
    /// Creates and starts a server with a `wasmount` role and database.
    ///
    /// # Panics
    ///
    /// If the PostgreSQL server binaries are missing (the message says how to install
    /// them) or the server does not start.
    pub fn start() -> Self {
        Self::start_inner(false)
    }

    /// [`Postgres::start`], also serving TLS with a certificate for `127.0.0.1` signed by a
    /// test CA of its own ([`Postgres::ca_cert`]); plain connections still work.
    pub fn start_with_tls() -> Self {
        Self::start_inner(true)
    }

    fn start_inner(tls: bool) -> Self {
        let bin = server_binaries();
        let dir = tempfile::tempdir().expect("creating a folder for the database");
        let run_as = postgres_user();
        if let Some((uid, gid)) = run_as {
            let status = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(dir.path())
                .status()
                .expect("running chown");
            assert!(status.success(), "chown of the database folder failed");
        }
        let mut server = Self {
            bin,
            dir,
            port: crate::free_port(),
            run_as,
            running: false,
            tls,
        };
        if tls {
            server.make_certificates();
        }
        let password_file = server.dir.path().join("superuser-password");
        std::fs::write(&password_file, SUPERUSER_PASSWORD).unwrap();
        if let Some((uid, gid)) = run_as {
            let _ = Command::new("chown")
                .arg(format!("{uid}:{gid}"))
                .arg(&password_file)
                .status();
        }
        server.run_checked(
            "initdb",
            &[
                "-D",
                server.data().to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                password_file.to_str().unwrap(),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        server.start_again();
        server.sql_in(
            "postgres",
            &format!("CREATE ROLE {DATABASE} LOGIN PASSWORD '{PASSWORD}'"),
        );
        server.sql_in(
            "postgres",
            &format!("CREATE DATABASE {DATABASE} OWNER {DATABASE}"),
        );
        server
    }

    /// The test CA's certificate (PEM), the root a verifying client trusts.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// A CA, and a server certificate for `127.0.0.1` and `localhost` signed by it.
    fn make_certificates(&self) {
        let dir = self.dir.path();
        crate::certs::make_ca(dir);
        crate::certs::issue(dir, "server");
        let key = dir.join("server.key");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if let Some((uid, gid)) = self.run_as {
            for file in ["server.key", "server.crt"] {
                std::os::unix::fs::chown(dir.join(file), Some(uid), Some(gid)).unwrap();
            }
        }
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The URL nodes use: `postgres://wasmount:PASSWORD@127.0.0.1:PORT/wasmount`.
    pub fn url(&self) -> String {
        self.url_of(DATABASE)
    }

    /// The URL of database `database` (owned by the superuser), with the `wasmount` role.
    pub fn url_of(&self, database: &str) -> String {
        format!(
            "postgres://{DATABASE}:{PASSWORD}@127.0.0.1:{}/{database}",
            self.port
        )
    }

    /// Starts the (stopped) server again on its port, waiting until it accepts logins.
    pub fn start_again(&mut self) {
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories='{}' \
             -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        if self.tls {
            let dir = self.dir.path().display();
            options.push_str(&format!(
                " -c ssl=on -c ssl_cert_file='{dir}/server.crt' -c ssl_key_file='{dir}/server.key'"
            ));
        }
        let log = self.dir.path().join("server.log");
        self.run_checked(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-t",
                "120",
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &options,
            ],
        );
        self.running = true;
    }

    /// Stops the server (fast shutdown: connections are cut).
    pub fn stop(&mut self) {
        self.run_checked(
            "pg_ctl",
            &[
                "stop",
                "-w",
                "-m",
                "fast",
                "-D",
                self.data().to_str().unwrap(),
            ],
        );
        self.running = false;
    }

    /// Runs `sql` as the superuser in the `wasmount` database; returns what psql printed
    /// (unaligned, tuples only).
    ///
    /// # Panics
    ///
    /// If psql fails.
    pub fn sql(&self, sql: &str) -> String {
        self.sql_in(DATABASE, sql)
    }

    /// [`Postgres::sql`] in database `database`.
    pub fn sql_in(&self, database: &str, sql: &str) -> String {
        let port = self.port.to_string();
        let output = self.run(
            "psql",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "postgres",
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-A",
                "-t",
                "-c",
                sql,
            ],
        );
        assert!(
            output.status.success(),
            "psql failed on `{sql}`: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut command = Command::new(self.bin.join(program));
        command
            .args(args)
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .current_dir(self.dir.path());
        if let Some((uid, gid)) = self.run_as {
            command.uid(uid).gid(gid);
        }
        command
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"))
    }

    fn run_checked(&self, program: &str, args: &[&str]) {
        let output = self.run(program, args);
        if !output.status.success() {
            let log =
                std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default();
            panic!(
                "{program} failed: {}{}\nserver log:\n{log}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let data = self.data();
            let _ = self.run(
                "pg_ctl",
                &[
                    "stop",
                    "-w",
                    "-m",
                    "immediate",
                    "-D",
                    data.to_str().unwrap(),
                ],
            );
        }
    }
}

/// The folder of PostgreSQL's server programs (`initdb`, `pg_ctl`, `postgres`, `psql`).
///
/// # Panics
///
/// When none is installed, saying how to install one.
pub fn server_binaries() -> PathBuf {
    let root = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<PathBuf> = std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
                .filter(|bin| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
                .collect()
        })
        .unwrap_or_default();
    versions.sort();
    versions.pop().unwrap_or_else(|| {
        panic!(
            "PostgreSQL's server programs are not installed (no /usr/lib/postgresql/*/bin/initdb): \
             install them with `apt-get install postgresql` (the README's test command, \
             .ci/run, does this)"
        )
    })
}

/// The `postgres` user's ids when running as root (initdb refuses to run as root).
fn postgres_user() -> Option<(u32, u32)> {
    let id = |args: &[&str]| -> Option<u32> {
        let output = Command::new("id").args(args).output().ok()?;
        String::from_utf8_lossy(&output.stdout).trim().parse().ok()
    };
    if id(&["-u"])? != 0 {
        return None;
    }
    let ids = id(&["-u", "postgres"]).zip(id(&["-g", "postgres"]));
    Some(
        ids.expect(
            "running as root needs a `postgres` user (Debian's postgresql package makes it)",
        ),
    )
}
