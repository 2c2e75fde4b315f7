//! Join tests: each join against a brute-force computation over all
//! records, fed in batches with bounded disorder, restored from snapshots
//! at other parallelisms, and with late records.

use std::sync::Arc;
use std::time::Duration;

use brook_core::partition::{hash_key, instance_for_hash};
use brook_core::state::redistribute;
use brook_core::{
    Batch, Collector, EventTime, KeySelector, Operator, OutputTag, Record, TaskContext,
};
use proptest::prelude::*;

use super::interval::IntervalJoin;
use super::table::TableJoin;
use super::window::WindowJoin;
use super::*;
use crate::keyed::operator::KeyedProcess;
use crate::window::{Session, Sliding, Tumbling};

/// A record of either side: its key and a unique id.
type Rec = (u8, u32);
type In = JoinInput<Rec, Rec>;
/// A joined pair: (left id, right id), `u32::MAX` for no right record.
type Pair = (u32, u32);
/// One input record: left?, key, event time, id.
type Event = (bool, u8, i64, u32);

const LATE: OutputTag<In> = OutputTag::new("late");

fn pair(_: &u8, l: &Rec, r: &Rec) -> Pair {
    (l.1, r.1)
}

fn key() -> KeySelector<In, u8> {
    Arc::new(|e: &In| match e {
        JoinInput::Left(l) => l.0,
        JoinInput::Right(r) => r.0,
    })
}

fn open<F: KeyedProcessFunction<u8, In, Pair>>(f: F) -> KeyedProcess<u8, In, F, Pair> {
    let mut op = KeyedProcess::new(key(), f);
    Operator::open(&mut op, &TaskContext::standalone("join", 0, 1)).expect("open");
    op
}

fn record(&(left, k, t, id): &Event) -> Record<In> {
    let v = if left {
        JoinInput::Left((k, id))
    } else {
        JoinInput::Right((k, id))
    };
    Record::new(t, v)
}

/// What a run emitted: pairs with their event times, sorted, and the late
/// records' ids.
#[derive(Debug, Default, PartialEq)]
struct Run {
    pairs: Vec<(Pair, EventTime)>,
    late: Vec<u32>,
}

impl Run {
    fn take(&mut self, out: &mut Collector<Pair>) {
        self.pairs
            .extend(out.take().into_iter().map(|r| (r.value, r.timestamp)));
        self.late
            .extend(out.take_side(&LATE).into_iter().map(|r| match r.value {
                JoinInput::Left(l) => l.1,
                JoinInput::Right(r) => r.1,
            }));
    }

    fn sorted(mut self) -> Self {
        self.pairs.sort_unstable();
        self.late.sort_unstable();
        self
    }
}

/// Feeds `events` in batches of `batch`, each followed by the watermark
/// `bound` behind the largest time so far; then the final watermark.
fn feed<F: KeyedProcessFunction<u8, In, Pair>>(
    op: &mut KeyedProcess<u8, In, F, Pair>,
    events: &[Event],
    batch: usize,
    bound: i64,
    max: &mut EventTime,
    finish: bool,
) -> Run {
    let mut run = Run::default();
    let mut out = Collector::with_side_outputs([LATE.name()]);
    for chunk in events.chunks(batch.max(1)) {
        let b: Batch<In> = chunk.iter().map(record).collect();
        op.process(b, &mut out).expect("process");
        *max = chunk.iter().map(|e| e.2).fold(*max, i64::max);
        op.on_watermark(*max - bound - 1, &mut out)
            .expect("watermark");
        run.take(&mut out);
    }
    if finish {
        op.on_watermark(EventTime::MAX, &mut out)
            .expect("watermark");
        run.take(&mut out);
    }
    run
}

/// Runs all `events` through `f`; every key's state must be gone at the
/// end, but for a table's rows.
fn run_all<F: KeyedProcessFunction<u8, In, Pair>>(f: F, events: &[Event], batch: usize) -> Run {
    let mut op = open(f);
    let run = feed(&mut op, events, batch, BOUND, &mut i64::MIN.clone(), true);
    let table = std::any::type_name::<F>().contains("TableJoin");
    assert!(
        table || op.keys_with_state() == 0,
        "state left after the end"
    );
    run.sorted()
}

/// The most a record's time lies behind the largest before it.
const BOUND: i64 = 8;

/// Records with unique ids, each at most `BOUND - 1` ms behind the largest
/// time before it: with the watermark `BOUND` behind, none is late.
fn disordered() -> impl Strategy<Value = Vec<Event>> {
    prop::collection::vec((any::<bool>(), 0u8..3, 0i64..4, 0i64..BOUND), 0..60).prop_map(|v| {
        let mut base = 0;
        v.into_iter()
            .enumerate()
            .map(|(i, (left, k, step, delay))| {
                base += step;
                (left, k, (base - delay).max(0), i as u32)
            })
            .collect()
    })
}

fn sides(events: &[Event]) -> (Vec<&Event>, Vec<&Event>) {
    events.iter().partition(|e| e.0)
}

/// Every (left, right) pair of a key for which `at` gives an event time.
fn brute(events: &[Event], at: impl Fn(i64, i64) -> Vec<EventTime>) -> Vec<(Pair, EventTime)> {
    let (ls, rs) = sides(events);
    let mut out = Vec::new();
    for l in &ls {
        for r in rs.iter().filter(|r| r.1 == l.1) {
            for t in at(l.2, r.2) {
                out.push(((l.3, r.3), t));
            }
        }
    }
    out.sort_unstable();
    out
}

fn sessions(events: &[Event], gap: i64) -> Vec<(Pair, EventTime)> {
    // Per key, sessions: records sorted by time, split where the next is
    // more than `gap` after the last (windows [t, t + gap) that touch
    // merge).
    let mut out = Vec::new();
    for k in 0..3u8 {
        let mut recs: Vec<&Event> = events.iter().filter(|e| e.1 == k).collect();
        recs.sort_by_key(|e| e.2);
        let mut i = 0;
        while i < recs.len() {
            let mut j = i + 1;
            while j < recs.len() && recs[j].2 - recs[j - 1].2 <= gap {
                j += 1;
            }
            let end = recs[j - 1].2 + gap;
            let s = &recs[i..j];
            for l in s.iter().filter(|e| e.0) {
                for r in s.iter().filter(|e| !e.0) {
                    out.push(((l.3, r.3), end - 1));
                }
            }
            i = j;
        }
    }
    out.sort_unstable();
    out
}

fn table_brute(events: &[Event]) -> Vec<(Pair, EventTime)> {
    let (ls, rs) = sides(events);
    let mut out: Vec<(Pair, EventTime)> = ls
        .iter()
        .map(|l| {
            let row = rs
                .iter()
                .filter(|r| r.1 == l.1 && r.2 <= l.2)
                .max_by_key(|r| r.2)
                .map_or(u32::MAX, |r| r.3);
            ((l.3, row), l.2)
        })
        .collect();
    out.sort_unstable();
    out
}

/// Table updates at distinct times per key (the later of two at one time
/// wins, which brute force cannot know).
fn distinct_updates(mut events: Vec<Event>) -> Vec<Event> {
    let mut seen = std::collections::HashSet::new();
    events.retain(|e| e.0 || seen.insert((e.1, e.2)));
    events
}

type TableF = fn(&u8, &Rec, Option<&Rec>) -> Option<Pair>;

fn left_outer(_: &u8, l: &Rec, r: Option<&Rec>) -> Option<Pair> {
    Some((l.1, r.map_or(u32::MAX, |r| r.1)))
}

type PairF = fn(&u8, &Rec, &Rec) -> Pair;

fn interval(lo: i64, hi: i64) -> IntervalJoin<Rec, Rec, PairF> {
    IntervalJoin::bounded(Interval::millis(lo, hi), pair as PairF, Some(LATE))
}

type CogroupF = fn(&u8, Window, &[Rec], &[Rec], &mut Vec<Pair>);

fn all_pairs(_: &u8, _: Window, ls: &[Rec], rs: &[Rec], out: &mut Vec<Pair>) {
    for l in ls {
        for r in rs {
            out.push((l.1, r.1));
        }
    }
}

fn windowed<W: WindowAssigner>(w: W) -> WindowJoin<Rec, Rec, W, CogroupF, Pair> {
    WindowJoin::new(w, all_pairs as CogroupF, Some(LATE))
}

proptest! {
    #[test]
    fn tumbling_window_joins_equal_brute_force(events in disordered(), batch in 1usize..20, size in 1i64..20) {
        let run = run_all(windowed(Tumbling::of(Duration::from_millis(size as u64))), &events, batch);
        prop_assert!(run.late.is_empty());
        let want = brute(&events, |l, r| {
            if l.div_euclid(size) == r.div_euclid(size) {
                vec![l.div_euclid(size) * size + size - 1]
            } else {
                vec![]
            }
        });
        prop_assert_eq!(run.pairs, want);
    }

    #[test]
    fn sliding_window_joins_equal_brute_force(events in disordered(), batch in 1usize..20, slide in 1i64..6, k in 1i64..4) {
        let size = slide * k;
        let w = Sliding::of(Duration::from_millis(size as u64), Duration::from_millis(slide as u64));
        let run = run_all(windowed(w), &events, batch);
        prop_assert!(run.late.is_empty());
        let want = brute(&events, |l, r| {
            let last = l.div_euclid(slide) * slide;
            (0..k)
                .map(|i| last - i * slide)
                .filter(|&s| s <= r && r < s + size)
                .map(|s| s + size - 1)
                .collect()
        });
        prop_assert_eq!(run.pairs, want);
    }

    #[test]
    fn session_window_joins_equal_brute_force(events in disordered(), batch in 1usize..20, gap in 1i64..12) {
        let run = run_all(windowed(Session::with_gap(Duration::from_millis(gap as u64))), &events, batch);
        prop_assert!(run.late.is_empty());
        prop_assert_eq!(run.pairs, sessions(&events, gap));
    }

    #[test]
    fn interval_joins_equal_brute_force(events in disordered(), batch in 1usize..20, lo in -10i64..10, len in 0i64..12) {
        let hi = lo + len;
        let run = run_all(interval(lo, hi), &events, batch);
        prop_assert!(run.late.is_empty());
        let want = brute(&events, |l, r| if (lo..=hi).contains(&(r - l)) { vec![l.max(r)] } else { vec![] });
        prop_assert_eq!(run.pairs, want);
    }

    #[test]
    fn updating_joins_equal_brute_force(events in disordered(), batch in 1usize..20, ttl in 0u64..15) {
        // ttl 0: no time-to-live.
        let ttl = (ttl > 0).then(|| Duration::from_millis(ttl));
        let f = IntervalJoin::updating(ttl, pair as PairF, Some(LATE));
        let mut op = open(f);
        let run = feed(&mut op, &events, batch, BOUND, &mut i64::MIN.clone(), true).sorted();
        if ttl.is_some() {
            prop_assert_eq!(op.keys_with_state(), 0);
        }
        prop_assert!(run.late.is_empty());
        let within = |l: i64, r: i64| ttl.is_none_or(|t| (l - r).unsigned_abs() < t.as_millis() as u64);
        let want = brute(&events, |l, r| if within(l, r) { vec![l.max(r)] } else { vec![] });
        prop_assert_eq!(run.pairs, want);
    }

    #[test]
    fn table_joins_equal_brute_force(events in disordered(), batch in 1usize..20) {
        let events = distinct_updates(events);
        let mut op = open(TableJoin::new(left_outer as TableF, Some(LATE)));
        let run = feed(&mut op, &events, batch, BOUND, &mut i64::MIN.clone(), true).sorted();
        prop_assert!(run.late.is_empty());
        prop_assert_eq!(run.pairs, table_brute(&events));
    }

    /// A checkpoint taken at `from` instances restores at `to`, mid-stream:
    /// the results are those of one uninterrupted instance, for a merging
    /// window join, an interval join and a table join.
    #[test]
    fn joins_restore_at_another_parallelism(
        events in disordered(), cut in 0usize..60, from in 1usize..4, to in 1usize..4,
    ) {
        let events = distinct_updates(events);
        let session = || windowed(Session::with_gap(Duration::from_millis(5)));
        check_rescale(session, &events, cut, from, to)?;
        check_rescale(|| interval(-3, 4), &events, cut, from, to)?;
        check_rescale(|| TableJoin::new(left_outer as TableF, Some(LATE)), &events, cut, from, to)?;
    }
}

fn check_rescale<F: KeyedProcessFunction<u8, In, Pair>>(
    make: impl Fn() -> F,
    events: &[Event],
    cut: usize,
    from: usize,
    to: usize,
) -> std::result::Result<(), TestCaseError> {
    let whole = run_all(make(), events, 5);
    let cut = cut.min(events.len());
    let owner = |k: u8, p: usize| instance_for_hash(hash_key(&k), p);
    let max = events[..cut].iter().map(|e| e.2).max().unwrap_or(i64::MIN);
    let mut all = Run::default();
    let mut snapshots = Vec::new();
    for i in 0..from {
        let mut first = open(make());
        let head: Vec<Event> = events[..cut]
            .iter()
            .copied()
            .filter(|e| owner(e.1, from) == i)
            .collect();
        let run = feed(&mut first, &head, 5, BOUND, &mut i64::MIN.clone(), false);
        // At the barrier every instance has the job's watermark, whatever
        // its own records.
        let mut out = Collector::with_side_outputs([LATE.name()]);
        first
            .on_watermark(max.saturating_sub(BOUND + 1), &mut out)
            .expect("watermark");
        all.take(&mut out);
        all.pairs.extend(run.pairs);
        all.late.extend(run.late);
        snapshots.push(first.snapshot().expect("snapshot"));
    }
    let restored = redistribute(snapshots, to).expect("redistributes");
    for (i, state) in restored.iter().enumerate() {
        let mut second = open(make());
        second.restore(state).expect("restore");
        let rest: Vec<Event> = events[cut..]
            .iter()
            .copied()
            .filter(|e| owner(e.1, to) == i)
            .collect();
        let mut m = max;
        let run = feed(&mut second, &rest, 5, BOUND, &mut m, true);
        all.pairs.extend(run.pairs);
        all.late.extend(run.late);
    }
    prop_assert_eq!(all.sorted(), whole);
    Ok(())
}

#[test]
fn late_records_are_counted_and_sent_to_the_late_output() {
    let mut op = open(interval(0, 5));
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let b: Batch<In> = [(true, 1, 10, 1), (false, 1, 12, 2)]
        .iter()
        .map(record)
        .collect();
    op.process(b, &mut out).expect("process");
    op.on_watermark(20, &mut out).expect("watermark");
    // At or behind the watermark: late, whichever side.
    let b: Batch<In> = [(false, 1, 20, 3), (true, 1, 15, 4), (true, 1, 21, 5)]
        .iter()
        .map(record)
        .collect();
    op.process(b, &mut out).expect("process");
    let mut run = Run::default();
    run.take(&mut out);
    assert_eq!(run.pairs, [((1, 2), 12)]);
    assert_eq!(run.late, [3, 4]);
}

#[test]
fn a_window_join_routes_records_of_fired_windows_to_the_late_output() {
    let mut op = open(windowed(Tumbling::of(Duration::from_millis(10))));
    let mut out = Collector::with_side_outputs([LATE.name()]);
    op.process([(true, 0, 3, 1)].iter().map(record).collect(), &mut out)
        .expect("process");
    op.on_watermark(9, &mut out).expect("watermark");
    op.process(
        [(false, 0, 5, 2), (false, 0, 10, 3), (true, 0, 11, 4)]
            .iter()
            .map(record)
            .collect(),
        &mut out,
    )
    .expect("process");
    op.on_watermark(EventTime::MAX, &mut out)
        .expect("watermark");
    let mut run = Run::default();
    run.take(&mut out);
    assert_eq!(run.pairs, [((4, 3), 19)]);
    assert_eq!(run.late, [2]);
}

#[test]
fn a_table_join_sees_the_version_valid_at_each_records_time() {
    let mut op = open(TableJoin::new(left_outer as TableF, Some(LATE)));
    let mut out = Collector::with_side_outputs([LATE.name()]);
    // The left records arrive first; the table's updates after them, yet
    // each record joins the row valid at its own time.
    let b: Batch<In> = [
        (true, 7, 5, 1),
        (true, 7, 15, 2),
        (true, 7, 25, 3),
        (false, 7, 10, 100),
        (false, 7, 20, 200),
    ]
    .iter()
    .map(record)
    .collect();
    op.process(b, &mut out).expect("process");
    op.on_watermark(EventTime::MAX, &mut out)
        .expect("watermark");
    let mut run = Run::default();
    run.take(&mut out);
    run = run.sorted();
    assert_eq!(
        run.pairs,
        [((1, u32::MAX), 5), ((2, 100), 15), ((3, 200), 25)]
    );
}

#[test]
fn a_table_join_joins_a_record_without_event_time_at_once() {
    let mut op = open(TableJoin::new(left_outer as TableF, Some(LATE)));
    let mut out = Collector::with_side_outputs([LATE.name()]);
    let untimed = |left: bool, id: u32| {
        let v = if left {
            JoinInput::Left((1, id))
        } else {
            JoinInput::Right((1, id))
        };
        Record::new(brook_core::NO_TIMESTAMP, v)
    };
    op.process(
        [untimed(true, 1), untimed(false, 100), untimed(true, 2)]
            .into_iter()
            .collect(),
        &mut out,
    )
    .expect("process");
    let mut run = Run::default();
    run.take(&mut out);
    assert_eq!(
        run.pairs,
        [
            ((1, u32::MAX), brook_core::NO_TIMESTAMP),
            ((2, 100), brook_core::NO_TIMESTAMP)
        ]
    );
    assert!(run.late.is_empty());
}
