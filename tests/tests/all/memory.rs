//! Resident memory goes back to the operating system once a burst is over (a real server
//! process of its own, its RSS read from /proc, so other tests beside it do not count).

use bytes::Bytes;
use http::{Method, StatusCode};
use std::time::Duration;
use wasmount_tests::{ServerProcess, eventually, guests, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");

/// The server's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn resident_memory_comes_back_after_a_burst() {
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HOSTILE, apps.path().join("heavy.wasm")).unwrap();
    let folder = apps.path().to_str().unwrap();
    let server = ServerProcess::start(
        BIN,
        &["--apps", folder, "--idle-memory-release-after", "1s"],
        &[],
    );
    let (addr, pid) = (server.addr, server.child.id());
    let get = |path: &'static str| async move {
        let response = try_send(addr, Method::GET, path, Bytes::new(), &[]).await;
        response.expect("answered").status
    };
    eventually("the app to answer", Duration::from_secs(120), || async {
        (get("/heavy/ok").await == StatusCode::OK).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let warm = rss_kib(pid);

    // Three bursts of 16 requests that each write 48 MiB of guest memory, RSS sampled meanwhile.
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = rss_kib(pid).max(peak);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    for _ in 0..3 {
        let burst = (0..16).map(|_| tokio::spawn(get("/heavy/fill?mib=48")));
        for status in futures::future::join_all(burst).await {
            assert_eq!(status.unwrap(), StatusCode::OK);
        }
    }
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap().max(rss_kib(pid));
    assert!(
        peak > warm + 100 * 1024,
        "the burst should have grown RSS: warm {warm} KiB, peak {peak} KiB"
    );
    // The target is 1.5x warm (or warm + 24 MiB) 60 s after; the test allows a wider margin.
    let bound = (warm * 2).max(warm + 64 * 1024);
    let settled = eventually("RSS to come back", Duration::from_secs(60), || async {
        let now = rss_kib(pid);
        (now <= bound).then_some(now)
    })
    .await;
    eprintln!("RSS warm {warm} KiB, peak {peak} KiB, after the burst {settled} KiB");
}
