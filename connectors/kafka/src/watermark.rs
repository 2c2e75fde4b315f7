//! Per-partition event time: the largest timestamp each partition has shown,
//! its watermark generator and idle tracker, and the instance's watermark as
//! the minimum over the partitions that are neither idle nor finished.

use std::collections::VecDeque;

use brook_core::time::{IdleTracker, Refusal, WatermarkGenerator, Watermarks};
use brook_core::{EventTime, NO_TIMESTAMP, SourceEvent};

/// The event-time state of one partition.
#[derive(Debug)]
struct Clock {
    /// The largest event time seen, or [`EventTime::MIN`].
    max_seen: EventTime,
    generator: Option<WatermarkGenerator>,
    idle: Option<IdleTracker>,
    /// Read to its end (bounded mode): holds nothing back.
    finished: bool,
}

/// The event-time state of one source instance's partitions.
#[derive(Debug)]
pub(crate) struct PartitionClocks {
    clocks: Vec<Clock>,
    /// Whether a watermark strategy is set; without one, the source emits
    /// no watermarks of its own (the runtime sends the final one at end).
    strategy: bool,
    /// The last watermark emitted.
    emitted: EventTime,
    /// Whether the instance said it is idle and has not emitted since.
    idle_sent: bool,
}

impl PartitionClocks {
    /// Clocks for `n` partitions, starting at `now_ms`.
    pub(crate) fn new(n: usize, strategy: Option<&Watermarks>, now_ms: i64) -> Self {
        let clocks = (0..n)
            .map(|_| Clock {
                max_seen: EventTime::MIN,
                generator: strategy.map(Watermarks::generator),
                idle: strategy
                    .and_then(Watermarks::idle_timeout)
                    .map(|t| IdleTracker::new(t, now_ms)),
                finished: false,
            })
            .collect();
        PartitionClocks {
            clocks,
            strategy: strategy.is_some(),
            emitted: EventTime::MIN,
            idle_sent: false,
        }
    }

    /// Notes a record of partition `i` with event time `ts`, read at
    /// `now_ms`. A record without a time is only activity.
    ///
    /// # Errors
    /// The strategy refuses the time (the end-of-input time, or further
    /// ahead than [`Watermarks::with_max_ahead`] allows): the record must
    /// not be emitted, and it moved no watermark.
    #[inline]
    pub(crate) fn observe(&mut self, i: usize, ts: EventTime, now_ms: i64) -> Result<(), Refusal> {
        let Some(c) = self.clocks.get_mut(i) else {
            return Ok(());
        };
        if let Some(idle) = &mut c.idle {
            idle.active(now_ms);
        }
        if ts == NO_TIMESTAMP {
            return Ok(());
        }
        if let Some(g) = &mut c.generator {
            g.try_observe(ts, now_ms)?;
        }
        c.max_seen = c.max_seen.max(ts);
        Ok(())
    }

    /// Partition `i` was read to its end: it no longer holds the watermark
    /// back.
    pub(crate) fn finish(&mut self, i: usize) {
        if let Some(c) = self.clocks.get_mut(i) {
            c.finished = true;
        }
    }

    /// The largest event time partition `i` has shown, if any.
    #[cfg(test)]
    pub(crate) fn max_seen(&self, i: usize) -> Option<EventTime> {
        self.clocks
            .get(i)
            .map(|c| c.max_seen)
            .filter(|t| *t != EventTime::MIN)
    }

    /// The events to emit after a batch or a clock check, added to `out`:
    /// a watermark when the minimum over live partitions advanced; when no
    /// partition is live because all are idle (or there are none), once,
    /// the largest of their watermarks if it advances (as Flink does) and
    /// then [`SourceEvent::Idle`]. When all are finished, nothing: the
    /// stream is about to end.
    pub(crate) fn events<T>(&mut self, now_ms: i64, out: &mut VecDeque<SourceEvent<T>>) {
        if !self.clocks.is_empty() && (!self.strategy || self.clocks.iter().all(|c| c.finished)) {
            return;
        }
        for c in &mut self.clocks {
            if let Some(idle) = &mut c.idle {
                idle.check(now_ms);
            }
        }
        let current = |c: &Clock| {
            c.generator
                .as_ref()
                .map_or(EventTime::MIN, WatermarkGenerator::current)
        };
        let live = self
            .clocks
            .iter()
            .filter(|c| !c.finished && !c.idle.as_ref().is_some_and(IdleTracker::is_idle));
        match live.map(current).min() {
            Some(wm) => {
                self.idle_sent = false;
                if wm > self.emitted {
                    self.emitted = wm;
                    out.push_back(SourceEvent::Watermark(wm));
                }
            }
            None if !self.idle_sent => {
                self.idle_sent = true;
                let max = self
                    .clocks
                    .iter()
                    .filter(|c| !c.finished)
                    .map(current)
                    .max();
                if let Some(wm) = max.filter(|wm| *wm > self.emitted) {
                    self.emitted = wm;
                    out.push_back(SourceEvent::Watermark(wm));
                }
                out.push_back(SourceEvent::Idle);
            }
            None => {}
        }
    }

    /// When a partition may next turn idle, if any can: the time to check
    /// the clocks again while no message comes.
    pub(crate) fn next_idle_deadline(&self) -> Option<i64> {
        self.clocks
            .iter()
            .filter(|c| !c.finished)
            .filter_map(|c| c.idle.as_ref().filter(|i| !i.is_idle()))
            .map(IdleTracker::deadline)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// The events after a check at `now`.
    fn at(c: &mut PartitionClocks, now: i64) -> Vec<SourceEvent<()>> {
        let mut out = VecDeque::new();
        c.events(now, &mut out);
        out.into()
    }

    #[test]
    fn a_time_too_far_ahead_is_refused_and_moves_no_watermark() {
        let s =
            Watermarks::bounded(Duration::from_millis(10)).with_max_ahead(Duration::from_secs(60));
        let mut c = PartitionClocks::new(1, Some(&s), 1_000);
        c.observe(0, 2_000, 1_000).expect("accepted");
        assert_eq!(at(&mut c, 1_000), vec![SourceEvent::Watermark(1_989)]);
        // 2100, with the wall clock at 1 s past the epoch.
        let err = c.observe(0, 4_102_444_800_000, 1_000).expect_err("refused");
        assert!(err.to_string().contains("ahead"), "{err}");
        assert_eq!(c.max_seen(0), Some(2_000));
        c.observe(0, 3_000, 1_000).expect("accepted");
        assert_eq!(at(&mut c, 1_000), vec![SourceEvent::Watermark(2_989)]);
    }

    #[test]
    fn the_watermark_is_the_minimum_over_live_partitions() {
        let s = Watermarks::bounded(Duration::from_millis(10));
        let mut c = PartitionClocks::new(2, Some(&s), 0);
        c.observe(0, 1_000, 0).expect("accepted");
        // Partition 1 has shown nothing: it holds the watermark at MIN.
        assert_eq!(at(&mut c, 0), vec![]);
        c.observe(1, 500, 0).expect("accepted");
        assert_eq!(at(&mut c, 0), vec![SourceEvent::Watermark(489)]);
        c.observe(1, 2_000, 0).expect("accepted");
        assert_eq!(at(&mut c, 0), vec![SourceEvent::Watermark(989)]);
        assert_eq!(c.max_seen(1), Some(2_000));
        // A finished partition no longer holds it back.
        c.observe(1, 5_000, 0).expect("accepted");
        c.finish(0);
        assert_eq!(at(&mut c, 0), vec![SourceEvent::Watermark(4_989)]);
        // All finished: the stream ends, no idle mark.
        c.finish(1);
        assert_eq!(at(&mut c, 0), vec![]);
    }

    #[test]
    fn quiet_partitions_turn_idle_and_all_idle_is_said_once() {
        let s = Watermarks::monotonic().with_idle_timeout(Duration::from_millis(100));
        let mut c = PartitionClocks::new(2, Some(&s), 0);
        c.observe(0, 50, 10).expect("accepted");
        assert_eq!(c.next_idle_deadline(), Some(100));
        // Partition 1 turns idle at 100; partition 0 alone sets the mark.
        assert_eq!(at(&mut c, 100), vec![SourceEvent::Watermark(49)]);
        assert_eq!(at(&mut c, 200), vec![SourceEvent::Idle]);
        assert_eq!(at(&mut c, 300), vec![]);
        c.observe(1, 80, 310).expect("accepted");
        assert_eq!(at(&mut c, 310), vec![SourceEvent::Watermark(79)]);
        assert_eq!(c.next_idle_deadline(), Some(410));
    }

    #[test]
    fn all_turning_idle_at_once_first_advance_to_the_largest_mark() {
        let s = Watermarks::monotonic().with_idle_timeout(Duration::from_millis(100));
        let mut c = PartitionClocks::new(2, Some(&s), 0);
        c.observe(0, 50, 0).expect("accepted");
        assert_eq!(
            at(&mut c, 150),
            vec![SourceEvent::Watermark(49), SourceEvent::Idle]
        );
    }

    #[test]
    fn no_partitions_is_idle_even_without_a_strategy() {
        let mut c = PartitionClocks::new(0, None, 0);
        assert_eq!(at(&mut c, 0), vec![SourceEvent::Idle]);
        let mut c = PartitionClocks::new(1, None, 0);
        c.observe(0, 5, 0).expect("accepted");
        assert_eq!(at(&mut c, 0), vec![]);
    }
}
