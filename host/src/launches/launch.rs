//! One launch: an app bound to one input, with its name, its input, when it was launched
//! and last used, who may open it (`Gate`), and the hold a running request keeps on it
//! (`InUse`) so it never expires under that request. The table of all launches is the
//! parent module's.

use crate::config::Access;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Folder, inside the apps folder, of the launches (named before the glossary; kept so
/// existing apps folders stay readable).
pub(crate) const LAUNCHES_DIR: &str = ".instances";
/// The environment variable holding an instance's input, as django_docker_engine sets it.
pub(crate) const INPUT_JSON_ENV: &str = "INPUT_JSON";
/// The environment variable holding the address of an instance's input.
pub(crate) const INPUT_JSON_URL_ENV: &str = "INPUT_JSON_URL";
/// The environment variable holding the instance's own name.
pub(crate) const INSTANCE_ENV: &str = "WASMOUNT_INSTANCE";

/// What an instance's requests get as their input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// The JSON text exactly as given, set as `INPUT_JSON`.
    Json(Box<str>),
    /// An address the app fetches its input from, set as `INPUT_JSON_URL`.
    Url(Box<str>),
}

impl Input {
    /// The environment variable and its value.
    pub(crate) fn env(&self) -> (&'static str, &str) {
        match self {
            Input::Json(json) => (INPUT_JSON_ENV, json),
            Input::Url(url) => (INPUT_JSON_URL_ENV, url),
        }
    }

    /// The input's size in bytes.
    pub(crate) fn len(&self) -> usize {
        match self {
            Input::Json(text) | Input::Url(text) => text.len(),
        }
    }
}

/// One launch.
#[derive(Debug)]
pub(crate) struct Launch {
    /// Its name, which is also its mount point (`B/NAME/`).
    pub name: Arc<str>,
    /// The app it runs.
    pub app: Arc<str>,
    /// What its requests get as input.
    pub input: Input,
    /// When it was launched.
    pub created: SystemTime,
    /// What its reused guest instances are kept under: unique to this launch, so a later
    /// launch under the same name never gets an instance holding this one's input (and
    /// never a decision of the platform's about this one).
    pub reuse_key: Arc<str>,
    /// Who may open it, and what the platform is told it is.
    pub gate: Gate,
    /// Milliseconds since the epoch of its last request's end (or launch, or the last
    /// recorded use).
    pub(super) last_used_ms: AtomicU64,
    /// Requests to it running now: it never expires while one does.
    pub(super) in_use: AtomicU32,
    /// Whether it was used since the last sweep recorded uses on disk.
    pub(super) used_since_sweep: AtomicBool,
}

impl Launch {
    pub(crate) fn new(
        name: Arc<str>,
        app: Arc<str>,
        input: Input,
        created: SystemTime,
        last_used: SystemTime,
    ) -> Self {
        static LAUNCHES: AtomicU64 = AtomicU64::new(0);
        let serial = LAUNCHES.fetch_add(1, Ordering::Relaxed);
        Self {
            reuse_key: format!("{name}#{serial}").into(),
            name,
            app,
            input,
            created,
            gate: Gate::default(),
            last_used_ms: AtomicU64::new(millis_since_epoch(last_used)),
            in_use: AtomicU32::new(0),
            used_since_sweep: AtomicBool::new(false),
        }
    }

    /// When it was launched, in milliseconds since the epoch (as stored, so the same on every
    /// node).
    pub(crate) fn created_ms(&self) -> u64 {
        millis_since_epoch(self.created)
    }

    /// This launch with `gate`.
    pub(crate) fn with_gate(mut self, gate: Gate) -> Self {
        self.gate = gate;
        self
    }

    /// When it was last used.
    pub(crate) fn last_used(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.last_used_ms.load(Ordering::Relaxed))
    }

    /// Brings its last use forward to `at` (never back).
    pub(super) fn used_at(&self, at: SystemTime) {
        self.last_used_ms
            .fetch_max(millis_since_epoch(at), Ordering::Relaxed);
    }

    pub(super) fn in_use(&self) -> bool {
        self.in_use.load(Ordering::Acquire) > 0
    }

    /// Its last use, or now while a request runs in it.
    pub(super) fn last_used_or_now(&self) -> SystemTime {
        if self.in_use() {
            SystemTime::now()
        } else {
            self.last_used()
        }
    }

    pub(super) fn touch(&self) {
        let now = millis_since_epoch(SystemTime::now());
        self.last_used_ms.store(now, Ordering::Relaxed);
        self.used_since_sweep.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_expired(&self, idle_timeout: Option<Duration>, now: SystemTime) -> bool {
        let idle_ms = |idle: Duration| u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        idle_timeout.is_some_and(|idle| {
            self.in_use.load(Ordering::Acquire) == 0
                && millis_since_epoch(now).saturating_sub(self.last_used_ms.load(Ordering::Relaxed))
                    >= idle_ms(idle)
        })
    }
}

/// A request's hold on a launch: it does not expire while held, and its idle
/// clock starts again when the hold ends.
pub(crate) struct InUse(Arc<Launch>);

impl InUse {
    pub(super) fn new(instance: Arc<Launch>) -> Self {
        instance.in_use.fetch_add(1, Ordering::AcqRel);
        instance.touch();
        Self(instance)
    }
}

impl std::ops::Deref for InUse {
    type Target = Launch;

    fn deref(&self) -> &Launch {
        &self.0
    }
}

impl Drop for InUse {
    fn drop(&mut self) {
        self.0.touch();
        self.0.in_use.fetch_sub(1, Ordering::AcqRel);
    }
}

pub(super) fn millis_since_epoch(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The longest label a launch may carry (it travels in a header to the platform).
pub(crate) const MAX_LABEL_LEN: usize = 256;

/// Who may open a launch, and what the platform is told it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Gate {
    /// `None`: as the server decides (`platform` with `--auth-url`, else `public`).
    pub access: Option<Access>,
    /// An opaque label the platform attached (a dataset's id), sent with each check.
    pub label: Option<Arc<str>>,
}
