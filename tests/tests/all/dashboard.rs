//! The dashboard at `/_wasmount/ui/`, used in a real headless Chromium over WebDriver: a wrong
//! token refused, log in, the apps listed with live figures, a component (and its manifest)
//! deployed from a file input, listed and answering, its manifest shown, a component dropped
//! on the page, an instance launched from pasted JSON and its link opened, guest output
//! followed live, both deleted; and on a phone-sized screen nothing runs off the side.
//! With `WASMOUNT_SCREENSHOTS=DIR` the test also saves the README's screenshots there.

use fantoccini::Locator;
use http::StatusCode;
use std::path::PathBuf;
use std::time::Duration;
use wasmount_tests::browser::Browser;
use wasmount_tests::{ADMIN_TOKEN, TestServer, guests};

/// Where the screenshots go, when asked for.
fn screenshot_dir() -> Option<PathBuf> {
    std::env::var_os("WASMOUNT_SCREENSHOTS").map(PathBuf::from)
}

async fn screenshot(browser: &Browser, name: &str) {
    if let Some(dir) = screenshot_dir() {
        let png = browser.client.screenshot().await.expect("a screenshot");
        std::fs::create_dir_all(&dir).expect("the screenshot folder");
        std::fs::write(dir.join(name), png).expect("saving a screenshot");
    }
}

async fn log_in(browser: &Browser, server: &TestServer, token: &str) {
    let page = format!("http://{}/_wasmount/ui/", server.addr);
    browser
        .client
        .goto(&page)
        .await
        .expect("opening the dashboard");
    browser.type_into("#token", token).await;
    browser.click("#login-form button[type=submit]").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboard_deploys_launches_follows_and_deletes_in_a_real_browser() {
    let server = TestServer::start_admin(&[("hello", guests::HELLO)], |_| {}).await;
    for _ in 0..5 {
        assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    }
    let browser = Browser::start(1280, 900).await;

    log_in(&browser, &server, "not-the-admin-token").await;
    browser
        .wait_for_text("#login-message", "wrong admin token")
        .await;
    browser.type_into("#token", ADMIN_TOKEN).await;
    browser.click("#login-form button[type=submit]").await;
    let row = browser.wait_for_text("#apps-table tbody tr", "hello").await;
    assert!(row.contains("serving"), "{row}");
    let facts = browser
        .wait_for_text("#server-facts", env!("CARGO_PKG_VERSION"))
        .await;
    assert!(!facts.contains("Uptime\n?"), "{facts}");

    // A component and its manifest, from file inputs.
    let folder = tempfile::tempdir().unwrap();
    let manifest = folder.path().join("greeter.toml");
    std::fs::write(
        &manifest,
        "environment = { GREETING = \"hi-from-the-manifest\" }\n",
    )
    .unwrap();
    let file_input = browser.find("#deploy-file").await;
    file_input
        .send_keys(guests::ECHO)
        .await
        .expect("choosing the component");
    let manifest_input = browser.find("#deploy-manifest").await;
    manifest_input
        .send_keys(manifest.to_str().unwrap())
        .await
        .expect("choosing the manifest");
    browser.type_into("#deploy-name", "greeter").await;
    browser.click("#deploy-button").await;
    browser.wait_for_text("#deploy-result", "201").await;
    browser
        .wait_for_text("#apps-table tbody tr", "greeter")
        .await;
    let env = server.get("/greeter/env").await;
    assert_eq!(env.status, StatusCode::OK);
    assert!(
        env.text().contains("GREETING=hi-from-the-manifest"),
        "{}",
        env.text()
    );
    browser
        .click("#apps-table tr[data-app=greeter] button.manifest")
        .await;
    browser
        .wait_for_text("#manifest-text", "hi-from-the-manifest")
        .await;
    browser.click("#manifest-close").await;

    // Not a component, dropped on the page: the server's refusal is shown.
    drop_file(&browser, "broken.wasm", "not a component").await;
    let refusal = browser.wait_for_text("#deploy-result", "400").await;
    assert!(refusal.contains("not a WebAssembly component"), "{refusal}");

    // An instance launched from pasted JSON, its link opened.
    browser.wait_for_text("#launch-app", "greeter").await;
    browser
        .find("#launch-app")
        .await
        .select_by_value("greeter")
        .await
        .expect("choosing the app");
    browser
        .type_into("#launch-input", r#"{"dataset": "d-42"}"#)
        .await;
    browser.type_into("#launch-name", "dataset-42").await;
    browser.click("#launch-button").await;
    let link = browser.find("#launched-link").await;
    let url = link
        .attr("href")
        .await
        .unwrap()
        .expect("the link's address");
    browser
        .wait_for_text("#instances-table tbody", "dataset-42")
        .await;

    // Guest output followed live.
    browser
        .find("#log-app")
        .await
        .select_by_value("greeter")
        .await
        .unwrap();
    browser.click("#log-button").await;
    browser
        .wait_for_text("#log-state", "following greeter")
        .await;
    wasmount_tests::eventually(
        "the guest line in the page",
        std::time::Duration::from_secs(60),
        || async {
            server.get("/greeter/log?msg=line-from-the-guest").await;
            browser
                .client
                .find(Locator::Css("#log-lines"))
                .await
                .ok()?
                .text()
                .await
                .ok()
                .filter(|text| text.contains("line-from-the-guest"))
        },
    )
    .await;
    // Traffic shows up in the table: a rate above zero, percentiles in milliseconds.
    let greeter = "#apps-table tr[data-app=greeter] td";
    let cells = wasmount_tests::eventually(
        "greeter's live figures",
        Duration::from_secs(60),
        || async {
            server.get("/greeter/?n=1").await;
            let cells = browser.texts(greeter).await;
            let rate: f64 = cells.get(7)?.parse().ok()?;
            (rate > 0.0 && cells.get(9)?.ends_with(" ms")).then_some(cells)
        },
    )
    .await;
    assert!(cells[10].ends_with(" ms"), "{cells:?}");
    scroll_to(&browser, "header").await;
    screenshot(&browser, "dashboard.png").await;
    scroll_to(&browser, "#instances").await;
    screenshot(&browser, "dashboard-instances.png").await;

    // The instance in a tab of its own, as the link opens it.
    let dashboard_tab = browser.client.window().await.unwrap();
    let tab = browser.client.new_window(true).await.unwrap();
    browser.client.switch_to_window(tab.handle).await.unwrap();
    browser.client.goto(&format!("{url}env")).await.unwrap();
    let page = browser.wait_for_text("body", "INPUT_JSON").await;
    assert!(page.contains("d-42"), "{page}");
    browser.client.close_window().await.unwrap();
    browser
        .client
        .switch_to_window(dashboard_tab)
        .await
        .unwrap();

    // Reloaded, the tab is still logged in; delete both, confirming.
    browser.client.refresh().await.unwrap();
    browser
        .wait_for_text("#instances-table tbody", "dataset-42")
        .await;
    browser
        .click("#instances-table tr[data-instance=dataset-42] button.danger")
        .await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for_no_text("#instances-table tbody", "dataset-42")
        .await;
    assert_eq!(
        server.get("/dataset-42/").await.status,
        StatusCode::NOT_FOUND
    );
    browser
        .click("#apps-table tr[data-app=greeter] button.danger")
        .await;
    browser.click("#confirm-yes").await;
    browser
        .wait_for_no_text("#apps-table tbody", "greeter")
        .await;
    assert_eq!(server.get("/greeter/").await.status, StatusCode::NOT_FOUND);
    assert_eq!(server.get("/hello/").await.status, StatusCode::OK);
    browser.stop().await;
}

/// The page's content security policy violations so far (directive and blocked address).
async fn csp_violations(browser: &Browser) -> Vec<String> {
    let script = "const seen = new ReportingObserver(() => {}, { types: ['csp-violation'], buffered: true });
        seen.observe();
        const reports = seen.takeRecords();
        seen.disconnect();
        return reports.map((r) => r.body.effectiveDirective + ' ' + r.body.blockedURL);";
    let found = browser.client.execute(script, vec![]).await.unwrap();
    serde_json::from_value(found).unwrap()
}

/// Scrolls the page so the element matching `css` is at the top.
async fn scroll_to(browser: &Browser, css: &str) {
    browser
        .client
        .execute(
            "document.querySelector(arguments[0]).scrollIntoView();",
            vec![css.into()],
        )
        .await
        .expect("scrolling");
}

/// Drops a file named `name` holding `text` on the page, as a user dragging it there would.
async fn drop_file(browser: &Browser, name: &str, text: &str) {
    let script = "const [name, text] = arguments;
        const list = new DataTransfer();
        list.items.add(new File([text], name, { type: 'application/wasm' }));
        document.body.dispatchEvent(new DragEvent('drop', { dataTransfer: list, bubbles: true }));
        document.getElementById('deploy-button').click();";
    browser
        .client
        .execute(script, vec![name.into(), text.into()])
        .await
        .expect("dropping a file");
}

#[tokio::test(flavor = "multi_thread")]
async fn on_a_phone_the_dashboard_fits_the_screen() {
    let server = TestServer::start_admin(&[("hello", guests::HELLO)], |_| {}).await;
    let browser = Browser::start(390, 844).await;
    log_in(&browser, &server, ADMIN_TOKEN).await;
    browser.wait_for_text("#apps-table tbody tr", "hello").await;
    browser.wait_for_text("#server-facts", "Uptime").await;
    let overflow = browser
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert!(
        overflow.as_i64().is_some_and(|extra| extra <= 0),
        "the page is {overflow} px wider than the screen"
    );
    screenshot(&browser, "dashboard-phone.png").await;

    // Nothing on the page broke its content security policy; a deliberate breach is seen.
    assert_eq!(csp_violations(&browser).await, Vec::<String>::new());
    let breach = "const img = document.createElement('img');
        img.src = 'http://example.invalid/x.png';
        document.body.append(img);";
    browser.client.execute(breach, vec![]).await.unwrap();
    wasmount_tests::eventually("the breach reported", Duration::from_secs(60), || async {
        let seen = csp_violations(&browser).await;
        seen.iter().any(|v| v.contains("img-src")).then_some(())
    })
    .await;
    browser.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_dashboards_files_are_embedded_public_and_locked_to_this_origin() {
    let server = TestServer::start_admin(&[], |_| {}).await;
    let moved = server.get("/_wasmount/ui").await;
    assert_eq!(moved.status, StatusCode::PERMANENT_REDIRECT);
    assert_eq!(moved.header("location"), "ui/");
    let page = server.get("/_wasmount/ui/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.header("content-type").starts_with("text/html"));
    let policy = page.header("content-security-policy");
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    let html = page.text();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    for (asset, kind) in [
        ("dashboard.js", "text/javascript"),
        ("dashboard.css", "text/css"),
        ("favicon.svg", "image/svg+xml"),
    ] {
        assert!(html.contains(asset), "the page does not load {asset}");
        let file = server.get(&format!("/_wasmount/ui/{asset}")).await;
        assert_eq!(file.status, StatusCode::OK, "{asset}");
        assert!(file.header("content-type").starts_with(kind), "{asset}");
    }
    let script = server.get("/_wasmount/ui/dashboard.js").await.text();
    assert!(script.contains("sessionStorage") && !script.contains("document.cookie"));
    assert_eq!(
        server.get("/_wasmount/ui/../apps").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        server.get("/_wasmount/ui/secret.txt").await.status,
        StatusCode::NOT_FOUND
    );
    let posted = server
        .send(http::Method::POST, "/_wasmount/ui/", "x", &[])
        .await;
    assert_eq!(posted.status, StatusCode::METHOD_NOT_ALLOWED);
}
