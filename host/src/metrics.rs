//! What operators scrape: one server's Prometheus metrics (OpenMetrics text), counted where
//! things happen (requests, guest failures, compiles, uploads) and read at scrape time for
//! what is a state (apps, launches, the pool, the process). Labels are bounded: an app's
//! name, never a launch's; requests that match no app count under
//! [`UNMATCHED`]. A leaf: it imports nothing from the rest of the crate.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The `app` label of requests that match no app or instance.
const UNMATCHED: &str = "(none)";

/// The content type of the metrics page: Prometheus' text format, which every scraper and
/// `promtool check metrics` read.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why a guest failed a request (the `kind` label).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FailureKind {
    /// It trapped (a panic, an abort, an invalid operation).
    Trap,
    /// It passed its deadline.
    Timeout,
    /// It failed after its memory budget refused to grow.
    Memory,
    /// It returned without a response.
    NoResponse,
}

impl FailureKind {
    fn label(self) -> &'static str {
        match self {
            FailureKind::Trap => "trap",
            FailureKind::Timeout => "timeout",
            FailureKind::Memory => "memory",
            FailureKind::NoResponse => "no_response",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AppLabel {
    app: Arc<str>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RemovedHeaderLabels {
    app: Arc<str>,
    header: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    app: Arc<str>,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    app: Arc<str>,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OneLabel {
    name: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TierLabel {
    tier: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabel {
    version: &'static str,
}

/// The figures read at scrape time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Snapshot {
    /// Apps serving, loading, and names whose last load failed.
    pub apps_ready: i64,
    /// Apps whose first version is compiling.
    pub apps_loading: i64,
    /// Names whose last load failed.
    pub apps_failed: i64,
    /// Launches.
    pub launched_instances: i64,
    /// The pooling allocator: instances, memories, unused warm slots, bytes kept resident.
    pub pool: PoolFigures,
}

/// The pooling allocator's own figures (both compiler tiers together).
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct PoolFigures {
    /// Component instances allocated now.
    pub instances: i64,
    /// Linear memories allocated now.
    pub memories: i64,
    /// Unused memory slots kept warm.
    pub unused_warm_memories: i64,
    /// Bytes those unused slots keep resident.
    pub unused_bytes_resident: i64,
}

/// One server's metrics.
#[derive(Debug)]
pub(crate) struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    duration: Family<AppLabel, Histogram>,
    in_flight: Family<AppLabel, Gauge>,
    failures: Family<FailureLabels, Counter>,
    removed_headers: Family<RemovedHeaderLabels, Counter>,
    compiles: Family<TierLabel, Histogram>,
    uploads: Family<ResultLabel, Counter>,
    apps: Family<StateLabel, Gauge>,
    launched: Gauge,
    pool: Family<OneLabel, Gauge>,
    resident: Gauge,
    open_fds: Gauge,
    cpu_seconds: Counter<f64, AtomicU64>,
    /// [`UNMATCHED`], made once.
    unmatched: Arc<str>,
}

/// Latency buckets: 0.5 ms to 30 s.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0,
    30.0,
];
/// Compile-time buckets: 10 ms to 2 minutes.
const COMPILE_BUCKETS: [f64; 10] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0, 120.0];

impl Metrics {
    /// Every family registered, all empty.
    pub(crate) fn new() -> Arc<Self> {
        let latency = || Histogram::new(LATENCY_BUCKETS);
        let compile = || Histogram::new(COMPILE_BUCKETS);
        let metrics = Self {
            registry: Registry::default(),
            requests: Family::default(),
            duration: Family::new_with_constructor(latency),
            in_flight: Family::default(),
            failures: Family::default(),
            removed_headers: Family::default(),
            compiles: Family::new_with_constructor(compile),
            uploads: Family::default(),
            apps: Family::default(),
            launched: Gauge::default(),
            pool: Family::default(),
            resident: Gauge::default(),
            open_fds: Gauge::default(),
            cpu_seconds: Counter::default(),
            unmatched: UNMATCHED.into(),
        };
        Arc::new(metrics.registered())
    }

    fn registered(mut self) -> Self {
        let r = &mut self.registry;
        r.register(
            "wasmount_requests",
            "Requests routed to apps, by app and status",
            self.requests.clone(),
        );
        r.register_with_unit(
            "wasmount_request_duration",
            "Time to the response head, by app",
            Unit::Seconds,
            self.duration.clone(),
        );
        r.register(
            "wasmount_requests_in_flight",
            "Requests running now, by app",
            self.in_flight.clone(),
        );
        r.register(
            "wasmount_guest_failures",
            "Requests a guest failed, by app and kind",
            self.failures.clone(),
        );
        r.register(
            "wasmount_guest_headers_removed",
            "Response headers removed from guests because they reach beyond the app's prefix, by app and header",
            self.removed_headers.clone(),
        );
        r.register_with_unit(
            "wasmount_compile",
            "Compile time of app versions, by compiler tier",
            Unit::Seconds,
            self.compiles.clone(),
        );
        r.register(
            "wasmount_uploads",
            "Uploads through the admin API, by result",
            self.uploads.clone(),
        );
        r.register(
            "wasmount_apps",
            "Mounted names, by state",
            self.apps.clone(),
        );
        r.register("wasmount_launches", "Launches", self.launched.clone());
        r.register(
            "wasmount_pool",
            "The pooling allocator: what it holds now",
            self.pool.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            self.resident.clone(),
        );
        r.register(
            "process_open_fds",
            "Open file descriptors",
            self.open_fds.clone(),
        );
        r.register_with_unit(
            "process_cpu",
            "CPU time of the process, user and system",
            Unit::Seconds,
            self.cpu_seconds.clone(),
        );
        let started = Gauge::<f64, AtomicU64>::default();
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        started.set(since_epoch.as_secs_f64());
        r.register_with_unit(
            "process_start_time",
            "When the server started, in seconds since the Unix epoch",
            Unit::Seconds,
            started,
        );
        let build = Family::<VersionLabel, Gauge>::default();
        build
            .get_or_create(&VersionLabel {
                version: env!("CARGO_PKG_VERSION"),
            })
            .set(1);
        r.register("wasmount_build_info", "The running build (always 1)", build);
        self
    }

    /// The metrics of app `app`, its series resolved once (the request path then touches
    /// only atomics and one histogram).
    pub(crate) fn for_app(self: &Arc<Self>, app: &Arc<str>) -> AppMetrics {
        let label = AppLabel { app: app.clone() };
        let ok = RequestLabels {
            app: app.clone(),
            status: 200,
        };
        AppMetrics {
            app: app.clone(),
            in_flight: self.in_flight.get_or_create(&label).clone(),
            duration: self.duration.get_or_create(&label).clone(),
            ok: self.requests.get_or_create(&ok).clone(),
            metrics: self.clone(),
            headers_logged: AtomicBool::new(false),
        }
    }

    /// Counts a request that matched no app (answered before any guest ran).
    pub(crate) fn request_unmatched(&self, status: u16) {
        self.request_done(&self.unmatched, status, Duration::ZERO);
    }

    /// Counts one request to `app` answered with `status` after `elapsed`.
    pub(crate) fn request_done(&self, app: &Arc<str>, status: u16, elapsed: Duration) {
        let labels = RequestLabels {
            app: app.clone(),
            status,
        };
        self.requests.get_or_create(&labels).inc();
        let app = AppLabel { app: labels.app };
        self.duration
            .get_or_create(&app)
            .observe(elapsed.as_secs_f64());
    }

    /// Counts a request that app `app`'s guest failed.
    pub(crate) fn guest_failed(&self, app: &Arc<str>, kind: FailureKind) {
        let labels = FailureLabels {
            app: app.clone(),
            kind: kind.label(),
        };
        self.failures.get_or_create(&labels).inc();
    }

    /// Records a compile with the `optimized` or the baseline compiler.
    pub(crate) fn compiled(&self, optimized: bool, took: Duration) {
        let tier = if optimized { "optimized" } else { "baseline" };
        self.compiles
            .get_or_create(&TierLabel { tier })
            .observe(took.as_secs_f64());
    }

    /// Counts an upload by its result (`deployed`, `refused`, `failed`).
    pub(crate) fn uploaded(&self, result: &'static str) {
        self.uploads.get_or_create(&ResultLabel { result }).inc();
    }

    /// The metrics page, with the scrape-time figures of `snapshot`.
    pub(crate) fn encode(&self, snapshot: &Snapshot) -> String {
        self.set_states(snapshot);
        self.set_process();
        let mut page = String::new();
        prometheus_client::encoding::text::encode(&mut page, &self.registry)
            .expect("writing to a String cannot fail");
        prometheus_text(&page)
    }

    fn set_states(&self, snapshot: &Snapshot) {
        let states = [
            ("ready", snapshot.apps_ready),
            ("loading", snapshot.apps_loading),
            ("failed", snapshot.apps_failed),
        ];
        for (state, count) in states {
            self.apps.get_or_create(&StateLabel { state }).set(count);
        }
        self.launched.set(snapshot.launched_instances);
        let pool = snapshot.pool;
        let figures = [
            ("instances", pool.instances),
            ("memories", pool.memories),
            ("unused_warm_memories", pool.unused_warm_memories),
            ("unused_bytes_resident", pool.unused_bytes_resident),
        ];
        for (name, value) in figures {
            self.pool.get_or_create(&OneLabel { name }).set(value);
        }
    }

    /// The process figures, from `/proc` (left as they were where it cannot be read).
    fn set_process(&self) {
        let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
            return;
        };
        // Fields after the command's closing parenthesis; utime and stime are 14th and 15th.
        let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| {
            fields
                .get(i)
                .and_then(|f| f.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        let pages = fields
            .get(21)
            .and_then(|f| f.parse::<i64>().ok())
            .unwrap_or(0);
        let cpu = (ticks(11) + ticks(12)) / clock_ticks_per_second();
        let counted = self.cpu_seconds.get();
        if cpu > counted {
            self.cpu_seconds.inc_by(cpu - counted);
        }
        self.resident.set(pages * page_size());
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            self.open_fds.set(fds.count() as i64);
        }
    }
}

/// The client's OpenMetrics text as Prometheus' text format: a counter's `HELP` and `TYPE`
/// name its `_total` samples, and the `UNIT` and `EOF` lines (comments to Prometheus, but
/// noise to `promtool`) go.
fn prometheus_text(openmetrics: &str) -> String {
    let mut page = String::with_capacity(openmetrics.len());
    let mut help: Option<&str> = None;
    for line in openmetrics.lines() {
        if line.starts_with("# HELP ") {
            help = Some(line);
            continue;
        }
        if let Some(typed) = line.strip_prefix("# TYPE ") {
            let (name, kind) = typed.split_once(' ').unwrap_or((typed, ""));
            let shown = if kind == "counter" {
                format!("{name}_total")
            } else {
                name.to_owned()
            };
            if let Some(help) = help.take() {
                let text = help.strip_prefix("# HELP ").and_then(|h| h.split_once(' '));
                let text = text.map_or("", |(_, text)| text);
                page.push_str(&format!("# HELP {shown} {text}\n"));
            }
            page.push_str(&format!("# TYPE {shown} {kind}\n"));
            continue;
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        page.push_str(line);
        page.push('\n');
    }
    page
}

/// One app's series, resolved when the app version is linked.
#[derive(Debug)]
pub(crate) struct AppMetrics {
    app: Arc<str>,
    in_flight: Gauge,
    duration: Histogram,
    /// `status="200"`, the common case, without a lookup.
    ok: Counter,
    metrics: Arc<Metrics>,
    /// Whether this version's removed headers were logged (once per version).
    headers_logged: AtomicBool,
}

impl AppMetrics {
    /// Marks a request as running until the returned guard is dropped.
    pub(crate) fn in_flight(&self) -> InFlight {
        self.in_flight.inc();
        InFlight(self.in_flight.clone())
    }

    /// Counts one request answered with `status` after `elapsed`.
    pub(crate) fn request_done(&self, status: u16, elapsed: Duration) {
        if status == 200 {
            self.ok.inc();
        } else {
            let labels = RequestLabels {
                app: self.app.clone(),
                status,
            };
            self.metrics.requests.get_or_create(&labels).inc();
        }
        self.duration.observe(elapsed.as_secs_f64());
    }

    /// Counts a request the app's guest failed.
    pub(crate) fn guest_failed(&self, kind: FailureKind) {
        self.metrics.guest_failed(&self.app, kind);
    }

    /// Counts response headers removed from this app's guest (see `http::header_policy`);
    /// the first time for this version, says so in the log.
    pub(crate) fn headers_removed(&self, headers: &[&'static str]) {
        for &header in headers {
            let labels = RemovedHeaderLabels {
                app: self.app.clone(),
                header,
            };
            self.metrics.removed_headers.get_or_create(&labels).inc();
        }
        if !self.headers_logged.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                app = %self.app,
                "removed response headers that reach beyond the app's prefix (apps share one \
                 origin in path mode): {}",
                headers.join(", ")
            );
        }
    }
}

/// A running request's count in `wasmount_requests_in_flight`, taken back when dropped.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Clock ticks per second of `/proc` figures.
fn clock_ticks_per_second() -> f64 {
    rustix::param::clock_ticks_per_second() as f64
}

/// The page size, in bytes (`/proc` counts resident memory in pages).
fn page_size() -> i64 {
    rustix::param::page_size() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_named_by_their_samples_in_the_prometheus_format() {
        let openmetrics = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                           a_requests_total{app=\"x\"} 1\n# HELP b_seconds Time.\n\
                           # TYPE b_seconds gauge\n# UNIT b_seconds seconds\nb_seconds 2\n# EOF\n";
        assert_eq!(
            prometheus_text(openmetrics),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{app=\"x\"} 1\n# HELP b_seconds Time.\n# TYPE b_seconds gauge\n\
             b_seconds 2\n"
        );
    }
}
