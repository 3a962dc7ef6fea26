//! How apps share the CPU. A request still running after its first epoch tick yields at every
//! tick; while another app has started requests recently, it goes on only with one of its own
//! app's CPU slices (half the cores), so one app's long requests (a loop, a hog, a big
//! interpreter) cannot crowd out the others. An app alone on the server is not held back: the
//! cores would idle otherwise.
//!
//! "Recently" rather than "in flight": when one app's long requests hold every worker, the
//! other apps' requests are not even read off their connections, so they are never in flight;
//! but the few that do get through mark the server as shared for [`SHARED_WINDOW`].

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long one request start of another app keeps the server counted as shared.
pub const SHARED_WINDOW: Duration = Duration::from_millis(200);

/// The two most recent (app, time) request starts by different apps, packed as
/// `app id << 40 | milliseconds since start-up`.
static RECENT_STARTS: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static NEXT_ID: AtomicU32 = AtomicU32::new(1);
const TIME_BITS: u32 = 40;

fn now_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX) & ((1 << TIME_BITS) - 1)
}

/// One app version's share of the CPU.
pub struct CpuShare {
    id: u64,
    slices: Arc<tokio::sync::Semaphore>,
}

impl Default for CpuShare {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuShare {
    /// A share with half the cores (at least one) as slices.
    pub fn new() -> Self {
        let slices = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        Self {
            id: u64::from(NEXT_ID.fetch_add(1, Ordering::Relaxed)),
            slices: Arc::new(tokio::sync::Semaphore::new(slices)),
        }
    }

    /// Records that this app starts a request.
    pub fn note_start(&self) {
        let packed = self.id << TIME_BITS | now_ms();
        let newest = RECENT_STARTS[0].load(Ordering::Relaxed);
        if newest == packed {
            return; // the same app, the same millisecond: no write (no cache-line ping-pong)
        }
        if newest >> TIME_BITS != self.id {
            RECENT_STARTS[1].store(newest, Ordering::Relaxed);
        }
        RECENT_STARTS[0].store(packed, Ordering::Relaxed);
    }

    /// Whether another app started a request within [`SHARED_WINDOW`].
    pub fn contended(&self) -> bool {
        let now = now_ms();
        let window = u64::try_from(SHARED_WINDOW.as_millis()).unwrap_or(u64::MAX);
        RECENT_STARTS.iter().any(|slot| {
            let packed = slot.load(Ordering::Relaxed);
            let (id, at) = (packed >> TIME_BITS, packed & ((1 << TIME_BITS) - 1));
            id != 0 && id != self.id && now.saturating_sub(at) <= window
        })
    }

    /// The slices its long-running requests take turns with while the server is shared.
    pub fn slices(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.slices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_app_is_contended_only_by_recent_starts_of_other_apps() {
        let (a, b) = (CpuShare::new(), CpuShare::new());
        a.note_start();
        a.note_start();
        assert!(!a.contended(), "its own starts do not count");
        assert!(b.contended(), "a's starts count for b");
        b.note_start();
        assert!(a.contended() && b.contended(), "both are remembered");
    }
}
