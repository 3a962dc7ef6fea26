//! A real Django project standing for the platform (`tests/fixtures/django-platform`: users,
//! sessions, a per-dataset read permission, a forward-auth check view), installed from PyPI
//! into a virtual environment under `target/tools/` on first use and started on a free
//! loopback port per test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The Django version the fixture pins (its `requirements.txt`).
const DJANGO_VERSION: &str = "5.2.9";

/// A running Django platform; stopped when dropped.
pub struct Django {
    child: Child,
    /// Where it listens.
    pub port: u16,
    /// alice's session (a reader of `dataset-7`).
    pub alice: String,
    /// bob's session (logged in, not a reader).
    pub bob: String,
    /// One line per call of its check, to tell cache hits from misses.
    calls_file: PathBuf,
    _state: tempfile::TempDir,
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/django-platform")
}

/// The Python of a virtual environment with the fixture's requirements, made on first use.
fn django_python() -> PathBuf {
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let tools = crate::projects::target_dir().join("tools");
    let venv = tools.join(format!("django-{DJANGO_VERSION}"));
    let python = venv.join("bin/python");
    if venv.join("installed").exists() {
        return python;
    }
    std::fs::create_dir_all(&tools).unwrap();
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating a virtual environment for Django (python3 with venv is needed)",
    );
    let requirements = fixture().join("requirements.txt");
    run(
        Command::new(venv.join("bin/pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(requirements),
        "installing Django from PyPI",
    );
    std::fs::write(venv.join("installed"), DJANGO_VERSION).unwrap();
    python
}

fn run(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        output.status.success(),
        "{what}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

impl Django {
    /// Migrates a fresh database, seeds alice, bob and `dataset-7`, and serves on a free
    /// port, returning once it accepts connections.
    pub fn start() -> Self {
        let python = django_python();
        let state = tempfile::tempdir().unwrap();
        let calls_file = state.path().join("calls");
        let manage = |args: &[&str]| {
            let mut command = Command::new(&python);
            command
                .arg("manage.py")
                .args(args)
                .current_dir(fixture())
                .env("DJANGO_DB", state.path().join("db.sqlite3"))
                .env("DJANGO_CALLS_FILE", &calls_file)
                .env("PYTHONDONTWRITEBYTECODE", "1");
            command
        };
        run(
            &mut manage(&["migrate", "--noinput"]),
            "migrating the Django platform",
        );
        let seeded = run(&mut manage(&["seed"]), "seeding the Django platform");
        let sessions: serde_json::Value = serde_json::from_str(seeded.trim())
            .unwrap_or_else(|e| panic!("the seed's output is not JSON ({e}): {seeded}"));
        let port = crate::free_port();
        let child = manage(&["runserver", &format!("127.0.0.1:{port}"), "--noreload"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting Django's server");
        let django = Self {
            child,
            port,
            alice: sessions["alice"].as_str().unwrap().to_owned(),
            bob: sessions["bob"].as_str().unwrap().to_owned(),
            calls_file,
            _state: state,
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "Django did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        django
    }

    /// The URL of one of its views (`/auth/check`).
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// How many times its checks were called.
    pub fn calls(&self) -> usize {
        std::fs::read_to_string(&self.calls_file).map_or(0, |text| text.lines().count())
    }
}

impl Drop for Django {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
