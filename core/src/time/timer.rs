//! Processing-time wake-ups for the operators of a task.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The wall clock in milliseconds since the epoch: processing time.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A handle through which the operators of one task ask to be called at a
/// processing time. Every operator of a chained task shares the task's
/// timer; the task wakes at the earliest time asked for and calls
/// [`Operator::on_processing_time`](crate::Operator::on_processing_time) on
/// each of them, which asks again for whatever it still waits on.
#[derive(Debug, Clone)]
pub struct ProcessingTimer {
    at: Arc<AtomicI64>,
}

impl Default for ProcessingTimer {
    fn default() -> Self {
        ProcessingTimer {
            at: Arc::new(AtomicI64::new(i64::MAX)),
        }
    }
}

impl ProcessingTimer {
    /// Asks for a call at `at_ms` (processing time, [`now_ms`]) or earlier.
    pub fn wake_at(&self, at_ms: i64) {
        self.at.fetch_min(at_ms, Ordering::Relaxed);
    }

    /// The earliest time asked for, or `i64::MAX`.
    pub(crate) fn deadline(&self) -> i64 {
        self.at.load(Ordering::Relaxed)
    }

    /// Clears the deadline if it has come; returns the time now if so.
    pub(crate) fn take_due(&self) -> Option<i64> {
        if self.deadline() == i64::MAX {
            return None;
        }
        let now = now_ms();
        if now < self.deadline() {
            return None;
        }
        self.at.store(i64::MAX, Ordering::Relaxed);
        Some(now)
    }
}
