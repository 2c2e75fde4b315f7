//! Watermark strategies and the generators they make.

use std::time::Duration;

use crate::record::{EventTime, NO_TIMESTAMP};

/// How a source instance (or partition) turns the event times it sees into
/// watermarks: a strategy, cheap to clone, that makes one
/// [`WatermarkGenerator`] per instance or partition.
///
/// The conventions are Flink's: with bounded out-of-orderness `d`, after
/// seeing a largest event time `t` the watermark is `t - d - 1`, so a record
/// up to `d` behind the largest one seen is never late.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use brook_core::time::Watermarks;
///
/// let strategy = Watermarks::bounded(Duration::from_secs(2))
///     .with_idle_timeout(Duration::from_secs(30));
/// let mut generator = strategy.generator();
/// generator.observe(10_000);
/// generator.observe(9_000);
/// assert_eq!(generator.current(), 10_000 - 2_000 - 1);
/// ```
///
/// # Events from the future
///
/// Without a bound (the default, as in Flink), one record dated far ahead
/// of the others (a year 2100 typo) moves the watermark there, and every
/// later record of that instance is late. [`Watermarks::with_max_ahead`]
/// bounds how far ahead an event time may be; the generator then refuses
/// later ones ([`WatermarkGenerator::try_observe`]), and `assign_timestamps`
/// sends them to its bad-record path instead of letting them advance time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    delay_ms: i64,
    idle_timeout: Option<Duration>,
    interval: Duration,
    max_ahead_ms: Option<i64>,
}

/// How often watermarks are emitted at most by default, as Flink's
/// `autoWatermarkInterval`: a watermark costs a control message on every
/// channel, so one per batch would flush every partial batch downstream.
pub const DEFAULT_WATERMARK_INTERVAL: Duration = Duration::from_millis(200);

impl Watermarks {
    /// Records may arrive up to `max_out_of_orderness` behind the largest
    /// event time seen so far.
    pub fn bounded(max_out_of_orderness: Duration) -> Self {
        Watermarks {
            delay_ms: i64::try_from(max_out_of_orderness.as_millis()).unwrap_or(i64::MAX),
            idle_timeout: None,
            interval: DEFAULT_WATERMARK_INTERVAL,
            max_ahead_ms: None,
        }
    }

    /// Event times never decrease: the watermark follows the largest event
    /// time seen (minus one millisecond, so equal times are not late).
    pub fn monotonic() -> Self {
        Watermarks {
            delay_ms: 0,
            idle_timeout: None,
            interval: DEFAULT_WATERMARK_INTERVAL,
            max_ahead_ms: None,
        }
    }

    /// Refuses event times more than `max_ahead` after the later of the
    /// instance's current watermark and the wall clock ([`now_ms`]): such a
    /// record does not advance the watermark, and `assign_timestamps` counts
    /// it as rejected and sends it to its rejected output (see
    /// [`WatermarkGenerator::try_observe`]). Off by default.
    ///
    /// The wall clock is the floor of the reference, so the very first
    /// records of an instance (before any watermark) are measured against
    /// it: an event cannot have happened in the future, beyond clock skew.
    /// Measuring only against the watermark would wedge the job on a gap in
    /// the data longer than the bound, or behind a bogus early first record
    /// (an epoch-0 time puts the watermark in 1970, and every real record
    /// after it would be "too far ahead"). With the floor, data whose event
    /// times are not ahead of the wall clock is never refused. Use it for
    /// event times in wall-clock time; synthetic times far in the future are
    /// refused from the first record on.
    ///
    /// Flink has no such bound: there, one record from the future moves the
    /// watermark and makes everything after it late.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::time::{Watermarks, now_ms};
    ///
    /// let strategy = Watermarks::bounded(Duration::from_secs(2))
    ///     .with_max_ahead(Duration::from_secs(3600));
    /// let mut generator = strategy.generator();
    /// let now = now_ms();
    /// assert!(generator.try_observe(now - 5_000, now).is_ok());
    /// let year_2100 = 4_102_444_800_000;
    /// assert!(generator.try_observe(year_2100, now).is_err());
    /// assert_eq!(generator.current(), now - 5_000 - 2_000 - 1);
    /// ```
    ///
    /// [`now_ms`]: crate::time::now_ms
    pub fn with_max_ahead(mut self, max_ahead: Duration) -> Self {
        self.max_ahead_ms = Some(i64::try_from(max_ahead.as_millis()).unwrap_or(i64::MAX));
        self
    }

    /// The bound set by [`Watermarks::with_max_ahead`], if any.
    pub fn max_ahead(&self) -> Option<Duration> {
        self.max_ahead_ms
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
    }

    /// After `timeout` of wall-clock time without records, the input is
    /// marked idle and no longer holds back the watermark downstream, until
    /// it sends again.
    pub fn with_idle_timeout(mut self, timeout: Duration) -> Self {
        self.idle_timeout = Some(timeout);
        self
    }

    /// Emits watermarks at most once per `interval` of processing time
    /// ([`DEFAULT_WATERMARK_INTERVAL`] unless set; zero: whenever one
    /// advances). A pending watermark goes out when the interval has passed,
    /// even if no record comes.
    pub fn with_emit_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The emit interval.
    pub fn emit_interval(&self) -> Duration {
        self.interval
    }

    /// The idle timeout, if one is set.
    pub fn idle_timeout(&self) -> Option<Duration> {
        self.idle_timeout
    }

    /// The bound on out-of-orderness, in milliseconds (0 for monotonic).
    pub fn max_out_of_orderness_ms(&self) -> i64 {
        self.delay_ms
    }

    /// A fresh generator for one instance or partition.
    pub fn generator(&self) -> WatermarkGenerator {
        WatermarkGenerator {
            delay_ms: self.delay_ms,
            max_seen: EventTime::MIN,
            max_ahead_ms: self.max_ahead_ms,
        }
    }
}

/// Why a [`WatermarkGenerator`] refused an event time
/// ([`WatermarkGenerator::try_observe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The time is `i64::MIN`, Brook's marker for "no event time"
    /// ([`NO_TIMESTAMP`]): the extractor found no time, or an underflow.
    #[error("event time i64::MIN is Brook's marker for \"no event time\", not a time")]
    NoTime,
    /// The time is `i64::MAX`, the watermark that ends the input: no window
    /// can hold a record at it on time.
    #[error("event time i64::MAX is the end-of-input watermark, not a time")]
    EndOfTime,
    /// The time is later than the strategy's bound allows
    /// ([`Watermarks::with_max_ahead`]).
    #[error(
        "event time {timestamp} is more than {max_ahead_ms} ms ahead of the watermark \
         and the wall clock (latest accepted: {limit})"
    )]
    TooFarAhead {
        /// The refused time.
        timestamp: EventTime,
        /// The latest time that would have been accepted.
        limit: EventTime,
        /// The bound, in milliseconds.
        max_ahead_ms: i64,
    },
}

/// Tracks the largest event time seen by one input and derives its
/// watermark. Made by [`Watermarks::generator`]; its state is the largest
/// event time, so it is `serde`-serializable for checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkGenerator {
    delay_ms: i64,
    max_seen: EventTime,
    max_ahead_ms: Option<i64>,
}

impl WatermarkGenerator {
    /// Notes a record's event time.
    #[inline]
    pub fn observe(&mut self, timestamp: EventTime) {
        if timestamp > self.max_seen {
            self.max_seen = timestamp;
        }
    }

    /// Checks a record's event time and notes it if it is accepted: refuses
    /// [`NO_TIMESTAMP`] and `i64::MAX` always, and, with a bound
    /// ([`Watermarks::with_max_ahead`]), a time past
    /// [`WatermarkGenerator::limit`] at processing time `now_ms`. A refused
    /// time leaves the watermark as it was.
    ///
    /// # Errors
    /// Why the time was refused.
    #[inline]
    pub fn try_observe(&mut self, timestamp: EventTime, now_ms: i64) -> Result<(), Refusal> {
        if timestamp == NO_TIMESTAMP {
            return Err(Refusal::NoTime);
        }
        if timestamp == EventTime::MAX {
            return Err(Refusal::EndOfTime);
        }
        if let Some(max_ahead_ms) = self.max_ahead_ms {
            let limit = self.limit_for(max_ahead_ms, now_ms);
            if timestamp > limit {
                return Err(Refusal::TooFarAhead {
                    timestamp,
                    limit,
                    max_ahead_ms,
                });
            }
        }
        self.observe(timestamp);
        Ok(())
    }

    /// The latest event time [`WatermarkGenerator::try_observe`] accepts at
    /// processing time `now_ms`: the later of the current watermark and
    /// `now_ms`, plus the bound; [`EventTime::MAX`] without a bound.
    pub fn limit(&self, now_ms: i64) -> EventTime {
        self.max_ahead_ms
            .map_or(EventTime::MAX, |ahead| self.limit_for(ahead, now_ms))
    }

    fn limit_for(&self, max_ahead_ms: i64, now_ms: i64) -> EventTime {
        self.current().max(now_ms).saturating_add(max_ahead_ms)
    }

    /// The largest event time seen, or [`EventTime::MIN`] before any.
    pub fn max_seen(&self) -> EventTime {
        self.max_seen
    }

    /// The current watermark: [`EventTime::MIN`] until a record was seen.
    pub fn current(&self) -> EventTime {
        if self.max_seen == EventTime::MIN {
            return EventTime::MIN;
        }
        self.max_seen
            .saturating_sub(self.delay_ms)
            .saturating_sub(1)
    }
}

/// Wall-clock idleness of one input: idle once `timeout` has passed since
/// the last activity.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdleTracker {
    timeout_ms: i64,
    last_active_ms: i64,
    idle: bool,
}

impl IdleTracker {
    /// A tracker that counts from `now_ms`.
    pub fn new(timeout: Duration, now_ms: i64) -> Self {
        IdleTracker {
            timeout_ms: i64::try_from(timeout.as_millis()).unwrap_or(i64::MAX),
            last_active_ms: now_ms,
            idle: false,
        }
    }

    /// The input was active at `now_ms`; returns whether it was idle before.
    pub fn active(&mut self, now_ms: i64) -> bool {
        self.last_active_ms = now_ms;
        std::mem::replace(&mut self.idle, false)
    }

    /// When the input turns idle if nothing happens before: the time to
    /// check again.
    pub fn deadline(&self) -> i64 {
        self.last_active_ms.saturating_add(self.timeout_ms)
    }

    /// Checks the clock; returns true exactly once when the input turns idle.
    pub fn check(&mut self, now_ms: i64) -> bool {
        if !self.idle && now_ms >= self.deadline() {
            self.idle = true;
            return true;
        }
        false
    }

    /// Whether the input is idle now.
    pub fn is_idle(&self) -> bool {
        self.idle
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_watermark_trails_the_largest_time() {
        let mut g = Watermarks::bounded(Duration::from_millis(100)).generator();
        assert_eq!(g.current(), EventTime::MIN);
        for t in [500, 450, 700, 600] {
            g.observe(t);
        }
        assert_eq!(g.current(), 700 - 100 - 1);
    }

    #[test]
    fn monotonic_watermark_keeps_equal_times_on_time() {
        let mut g = Watermarks::monotonic().generator();
        g.observe(42);
        assert_eq!(g.current(), 41);
    }

    #[test]
    fn watermark_saturates_at_both_ends_of_the_range() {
        let mut g = Watermarks::bounded(Duration::from_millis(100)).generator();
        g.observe(EventTime::MIN + 1);
        assert_eq!(g.current(), EventTime::MIN, "no underflow below MIN");
        let mut g = Watermarks::bounded(Duration::MAX).generator();
        g.observe(crate::record::MAX_EVENT_TIME);
        assert_eq!(g.current(), -2, "MAX - 1 - (MAX) - 1");
        let mut g = Watermarks::monotonic().generator();
        g.observe(crate::record::MAX_EVENT_TIME);
        assert_eq!(g.current(), EventTime::MAX - 2);
    }

    #[test]
    fn try_observe_refuses_the_reserved_times_without_a_bound() {
        let mut g = Watermarks::monotonic().generator();
        assert_eq!(g.try_observe(NO_TIMESTAMP, 0), Err(Refusal::NoTime));
        assert_eq!(g.try_observe(EventTime::MAX, 0), Err(Refusal::EndOfTime));
        assert_eq!(g.current(), EventTime::MIN, "refused times move nothing");
        assert_eq!(g.try_observe(EventTime::MAX - 1, 0), Ok(()));
        assert_eq!(g.limit(0), EventTime::MAX);
    }

    #[test]
    fn a_bound_measures_from_the_later_of_watermark_and_wall_clock() {
        let now = 1_000_000;
        let mut g = Watermarks::bounded(Duration::from_millis(10))
            .with_max_ahead(Duration::from_millis(500))
            .generator();
        // Before any record: the wall clock is the reference.
        assert_eq!(g.limit(now), now + 500);
        assert!(matches!(
            g.try_observe(now + 501, now),
            Err(Refusal::TooFarAhead { limit, .. }) if limit == now + 500
        ));
        assert_eq!(
            g.current(),
            EventTime::MIN,
            "the refused first record set nothing"
        );
        // An early (even epoch-0) record does not wedge the instance.
        assert_eq!(g.try_observe(0, now), Ok(()));
        assert_eq!(g.try_observe(now - 3, now), Ok(()));
        assert_eq!(g.current(), now - 3 - 10 - 1);
        // Event time ahead of the wall clock: the watermark is the reference.
        assert_eq!(g.try_observe(now + 500, now), Ok(()));
        assert_eq!(g.limit(now), now + 500 - 11 + 500);
        assert_eq!(g.try_observe(now + 989, now), Ok(()));
        // Saturates instead of overflowing.
        let g = Watermarks::monotonic()
            .with_max_ahead(Duration::MAX)
            .generator();
        assert_eq!(g.limit(i64::MAX - 1), EventTime::MAX);
    }

    #[test]
    fn idle_tracker_turns_idle_once_and_back() {
        let mut t = IdleTracker::new(Duration::from_millis(50), 1_000);
        assert!(!t.check(1_049));
        assert!(t.check(1_050));
        assert!(!t.check(2_000));
        assert!(t.is_idle());
        assert!(t.active(2_001));
        assert_eq!(t.deadline(), 2_051);
    }
}
