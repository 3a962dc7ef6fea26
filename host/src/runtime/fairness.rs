//! How apps share the CPU. A request still running after its first epoch tick yields at every
//! tick; while another app has started requests recently, it goes on only with one of its own
//! app's CPU slices (half the cores), so one app's long requests (a loop, a hog, a big
//! interpreter) cannot crowd out the others. An app alone on the server is not held back: the
//! cores would idle otherwise.
//!
//! "Recently" rather than "in flight": when one app's long requests hold every worker, the
//! other apps' requests are not even read off their connections, so they are never in flight;
//! but the few that do get through mark the server as shared for [`SHARED_WINDOW`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How long one request start of another app keeps the server counted as shared.
pub(crate) const SHARED_WINDOW: Duration = Duration::from_millis(200);

const TIME_BITS: u32 = 40;

/// What one server knows of its apps' recent request starts. Each server has its own: two
/// servers embedded in one process do not hold each other back.
pub(crate) struct Fairness {
    /// The two most recent (app, time) request starts by different apps, packed as
    /// `app id << 40 | milliseconds since `started``.
    recent_starts: [AtomicU64; 2],
    next_id: AtomicU32,
    started: Instant,
}

impl Fairness {
    /// No request started yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            recent_starts: [AtomicU64::new(0), AtomicU64::new(0)],
            next_id: AtomicU32::new(1),
            started: Instant::now(),
        })
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
            & ((1 << TIME_BITS) - 1)
    }

    /// A new app version's share: half the cores (at least one) as slices.
    pub(crate) fn share(self: &Arc<Self>) -> CpuShare {
        let slices = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        CpuShare {
            id: u64::from(self.next_id.fetch_add(1, Ordering::Relaxed)),
            slices: Arc::new(tokio::sync::Semaphore::new(slices)),
            fairness: self.clone(),
        }
    }
}

/// One app version's share of the CPU.
pub(crate) struct CpuShare {
    id: u64,
    slices: Arc<tokio::sync::Semaphore>,
    fairness: Arc<Fairness>,
}

impl CpuShare {
    /// Records that this app starts a request.
    pub(crate) fn note_start(&self) {
        let recent = &self.fairness.recent_starts;
        let packed = self.id << TIME_BITS | self.fairness.now_ms();
        let newest = recent[0].load(Ordering::Relaxed);
        if newest == packed {
            return; // the same app, the same millisecond: no write (no cache-line ping-pong)
        }
        if newest >> TIME_BITS != self.id {
            recent[1].store(newest, Ordering::Relaxed);
        }
        recent[0].store(packed, Ordering::Relaxed);
    }

    /// Whether another app started a request within [`SHARED_WINDOW`].
    pub(crate) fn contended(&self) -> bool {
        let now = self.fairness.now_ms();
        let window = u64::try_from(SHARED_WINDOW.as_millis()).unwrap_or(u64::MAX);
        self.fairness.recent_starts.iter().any(|slot| {
            let packed = slot.load(Ordering::Relaxed);
            let (id, at) = (packed >> TIME_BITS, packed & ((1 << TIME_BITS) - 1));
            id != 0 && id != self.id && now.saturating_sub(at) <= window
        })
    }

    /// The slices its long-running requests take turns with while the server is shared.
    pub(crate) fn slices(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_contended_only_by_recent_starts_of_other_apps() {
        let fairness = Fairness::new();
        let (a, b) = (fairness.share(), fairness.share());
        a.note_start();
        a.note_start();
        assert!(!a.contended(), "its own starts do not count");
        assert!(b.contended(), "a's starts count for b");
        b.note_start();
        assert!(a.contended() && b.contended(), "both are remembered");
    }

    #[test]
    fn servers_do_not_share_their_fairness() {
        let (one, other) = (Fairness::new(), Fairness::new());
        let (a, b) = (one.share(), other.share());
        a.note_start();
        assert!(!b.contended(), "another server's starts do not count");
        assert!(!a.contended());
    }
}
