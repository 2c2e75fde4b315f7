//! Keyed process function tests.

use std::sync::Arc;

use brook_core::KeySelector;

use brook_core::state::{ListState, MapState, ValueState};
use brook_core::{Batch, Collector, EventTime, Operator, Record, Result, TaskContext};

use super::operator::KeyedProcess;
use super::*;

/// Sets, for each record (key, t), an event-time timer at `t + 10` and a
/// processing-time timer at `t` when t < 0; on each timer emits
/// (key, timer time, domain).
#[derive(Clone)]
struct Timers;

#[derive(Default, Clone, serde::Serialize, serde::Deserialize)]
struct Seen {
    count: ValueState<u32>,
    times: ListState<i64>,
    by_parity: MapState<bool, u32>,
}

type Out = (char, i64, TimeDomain);

impl KeyedProcessFunction<char, (char, i64), Out> for Timers {
    type State = Seen;

    fn process_element(
        &mut self,
        (_, t): (char, i64),
        ctx: &mut KeyedContext<'_, char, Seen, Out>,
    ) -> Result<()> {
        let s = ctx.state();
        *s.count.get_or_insert_with(|| 0) += 1;
        s.times.add(t);
        *s.by_parity.entry_or_insert_with(t % 2 == 0, || 0) += 1;
        if t < 0 {
            ctx.register_processing_time_timer(-t);
        } else {
            ctx.register_event_time_timer(t + 10);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, char, Seen, Out>,
    ) -> Result<()> {
        let key = *ctx.key();
        ctx.emit((key, timer.time, timer.domain));
        if ctx.state().count.value() == Some(&1) {
            ctx.clear_state();
        }
        Ok(())
    }
}

fn op() -> (KeyedProcess<char, (char, i64), Timers, Out>, TaskContext) {
    let key: KeySelector<(char, i64), char> = Arc::new(|v: &(char, i64)| v.0);
    let mut op = KeyedProcess::new(key, Timers);
    let ctx = TaskContext::standalone("kp", 0, 1);
    op.open(&ctx).expect("open");
    (op, ctx)
}

fn batch(evs: &[(char, i64)]) -> Batch<(char, i64)> {
    evs.iter()
        .map(|&(k, t)| Record::new(t.max(0), (k, t)))
        .collect()
}

#[test]
fn event_time_timers_fire_in_time_order_across_keys() {
    let (mut op, _) = op();
    let mut out = Collector::default();
    op.process(
        batch(&[('b', 30), ('a', 50), ('c', 10), ('a', 30), ('b', 30)]),
        &mut out,
    )
    .expect("process");
    assert!(out.is_empty());
    op.on_watermark(45, &mut out).expect("wm");
    let fired: Vec<_> = out
        .take()
        .into_iter()
        .map(|r| (r.timestamp, r.value))
        .collect();
    assert_eq!(
        fired,
        [
            (20, ('c', 20, TimeDomain::EventTime)),
            (40, ('b', 40, TimeDomain::EventTime)),
            (40, ('a', 40, TimeDomain::EventTime)),
        ],
        "in time order, each (key, time) once, output stamped with the timer's time"
    );
    assert_eq!(
        out.take_watermark(),
        Some(45),
        "the watermark follows the timers"
    );
    op.on_watermark(EventTime::MAX, &mut out).expect("wm");
    let rest: Vec<_> = out.take().into_iter().map(|r| r.value.1).collect();
    assert_eq!(rest, [60]);
}

#[test]
fn state_is_per_key_and_cleared_state_is_freed() {
    let (mut op, _) = op();
    let mut out = Collector::default();
    op.process(batch(&[('x', 1), ('y', 2), ('y', 3)]), &mut out)
        .expect("process");
    assert_eq!(op.keys_with_state(), 2);
    op.on_watermark(EventTime::MAX, &mut out).expect("wm");
    assert_eq!(
        op.keys_with_state(),
        1,
        "x saw one record and cleared; y kept"
    );
}

#[test]
fn processing_time_timers_fire_when_the_clock_reaches_them() {
    let (mut op, _) = op();
    let mut out = Collector::default();
    op.process(batch(&[('p', -1_000), ('q', -3_000)]), &mut out)
        .expect("process");
    op.on_processing_time(2_000, &mut out).expect("tick");
    let fired: Vec<_> = out.take().into_iter().map(|r| r.value).collect();
    assert_eq!(fired, [('p', 1_000, TimeDomain::ProcessingTime)]);
    op.on_processing_time(3_000, &mut out).expect("tick");
    assert_eq!(out.take().len(), 1);
}

#[test]
fn a_snapshot_restores_state_and_timers() {
    let (mut op1, _) = op();
    let mut out = Collector::default();
    op1.process(batch(&[('k', 5), ('k', 7)]), &mut out)
        .expect("process");
    let bytes = op1.snapshot().expect("snapshot").expect("stateful");
    let (mut op2, _) = op();
    op2.restore(&bytes).expect("restore");
    op2.on_watermark(EventTime::MAX, &mut out).expect("wm");
    let fired: Vec<_> = out.take().into_iter().map(|r| r.value.1).collect();
    assert_eq!(fired, [15, 17]);
    assert_eq!(op2.keys_with_state(), 1);
}
