//! The interval join, and the updating join as an interval join whose
//! interval is its time-to-live (or everything).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use brook_core::{EventTime, OutputTag, Result};

use super::{JoinInput, JoinValue, late};
use crate::keyed::{KeyedContext, KeyedProcessFunction, Timer};
use crate::window::WindowKey;

/// The bounds of an interval join, relative to the left record's event
/// time, both inclusive: a right record joins when `left.ts + lower <=
/// right.ts <= left.ts + upper`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    lower: i64,
    upper: i64,
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Interval {
    /// The interval `[lower, upper]` in milliseconds, either may be
    /// negative. An empty interval (`lower > upper`) joins nothing.
    pub fn millis(lower: i64, upper: i64) -> Self {
        Interval { lower, upper }
    }

    /// Right records from `before` before the left record to `after` after
    /// it: `[-before, +after]`.
    pub fn new(before: Duration, after: Duration) -> Self {
        Interval {
            lower: ms(before).saturating_neg(),
            upper: ms(after),
        }
    }

    /// The lower bound, in milliseconds.
    pub fn lower(&self) -> i64 {
        self.lower
    }

    /// The upper bound, in milliseconds.
    pub fn upper(&self) -> i64 {
        self.upper
    }
}

/// The records of one key kept for joining, by event time.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Kept<L, R> {
    left: BTreeMap<EventTime, Vec<L>>,
    right: BTreeMap<EventTime, Vec<R>>,
}

impl<L, R> Default for Kept<L, R> {
    fn default() -> Self {
        Kept {
            left: BTreeMap::new(),
            right: BTreeMap::new(),
        }
    }
}

/// Runs an interval join (bounded) or an updating join (unbounded) as a
/// keyed process function on the tagged inputs.
#[derive(Clone)]
pub(crate) struct IntervalJoin<L, R, F> {
    /// `None`: every pair joins and nothing expires.
    bounds: Option<Interval>,
    f: F,
    late: Option<OutputTag<JoinInput<L, R>>>,
}

impl<L, R, F> IntervalJoin<L, R, F> {
    pub(crate) fn bounded(
        interval: Interval,
        f: F,
        late: Option<OutputTag<JoinInput<L, R>>>,
    ) -> Self {
        IntervalJoin {
            bounds: Some(interval),
            f,
            late,
        }
    }

    /// Records less than `ttl` apart join: the interval `[-(ttl - 1 ms),
    /// ttl - 1 ms]`.
    pub(crate) fn updating(
        ttl: Option<Duration>,
        f: F,
        late: Option<OutputTag<JoinInput<L, R>>>,
    ) -> Self {
        let bounds = ttl.map(|ttl| {
            let within = ms(ttl).saturating_sub(1);
            Interval::millis(within.saturating_neg(), within)
        });
        IntervalJoin { bounds, f, late }
    }
}

/// The inclusive range of right times a left record at `ts` joins.
fn right_range(b: &Interval, ts: EventTime) -> (i64, i64) {
    (ts.saturating_add(b.lower), ts.saturating_add(b.upper))
}

/// The inclusive range of left times a right record at `ts` joins.
fn left_range(b: &Interval, ts: EventTime) -> (i64, i64) {
    (ts.saturating_sub(b.upper), ts.saturating_sub(b.lower))
}

impl<K, L, R, F, Out> KeyedProcessFunction<K, JoinInput<L, R>, Out> for IntervalJoin<L, R, F>
where
    K: WindowKey,
    L: JoinValue,
    R: JoinValue,
    Out: Clone + Send + 'static,
    F: Fn(&K, &L, &R) -> Out + Clone + Send + 'static,
{
    type State = Kept<L, R>;

    fn process_element(
        &mut self,
        value: JoinInput<L, R>,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        let ts = ctx.timestamp();
        let watermark = ctx.current_watermark();
        // Partners this record could have had may be gone once the
        // watermark has reached it (each record is kept only while a
        // record not yet late could join it).
        if self.bounds.is_some() && ts <= watermark {
            late(ctx, self.late.as_ref(), value);
            return Ok(());
        }
        if self.bounds.is_some_and(|b| b.lower > b.upper) {
            return Ok(()); // an empty interval joins nothing
        }
        let mut out = Vec::new();
        let expires = match value {
            JoinInput::Left(l) => {
                let (key, kept) = ctx.key_and_state();
                let partners = match &self.bounds {
                    Some(b) => {
                        let (lo, hi) = right_range(b, ts);
                        kept.right.range(lo..=hi)
                    }
                    None => kept.right.range(..),
                };
                for (&t, rs) in partners {
                    for r in rs {
                        out.push((t.max(ts), (self.f)(key, &l, r)));
                    }
                }
                // Kept until no right record not yet late can join it.
                let expires = self.bounds.map(|b| ts.saturating_add(b.upper));
                if expires.is_none_or(|e| e > watermark) {
                    kept.left.entry(ts).or_default().push(l);
                }
                expires
            }
            JoinInput::Right(r) => {
                let (key, kept) = ctx.key_and_state();
                let partners = match &self.bounds {
                    Some(b) => {
                        let (lo, hi) = left_range(b, ts);
                        kept.left.range(lo..=hi)
                    }
                    None => kept.left.range(..),
                };
                for (&t, ls) in partners {
                    for l in ls {
                        out.push((t.max(ts), (self.f)(key, l, &r)));
                    }
                }
                let expires = self.bounds.map(|b| ts.saturating_sub(b.lower));
                if expires.is_none_or(|e| e > watermark) {
                    kept.right.entry(ts).or_default().push(r);
                }
                expires
            }
        };
        if ctx
            .existing_state()
            .is_some_and(|k| k.left.is_empty() && k.right.is_empty())
        {
            ctx.clear_state();
        }
        for (t, o) in out {
            ctx.emit_at(t, o);
        }
        if let Some(e) = expires.filter(|&e| e > watermark) {
            ctx.register_event_time_timer(e);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        let Some(b) = self.bounds else {
            return Ok(());
        };
        let Some(kept) = ctx.existing_state() else {
            return Ok(());
        };
        // Left records at `t` expire at `t + upper`, right ones at
        // `t - lower`: drop those whose time has come.
        let left_keep = timer.time.saturating_sub(b.upper).saturating_add(1);
        kept.left = kept.left.split_off(&left_keep);
        let right_keep = timer.time.saturating_add(b.lower).saturating_add(1);
        kept.right = kept.right.split_off(&right_keep);
        if kept.left.is_empty() && kept.right.is_empty() {
            ctx.clear_state();
        }
        Ok(())
    }
}
