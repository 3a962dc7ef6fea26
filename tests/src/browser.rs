//! A real headless Chromium driven over WebDriver: Debian's `chromium` and `chromium-driver`
//! (`.ci/run` installs them), a private `chromedriver` on a free port and a fresh profile,
//! both gone when the browser is dropped.

use fantoccini::{Client, ClientBuilder, Locator};
use std::os::unix::process::CommandExt as _;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The flags Chromium needs on these machines (no sandbox, no GPU, nothing in the background).
const CHROMIUM_FLAGS: [&str; 8] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
];

/// How long one WebDriver call may take before the test fails instead of hanging.
const CALL_DEADLINE: Duration = Duration::from_secs(30);

/// One browser at a time per test binary: two would share two cores with the servers.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A browser session; the driver and every browser process end on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    _driver: Driver,
    _profile: tempfile::TempDir,
    _turn: tokio::sync::MutexGuard<'static, ()>,
}

/// The `chromedriver` process, leading a process group with every browser process in it;
/// the whole group is killed on drop, panics included.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.id())])
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `call`, failing the test if it takes longer than [`CALL_DEADLINE`].
async fn within<T>(what: &str, call: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(CALL_DEADLINE, call)
        .await
        .unwrap_or_else(|_| panic!("WebDriver: {what} took over {CALL_DEADLINE:?}"))
}

/// The first of `candidates` that exists, or a panic that says what to install.
fn program(candidates: &[&str], package: &str) -> String {
    candidates
        .iter()
        .find(|path| std::path::Path::new(path).exists())
        .map(|path| (*path).to_owned())
        .unwrap_or_else(|| {
            panic!(
                "missing: {} (Debian: apt-get install {package}; `bash .ci/run` as root \
                 installs it)",
                candidates.join(" or ")
            )
        })
}

impl Browser {
    /// Starts `chromedriver` and a headless Chromium of `width`×`height`.
    pub async fn start(width: u32, height: u32) -> Self {
        let chromium = program(
            &["/usr/bin/chromium", "/usr/bin/chromium-browser"],
            "chromium",
        );
        let driver_path = program(
            &["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"],
            "chromium-driver",
        );
        let turn = ONE_AT_A_TIME.lock().await;
        let port = crate::free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .map(Driver)
            .expect("starting chromedriver");
        let profile = tempfile::tempdir().expect("a browser profile folder");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| (*f).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push(format!("--window-size={width},{height}"));
        let capabilities = serde_json::json!({
            "goog:chromeOptions": { "binary": chromium, "args": args }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object literal")
        };
        let url = format!("http://127.0.0.1:{port}");
        let client = connect(&url, capabilities).await;
        Self {
            client,
            _driver: driver,
            _profile: profile,
            _turn: turn,
        }
    }

    /// Ends the session (the browser quits), then the driver.
    pub async fn stop(self) {
        let _ = tokio::time::timeout(CALL_DEADLINE, self.client.clone().close()).await;
    }

    /// Waits until an element matching `css` has text containing `needle`; its text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            seen.clear();
            for text in self.texts(css).await {
                if text.contains(needle) {
                    return text;
                }
                seen.push(text);
            }
            assert!(
                Instant::now() < deadline,
                "no `{css}` says `{needle}` within 60 s; they say {seen:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until no element matching `css` has text containing `needle`.
    pub async fn wait_for_no_text(&self, css: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if !self.texts(css).await.iter().any(|t| t.contains(needle)) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` still says `{needle}` after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The texts of the elements matching `css` now (none if the page is redrawing them).
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut texts = Vec::new();
        let found = within("finding elements", self.client.find_all(Locator::Css(css))).await;
        for element in found.unwrap_or_default() {
            if let Ok(text) = within("reading a text", element.text()).await {
                texts.push(text);
            }
        }
        texts
    }

    /// Clicks the element matching `css`, again if the page redrew it in between.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match within("clicking", self.find(css).await.click()).await {
                Ok(()) => return,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(error) => panic!("clicking `{css}`: {error}"),
            }
        }
    }

    /// Types `text` into the element matching `css`, after clearing it.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        within("clearing", element.clear())
            .await
            .expect("clearing a field");
        within("typing", element.send_keys(text))
            .await
            .expect("typing");
    }

    /// The element matching `css`, waiting for it to exist.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        let wait = self
            .client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(css));
        tokio::time::timeout(Duration::from_secs(90), wait)
            .await
            .unwrap_or_else(|_| panic!("WebDriver: finding `{css}` hung"))
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }
}

/// A session with the driver at `url`, retried while it starts.
async fn connect(url: &str, capabilities: serde_json::Map<String, serde_json::Value>) -> Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let mut builder = ClientBuilder::new(connector);
        builder.capabilities(capabilities.clone());
        match within("starting a session", builder.connect(url)).await {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no WebDriver session at {url} within 60 s: {error}"),
        }
    }
}
