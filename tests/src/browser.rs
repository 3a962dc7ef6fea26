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

/// A browser session; the driver and every browser process end on drop.
pub struct Browser {
    /// The WebDriver session.
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
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
        let port = free_port();
        let driver = Command::new(driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
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
            driver,
            _profile: profile,
        }
    }

    /// Ends the session (the browser quits), then the driver.
    pub async fn stop(self) {
        let _ = self.client.clone().close().await;
    }

    /// Waits until an element matching `css` has text containing `needle`; its text.
    pub async fn wait_for_text(&self, css: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        loop {
            seen.clear();
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    if let Ok(text) = element.text().await {
                        if text.contains(needle) {
                            return text;
                        }
                        seen.push(text);
                    }
                }
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
            let mut found = false;
            if let Ok(elements) = self.client.find_all(Locator::Css(css)).await {
                for element in elements {
                    found |= element.text().await.is_ok_and(|t| t.contains(needle));
                }
            }
            if !found {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "`{css}` still says `{needle}` after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Clicks the element matching `css`, again if the page redrew it in between.
    pub async fn click(&self, css: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match self.find(css).await.click().await {
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
        element.clear().await.expect("clearing a field");
        element.send_keys(text).await.expect("typing");
    }

    /// The element matching `css`, waiting for it to exist.
    pub async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(60))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The driver leads a process group of its own, with every browser process in it.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.wait();
    }
}

/// A session with the driver at `url`, retried while it starts.
async fn connect(url: &str, capabilities: serde_json::Map<String, serde_json::Value>) -> Client {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(capabilities.clone())
            .connect(url)
            .await
        {
            Ok(client) => return client,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => panic!("no WebDriver session at {url} within 60 s: {error}"),
        }
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free port")
}
