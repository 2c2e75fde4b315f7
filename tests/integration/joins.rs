//! Joins in running jobs: at every parallelism, through the hash exchange
//! and with watermarks merged over two inputs, each join equals a
//! brute-force computation; late records reach the side output.

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use brook::core::JobMetrics;
use brook::operators::AssignTimestamps;
use brook::prelude::*;
use proptest::prelude::*;

use crate::support::{block_on, config};

/// A record: (key, event time, id).
type Ev = (u8, i64, u32);
/// A joined pair of ids; `u32::MAX` for no right record.
type Pair = (u32, u32);

const LATE: OutputTag<JoinInput<Ev, Ev>> = OutputTag::new("late");

/// Records of both sides with unique ids and disorder below `bound`;
/// `true` for the left side.
fn disordered(bound: i64) -> impl Strategy<Value = Vec<(bool, Ev)>> {
    prop::collection::vec((any::<bool>(), 0u8..5, 0i64..20, 0i64..bound), 0..200).prop_map(
        |steps| {
            let mut t = 1_000;
            steps
                .into_iter()
                .enumerate()
                .map(|(i, (left, k, step, delay))| {
                    t += step;
                    (left, (k, t - delay, i as u32))
                })
                .collect()
        },
    )
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Window,
    Interval,
    Updating,
    Table,
}

fn brute(events: &[(bool, Ev)], kind: Kind) -> Vec<(Pair, i64)> {
    let ls: Vec<&Ev> = events.iter().filter(|e| e.0).map(|e| &e.1).collect();
    let rs: Vec<&Ev> = events.iter().filter(|e| !e.0).map(|e| &e.1).collect();
    let mut out = Vec::new();
    for l in &ls {
        let same = rs.iter().filter(|r| r.0 == l.0);
        match kind {
            Kind::Window => out.extend(
                same.filter(|r| r.1.div_euclid(50) == l.1.div_euclid(50))
                    .map(|r| ((l.2, r.2), l.1.div_euclid(50) * 50 + 49)),
            ),
            Kind::Interval => out.extend(
                same.filter(|r| (-30..=10).contains(&(r.1 - l.1)))
                    .map(|r| ((l.2, r.2), l.1.max(r.1))),
            ),
            Kind::Updating => out.extend(
                same.filter(|r| (r.1 - l.1).abs() < 100)
                    .map(|r| ((l.2, r.2), l.1.max(r.1))),
            ),
            Kind::Table => {
                let row = same.filter(|r| r.1 <= l.1).max_by_key(|r| r.1);
                out.push(((l.2, row.map_or(u32::MAX, |r| r.2)), l.1));
            }
        }
    }
    out.sort_unstable();
    out
}

/// Runs the join of `kind` at `parallelism`: the left and right records
/// each from a source of two instances, timestamps per instance.
fn job(
    events: &[(bool, Ev)],
    kind: Kind,
    parallelism: usize,
    bound: i64,
) -> (Vec<(Pair, i64)>, u64) {
    let flow = Dataflow::with_config("joins", config(parallelism));
    let side =
        |left: bool| -> Vec<Ev> { events.iter().filter(|e| e.0 == left).map(|e| e.1).collect() };
    let timestamps = || {
        AssignTimestamps::new(
            |e: &Ev| e.1,
            Watermarks::bounded(Duration::from_millis(bound as u64)),
        )
        .with_interval(Duration::ZERO)
    };
    let left = flow
        .source("left", MemorySource::new(side(true)))
        .process("left.ts", timestamps())
        .key_by(|e: &Ev| e.0);
    let right = flow
        .source("right", MemorySource::new(side(false)))
        .process("right.ts", timestamps())
        .key_by(|e: &Ev| e.0);
    let both = left.connect(&right).side_output_late_data(LATE);
    let pair = |_: &u8, l: &Ev, r: &Ev| (l.2, r.2);
    let joined = match kind {
        Kind::Window => both.window_join("join", Tumbling::of(Duration::from_millis(50)), pair),
        Kind::Interval => both.interval_join("join", Interval::millis(-30, 10), pair),
        Kind::Updating => both.join("join", Some(Duration::from_millis(100)), pair),
        Kind::Table => both.join_table("join", |_: &u8, l: &Ev, r: Option<&Ev>| {
            Some((l.2, r.map_or(u32::MAX, |r| r.2)))
        }),
    };
    let sink = CollectSink::new();
    let got = sink.handle();
    joined.sink("out", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let mut pairs: Vec<(Pair, i64)> = got
        .records()
        .into_iter()
        .map(|r| (r.value, r.timestamp))
        .collect();
    pairs.sort_unstable();
    let late = metrics.snapshot().node("join").map_or(0, |n| n.total.late);
    (pairs, late)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(8))]

    #[test]
    fn joins_in_a_job_equal_brute_force_at_any_parallelism(
        events in disordered(25),
        parallelism in 1usize..4,
    ) {
        // One table update per key and time: of two at one time the later
        // read wins, which brute force cannot know.
        let mut seen = std::collections::HashSet::new();
        let events: Vec<(bool, Ev)> =
            events.into_iter().filter(|(l, e)| *l || seen.insert((e.0, e.1))).collect();
        for kind in [Kind::Window, Kind::Interval, Kind::Updating, Kind::Table] {
            let (got, late) = job(&events, kind, parallelism, 25);
            prop_assert_eq!(late, 0, "{:?}", kind);
            prop_assert_eq!(got, brute(&events, kind), "{:?} at parallelism {}", kind, parallelism);
        }
    }
}

#[test]
fn late_records_of_a_join_reach_its_side_output() {
    // The right record at 5 comes after the one at 100, and after the left
    // input has ended: both inputs' watermarks are past it, so it is late
    // for the interval join.
    let flow = Dataflow::with_config(
        "late-join",
        JobConfig {
            batch_size: 1,
            ..config(1)
        },
    );
    let timestamps = || {
        AssignTimestamps::new(|e: &Ev| e.1, Watermarks::monotonic()).with_interval(Duration::ZERO)
    };
    let left = flow
        .source(
            "left",
            MemorySource::new(vec![(1u8, 10i64, 1u32), (1, 95, 2)]),
        )
        .process("left.ts", timestamps())
        .key_by(|e: &Ev| e.0);
    // The job's metrics, once it is built: the right source waits on them.
    let metrics = Arc::new(OnceLock::<JobMetrics>::new());
    let watched = metrics.clone();
    let right_records = [(1u8, 100i64, 3u32), (1, 5, 4)]
        .into_iter()
        .inspect(move |e| {
            if e.2 == 4 {
                // Wait for the join's watermark to reach 99 (a monotonic
                // watermark trails the newest time by 1): the right input's is
                // 99 then, and the left input's past 94, its last record's, so
                // the left input has ended. A sleep instead made the test
                // depend on how busy the machine was. The wait blocks this
                // source's worker thread, so `block_in_place` hands the
                // worker's other tasks (the join, woken by this source's
                // last send, may wait in its slot) to another thread.
                tokio::task::block_in_place(|| {
                    let deadline = Instant::now() + Duration::from_secs(30);
                    loop {
                        let joined = watched
                            .get()
                            .and_then(|m| m.snapshot().node("join").map(|n| n.total.watermark));
                        if joined.is_some_and(|wm| wm >= 99) {
                            break;
                        }
                        assert!(
                            Instant::now() < deadline,
                            "the join's watermark is {joined:?} after 30 s"
                        );
                        std::thread::sleep(Duration::from_millis(5));
                    }
                });
            }
        });
    let right = flow
        .source("right", MemorySource::from_iterator(right_records))
        .process("right.ts", timestamps())
        .key_by(|e: &Ev| e.0);
    let joined = left
        .connect(&right)
        .side_output_late_data(LATE)
        .interval_join("join", Interval::millis(0, 10), |_: &u8, l: &Ev, r: &Ev| {
            (l.2, r.2)
        });
    let out = CollectSink::new();
    let got = out.handle();
    let late_sink = CollectSink::new();
    let late = late_sink.handle();
    joined.sink("out", out);
    joined.side_output(&LATE).sink("late", late_sink);
    let job = flow.build().expect("plan");
    let metrics = metrics.get_or_init(|| job.metrics()).clone();
    block_on(job.run(CancellationToken::new())).expect("job");
    assert_eq!(got.values(), [(2, 3)]);
    assert_eq!(late.values(), [JoinInput::Right((1, 5, 4))]);
    assert_eq!(
        metrics.snapshot().node("join").map(|n| n.total.late),
        Some(1)
    );
}

#[test]
fn a_table_without_event_times_enriches_every_record() {
    // The table, read from memory with no event times (as a file of rows
    // would be), is valid from the beginning of time: the left records
    // wait for it to be read, then each finds its key's row.
    let flow = Dataflow::with_config("enrich", config(2));
    let clicks = flow
        .source(
            "clicks",
            MemorySource::new(vec![(1u8, 10i64, 1u32), (2, 20, 2), (3, 30, 3)]),
        )
        .assign_timestamps(|e: &Ev| e.1, Watermarks::monotonic())
        .key_by(|e: &Ev| e.0);
    let users = flow
        .source(
            "users",
            MemorySource::new(vec![(1u8, "ann".to_string()), (2, "bob".to_string())]),
        )
        .key_by(|u: &(u8, String)| u.0);
    let out = CollectSink::new();
    let got = out.handle();
    clicks
        .connect(&users)
        .join_table("enrich", |_: &u8, c: &Ev, u: Option<&(u8, String)>| {
            Some((c.2, u.map(|u| u.1.clone())))
        })
        .sink("out", out);
    block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("job");
    let mut rows = got.values();
    rows.sort();
    assert_eq!(
        rows,
        [
            (1, Some("ann".to_string())),
            (2, Some("bob".to_string())),
            (3, None)
        ]
    );
}
