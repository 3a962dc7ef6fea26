//! Live reload in a real headless Chromium: a page of an app that `wasmount dev` builds
//! from source reloads by itself after a saved edit, shows the compiler's message over the
//! page when a save breaks the build (the old version still answering underneath), and
//! drops it when the next save fixes it.
//! With `WASMOUNT_SCREENSHOTS=DIR` the test also saves the README's overlay screenshot there.

use std::time::{Duration, Instant};
use wasmount_tests::browser::Browser;
use wasmount_tests::projects::{FIRST_BUILD, REBUILD, Wasmount, edit, workdir};
use wasmount_tests::{eventually, try_send};

const WASMOUNT: Wasmount = Wasmount(env!("CARGO_BIN_EXE_wasmount-under-test"));

/// Runs `script` in the page; what it returns.
async fn eval(browser: &Browser, script: &str) -> serde_json::Value {
    browser
        .client
        .execute(script, vec![])
        .await
        .unwrap_or(serde_json::Value::Null)
}

/// Polls `script` in the page until it returns `true`, failing with `what` after `within`.
async fn until(browser: &Browser, what: &str, within: Duration, script: &str) {
    let deadline = Instant::now() + within;
    while eval(browser, script).await != serde_json::Value::Bool(true) {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The overlay's text, or `null` when there is none.
const OVERLAY_TEXT: &str =
    "return document.getElementById('wasmount-dev-overlay')?.shadowRoot.textContent ?? null;";

#[tokio::test(flavor = "multi_thread")]
async fn an_open_page_reloads_after_a_save_and_shows_a_broken_build_over_itself() {
    let dir = workdir();
    let project = WASMOUNT.new_project(dir.path(), "live-app", "rust");
    let server = WASMOUNT.start_dev(&dir.path().join("apps"), &[&project]);
    let url = format!("http://{}/live-app/", server.addr);
    eventually("the first build serving", FIRST_BUILD, || async {
        let response = try_send(
            server.addr,
            http::Method::GET,
            "/live-app/",
            Default::default(),
            &[],
        )
        .await
        .ok()?;
        (response.status == 200).then_some(())
    })
    .await;

    let browser = Browser::start(1100, 700).await;
    browser.client.goto(&url).await.expect("opening the app");
    browser.wait_for_text("footer", "Rust on wasmount").await;
    // A mark that lives only as long as this page: a reload drops it.
    eval(&browser, "window.notReloaded = true; return true;").await;

    let main = project.join("src/main.rs");
    edit(
        &main,
        "Rust on wasmount",
        "Rust on wasmount, reloaded by itself",
    );
    until(
        &browser,
        "the page reloaded with the edit",
        REBUILD,
        "return window.notReloaded === undefined && \
         document.querySelector('footer')?.textContent.includes('reloaded by itself') === true;",
    )
    .await;
    eval(&browser, "window.notReloaded = true; return true;").await;

    edit(&main, "async fn main", "async fn main(");
    until(
        &browser,
        "the overlay with the compiler's message",
        REBUILD,
        "const text = document.getElementById('wasmount-dev-overlay')?.shadowRoot.textContent; \
         return text !== undefined && text.includes('src/main.rs:');",
    )
    .await;
    let overlay = eval(&browser, OVERLAY_TEXT).await;
    let overlay = overlay.as_str().unwrap_or_default();
    assert!(
        overlay.contains("live-app: the last build failed"),
        "{overlay}"
    );
    assert!(overlay.contains("still serving"), "{overlay}");
    assert_eq!(
        eval(&browser, "return window.notReloaded === true;").await,
        true,
        "a failed build does not reload the page"
    );
    if let Some(folder) = std::env::var_os("WASMOUNT_SCREENSHOTS") {
        let png = browser.client.screenshot().await.expect("a screenshot");
        let folder = std::path::PathBuf::from(folder);
        std::fs::create_dir_all(&folder).expect("the screenshot folder");
        std::fs::write(folder.join("dev-overlay.png"), png).expect("saving the screenshot");
    }

    // Fixed back to the version serving: nothing to reload, the overlay just goes.
    edit(&main, "async fn main(", "async fn main");
    until(
        &browser,
        "the overlay gone",
        REBUILD,
        "return document.getElementById('wasmount-dev-overlay') === null;",
    )
    .await;
    browser.stop().await;
}
