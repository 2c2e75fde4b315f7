//! Window assigners: which windows a record's event time belongs to.

use std::time::Duration;

use brook_core::{Error, EventTime, Result};
use serde::{Deserialize, Serialize};

/// A window of event time: `start` inclusive, `end` exclusive, in
/// milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Window {
    /// The first millisecond in the window.
    pub start: EventTime,
    /// The first millisecond after the window.
    pub end: EventTime,
}

impl Window {
    /// The window `[start, end)`.
    pub fn new(start: EventTime, end: EventTime) -> Self {
        Window { start, end }
    }

    /// The last millisecond in the window: results carry it as their event
    /// time, and the window fires once the watermark reaches it.
    pub fn max_timestamp(&self) -> EventTime {
        self.end - 1
    }

    /// Whether two session windows overlap or touch, and so merge.
    pub fn touches(&self, other: &Window) -> bool {
        self.start <= other.end && other.start <= self.end
    }

    /// The smallest window covering both.
    pub fn cover(&self, other: &Window) -> Window {
        Window::new(self.start.min(other.start), self.end.max(other.end))
    }
}

/// Assigns event times to windows. Implemented by [`Tumbling`], [`Sliding`]
/// and [`Session`].
pub trait WindowAssigner: Clone + Send + Sync + 'static {
    /// Calls `f` with every window `timestamp` belongs to.
    fn assign(&self, timestamp: EventTime, f: impl FnMut(Window));

    /// Whether windows merge when they touch (session windows).
    fn is_merging(&self) -> bool {
        false
    }

    /// Checks the assigner's settings.
    ///
    /// # Errors
    /// A size, slide or gap that is not positive.
    fn validate(&self) -> Result<()>;
}

fn millis(d: Duration, what: &str) -> Result<i64> {
    match i64::try_from(d.as_millis()) {
        Ok(ms) if ms > 0 => Ok(ms),
        _ => Err(Error::Config(format!(
            "window {what} must be at least 1 ms, got {d:?}"
        ))),
    }
}

/// Fixed-size, non-overlapping windows aligned to the epoch (plus an
/// optional offset): `start = floor((t - offset) / size) * size + offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tumbling {
    size: Duration,
    offset: Duration,
}

impl Tumbling {
    /// Windows of `size`.
    pub fn of(size: Duration) -> Self {
        Tumbling {
            size,
            offset: Duration::ZERO,
        }
    }

    /// Shifts the windows' alignment by `offset` (for example to align daily
    /// windows to a time zone).
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }
}

/// The start of the window of `size` (aligned at `offset`) holding `t`.
fn aligned_start(t: EventTime, size: i64, offset: i64) -> EventTime {
    t - (t - offset).rem_euclid(size)
}

impl WindowAssigner for Tumbling {
    #[inline]
    fn assign(&self, timestamp: EventTime, mut f: impl FnMut(Window)) {
        let size = self.size.as_millis() as i64;
        let start = aligned_start(timestamp, size, self.offset.as_millis() as i64);
        f(Window::new(start, start + size));
    }

    fn validate(&self) -> Result<()> {
        millis(self.size, "size")?;
        Ok(())
    }
}

/// Windows of a fixed size that start every `slide` (hopping windows); a
/// record belongs to about `size / slide` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sliding {
    size: Duration,
    slide: Duration,
    offset: Duration,
}

impl Sliding {
    /// Windows of `size`, one starting every `slide`.
    pub fn of(size: Duration, slide: Duration) -> Self {
        Sliding {
            size,
            slide,
            offset: Duration::ZERO,
        }
    }

    /// Shifts the windows' alignment by `offset`.
    pub fn with_offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }
}

impl WindowAssigner for Sliding {
    fn assign(&self, timestamp: EventTime, mut f: impl FnMut(Window)) {
        let size = self.size.as_millis() as i64;
        let slide = self.slide.as_millis() as i64;
        let mut start = aligned_start(timestamp, slide, self.offset.as_millis() as i64);
        while start > timestamp - size {
            f(Window::new(start, start + size));
            start -= slide;
        }
    }

    fn validate(&self) -> Result<()> {
        millis(self.size, "size")?;
        millis(self.slide, "slide")?;
        Ok(())
    }
}

/// Per-key windows of activity: a record opens `[t, t + gap)`, and windows
/// of the same key that touch merge into one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Session {
    gap: Duration,
}

impl Session {
    /// Sessions that close after `gap` without records.
    pub fn with_gap(gap: Duration) -> Self {
        Session { gap }
    }
}

impl WindowAssigner for Session {
    fn assign(&self, timestamp: EventTime, mut f: impl FnMut(Window)) {
        f(Window::new(
            timestamp,
            timestamp + self.gap.as_millis() as i64,
        ));
    }

    fn is_merging(&self) -> bool {
        true
    }

    fn validate(&self) -> Result<()> {
        millis(self.gap, "gap")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn windows(a: &impl WindowAssigner, t: EventTime) -> Vec<(i64, i64)> {
        let mut out = Vec::new();
        a.assign(t, |w| out.push((w.start, w.end)));
        out
    }

    #[test]
    fn tumbling_aligns_to_the_epoch_for_negative_times_too() {
        let t = Tumbling::of(Duration::from_secs(10));
        assert_eq!(
            windows(&t, 1_700_000_012_345),
            [(1_700_000_010_000, 1_700_000_020_000)]
        );
        assert_eq!(windows(&t, -1), [(-10_000, 0)]);
        assert_eq!(windows(&t, 0), [(0, 10_000)]);
        let shifted = Tumbling::of(Duration::from_secs(10)).with_offset(Duration::from_secs(3));
        assert_eq!(windows(&shifted, 2_999), [(-7_000, 3_000)]);
    }

    #[test]
    fn sliding_assigns_every_covering_window() {
        let s = Sliding::of(Duration::from_millis(10), Duration::from_millis(5));
        assert_eq!(windows(&s, 12), [(10, 20), (5, 15)]);
        assert_eq!(windows(&s, 10), [(10, 20), (5, 15)]);
        let gaps = Sliding::of(Duration::from_millis(3), Duration::from_millis(5));
        assert_eq!(windows(&gaps, 4), Vec::<(i64, i64)>::new());
        assert_eq!(windows(&gaps, 6), [(5, 8)]);
    }

    #[test]
    fn sessions_touching_merge() {
        let a = Window::new(0, 10);
        assert!(a.touches(&Window::new(10, 20)));
        assert!(!a.touches(&Window::new(11, 20)));
        assert_eq!(a.cover(&Window::new(5, 30)), Window::new(0, 30));
        assert!(Tumbling::of(Duration::ZERO).validate().is_err());
        assert!(
            Session::with_gap(Duration::from_millis(1))
                .validate()
                .is_ok()
        );
    }
}
