//! Event time in running jobs: watermarks across instances, unions and
//! exchanges; windows against batch computations; lateness; idleness.

use std::collections::BTreeMap;
use std::time::Duration;

use brook::operators::AssignTimestamps;
use brook::prelude::*;
use futures::StreamExt as _;
use proptest::prelude::*;

use crate::support::{block_on, config};

/// An event: (key, event time).
type Ev = (u8, i64);

/// Where the late-records tests send them.
const LATE: OutputTag<Ev> = OutputTag::new("late");

/// Events with disorder strictly below `bound`.
fn disordered(bound: i64, max_len: usize) -> impl Strategy<Value = Vec<Ev>> {
    prop::collection::vec((0u8..6, 0i64..30, 0i64..bound), 0..max_len).prop_map(|steps| {
        let mut t = 10_000;
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

#[derive(Debug, Clone, Copy)]
enum Kind {
    Tumbling,
    Sliding,
    Session,
}

type Counts = BTreeMap<(u8, i64, i64), (u64, i64)>;

/// The windows a batch computation gives.
fn batch(events: &[Ev], kind: Kind) -> Counts {
    let mut m = Counts::new();
    let mut add = |k: u8, s: i64, e: i64, t: i64| {
        let v = m.entry((k, s, e)).or_default();
        v.0 += 1;
        v.1 += t;
    };
    match kind {
        Kind::Tumbling => {
            for &(k, t) in events {
                let s = t - t.rem_euclid(50);
                add(k, s, s + 50, t);
            }
        }
        Kind::Sliding => {
            for &(k, t) in events {
                let mut s = t - t.rem_euclid(20);
                while s > t - 60 {
                    add(k, s, s + 60, t);
                    s -= 20;
                }
            }
        }
        Kind::Session => {
            let mut by_key: BTreeMap<u8, Vec<i64>> = BTreeMap::new();
            for &(k, t) in events {
                by_key.entry(k).or_default().push(t);
            }
            for (k, mut ts) in by_key {
                ts.sort();
                let mut group: Vec<i64> = Vec::new();
                for t in ts {
                    if group.last().is_some_and(|&l| t > l + 40) {
                        let (s, e) = (group[0], group[group.len() - 1] + 40);
                        group.iter().for_each(|&t| add(k, s, e, t));
                        group.clear();
                    }
                    group.push(t);
                }
                if let (Some(&s), Some(&l)) = (group.first(), group.last()) {
                    group.iter().for_each(|&t| add(k, s, l + 40, t));
                }
            }
        }
    }
    m
}

/// Runs two sources (even and odd positions of `events`) → per-instance
/// timestamps → union → key_by → window → collect, and returns the windows
/// and the late count.
fn job(events: &[Ev], kind: Kind, parallelism: usize, bound: i64) -> (Counts, u64) {
    let flow = Dataflow::with_config("windows", config(parallelism));
    let (even, odd): (Vec<_>, Vec<_>) = events.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    let strip = |v: Vec<(usize, &Ev)>| v.into_iter().map(|(_, e)| *e).collect::<Vec<Ev>>();
    let timestamps = || {
        AssignTimestamps::new(
            |e: &Ev| e.1,
            Watermarks::bounded(Duration::from_millis(bound as u64)),
        )
        .with_interval(Duration::ZERO)
    };
    let a = flow
        .source("a", MemorySource::new(strip(even)))
        .process("a.ts", timestamps());
    let b = flow
        .source("b", MemorySource::new(strip(odd)))
        .process("b.ts", timestamps());
    let keyed = a.union("both", &[&b]).key_by(|e: &Ev| e.0);
    let agg = (Count, Sum::of(|e: &Ev| e.1));
    let sink = CollectSink::new();
    let got = sink.handle();
    let results = match kind {
        Kind::Tumbling => keyed
            .window(Tumbling::of(Duration::from_millis(50)))
            .aggregate("w", agg),
        Kind::Sliding => keyed
            .window(Sliding::of(
                Duration::from_millis(60),
                Duration::from_millis(20),
            ))
            .aggregate("w", agg),
        Kind::Session => keyed
            .window(Session::with_gap(Duration::from_millis(40)))
            .aggregate("w", agg),
    };
    results.sink("out", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let mut m = Counts::new();
    for r in got.records() {
        let w = r.value;
        assert_eq!(
            r.timestamp,
            w.window.end - 1,
            "results carry the window's last ms"
        );
        let prev = m.insert((w.key, w.window.start, w.window.end), w.value);
        assert!(
            prev.is_none(),
            "window emitted twice: {:?}",
            (w.key, w.window)
        );
    }
    let late = metrics.snapshot().node("w").map_or(0, |n| n.total.late);
    (m, late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn windows_over_disordered_input_equal_a_batch_computation(
        events in disordered(25, 300),
        parallelism in 1usize..4,
    ) {
        for kind in [Kind::Tumbling, Kind::Sliding, Kind::Session] {
            let (got, late) = job(&events, kind, parallelism, 25);
            prop_assert_eq!(late, 0, "{:?}", kind);
            prop_assert_eq!(got, batch(&events, kind), "{:?} at parallelism {}", kind, parallelism);
        }
    }
}

#[test]
fn late_records_refire_within_lateness_and_then_go_to_the_side_output() {
    // Monotonic watermarks; one instance; batches of 16.
    let mut events: Vec<Ev> = (0..100).map(|i| (1, i * 10)).collect();
    events.push((1, 850)); // window [800, 900): fired at 899, 999 < 899 + 200: updates it
    events.push((1, 5)); // window [0, 100): dropped at 99 + 200 <= 999: late
    let flow = Dataflow::with_config("late", config(1));
    let windowed = flow
        .source("events", MemorySource::new(events))
        .process(
            "ts",
            AssignTimestamps::new(|e: &Ev| e.1, Watermarks::monotonic())
                .with_interval(Duration::ZERO),
        )
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_millis(100)))
        .allowed_lateness(Duration::from_millis(200))
        .side_output_late_data(LATE)
        .aggregate("w", Count);
    let results = CollectSink::new();
    let got = results.handle();
    let late_sink = CollectSink::new();
    let late = late_sink.handle();
    windowed.sink("results", results);
    windowed.side_output(&LATE).sink("late", late_sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");

    let fired: Vec<(i64, u64)> = got
        .values()
        .into_iter()
        .map(|w| (w.window.start, w.value))
        .collect();
    assert_eq!(
        fired.len(),
        11,
        "ten windows once, [800, 900) twice: {fired:?}"
    );
    let w800: Vec<u64> = fired.iter().filter(|f| f.0 == 800).map(|f| f.1).collect();
    assert_eq!(
        w800,
        [10, 11],
        "fired, then fired again with the late record"
    );
    let late_records = late.records();
    assert_eq!(late_records.len(), 1);
    assert_eq!(
        (late_records[0].timestamp, late_records[0].value),
        (5, (1, 5))
    );
    assert_eq!(metrics.snapshot().node("w").map(|n| n.total.late), Some(1));
}

/// Instance 0 yields `records` then waits forever; other instances yield
/// nothing and wait forever.
struct Stalling {
    records: Vec<Ev>,
}

impl Source<Ev> for Stalling {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        ctx: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<Ev>> {
        let records = if ctx.instance() == 0 {
            std::mem::take(&mut self.records)
        } else {
            Vec::new()
        };
        let batch: Batch<Ev> = records.into_iter().map(Record::untimed).collect();
        let first = futures::stream::iter([Ok(SourceEvent::Batch(batch))]);
        Ok(first.chain(futures::stream::pending()).boxed())
    }
}

#[test]
fn an_idle_instance_stops_holding_back_the_watermark() {
    let events: Vec<Ev> = (0..100).map(|i| (i as u8 % 3, i * 10)).collect();
    let flow = Dataflow::with_config("idle", config(2));
    let sink = CollectSink::new();
    let got = sink.handle();
    flow.source("stalling", Stalling { records: events })
        .assign_timestamps(
            |e: &Ev| e.1,
            Watermarks::monotonic().with_idle_timeout(Duration::from_millis(50)),
        )
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_millis(100)))
        .aggregate("w", Count)
        .sink("out", sink);
    let job = flow.build().expect("plan");
    let watch = got.clone();
    block_on(async move {
        let got = watch;
        let shutdown = CancellationToken::new();
        let running = job.start(shutdown.clone()).expect("start");
        // Instance 1 never sends a record. Once it is idle, the watermark
        // is instance 0's (989), so windows up to [800, 900) fire while the
        // job still runs.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while got
            .values()
            .iter()
            .filter(|w| w.window.start == 800)
            .count()
            < 3
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "windows never fired"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            got.values().iter().all(|w| w.window.end <= 900),
            "[900, 1000) waits"
        );
        shutdown.cancel();
        running.wait().await.expect("job");
    });
    let total: u64 = got.values().iter().map(|w| w.value).sum();
    assert_eq!(total, 100, "shutdown fires the rest");
}

#[test]
fn two_phase_windows_count_late_records_one_by_one() {
    // Tumbling windows without lateness or a late output aggregate in two
    // phases: late records reach the window node folded into partials, and
    // still count one by one.
    for parallelism in 1..=3 {
        let mut events: Vec<Ev> = (0..32).map(|t| ((t % 3) as u8, t)).collect();
        events.extend((1000..1016).map(|t| ((t % 3) as u8, t)));
        // Past the watermark of 1015: window [0, 100) has fired.
        events.extend((40..56).map(|t| ((t % 3) as u8, t)));
        let flow = Dataflow::with_config("late-two-phase", config(parallelism));
        let sink = CollectSink::new();
        let got = sink.handle();
        flow.source("events", MemorySource::new(events))
            .parallelism(1)
            .process(
                "ts",
                AssignTimestamps::new(|e: &Ev| e.1, Watermarks::bounded(Duration::ZERO))
                    .with_interval(Duration::ZERO),
            )
            // One watermark for all: the late records are late everywhere.
            .parallelism(1)
            .key_by(|e: &Ev| e.0)
            .window(Tumbling::of(Duration::from_millis(100)))
            .aggregate("w", Count)
            .sink("out", sink);
        let job = flow.build().expect("plan");
        let metrics = job.metrics();
        block_on(job.run(CancellationToken::new())).expect("job");
        let snapshot = metrics.snapshot();
        assert_eq!(
            snapshot.node("w").map_or(0, |n| n.total.late),
            16,
            "at parallelism {parallelism}"
        );
        let mut counts: Vec<(i64, u8, u64)> = got
            .values()
            .into_iter()
            .map(|w| (w.window.start, w.key, w.value))
            .collect();
        counts.sort();
        let expected: Vec<(i64, u8, u64)> = [(0, 0, 11), (0, 1, 11), (0, 2, 10)]
            .into_iter()
            .chain([(1000, 0, 5), (1000, 1, 6), (1000, 2, 5)])
            .collect();
        assert_eq!(counts, expected, "at parallelism {parallelism}");
    }
}
