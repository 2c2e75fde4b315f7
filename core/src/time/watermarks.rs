//! Watermark strategies and the generators they make.

use std::time::Duration;

use crate::record::EventTime;

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watermarks {
    delay_ms: i64,
    idle_timeout: Option<Duration>,
    interval: Duration,
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
        }
    }

    /// Event times never decrease: the watermark follows the largest event
    /// time seen (minus one millisecond, so equal times are not late).
    pub fn monotonic() -> Self {
        Watermarks {
            delay_ms: 0,
            idle_timeout: None,
            interval: DEFAULT_WATERMARK_INTERVAL,
        }
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
        }
    }
}

/// Tracks the largest event time seen by one input and derives its
/// watermark. Made by [`Watermarks::generator`]; its state is the largest
/// event time, so it is `serde`-serializable for checkpoints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct WatermarkGenerator {
    delay_ms: i64,
    max_seen: EventTime,
}

impl WatermarkGenerator {
    /// Notes a record's event time.
    #[inline]
    pub fn observe(&mut self, timestamp: EventTime) {
        if timestamp > self.max_seen {
            self.max_seen = timestamp;
        }
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
