//! Window operator tests: against batch computations, and the edge cases.

use std::collections::BTreeMap;
use std::sync::Arc;

use brook_core::KeySelector;
use std::time::Duration;

use brook_core::partition::{hash_key, instance_for_hash};
use brook_core::state::redistribute;
use brook_core::{Batch, Collector, EventTime, Operator, Record, TaskContext};
use proptest::prelude::*;

use super::logic::{Aggregate, Process, WindowResult};
use super::operator::WindowOperator;
use super::*;
use brook_core::OutputTag;

type Out = WindowResult<u8, (u64, i64)>;

/// Where the operators under test send late records.
const LATE: OutputTag<(u8, i64)> = OutputTag::new("late");
type Op<W> = WindowOperator<u8, (u8, i64), W, Aggregate<(Count, Sum<fn(&(u8, i64)) -> i64>)>>;

fn value(v: &(u8, i64)) -> i64 {
    v.1
}

fn op<W: WindowAssigner>(assigner: W, lateness: i64) -> Op<W> {
    let key: KeySelector<(u8, i64), u8> = Arc::new(|v: &(u8, i64)| v.0);
    let agg = (Count, Sum::of(value as fn(&(u8, i64)) -> i64));
    let mut op = WindowOperator::new(key, assigner, lateness, Aggregate(agg), Some(LATE));
    Operator::open(&mut op, &TaskContext::standalone("w", 0, 1)).expect("open");
    op
}

/// What a run produced: results by (key, start, end) in emission order, and
/// late records.
/// (key, start, end), (count, sum), event time of the result.
type Fired = ((u8, i64, i64), (u64, i64), EventTime);

#[derive(Debug, Default)]
struct Run {
    results: Vec<Fired>,
    late: Vec<(u8, i64)>,
}

impl Run {
    fn take(&mut self, out: &mut Collector<Out>) {
        for r in out.take() {
            let w = r.value;
            self.results
                .push(((w.key, w.window.start, w.window.end), w.value, r.timestamp));
        }
        self.late
            .extend(out.take_side(&LATE).into_iter().map(|r| r.value));
    }

    fn by_window(&self) -> BTreeMap<(u8, i64, i64), (u64, i64)> {
        let mut m = BTreeMap::new();
        for (k, v, _) in &self.results {
            assert!(m.insert(*k, *v).is_none(), "{k:?} emitted twice");
        }
        m
    }
}

/// Feeds events (key, time) in batches of `batch`, with a bounded watermark
/// after each batch, then the final watermark.
fn run<W: WindowAssigner>(op: &mut Op<W>, events: &[(u8, i64)], batch: usize, bound: i64) -> Run {
    let mut run = Run::default();
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let mut max = EventTime::MIN;
    for chunk in events.chunks(batch.max(1)) {
        let b: Batch<(u8, i64)> = chunk.iter().map(|&(k, t)| Record::new(t, (k, t))).collect();
        max = chunk.iter().map(|e| e.1).fold(max, i64::max);
        op.process(b, &mut out).expect("process");
        run.take(&mut out);
        op.on_watermark(max - bound - 1, &mut out)
            .expect("watermark");
        run.take(&mut out);
    }
    op.on_watermark(EventTime::MAX, &mut out)
        .expect("final watermark");
    run.take(&mut out);
    run
}

/// Event times with disorder strictly below `bound`, keys 0..4.
fn disordered(bound: i64) -> impl Strategy<Value = Vec<(u8, i64)>> {
    prop::collection::vec((0u8..4, 0i64..40, 0i64..bound.max(1)), 0..200).prop_map(|steps| {
        let mut t = 1_000;
        let mut events: Vec<(i64, u8, i64)> = steps
            .into_iter()
            .map(|(k, step, jitter)| {
                t += step;
                (t + jitter, k, t)
            })
            .collect();
        events.sort();
        events.into_iter().map(|(_, k, t)| (k, t)).collect()
    })
}

fn batch_fixed(
    events: &[(u8, i64)],
    assign: impl Fn(i64, &mut dyn FnMut(Window)),
) -> BTreeMap<(u8, i64, i64), (u64, i64)> {
    let mut m: BTreeMap<(u8, i64, i64), (u64, i64)> = BTreeMap::new();
    for &(k, t) in events {
        assign(t, &mut |w| {
            let e = m.entry((k, w.start, w.end)).or_default();
            e.0 += 1;
            e.1 += t;
        });
    }
    m
}

fn batch_sessions(events: &[(u8, i64)], gap: i64) -> BTreeMap<(u8, i64, i64), (u64, i64)> {
    let mut by_key: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
    for &(k, t) in events {
        by_key.entry(k).or_default().push(t);
    }
    let mut m = BTreeMap::new();
    for (k, mut ts) in by_key {
        ts.sort();
        let mut session: Vec<i64> = Vec::new();
        for t in ts {
            if let Some(&last) = session.last()
                && t > last + gap
            {
                {
                    let start = session[0];
                    m.insert(
                        (k, start, last + gap),
                        (session.len() as u64, session.iter().sum()),
                    );
                    session.clear();
                }
            }
            session.push(t);
        }
        if let (Some(&first), Some(&last)) = (session.first(), session.last()) {
            m.insert(
                (k, first, last + gap),
                (session.len() as u64, session.iter().sum()),
            );
        }
    }
    m
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn tumbling_equals_a_batch_computation(events in disordered(30), batch in 1usize..50, size in 1i64..60) {
        let mut op = op(Tumbling::of(Duration::from_millis(size as u64)), 0);
        let run = run(&mut op, &events, batch, 30);
        prop_assert!(run.late.is_empty());
        let expected = batch_fixed(&events, |t, f| f(Window::new(t - t.rem_euclid(size), t - t.rem_euclid(size) + size)));
        prop_assert_eq!(run.by_window(), expected);
        prop_assert_eq!(op.open_panes(), 0);
    }

    #[test]
    fn sliding_equals_a_batch_computation(events in disordered(30), batch in 1usize..50, slide in 1i64..20, k in 1i64..4) {
        let size = slide * k;
        let assigner = Sliding::of(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let mut op = op(assigner, 0);
        let run = run(&mut op, &events, batch, 30);
        prop_assert!(run.late.is_empty());
        let expected = batch_fixed(&events, |t, f| {
            let mut start = t - t.rem_euclid(slide);
            while start > t - size {
                f(Window::new(start, start + size));
                start -= slide;
            }
        });
        prop_assert_eq!(run.by_window(), expected);
    }

    #[test]
    fn sessions_equal_a_batch_computation(events in disordered(30), batch in 1usize..50, gap in 1i64..80) {
        let mut op = op(Session::with_gap(Duration::from_millis(gap as u64)), 0);
        let run = run(&mut op, &events, batch, 30);
        prop_assert!(run.late.is_empty());
        prop_assert_eq!(run.by_window(), batch_sessions(&events, gap));
        prop_assert_eq!(op.open_panes(), 0);
    }

    #[test]
    fn a_snapshot_restored_mid_stream_gives_the_same_results(events in disordered(20), cut in 0usize..200) {
        let assigner = Session::with_gap(Duration::from_millis(25));
        let whole = run(&mut op(assigner, 0), &events, 7, 20).by_window();
        let cut = cut.min(events.len());
        let mut first = op(assigner, 0);
        let mut out = Collector::with_side_outputs([LATE.name()]);
        let head: Batch<(u8, i64)> = events[..cut].iter().map(|&(k, t)| Record::new(t, (k, t))).collect();
        first.process(head, &mut out).expect("process");
        let mut seen = Run::default();
        seen.take(&mut out);
        let bytes = first.snapshot().expect("snapshot").expect("stateful");
        let mut second = op(assigner, 0);
        second.restore(&bytes.into()).expect("restore");
        let rest = run(&mut second, &events[cut..], 7, 20);
        let mut all = seen.by_window();
        all.extend(rest.by_window());
        prop_assert_eq!(all, whole);
    }

    /// A checkpoint taken at `from` instances restores at `to`: each key's
    /// panes and timers move with its key group to the instance the
    /// exchange now routes the key to, and the results are those of one
    /// uninterrupted instance.
    #[test]
    fn a_snapshot_restored_at_another_parallelism_gives_the_same_results(
        events in disordered(20), cut in 0usize..200, from in 1usize..5, to in 1usize..5,
    ) {
        let assigner = Session::with_gap(Duration::from_millis(25));
        let whole = run(&mut op(assigner, 0), &events, 7, 20).by_window();
        let cut = cut.min(events.len());
        let owner = |k: u8, p: usize| instance_for_hash(hash_key(&k), p);
        let watermark = events[..cut].iter().map(|e| e.1).max().map_or(EventTime::MIN, |m| m - 21);
        let mut all = BTreeMap::new();
        let mut snapshots = Vec::new();
        for i in 0..from {
            let mut first = op(assigner, 0);
            let mut out = Collector::with_side_outputs([LATE.name()]);
            let head: Batch<(u8, i64)> = events[..cut]
                .iter()
                .filter(|e| owner(e.0, from) == i)
                .map(|&(k, t)| Record::new(t, (k, t)))
                .collect();
            first.process(head, &mut out).expect("process");
            first.on_watermark(watermark, &mut out).expect("watermark");
            let mut seen = Run::default();
            seen.take(&mut out);
            prop_assert!(seen.late.is_empty());
            all.extend(seen.by_window());
            snapshots.push(first.snapshot().expect("snapshot"));
        }
        let restored = redistribute(snapshots, to).expect("redistributes");
        for (i, state) in restored.iter().enumerate() {
            let mut second = op(assigner, 0);
            second.restore(state).expect("restore");
            let rest: Vec<(u8, i64)> =
                events[cut..].iter().copied().filter(|e| owner(e.0, to) == i).collect();
            let run = run(&mut second, &rest, 7, 20);
            prop_assert!(run.late.is_empty());
            for (w, v) in run.by_window() {
                prop_assert!(all.insert(w, v).is_none(), "{:?} fired twice", w);
            }
        }
        prop_assert_eq!(all, whole);
    }
}

/// A key of a fixed window costs one entry, its key and accumulator: no
/// timer, no list of panes (issue 16: 615 resident bytes per key before,
/// 203 after, `cargo bench --bench state_memory`).
#[test]
fn fixed_windows_hold_one_entry_per_key_and_no_timers() {
    let mut op = op(
        Sliding::of(Duration::from_millis(10), Duration::from_millis(5)),
        0,
    );
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let b: Batch<(u8, i64)> = (0..200u8).map(|k| Record::new(12, (k, 12))).collect();
    op.process(b, &mut out).expect("process");
    assert_eq!(op.open_panes(), 400, "each key in its two sliding windows");
    assert_eq!(op.timers(), 0);
    op.on_watermark(14, &mut out).expect("wm");
    assert_eq!(out.take().len(), 200, "[5, 15) fired");
    assert_eq!(op.open_panes(), 200, "and was dropped");
}

#[test]
fn results_fire_when_the_watermark_passes_the_end_in_window_order() {
    let mut op = op(Tumbling::of(Duration::from_millis(10)), 0);
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let mut run = Run::default();
    let b: Batch<(u8, i64)> = [(1, 25), (0, 3), (1, 12), (0, 14)]
        .into_iter()
        .map(|(k, t)| Record::new(t, (k, t)))
        .collect();
    op.process(b, &mut out).expect("process");
    op.on_watermark(8, &mut out).expect("wm");
    run.take(&mut out);
    assert!(run.results.is_empty(), "[0, 10) ends at 9: not yet");
    op.on_watermark(19, &mut out).expect("wm");
    assert_eq!(
        out.take_watermark(),
        Some(19),
        "forwarded after the results"
    );
    run.take(&mut out);
    let got: Vec<_> = run.results.iter().map(|(k, v, ts)| (*k, *v, *ts)).collect();
    assert_eq!(
        got,
        [
            ((0, 0, 10), (1, 3), 9),
            ((0, 10, 20), (1, 14), 19),
            ((1, 10, 20), (1, 12), 19)
        ]
    );
}

#[test]
fn a_record_bridging_two_sessions_merges_them() {
    let mut op = op(Session::with_gap(Duration::from_millis(10)), 0);
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let mut run = Run::default();
    let feed = |op: &mut Op<Session>, out: &mut Collector<Out>, ts: &[i64]| {
        let b: Batch<(u8, i64)> = ts.iter().map(|&t| Record::new(t, (7, t))).collect();
        op.process(b, out).expect("process");
    };
    feed(&mut op, &mut out, &[100, 105, 122, 127]);
    assert_eq!(
        op.open_panes(),
        2,
        "two sessions: [100, 115) and [122, 137)"
    );
    feed(&mut op, &mut out, &[113]);
    assert_eq!(op.open_panes(), 1, "[113, 123) touches both");
    op.on_watermark(EventTime::MAX, &mut out).expect("wm");
    run.take(&mut out);
    assert_eq!(
        run.by_window().into_iter().collect::<Vec<_>>(),
        [((7, 100, 137), (5, 567))]
    );
}

#[test]
fn lateness_refires_within_it_and_routes_later_records_to_the_late_output() {
    let ctx = TaskContext::standalone("w", 0, 1);
    let mut op = op(Tumbling::of(Duration::from_millis(10)), 5);
    Operator::open(&mut op, &ctx).expect("open");
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let mut run = Run::default();
    let rec = |t: i64| -> Batch<(u8, i64)> { vec![Record::new(t, (0, t))].into() };
    op.process(rec(3), &mut out).expect("process");
    op.on_watermark(9, &mut out).expect("wm");
    run.take(&mut out);
    assert_eq!(run.results.len(), 1, "fired at 9");
    op.process(rec(4), &mut out)
        .expect("late but within lateness");
    run.take(&mut out);
    assert_eq!(
        run.results.last().map(|r| r.1),
        Some((2, 7)),
        "fired again, updated"
    );
    op.on_watermark(14, &mut out)
        .expect("wm: 9 + 5 passed, state dropped");
    op.process(rec(5), &mut out).expect("past lateness");
    run.take(&mut out);
    assert_eq!(run.late, [(0, 5)]);
    assert_eq!(run.results.len(), 2);
    assert_eq!(ctx.metrics().counters().late, 1);
    assert_eq!(op.open_panes(), 0);
}

#[test]
fn a_window_function_sees_every_record_of_its_window() {
    let key: KeySelector<(u8, i64), u8> = Arc::new(|v: &(u8, i64)| v.0);
    let f = |k: &u8, w: &Window, items: &[(u8, i64)]| {
        format!(
            "{k}@{}:{:?}",
            w.start,
            items.iter().map(|i| i.1).collect::<Vec<_>>()
        )
    };
    let mut op = WindowOperator::new(
        key,
        Tumbling::of(Duration::from_millis(10)),
        0,
        Process { f, buf: Vec::new() },
        None,
    );
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let b: Batch<(u8, i64)> = [(0, 1), (1, 2), (0, 8), (0, 11)]
        .into_iter()
        .map(|(k, t)| Record::new(t, (k, t)))
        .collect();
    op.process(b, &mut out).expect("process");
    op.on_watermark(EventTime::MAX, &mut out).expect("wm");
    let mut got: Vec<String> = out.take().into_iter().map(|r| r.value).collect();
    got.sort();
    assert_eq!(got, ["0@0:[1, 8]", "0@10:[11]", "1@0:[2]"]);
}

#[test]
fn records_without_event_time_are_refused_clearly() {
    let mut op = op(Tumbling::of(Duration::from_millis(10)), 0);
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let err = op
        .process(vec![Record::untimed((0, 0))].into(), &mut out)
        .expect_err("no event time");
    assert!(err.to_string().contains("assign_timestamps"), "{err}");
}

#[test]
fn records_at_the_ends_of_the_time_range_fire_in_well_formed_windows() {
    const MIN: i64 = i64::MIN;
    const MAX: i64 = i64::MAX;
    let ctx = TaskContext::standalone("w", 0, 1);
    let key: KeySelector<(u8, i64), u8> = Arc::new(|v: &(u8, i64)| v.0);
    let agg = (Count, Sum::of(value as fn(&(u8, i64)) -> i64));
    for assigner in [
        Kind::Tumbling(Tumbling::of(Duration::from_secs(10))),
        Kind::Session(Session::with_gap(Duration::from_secs(10))),
    ] {
        let mut run = Run::default();
        let mut out = Collector::with_side_outputs([LATE.name()]);
        let events = [
            (0, MIN + 1),
            (0, MIN + 2),
            (1, MAX - 1),
            (1, MAX - 2),
            (2, MAX),
        ];
        let b = || -> Batch<(u8, i64)> {
            events
                .iter()
                .map(|&(k, t)| Record::new(t, (k, t % 1_000)))
                .collect()
        };
        match &assigner {
            Kind::Tumbling(a) => {
                let mut op = WindowOperator::new(key.clone(), *a, 0, Aggregate(agg), Some(LATE));
                Operator::open(&mut op, &ctx).expect("open");
                op.process(b(), &mut out).expect("process");
                op.on_watermark(MAX - 3, &mut out).expect("wm");
                op.on_watermark(MAX, &mut out).expect("final wm");
            }
            Kind::Session(a) => {
                let mut op = WindowOperator::new(key.clone(), *a, 0, Aggregate(agg), Some(LATE));
                Operator::open(&mut op, &ctx).expect("open");
                op.process(b(), &mut out).expect("process");
                op.on_watermark(MAX - 3, &mut out).expect("wm");
                op.on_watermark(MAX, &mut out).expect("final wm");
            }
        }
        run.take(&mut out);
        let windows = run.by_window();
        assert_eq!(windows.len(), 2, "{assigner:?}: {windows:?}");
        for ((k, start, end), (count, _)) in &windows {
            assert!(start < end, "{assigner:?}: window {start}..{end}");
            assert_eq!(*count, 2, "{assigner:?}: key {k} has both records");
        }
        assert!(windows.keys().any(|&(k, _, end)| k == 1 && end == MAX));
        assert!(
            windows
                .keys()
                .any(|&(k, start, _)| k == 0 && start <= MIN + 1)
        );
        // A record at i64::MAX goes to the late output: never dropped silently.
        assert_eq!(run.late, [(2, MAX % 1_000)], "{assigner:?}");
    }
    assert_eq!(ctx.metrics().counters().late, 2);
}

#[derive(Debug)]
enum Kind {
    Tumbling(Tumbling),
    Session(Session),
}

#[test]
fn many_late_records_are_reported_once_per_node_with_counts() {
    let key: KeySelector<(u8, i64), u8> = Arc::new(|v: &(u8, i64)| v.0);
    let agg = (Count, Sum::of(value as fn(&(u8, i64)) -> i64));
    let proto = WindowOperator::new(
        key,
        Tumbling::of(Duration::from_millis(10)),
        0,
        Aggregate(agg),
        Some(LATE),
    );
    let warnings = crate::test_log::Warnings::default();
    warnings.capture(|| {
        // Two instances of the node "stats": clones of one prototype.
        for i in 0..2 {
            let mut op = proto.clone();
            Operator::open(&mut op, &TaskContext::standalone("stats", i, 2)).expect("open");
            let mut out = Collector::with_side_outputs([LATE.name()]);
            let on_time: Batch<(u8, i64)> = vec![Record::new(5_000, (0, 5_000))].into();
            op.process(on_time, &mut out).expect("process");
            op.on_watermark(4_000_000, &mut out).expect("wm");
            // 150 records far behind the watermark: late.
            let late: Batch<(u8, i64)> = (0..150).map(|t| Record::new(t, (0, t))).collect();
            op.process(late, &mut out).expect("process");
            op.on_end(&mut out).expect("end");
        }
    });
    let lines = warnings.lines();
    let loud: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("windows closed"))
        .collect();
    assert_eq!(loud.len(), 1, "once per node: {lines:?}");
    assert!(loud[0].contains("node 'stats'"), "{lines:?}");
    assert!(
        loud[0].contains("150 of 151"),
        "with the counts so far: {lines:?}"
    );
}

#[test]
fn a_few_late_records_are_not_loud() {
    let key: KeySelector<(u8, i64), u8> = Arc::new(|v: &(u8, i64)| v.0);
    let agg = (Count, Sum::of(value as fn(&(u8, i64)) -> i64));
    let mut op = WindowOperator::new(
        key,
        Tumbling::of(Duration::from_millis(10)),
        0,
        Aggregate(agg),
        Some(LATE),
    );
    let warnings = crate::test_log::Warnings::default();
    warnings.capture(|| {
        Operator::open(&mut op, &TaskContext::standalone("stats", 0, 1)).expect("open");
        let mut out = Collector::with_side_outputs([LATE.name()]);
        let on_time: Batch<(u8, i64)> = (1_000..2_000).map(|t| Record::new(t, (0, t))).collect();
        op.process(on_time, &mut out).expect("process");
        op.on_watermark(1_500, &mut out).expect("wm");
        op.process(vec![Record::new(0, (0, 0))].into(), &mut out)
            .expect("late");
        op.on_end(&mut out).expect("end");
    });
    let lines = warnings.lines();
    assert!(
        !lines.iter().any(|l| l.contains("windows closed")),
        "1 of 1001: {lines:?}"
    );
    assert_eq!(lines.len(), 1, "only the first late record: {lines:?}");
}
