//! The stream–table join: left records look up the table's version at
//! their event time, once the watermark says every update up to then has
//! arrived.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use brook_core::{EventTime, NO_TIMESTAMP, OutputTag, Result};

use super::{JoinInput, JoinValue, late};
use crate::keyed::{KeyedContext, KeyedProcessFunction, Timer};
use crate::window::WindowKey;

/// One key's table versions and the left records waiting for the
/// watermark.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Versions<L, R> {
    /// The table's rows by the event time they became valid.
    versions: BTreeMap<EventTime, R>,
    /// Left records by event time, until the watermark reaches them.
    waiting: BTreeMap<EventTime, Vec<L>>,
}

impl<L, R> Default for Versions<L, R> {
    fn default() -> Self {
        Versions {
            versions: BTreeMap::new(),
            waiting: BTreeMap::new(),
        }
    }
}

impl<L, R> Versions<L, R> {
    /// Drops the versions no record still to come can see: all older than
    /// the latest one at or before `watermark`.
    fn prune(&mut self, watermark: EventTime) {
        let cut = self
            .versions
            .range(..=watermark)
            .next_back()
            .map(|(&t, _)| t);
        if let Some(cut) = cut {
            self.versions = self.versions.split_off(&cut);
        }
    }
}

/// Runs a stream–table join as a keyed process function on the tagged
/// inputs.
#[derive(Clone)]
pub(crate) struct TableJoin<L, R, F> {
    f: F,
    late: Option<OutputTag<JoinInput<L, R>>>,
}

impl<L, R, F> TableJoin<L, R, F> {
    pub(crate) fn new(f: F, late: Option<OutputTag<JoinInput<L, R>>>) -> Self {
        TableJoin { f, late }
    }
}

impl<K, L, R, F, Out> KeyedProcessFunction<K, JoinInput<L, R>, Out> for TableJoin<L, R, F>
where
    K: WindowKey,
    L: JoinValue,
    R: JoinValue,
    Out: Clone + Send + 'static,
    F: Fn(&K, &L, Option<&R>) -> Option<Out> + Clone + Send + 'static,
{
    type State = Versions<L, R>;

    fn process_element(
        &mut self,
        value: JoinInput<L, R>,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        let ts = ctx.timestamp();
        let watermark = ctx.current_watermark();
        match value {
            JoinInput::Right(row) => {
                // A table update is never late: it is the newest row from
                // its time on, for the left records still to come.
                let state = ctx.state();
                state.versions.insert(ts, row);
                state.prune(watermark);
            }
            JoinInput::Left(l) if ts == NO_TIMESTAMP => {
                // A record without event time cannot wait for the
                // watermark: it joins the table as it stands (Kafka
                // Streams' processing-order join).
                let out = if ctx.has_state() {
                    let (key, state) = ctx.key_and_state();
                    (self.f)(key, &l, state.versions.values().next_back())
                } else {
                    (self.f)(ctx.key(), &l, None)
                };
                if let Some(out) = out {
                    ctx.emit(out);
                }
            }
            JoinInput::Left(l) if ts <= watermark => {
                // The versions it should see may be gone.
                late(ctx, self.late.as_ref(), JoinInput::Left(l));
            }
            JoinInput::Left(l) => {
                ctx.state().waiting.entry(ts).or_default().push(l);
                ctx.register_event_time_timer(ts);
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        if !ctx.has_state() {
            return Ok(());
        }
        let (key, state) = ctx.key_and_state();
        let rest = state.waiting.split_off(&timer.time.saturating_add(1));
        let due = std::mem::replace(&mut state.waiting, rest);
        let mut out = Vec::new();
        for (ts, ls) in due {
            let row = state.versions.range(..=ts).next_back().map(|(_, r)| r);
            for l in ls {
                if let Some(o) = (self.f)(key, &l, row) {
                    out.push((ts, o));
                }
            }
        }
        state.prune(timer.time);
        if state.waiting.is_empty() && state.versions.is_empty() {
            ctx.clear_state();
        }
        for (ts, o) in out {
            ctx.emit_at(ts, o);
        }
        Ok(())
    }
}
