//! Loud counts: a node-wide tally of records that went wrong (late,
//! rejected), which says so once when they are many.
//!
//! An operator is cloned from one prototype for each parallel instance, so
//! an [`Alarm`] behind an `Arc` in the prototype is shared by every instance
//! of the node: it sees the node's totals and warns once per node, not once
//! per instance. (One operator value given to two nodes would share one
//! tally; the built-in ways of making these operators make one per node.)

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize};

/// The share of a node's input, in percent, from which bad records are
/// reported as a warning.
pub(crate) const LOUD_SHARE_PERCENT: u64 = 1;

/// While input still flows, a share is only reported once this many records
/// went wrong, so that the first batches alone do not decide.
pub(crate) const LOUD_MIN_COUNT: u64 = 100;

/// This many bad records are reported whatever their share.
pub(crate) const LOUD_COUNT: u64 = 10_000;

/// The node-wide tally of one kind of bad record.
#[derive(Debug, Default)]
pub(crate) struct Alarm {
    seen: AtomicU64,
    bad: AtomicU64,
    first_done: AtomicBool,
    loud_done: AtomicBool,
    ended: AtomicUsize,
}

/// Node totals when the alarm goes off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Loud {
    /// Records the node received.
    pub(crate) seen: u64,
    /// Of them, records that went wrong.
    pub(crate) bad: u64,
}

impl Loud {
    /// `bad` as a percentage of `seen`.
    pub(crate) fn percent(&self) -> f64 {
        if self.seen == 0 {
            return 0.0;
        }
        self.bad as f64 * 100.0 / self.seen as f64
    }
}

impl Alarm {
    /// True exactly once per node: for the warning about the first bad
    /// record.
    pub(crate) fn first(&self) -> bool {
        !self.first_done.swap(true, Relaxed)
    }

    /// Adds one batch's counts; returns the node's totals when the bad ones
    /// have just become loud (at most once per node).
    pub(crate) fn count(&self, seen: u64, bad: u64) -> Option<Loud> {
        let total_seen = self.seen.fetch_add(seen, Relaxed) + seen;
        let total_bad = self.bad.fetch_add(bad, Relaxed) + bad;
        if bad == 0 {
            return None;
        }
        let loud = total_bad >= LOUD_COUNT
            || (total_bad >= LOUD_MIN_COUNT
                && total_bad.saturating_mul(100) >= total_seen.saturating_mul(LOUD_SHARE_PERCENT));
        self.fire(loud, total_seen, total_bad)
    }

    /// One instance of `parallelism` reached end of input; the last one
    /// returns the node's totals if the bad ones are at least
    /// [`LOUD_SHARE_PERCENT`] of the input and were not reported yet.
    pub(crate) fn end(&self, parallelism: usize) -> Option<Loud> {
        if self.ended.fetch_add(1, Relaxed) + 1 < parallelism {
            return None;
        }
        let (seen, bad) = (self.seen.load(Relaxed), self.bad.load(Relaxed));
        let loud = bad > 0 && bad.saturating_mul(100) >= seen.saturating_mul(LOUD_SHARE_PERCENT);
        self.fire(loud, seen, bad)
    }

    fn fire(&self, loud: bool, seen: u64, bad: u64) -> Option<Loud> {
        (loud && !self.loud_done.swap(true, Relaxed)).then_some(Loud { seen, bad })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_true_once() {
        let a = Alarm::default();
        assert!(a.first());
        assert!(!a.first());
    }

    #[test]
    fn a_large_share_is_loud_once_and_a_small_one_is_not() {
        let a = Alarm::default();
        assert_eq!(a.count(1_000, 99), None, "below the minimum count");
        assert_eq!(
            a.count(1_000, 1),
            Some(Loud {
                seen: 2_000,
                bad: 100
            })
        );
        assert_eq!(a.count(1_000, 900), None, "once per node");

        let quiet = Alarm::default();
        assert_eq!(quiet.count(1_000_000, 500), None, "0.05 %");
        assert_eq!(quiet.end(1), None);

        let many = Alarm::default();
        assert_eq!(
            many.count(100_000_000, LOUD_COUNT),
            Some(Loud {
                seen: 100_000_000,
                bad: LOUD_COUNT
            })
        );
    }

    #[test]
    fn the_last_instance_to_end_reports_a_small_input() {
        let a = Alarm::default();
        assert_eq!(a.count(10, 3), None);
        assert_eq!(a.count(10, 0), None);
        assert_eq!(a.end(2), None, "one instance of two is still running");
        let loud = a.end(2).expect("the last one reports");
        assert_eq!(loud, Loud { seen: 20, bad: 3 });
        assert!((loud.percent() - 15.0).abs() < 1e-9);
    }
}
