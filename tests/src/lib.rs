//! Test support: guest components built from source, a real wasmount server on a free port,
//! and a small real HTTP client.

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::Full;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use wasmount::config::{Config, EngineConfig};
use wasmount::engine::WasmEngine;

/// A real headless Chromium over WebDriver.
pub mod browser;
/// Test certificates made with openssl.
pub mod certs;
/// A real Django platform (sessions, a per-dataset permission, a forward-auth view).
pub mod django;
/// An HTTPS client: HTTP/2 or HTTP/1.1 over rustls.
pub mod https;
/// A private PostgreSQL server per test.
pub mod postgres;
/// App projects made with `wasmount new` and served by `wasmount dev`.
pub mod projects;
/// A private OCI registry per test, and the ORAS client.
pub mod registry;

/// Paths of the guest components, built by `build.rs` from `guests/`.
pub mod guests {
    include!(concat!(env!("OUT_DIR"), "/guests.rs"));
}

/// The longest any single test request may take before the test fails instead of hanging.
pub const REQUEST_DEADLINE: Duration = Duration::from_secs(180);

/// One engine for every server in this test binary: creating the pool is not free.
pub fn shared_engine() -> WasmEngine {
    static ENGINE: OnceLock<WasmEngine> = OnceLock::new();
    ENGINE
        .get_or_init(|| WasmEngine::new(&EngineConfig::default()).expect("creating the engine"))
        .clone()
}

/// A running server with its own apps folder; shut down (gracefully) on drop.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its apps folder.
    pub apps_dir: tempfile::TempDir,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestServer {
    /// Serves `apps` (name, component path) with the default settings.
    pub async fn start(apps: &[(&str, &str)]) -> Self {
        Self::start_with(apps, |_| {}).await
    }

    /// Serves `apps` after `configure` adjusts the settings.
    pub async fn start_with(apps: &[(&str, &str)], configure: impl FnOnce(&mut Config)) -> Self {
        let apps_dir = tempfile::tempdir().expect("creating an apps folder");
        for (name, source) in apps {
            std::fs::copy(source, apps_dir.path().join(format!("{name}.wasm")))
                .expect("copying a guest into the apps folder");
        }
        Self::start_in(apps_dir, configure).await
    }

    /// Serves an apps folder the caller filled.
    pub async fn start_in(
        apps_dir: tempfile::TempDir,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        Self::start_in_with_engine(apps_dir, shared_engine(), configure).await
    }

    /// Serves an apps folder the caller filled, on an engine of its own (for tests of the
    /// engine's limits).
    pub async fn start_in_with_engine(
        apps_dir: tempfile::TempDir,
        engine: WasmEngine,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let mut config = Config::new(apps_dir.path());
        configure(&mut config);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding port 0");
        let addr = listener.local_addr().unwrap();
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(wasmount::server::run_with_engine(
            listener,
            config,
            engine,
            async move {
                let _ = stop.await;
            },
        ));
        let server = Self {
            addr,
            apps_dir,
            shutdown: Some(shutdown),
            task: Some(task),
        };
        server.wait_until_healthy().await;
        server
    }

    async fn wait_until_healthy(&self) {
        let addr = self.addr;
        eventually(
            "the server to be healthy",
            REQUEST_DEADLINE,
            || async move {
                let health = try_send(addr, Method::GET, "/_wasmount/health", Bytes::new(), &[]);
                health
                    .await
                    .ok()
                    .filter(|response| response.status == StatusCode::OK)
            },
        )
        .await;
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> TestResponse {
        self.send(Method::GET, path, Bytes::new(), &[]).await
    }

    /// Sends one request on a new connection; panics if it fails or takes too long.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: impl Into<Bytes>,
        headers: &[(&str, &str)],
    ) -> TestResponse {
        tokio::time::timeout(
            REQUEST_DEADLINE,
            try_send(self.addr, method, path, body.into(), headers),
        )
        .await
        .unwrap_or_else(|_| panic!("request to {path} took longer than {REQUEST_DEADLINE:?}"))
        .unwrap_or_else(|error| panic!("request to {path} failed: {error:#}"))
    }

    /// Starts a graceful shutdown and waits for the server to finish.
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.take().expect("server task").await?
    }

    /// Shuts down gracefully and hands back the apps folder, to restart on it.
    pub async fn stop_keeping_apps(mut self) -> tempfile::TempDir {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        let task = self.task.take().expect("server task");
        task.await.expect("server task").expect("server ran");
        let placeholder = tempfile::tempdir().expect("creating a temp folder");
        std::mem::replace(&mut self.apps_dir, placeholder)
    }

    /// Starts a graceful shutdown without waiting; returns the server task.
    pub fn begin_shutdown(&mut self) -> JoinHandle<anyhow::Result<()>> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        self.task.take().expect("server task")
    }

    /// The apps folder.
    pub fn apps_path(&self) -> &Path {
        self.apps_dir.path()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

/// What a test sees of a response.
#[derive(Debug)]
pub struct TestResponse {
    /// The status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
}

impl TestResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// A header as text; panics if missing.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no `{name}` header in {self:?}"))
            .to_str()
            .unwrap()
    }
}

/// Sends one HTTP/1.1 request on a new connection to `addr` and reads the whole response.
///
/// # Errors
///
/// Connection, protocol or body errors.
pub async fn try_send(
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Bytes,
    headers: &[(&str, &str)],
) -> anyhow::Result<TestResponse> {
    let mut request = Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", addr.to_string());
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response =
        wasmount::client::send(&addr.to_string(), request.body(Full::new(body))?).await?;
    let (parts, body) = response.into_parts();
    Ok(TestResponse {
        status: parts.status,
        headers: parts.headers,
        body,
    })
}

/// Polls `check` until it returns `Some`, failing with `what` after `within`. For conditions
/// that take as long as the machine needs (a background compile, a file event, a sweep).
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let started = std::time::Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            started.elapsed() < within,
            "timed out after {within:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Uploads app `name` to the server at `addr` as a multipart body of `parts`.
pub async fn put_multipart_to(
    addr: SocketAddr,
    name: &str,
    parts: &[(&str, &[u8])],
) -> TestResponse {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let (content_type, body) = multipart(parts);
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", content_type.as_str()),
    ];
    let path = format!("/_wasmount/apps/{name}");
    try_send(addr, Method::PUT, &path, Bytes::from(body), &headers)
        .await
        .expect("an answer to the upload")
}

/// A loopback port nobody listens on now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("finding a free port")
        .port()
}

impl TestServer {
    /// How many requests app `app` runs now (`wasmount_requests_in_flight`). The server
    /// must serve its metrics publicly (`public_metrics`) or to [`ADMIN_TOKEN`].
    pub async fn in_flight(&self, app: &str) -> u64 {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        let page = self
            .send(
                Method::GET,
                "/_wasmount/metrics",
                Bytes::new(),
                &[("authorization", &auth)],
            )
            .await;
        assert_eq!(page.status, StatusCode::OK, "metrics: {}", page.text());
        let gauge = format!("wasmount_requests_in_flight{{app=\"{app}\"}} ");
        let text = page.text();
        let value = text.lines().find_map(|line| line.strip_prefix(&gauge));
        value.map_or(0, |n| n.trim().parse().expect("an in-flight count"))
    }

    /// Waits until app `app` runs at least `count` requests at once: a condition polled,
    /// not a sleep that assumes a fast machine.
    pub async fn wait_in_flight(&self, app: &str, count: u64) {
        let what = format!("{count} requests of `{app}` in flight");
        eventually(&what, Duration::from_secs(60), || async {
            (self.in_flight(app).await >= count).then_some(())
        })
        .await;
    }
}

/// The admin token test servers are started with.
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

impl TestServer {
    /// Serves `apps` with the admin API open to [`ADMIN_TOKEN`], after `configure`.
    pub async fn start_admin(apps: &[(&str, &str)], configure: impl FnOnce(&mut Config)) -> Self {
        Self::start_with(apps, |config| {
            config.admin_token = Some(ADMIN_TOKEN.to_owned());
            configure(config);
        })
        .await
    }

    /// An admin API call with the right token.
    pub async fn admin(&self, method: Method, path: &str, body: impl Into<Bytes>) -> TestResponse {
        let auth = format!("Bearer {ADMIN_TOKEN}");
        self.send(method, path, body, &[("authorization", &auth)])
            .await
    }

    /// `PUT /_wasmount/apps/NAME` with a `multipart/form-data` body of `parts` and the token.
    pub async fn put_multipart(&self, name: &str, parts: &[(&str, &[u8])]) -> TestResponse {
        put_multipart_to(self.addr, name, parts).await
    }

    /// The file names in the apps folder, sorted (the cache folder excluded).
    pub fn stored_files(&self) -> Vec<String> {
        list_files(self.apps_path())
    }
}

/// A `multipart/form-data` body with the given `(name, bytes)` parts, and its content type.
pub fn multipart(parts: &[(&str, &[u8])]) -> (String, Vec<u8>) {
    let typed: Vec<_> = parts
        .iter()
        .map(|(name, bytes)| (*name, "application/octet-stream", *bytes))
        .collect();
    wasmount::client::multipart(&typed)
}

/// The file names in `dir`, sorted, without the `.cache` and `.instances` folders.
pub fn list_files(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("reading the apps folder")
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name != ".cache" && name != ".instances")
        .collect();
    names.sort();
    names
}

/// A plain HTTP server on 127.0.0.1 answering every request with `body`; counts connections.
pub async fn data_server(
    body: &'static str,
) -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let service = hyper::service::service_fn(move |_request| async move {
                Ok::<_, std::convert::Infallible>(http::Response::new(http_body_util::Full::new(
                    Bytes::from(body),
                )))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    (addr, connections)
}

/// `text` encoded as one `application/x-www-form-urlencoded` value.
pub fn form_urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The body as JSON; panics with the body if it is not.
pub fn json(response: &TestResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", response.text()))
}

/// Lowercase hex SHA-256 of a file.
pub fn sha256_of(path: &str) -> String {
    wasmount::client::sha256_hex(&std::fs::read(path).expect("reading a guest"))
}

/// A `wasmount` process (the real program), for tests that signal, kill or restart it.
pub struct ServerProcess {
    /// The child process.
    pub child: std::process::Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Every line it logged so far.
    pub log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServerProcess {
    /// Runs `BIN serve --listen 127.0.0.1:0 ARGS…` and waits for its ready line. Integration
    /// tests pass `env!("CARGO_BIN_EXE_wasmount-under-test")` as `bin`.
    pub fn start(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_command(std::process::Command::new(bin), "serve", args, envs)
    }

    /// [`ServerProcess::start`] for `BIN dev --listen 127.0.0.1:0 ARGS…`.
    pub fn start_dev(bin: &str, args: &[&str], envs: &[(&str, &str)]) -> Self {
        Self::start_command(std::process::Command::new(bin), "dev", args, envs)
    }

    /// [`ServerProcess::start`] with at most `open_files` file descriptors (`prlimit`).
    pub fn start_with_open_files(
        bin: &str,
        open_files: u32,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        let mut command = std::process::Command::new("prlimit");
        command
            .arg(format!("--nofile={open_files}:{open_files}"))
            .arg(bin);
        Self::start_command(command, "serve", args, envs)
    }

    fn start_command(
        mut command: std::process::Command,
        subcommand: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Self {
        use std::io::BufRead as _;
        let mut child = command
            .args([subcommand, "--listen", "127.0.0.1:0"])
            .args(args)
            .envs(envs.iter().copied())
            .env("WASMOUNT_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("starting the server");
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = std::io::BufReader::new(stderr).lines();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut addr = None;
        while addr.is_none() && std::time::Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else {
                break; // the server exited before listening
            };
            if let Some(at) = line.find("listening on http") {
                let rest = &line[at + "listening on http".len()..];
                let rest = rest.trim_start_matches('s').trim_start_matches("://");
                addr = rest.split('/').next().and_then(|a| a.parse().ok());
            }
            log.lock().unwrap().push(line);
        }
        // Wrap the child first, so it is killed and reaped on every path, panics included.
        let mut server = Self {
            child,
            addr: "0.0.0.0:0".parse().expect("an address"),
            log: log.clone(),
        };
        server.addr = addr.expect("the server printed `listening on http(s)://ADDR` within 60 s");
        // Keep reading stderr so the server never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                log.lock().unwrap().push(line);
            }
        });
        server
    }

    /// Sends a signal (`TERM`, `KILL`, …) with `kill(1)`.
    pub fn signal(&self, name: &str) {
        let status = std::process::Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// Waits for the process to exit, at most `deadline`.
    pub fn wait(&mut self, deadline: Duration) -> std::process::ExitStatus {
        let started = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            if started.elapsed() > deadline {
                let _ = self.child.kill();
                panic!("the server did not exit within {deadline:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
