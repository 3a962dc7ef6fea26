//! The engine's server-wide limits: one instance limit over both compiler tiers, one cap on
//! idle reused instances over all apps (which make room when slots run out). Resident memory
//! after a burst is tested in `memory.rs`, a binary of its own so no other test runs beside it.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount::config::EngineConfig;
use wasmount::engine::WasmEngine;
use wasmount_tests::{ADMIN_TOKEN, TestServer, eventually, guests, json, try_send};

/// A server on an engine of its own with `engine` settings, serving `apps` (name, guest,
/// manifest).
async fn server_with(engine: EngineConfig, apps: &[(&str, &str, &str)]) -> TestServer {
    let dir = tempfile::tempdir().unwrap();
    for (name, guest, manifest) in apps {
        std::fs::copy(guest, dir.path().join(format!("{name}.wasm"))).unwrap();
        std::fs::write(dir.path().join(format!("{name}.toml")), manifest).unwrap();
    }
    let engine = WasmEngine::new(&engine).unwrap();
    TestServer::start_in_with_engine(dir, engine, |config| {
        config.admin_token = Some(ADMIN_TOKEN.into());
    })
    .await
}

/// The reusing echo guest's request counter: 1 on a fresh instance.
async fn count(server: &TestServer, app: &str) -> u64 {
    let response = server.get(&format!("/{app}/count")).await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    response.text().trim().parse().unwrap()
}

const REUSE: &str = "[reuse]\nmax_requests = 100\n";

#[tokio::test(flavor = "multi_thread")]
async fn idle_instances_are_capped_over_all_apps_oldest_first() {
    let engine = EngineConfig {
        max_idle_instances: 2,
        ..EngineConfig::default()
    };
    let apps = [
        ("a", guests::ECHO, REUSE),
        ("b", guests::ECHO, REUSE),
        ("c", guests::ECHO, REUSE),
    ];
    let server = server_with(engine, &apps).await;
    assert_eq!(count(&server, "a").await, 1);
    assert_eq!(count(&server, "b").await, 1);
    assert_eq!(count(&server, "a").await, 2, "two idle instances fit");
    // A third app's idle instance drops the oldest one over all apps: b's.
    assert_eq!(count(&server, "c").await, 1);
    assert_eq!(
        count(&server, "b").await,
        1,
        "b's idle instance was dropped"
    );
    assert_eq!(count(&server, "c").await, 2, "c's was kept");
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_instances_make_room_when_every_slot_is_taken() {
    let engine = EngineConfig {
        max_instances: 1,
        ..EngineConfig::default()
    };
    let apps = [
        ("reusing", guests::ECHO, REUSE),
        ("fresh", guests::HELLO, ""),
    ];
    let server = server_with(engine, &apps).await;
    assert_eq!(count(&server, "reusing").await, 1);
    // The only slot now holds reusing's idle instance (once its guest is done and puts it
    // back): it makes room instead of a 503.
    eventually("fresh to be served", Duration::from_secs(30), || async {
        let hello = server.get("/fresh/").await;
        assert!(
            matches!(
                hello.status,
                StatusCode::OK | StatusCode::SERVICE_UNAVAILABLE
            ),
            "{hello:?}"
        );
        (hello.status == StatusCode::OK).then_some(())
    })
    .await;
    assert_eq!(count(&server, "reusing").await, 1, "a fresh instance again");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_instance_limit_holds_over_both_compiler_tiers() {
    let engine = EngineConfig {
        max_instances: 4,
        ..EngineConfig::default()
    };
    // `steady` starts from the folder (optimized build); `fresh` is uploaded (baseline build
    // first, the optimized one replacing it in the background).
    let server = server_with(engine, &[("steady", guests::ECHO, "")]).await;
    eventually(
        "steady's optimized build",
        Duration::from_secs(120),
        || async {
            let info = server
                .admin(Method::GET, "/_wasmount/apps/steady", Bytes::new())
                .await;
            (json(&info)["compiled"] == "fresh").then_some(())
        },
    )
    .await;
    // The same guest with a custom section added: other bytes, so no cached build is reused.
    let mut component = std::fs::read(guests::ECHO).unwrap();
    component.extend_from_slice(&[0, 5, 4, b'n', b'o', b'n', b'e']);
    let uploaded = server
        .admin(Method::PUT, "/_wasmount/apps/fresh", Bytes::from(component))
        .await;
    assert_eq!(uploaded.status, StatusCode::CREATED, "{}", uploaded.text());
    assert_eq!(json(&uploaded)["app"]["compiled"], "baseline");

    // 16 requests that each hold an instance for 8 s: all are sent well within that.
    let addr = server.addr;
    let burst = (0..16).map(|i| {
        let app = if i % 2 == 0 { "steady" } else { "fresh" };
        let path = format!("/{app}/?sleep_ms=8000");
        tokio::spawn(async move { try_send(addr, Method::GET, &path, Bytes::new(), &[]).await })
    });
    let responses = futures::future::join_all(burst).await;
    let mut ok = 0;
    for response in responses {
        let response = response.unwrap().expect("every request is answered");
        match response.status {
            StatusCode::OK => ok += 1,
            StatusCode::SERVICE_UNAVAILABLE => {
                assert!(response.headers.contains_key("retry-after"), "{response:?}");
            }
            other => panic!("unexpected {other}: {}", response.text()),
        }
    }
    assert_eq!(
        ok, 4,
        "exactly --max-instances requests ran, over both tiers"
    );
}
