//! Unit tests of the launch table: durability, refusals, expiry, the shared namespace.

use super::*;
use crate::config::Access;

fn limits(idle_timeout: Option<Duration>, max_instances: usize) -> LaunchLimits {
    LaunchLimits {
        idle_timeout,
        max_instances,
        max_input_total: u64::MAX,
    }
}
use std::sync::atomic::Ordering;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn launched_instances_survive_reopening_with_their_input_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let input = r#"{ "file_relationships": ["http://x/a.tsv"],  "parameters": [] }"#;
    let runtime = runtime();
    let instances = Launches::open(dir.path(), Arc::default(), limits(None, 10)).unwrap();
    let launched = runtime
        .block_on(instances.launch(
            "heatmap",
            Input::Json(input.into()),
            Some("one"),
            Gate {
                access: Some(Access::Platform),
                label: Some("dataset-7".into()),
            },
        ))
        .unwrap();
    let generated = runtime
        .block_on(instances.launch(
            "heatmap",
            Input::Url("http://x/in.json".into()),
            None,
            Gate::default(),
        ))
        .unwrap();
    assert!(generated.name.starts_with("heatmap-") && generated.name.len() == 8 + 26);
    drop(instances);

    let reopened = Launches::open(dir.path(), Arc::default(), limits(None, 10)).unwrap();
    assert_eq!(reopened.len(), 2);
    let one = reopened.get("one").unwrap();
    assert_eq!(
        one.gate.access,
        Some(Access::Platform),
        "who may open it survives too"
    );
    assert_eq!(one.gate.label.as_deref(), Some("dataset-7"));
    assert_eq!(one.input, Input::Json(input.into()));
    assert_eq!(one.app.as_ref(), "heatmap");
    assert_eq!(
        launched
            .created
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis(),
        one.created.duration_since(UNIX_EPOCH).unwrap().as_millis()
    );
    assert_eq!(
        reopened.get(&generated.name).unwrap().input,
        Input::Url("http://x/in.json".into())
    );
}

#[test]
fn refusals_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let instances = Launches::open(dir.path(), Arc::default(), limits(None, 1)).unwrap();
    let json = || Input::Json("{}".into());
    runtime
        .block_on(instances.launch("app", json(), Some("taken"), Gate::default()))
        .unwrap();
    let taken = runtime.block_on(instances.launch("app", json(), Some("taken"), Gate::default()));
    assert!(
        matches!(taken, Err(LaunchError::NameTaken(..))),
        "{taken:?}"
    );
    let bad = runtime.block_on(instances.launch("app", json(), Some("Bad/Name"), Gate::default()));
    assert!(matches!(bad, Err(LaunchError::BadName(_))), "{bad:?}");
    let full = runtime.block_on(instances.launch("app", json(), Some("second"), Gate::default()));
    assert!(matches!(full, Err(LaunchError::Full(1))), "{full:?}");
    let files = std::fs::read_dir(dir.path().join(LAUNCHES_DIR))
        .unwrap()
        .count();
    assert_eq!(files, 1);
    assert!(runtime.block_on(instances.remove("taken")).unwrap());
    assert!(!runtime.block_on(instances.remove("taken")).unwrap());
    assert!(instances.get("taken").is_none());
    let files = std::fs::read_dir(dir.path().join(LAUNCHES_DIR))
        .unwrap()
        .count();
    assert_eq!(files, 0);
}

#[test]
fn idle_instances_expire_and_used_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let instances = Launches::open(
        dir.path(),
        Arc::default(),
        limits(Some(Duration::from_secs(1)), 10),
    )
    .unwrap();
    for name in ["idle", "busy"] {
        runtime
            .block_on(instances.launch("app", Input::Json("1".into()), Some(name), Gate::default()))
            .unwrap();
    }
    // Pretend both were last used long ago, then use one.
    for instance in instances.list() {
        set_last_used(&instance, Duration::from_secs(10));
    }
    assert!(
        instances.get("idle").is_none(),
        "expired instances are not served"
    );
    instances.peek("busy").unwrap().touch();
    assert_eq!(instances.sweep(), 1);
    assert!(instances.peek("idle").is_none());
    assert!(instances.get("busy").is_some());
    assert!(!dir.path().join(LAUNCHES_DIR).join("idle.json").exists());
}

fn set_last_used(instance: &Launch, ago: Duration) {
    let at = millis_since_epoch(SystemTime::now() - ago);
    instance.last_used_ms.store(at, Ordering::Relaxed);
}

#[test]
fn idle_time_counts_milliseconds_and_an_instance_in_use_never_expires() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = runtime();
    let idle = Some(Duration::from_secs(2));
    let instances = Launches::open(dir.path(), Arc::default(), limits(idle, 10)).unwrap();
    runtime
        .block_on(instances.launch("app", Input::Json("1".into()), Some("viz"), Gate::default()))
        .unwrap();
    let instance = instances.peek("viz").unwrap();
    // Used 1.2 s ago with a 2 s idle time: not expired, however the seconds fall.
    set_last_used(&instance, Duration::from_millis(1200));
    assert!(instances.get("viz").is_some());
    set_last_used(&instance, Duration::from_millis(1200));
    assert_eq!(instances.sweep(), 0);

    // Held by a running request, it outlives its idle time...
    let held = instances.get("viz").unwrap();
    set_last_used(&instance, Duration::from_secs(10));
    assert_eq!(instances.sweep(), 0, "swept while a request runs");
    // ...and its idle clock starts again when the request ends.
    drop(held);
    assert_eq!(instances.sweep(), 0);
    assert!(instances.get("viz").is_some());
}

#[test]
fn a_name_held_by_an_app_cannot_be_launched() {
    let dir = tempfile::tempdir().unwrap();
    let names = Arc::new(Namespace::default());
    names.take("viz", Holder::App).unwrap();
    let instances = Launches::open(dir.path(), names.clone(), limits(None, 10)).unwrap();
    let taken = runtime().block_on(instances.launch(
        "app",
        Input::Json("1".into()),
        Some("viz"),
        Gate::default(),
    ));
    assert!(
        matches!(taken, Err(LaunchError::NameTaken(_, Holder::App))),
        "{taken:?}"
    );
    assert_eq!(names.holder("viz"), Some(Holder::App));
}

#[test]
fn the_inputs_of_all_instances_together_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let bounded = LaunchLimits {
        max_input_total: 10,
        ..limits(None, 100)
    };
    let instances = Launches::open(dir.path(), Arc::default(), bounded).unwrap();
    let launch = |name: &str, input: &str| {
        let input = Input::Json(input.into());
        runtime().block_on(instances.launch("app", input, Some(name), Gate::default()))
    };
    launch("a", "\"1234\"").unwrap();
    launch("b", "[1, 2]").unwrap_err();
    assert!(matches!(
        launch("b", "[1, 2]"),
        Err(LaunchError::InputsFull { held: 6, limit: 10 })
    ));
    launch("b", "[12]").unwrap();
    assert!(runtime().block_on(instances.remove("a")).unwrap());
    launch("c", "[1, 2]").unwrap();
}
