//! Processing-time wake-ups for the operators of a task.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use super::clock::Clock;

/// A handle through which the operators of one task ask to be called at a
/// processing time. Every operator of a chained task shares the task's
/// timer; the task wakes at the earliest time asked for and calls
/// [`Operator::on_processing_time`](crate::Operator::on_processing_time) on
/// each of them, which asks again for whatever it still waits on.
///
/// Times are on the timer's [`Clock`] (the task's,
/// [`TaskContext::clock`](crate::TaskContext::clock)): read the time now
/// with [`now_ms`](Self::now_ms), not the system clock.
///
/// A test driving an operator by hand does what the task does:
///
/// ```
/// use std::time::Duration;
/// use brook_core::time::{ManualClock, ProcessingTimer};
///
/// let manual = ManualClock::new(1_000);
/// let timer = ProcessingTimer::with_clock(manual.clock());
/// timer.wake_at(timer.now_ms() + 50);
/// manual.advance(Duration::from_millis(49));
/// assert_eq!(timer.take_due(), None);
/// manual.advance(Duration::from_millis(1));
/// assert_eq!(timer.take_due(), Some(1_050)); // call on_processing_time(1_050, ..)
/// assert_eq!(timer.take_due(), None, "asked once, due once");
/// ```
#[derive(Debug, Clone)]
pub struct ProcessingTimer {
    at: Arc<AtomicI64>,
    clock: Clock,
}

/// A timer on the [current](Clock::current) clock: the system clock unless
/// another was [entered](Clock::enter) on this thread.
impl Default for ProcessingTimer {
    fn default() -> Self {
        ProcessingTimer::with_clock(Clock::current())
    }
}

impl ProcessingTimer {
    /// A timer on `clock`, with nothing asked for.
    pub fn with_clock(clock: Clock) -> Self {
        ProcessingTimer {
            at: Arc::new(AtomicI64::new(i64::MAX)),
            clock,
        }
    }

    /// The clock the timer's times are on.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Processing time now on the timer's clock, in milliseconds since the
    /// epoch.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Asks for a call at `at_ms` (processing time, [`now_ms`](Self::now_ms))
    /// or earlier.
    pub fn wake_at(&self, at_ms: i64) {
        self.at.fetch_min(at_ms, Ordering::Relaxed);
    }

    /// The earliest time asked for and not yet taken, if any.
    pub fn requested(&self) -> Option<i64> {
        let at = self.at.load(Ordering::Relaxed);
        (at != i64::MAX).then_some(at)
    }

    /// The system wall-clock time at which the task should next look at the
    /// timer, or `i64::MAX` for never.
    pub(crate) fn deadline(&self) -> i64 {
        self.clock.system_deadline(self.at.load(Ordering::Relaxed))
    }

    /// If the time asked for has come on the timer's clock, clears it and
    /// returns the time now, for
    /// [`Operator::on_processing_time`](crate::Operator::on_processing_time):
    /// what the task does each time it wakes.
    pub fn take_due(&self) -> Option<i64> {
        let at = self.requested()?;
        let now = self.clock.now_ms();
        if now < at {
            return None;
        }
        // Only what was due: a request made meanwhile for later stays.
        let _ = self
            .at
            .compare_exchange(at, i64::MAX, Ordering::Relaxed, Ordering::Relaxed);
        Some(now)
    }
}
