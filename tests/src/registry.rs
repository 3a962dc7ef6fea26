//! A private OCI registry per test: Debian's `docker-registry` (the CNCF distribution
//! registry) serving a temp folder on a free loopback port, killed on drop; and the ORAS
//! Python client (`oras` from PyPI, pinned, in a virtual environment under `target/tools/`)
//! as an independent pusher.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The ORAS Python client version the tests push with.
const ORAS_VERSION: &str = "0.2.43";

/// A running registry.
pub struct Registry {
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// Where it keeps blobs and manifests.
    pub storage: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry and waits until it answers `/v2/`.
    pub fn start() -> Self {
        let program = "/usr/bin/docker-registry";
        assert!(
            Path::new(program).exists(),
            "missing: {program} (Debian: apt-get install docker-registry; `bash .ci/run` as root installs it)"
        );
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = crate::free_port();
        let address = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        let yaml = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {address}\n",
            storage.display()
        );
        std::fs::write(&config, yaml).unwrap();
        let child = Command::new(program)
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting docker-registry");
        let registry = Self {
            address,
            storage,
            child,
            _dir: dir,
        };
        registry.wait_until_up();
        registry
    }

    fn wait_until_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answered = std::net::TcpStream::connect(&self.address).is_ok_and(|mut stream| {
                use std::io::{Read as _, Write as _};
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.address);
                let mut reply = String::new();
                stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut reply).is_ok()
                    && reply.starts_with("HTTP/1.0 200")
            });
            if answered {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the registry did not answer /v2/ within 60 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The stored blob of `digest` (`sha256:…`).
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Python of a virtual environment with the ORAS client, made on first use.
pub fn oras_python() -> PathBuf {
    // Tests of one binary install it once, one after another.
    static INSTALLING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _installing = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    let tools = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/tools");
    let venv = tools.join(format!("oras-{ORAS_VERSION}"));
    let python = venv.join("bin/python");
    if python.exists() && venv.join("installed").exists() {
        return python;
    }
    std::fs::create_dir_all(&tools).unwrap();
    let run = |command: &mut Command, what: &str| {
        let output = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(
            output.status.success(),
            "{what}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
        "creating a virtual environment for oras (python3 with venv is needed)",
    );
    run(
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("oras=={ORAS_VERSION}"),
        ]),
        "installing oras from PyPI",
    );
    std::fs::write(venv.join("installed"), ORAS_VERSION).unwrap();
    python
}

/// Pushes `file` to `target` (`HOST:PORT/REPO:TAG`, plain HTTP) with the ORAS client, as a
/// single layer of `media_type`.
pub fn oras_push(file: &Path, media_type: &str, target: &str) {
    let script = "import sys, oras.client
file, media_type, target = sys.argv[1:]
client = oras.client.OrasClient(insecure=True)
client.push(files=[f'{file}:{media_type}'], target=target, disable_path_validation=True)
";
    let output = Command::new(oras_python())
        .args(["-c", script])
        .arg(file)
        .args([media_type, target])
        .output()
        .expect("running the oras client");
    assert!(
        output.status.success(),
        "oras push: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
