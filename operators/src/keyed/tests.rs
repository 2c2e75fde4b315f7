//! Keyed process function tests.

use std::sync::Arc;
use std::time::Duration;

use brook_core::KeySelector;
use brook_core::time::ManualClock;

use brook_core::state::{ListState, MapState, ValueState};
use brook_core::{
    Batch, Collector, EventTime, NO_TIMESTAMP, Operator, Record, Result, TaskContext,
};

use super::operator::KeyedProcess;
use super::*;

/// Sets, for each record (key, t), an event-time timer at `t + 10`, or when
/// t < 0 a processing-time timer `-t` ms after the processing time now; on
/// each timer emits (key, timer time, domain).
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
            let at = ctx.current_processing_time() - t;
            ctx.register_processing_time_timer(at);
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
    op_on(TaskContext::standalone("kp", 0, 1))
}

/// The operator, opened with `ctx`.
fn op_on(ctx: TaskContext) -> (KeyedProcess<char, (char, i64), Timers, Out>, TaskContext) {
    let key: KeySelector<(char, i64), char> = Arc::new(|v: &(char, i64)| v.0);
    let mut op = KeyedProcess::new(key, Timers);
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
    // The task's clock, not the wall clock: timers are set from
    // `current_processing_time`, the task is asked to wake for the earliest,
    // and each fires when (and only when) the clock reaches it. The task's
    // part (take the due time, call `on_processing_time`) is done by hand.
    let manual = ManualClock::new(10_000);
    let (mut op, ctx) = op_on(TaskContext::standalone("kp", 0, 1).with_clock(manual.clock()));
    let timer = ctx.processing_timer();
    let mut out = Collector::default();
    op.process(batch(&[('p', -1_000), ('q', -3_000)]), &mut out)
        .expect("process");
    assert_eq!(timer.requested(), Some(11_000), "wake for the earliest");
    let fire_due = |op: &mut KeyedProcess<_, _, _, _>, out: &mut Collector<Out>| {
        let now = timer.take_due()?;
        op.on_processing_time(now, out).expect("tick");
        Some(now)
    };
    manual.advance(Duration::from_millis(999));
    assert_eq!(fire_due(&mut op, &mut out), None, "not due at 10_999");
    assert!(out.is_empty());
    manual.advance(Duration::from_millis(1));
    assert_eq!(fire_due(&mut op, &mut out), Some(11_000));
    let fired: Vec<_> = out
        .take()
        .into_iter()
        .map(|r| (r.timestamp, r.value))
        .collect();
    assert_eq!(
        fired,
        [(NO_TIMESTAMP, ('p', 11_000, TimeDomain::ProcessingTime))],
        "only p, and output of a processing-time timer has no event time"
    );
    assert_eq!(timer.requested(), Some(13_000), "asks again for q");
    manual.advance(Duration::from_millis(1_999));
    assert_eq!(fire_due(&mut op, &mut out), None, "not due at 12_999");
    assert!(out.is_empty());
    manual.advance(Duration::from_millis(1));
    assert_eq!(fire_due(&mut op, &mut out), Some(13_000));
    let fired: Vec<_> = out.take().into_iter().map(|r| r.value).collect();
    assert_eq!(fired, [('q', 13_000, TimeDomain::ProcessingTime)]);
    assert_eq!(timer.requested(), None, "nothing left to wake for");
}

#[test]
fn a_snapshot_restores_state_and_timers() {
    let (mut op1, _) = op();
    let mut out = Collector::default();
    op1.process(batch(&[('k', 5), ('k', 7)]), &mut out)
        .expect("process");
    let bytes = op1.snapshot().expect("snapshot").expect("stateful");
    let (mut op2, _) = op();
    op2.restore(&bytes.into()).expect("restore");
    op2.on_watermark(EventTime::MAX, &mut out).expect("wm");
    let fired: Vec<_> = out.take().into_iter().map(|r| r.value.1).collect();
    assert_eq!(fired, [15, 17]);
    assert_eq!(op2.keys_with_state(), 1);
}
