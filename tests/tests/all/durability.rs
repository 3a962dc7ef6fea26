//! Crash safety of the store: the server is killed with SIGKILL at random moments of uploads,
//! then restarted on the same folder. Every acknowledged upload must be served, nothing
//! half-written ever is, and no temp file survives the restart.

use bytes::Bytes;
use http::{Method, StatusCode};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};
use wasmount_tests::{ADMIN_TOKEN, ServerProcess, guests, json, list_files, sha256_of, try_send};

const BIN: &str = env!("CARGO_BIN_EXE_wasmount-under-test");
const ROUNDS: u64 = 12;

/// A tiny deterministic generator, so a failing seed can be replayed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

/// Uploads `bytes` in 8 chunks a few ms apart, so a kill can land mid-body too.
async fn slow_upload(
    addr: std::net::SocketAddr,
    name: String,
    bytes: Vec<u8>,
) -> anyhow::Result<StatusCode> {
    let chunk_len = bytes.len().div_ceil(8);
    let chunks: Vec<Bytes> = bytes
        .chunks(chunk_len)
        .map(Bytes::copy_from_slice)
        .collect();
    let body = futures::stream::unfold(chunks.into_iter(), |mut rest| async move {
        let chunk = rest.next()?;
        tokio::time::sleep(Duration::from_millis(3)).await;
        Some((
            Ok::<_, std::io::Error>(hyper::body::Frame::data(chunk)),
            rest,
        ))
    });
    let request = http::Request::put(format!("/_wasmount/apps/{name}"))
        .header("host", addr.to_string())
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("content-length", bytes.len())
        .body(http_body_util::StreamBody::new(body))?;
    Ok(wasmount::client::send(&addr.to_string(), request)
        .await?
        .status())
}

fn start(apps: &std::path::Path) -> ServerProcess {
    ServerProcess::start(
        BIN,
        &[
            "--apps",
            apps.to_str().unwrap(),
            "--admin-token",
            ADMIN_TOKEN,
        ],
        &[],
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_uploads_survive_kill_9_at_random_moments() {
    let seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    eprintln!("durability seed: {seed}");
    let mut rng = Lcg(seed);
    let versions = [guests::HELLO, guests::ECHO, guests::VIZ];
    let apps = tempfile::tempdir().unwrap();
    std::fs::copy(guests::HELLO, apps.path().join("base.wasm")).unwrap();

    // name → versions it may be serving; names that must exist (an upload was acknowledged).
    let mut acceptable: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    acceptable.insert("base".into(), [sha256_of(guests::HELLO)].into());
    let mut must_exist: BTreeSet<String> = ["base".to_owned()].into();

    let mut server = start(apps.path());
    for round in 0..ROUNDS {
        let name = format!("app{}", rng.next(3));
        let version = versions[rng.next(3) as usize];
        let kill_after = Duration::from_millis(rng.next(400));
        let upload = tokio::spawn(slow_upload(
            server.addr,
            name.clone(),
            std::fs::read(version).unwrap(),
        ));
        tokio::time::sleep(kill_after).await;
        server.signal("KILL");
        server.wait(Duration::from_secs(10));
        let sha = sha256_of(version);
        let outcome = upload.await.unwrap();
        eprintln!("round {round}: {name} killed after {kill_after:?}: {outcome:?}");
        match outcome {
            Ok(status) if status.is_success() => {
                acceptable.insert(name.clone(), [sha].into());
                must_exist.insert(name.clone());
            }
            Ok(status) => panic!("round {round}: a valid upload got {status}"),
            Err(_) => {
                acceptable.entry(name.clone()).or_default().insert(sha);
            }
        }

        server = start(apps.path());
        for app in list_files(apps.path()) {
            let name = app.trim_end_matches(".wasm");
            // Waits for a background compile if the cache had not been written yet.
            let page = try_send(
                server.addr,
                Method::GET,
                &format!("/{name}/"),
                Bytes::new(),
                &[],
            )
            .await
            .unwrap();
            assert_eq!(
                page.status,
                StatusCode::OK,
                "round {round} (seed {seed}): {name}: {}",
                page.text()
            );
            let auth = format!("Bearer {ADMIN_TOKEN}");
            let info = try_send(
                server.addr,
                Method::GET,
                &format!("/_wasmount/apps/{name}"),
                Bytes::new(),
                &[("authorization", &auth)],
            )
            .await
            .unwrap();
            let info = json(&info);
            assert_eq!(
                info["state"], "serving",
                "round {round} (seed {seed}): {info}"
            );
            let served = info["sha256"].as_str().unwrap();
            let allowed = acceptable.get(name).cloned().unwrap_or_default();
            assert!(
                allowed.contains(served),
                "round {round} (seed {seed}): {name} serves {served}, expected one of {allowed:?}"
            );
        }
        // Checked once every app serves: until then the new server may be writing its cache.
        let leftovers: Vec<_> = list_files(apps.path())
            .into_iter()
            .chain(list_files(&apps.path().join(".cache")))
            .filter(|file| file.starts_with(".tmp-"))
            .collect();
        assert!(
            leftovers.is_empty(),
            "round {round} (seed {seed}): temp files survived: {leftovers:?}"
        );
        for name in &must_exist {
            assert!(
                apps.path().join(format!("{name}.wasm")).exists(),
                "round {round} (seed {seed}): acknowledged app {name} was lost"
            );
        }
    }
}
