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
        self.end.saturating_sub(1)
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
///
/// The built-in assigners compute in 128 bits, so no event time overflows:
/// a window that would start before `i64::MIN` or end after `i64::MAX` is
/// cut at that end of the range (it stays well-formed, `start < end`, and
/// holds the record), and a record at `i64::MAX`, the end-of-input
/// watermark, belongs to no window.
pub trait WindowAssigner: Clone + Send + Sync + 'static {
    /// Calls `f` with every window `timestamp` belongs to: each one holds
    /// it (`start <= timestamp < end`).
    fn assign(&self, timestamp: EventTime, f: impl FnMut(Window));

    /// Whether windows merge when they touch (session windows).
    fn is_merging(&self) -> bool {
        false
    }

    /// Whether every timestamp belongs to exactly one window that depends
    /// on the timestamp alone (tumbling windows). Such windows can be
    /// aggregated in two phases: partly before the key exchange, then
    /// merged (see [`WindowedStream::aggregate`](super::WindowedStream::aggregate)).
    fn is_single(&self) -> bool {
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

/// Milliseconds of a duration in 128 bits: exact for every `Duration`.
fn ms(d: Duration) -> i128 {
    // At most u64::MAX seconds: about 2^74 ms, far inside i128.
    i128::try_from(d.as_millis()).unwrap_or(i128::MAX)
}

/// The start of the window of `size` (aligned at `offset`) holding `t`, in
/// 128 bits, so it may lie before `i64::MIN`. `size` is positive.
#[inline]
fn aligned_start(t: i128, size: i128, offset: i128) -> i128 {
    // Times, sizes and offsets nearly always fit 64 bits, and a 128-bit
    // remainder is a library call (1 % of the logs-window job at p=1).
    if let (Ok(t), Ok(size), Ok(offset)) =
        (i64::try_from(t), i64::try_from(size), i64::try_from(offset))
        && let Some(from_offset) = t.checked_sub(offset)
    {
        return i128::from(t) - i128::from(from_offset.rem_euclid(size));
    }
    t - (t - offset).rem_euclid(size)
}

/// Calls `f` with the window `[start, end)`, computed in 128 bits and cut
/// to the range of `i64`, if it holds `t`.
#[inline]
fn emit_holding(t: EventTime, start: i128, end: i128, f: &mut impl FnMut(Window)) {
    let cut = |v: i128| i64::try_from(v).unwrap_or(if v < 0 { i64::MIN } else { i64::MAX });
    let w = Window::new(cut(start), cut(end));
    if w.start <= t && t < w.end {
        f(w);
    }
}

impl WindowAssigner for Tumbling {
    #[inline]
    fn assign(&self, timestamp: EventTime, mut f: impl FnMut(Window)) {
        let size = ms(self.size);
        if size <= 0 {
            return; // refused by `validate`
        }
        let start = aligned_start(i128::from(timestamp), size, ms(self.offset));
        emit_holding(timestamp, start, start + size, &mut f);
    }

    fn is_single(&self) -> bool {
        true
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
        let (size, slide) = (ms(self.size), ms(self.slide));
        if size <= 0 || slide <= 0 {
            return; // refused by `validate`
        }
        let t = i128::from(timestamp);
        let mut start = aligned_start(t, slide, ms(self.offset));
        while start > t - size {
            emit_holding(timestamp, start, start + size, &mut f);
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
        let gap = ms(self.gap);
        if gap <= 0 {
            return; // refused by `validate`
        }
        let t = i128::from(timestamp);
        emit_holding(timestamp, t, t + gap, &mut f);
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
    use proptest::prelude::*;

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

    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;

    /// `v` cut to the range of `i64`, as the assigners do.
    fn cut(v: i128) -> i64 {
        i64::try_from(v).unwrap_or(if v < 0 { MIN } else { MAX })
    }

    /// The aligned start of `t`'s window of `size`, in 128 bits.
    fn start(t: i64, size: i128) -> i128 {
        let t = i128::from(t);
        t - t.rem_euclid(size)
    }

    #[test]
    fn tumbling_windows_at_the_ends_of_the_range_are_cut_not_wrapped() {
        let t = Tumbling::of(Duration::from_secs(10));
        // The window of MAX - 1 would end past MAX: it ends at MAX.
        let last = start(MAX - 1, 10_000);
        assert!(last + 10_000 > i128::from(MAX));
        assert_eq!(windows(&t, MAX - 1), [(cut(last), MAX)]);
        assert_eq!(windows(&t, cut(last)), [(cut(last), MAX)]);
        // The window of MIN + 1 would start before MIN: it starts at MIN.
        let first = start(MIN + 1, 10_000);
        assert!(first < i128::from(MIN));
        assert_eq!(windows(&t, MIN + 1), [(MIN, cut(first + 10_000))]);
        assert_eq!(windows(&t, MIN), [(MIN, cut(first + 10_000))]);
        // The end-of-input watermark is in no window.
        assert_eq!(windows(&t, MAX), Vec::<(i64, i64)>::new());
        // A size or offset beyond the range of i64 milliseconds.
        let huge = Tumbling::of(Duration::from_secs(u64::MAX)).with_offset(Duration::MAX);
        let got = windows(&huge, 0);
        assert_eq!(got.len(), 1);
        assert!(got[0].0 <= 0 && 0 < got[0].1, "{got:?}");
        assert_eq!(Window::new(MIN, MIN).max_timestamp(), MIN, "no underflow");
    }

    #[test]
    fn sliding_and_session_windows_at_the_ends_of_the_range() {
        let s = Sliding::of(Duration::from_millis(10), Duration::from_millis(5));
        let a = start(MAX - 1, 5);
        assert_eq!(
            windows(&s, MAX - 1),
            [(cut(a), cut(a + 10)), (cut(a - 5), cut(a + 5))]
        );
        assert_eq!(windows(&s, MAX), Vec::<(i64, i64)>::new());
        let b = start(MIN + 1, 5);
        assert_eq!(
            windows(&s, MIN + 1),
            [(cut(b), cut(b + 10)), (cut(b - 5), cut(b + 5))]
        );
        let g = Session::with_gap(Duration::from_secs(30));
        assert_eq!(windows(&g, MAX - 1), [(MAX - 1, MAX)]);
        assert_eq!(windows(&g, MAX), Vec::<(i64, i64)>::new());
        assert_eq!(windows(&g, MIN + 1), [(MIN + 1, MIN + 30_001)]);
    }

    /// Checks what every assigner promises for `t`: each window holds `t`,
    /// is well-formed, and has its nominal size unless cut at an end of the
    /// range; a record at `i64::MAX` is in none.
    fn check(a: &impl WindowAssigner, t: i64, size: i128) -> Vec<Window> {
        let mut got = Vec::new();
        a.assign(t, |w| got.push(w));
        for w in &got {
            assert!(w.start < w.end, "{w:?} for {t}");
            assert!(w.start <= t && t < w.end, "{w:?} does not hold {t}");
            let cut = w.start == MIN || w.end == MAX;
            assert!(
                cut || i128::from(w.end) - i128::from(w.start) == size,
                "{w:?} for {t}: size {size}"
            );
            assert!(w.max_timestamp() >= t);
        }
        if t == MAX {
            assert!(got.is_empty(), "{got:?}");
        }
        got
    }

    fn any_time() -> impl Strategy<Value = i64> {
        prop_oneof![
            any::<i64>(),
            (0i64..100_000).prop_map(|d| MIN.saturating_add(d)),
            (0i64..100_000).prop_map(|d| MAX.saturating_sub(d)),
        ]
    }

    fn any_ms() -> impl Strategy<Value = u64> {
        prop_oneof![1u64..100_000, 1u64..=u64::MAX, Just(i64::MAX as u64)]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn tumbling_holds_every_time_in_one_consistent_window(
            t in any_time(), size in any_ms(), offset in any_ms(),
        ) {
            let a = Tumbling::of(Duration::from_millis(size))
                .with_offset(Duration::from_millis(offset));
            let got = check(&a, t, i128::from(size));
            prop_assert_eq!(got.len(), usize::from(t != MAX));
            for w in got {
                // Every time in the window is given the same window.
                for u in [w.start, w.max_timestamp()] {
                    prop_assert_eq!(check(&a, u, i128::from(size)), vec![w]);
                }
            }
        }

        #[test]
        fn sliding_gives_every_covering_window_once(
            t in any_time(), slide in 1u64..1_000_000, ratio in 1u64..8, extra in 0u64..1_000,
        ) {
            let size = slide * ratio + extra;
            let a = Sliding::of(Duration::from_millis(size), Duration::from_millis(slide));
            let got = check(&a, t, i128::from(size));
            let mut distinct = got.clone();
            distinct.sort();
            distinct.dedup();
            prop_assert_eq!(distinct.len(), got.len(), "{:?}", got);
            if t != MAX {
                prop_assert!(!got.is_empty());
                let most = size.div_ceil(slide) as usize;
                prop_assert!(got.len() <= most, "{} > {}", got.len(), most);
            }
        }

        #[test]
        fn aligned_start_in_64_bits_is_the_128_bit_one(
            t in prop_oneof![any::<i64>(), -100_000i64..100_000],
            size in any_ms(),
            offset in prop_oneof![any_ms(), 0u64..10],
        ) {
            let (t, size, offset) = (i128::from(t), i128::from(size), i128::from(offset));
            prop_assert_eq!(aligned_start(t, size, offset), t - (t - offset).rem_euclid(size));
        }

        #[test]
        fn a_session_starts_at_its_record(t in any_time(), gap in any_ms()) {
            let a = Session::with_gap(Duration::from_millis(gap));
            let got = check(&a, t, i128::from(gap));
            prop_assert_eq!(got.len(), usize::from(t != MAX));
            if let Some(w) = got.first() {
                prop_assert_eq!(w.start, t);
            }
        }
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
