//! Side outputs: a node's second typed stream. A fallible map routes what
//! it refuses, a window its late records; side streams carry the node's
//! watermarks and end, chained or through channels, at any parallelism;
//! settings on a window's stream apply to the window node itself.

use std::time::Duration;

use brook::core::Error;
use brook::operators::Failed;
use brook::prelude::*;

use crate::support::{block_on, config, sorted};

const UNPARSED: OutputTag<Failed<String>> = OutputTag::new("unparsed");

/// Lines, one in ten not a number.
fn lines(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            if i % 10 == 3 {
                format!("x{i}")
            } else {
                i.to_string()
            }
        })
        .collect()
}

#[test]
fn a_fallible_map_routes_what_it_refuses_at_any_parallelism_chained_or_not() {
    for p in [1, 2, 3] {
        for chained in [true, false] {
            let mut cfg = config(p);
            cfg.chaining = chained;
            let flow = Dataflow::with_config("parse", cfg);
            let (good, bad) = (CollectSink::new(), CollectSink::new());
            let (got, failed) = (good.handle(), bad.handle());
            let numbers = flow
                .source("lines", MemorySource::new(lines(500)))
                .try_map_with_errors("parse", |l: &String| l.parse::<u64>(), UNPARSED);
            numbers.sink("numbers", good);
            numbers.side_output(&UNPARSED).sink("unparsed", bad);
            let job = flow.build().expect("plan");
            let plan = job.describe();
            assert!(plan.contains("parse[unparsed]") || chained, "{plan}");
            let metrics = job.metrics();
            block_on(job.run(CancellationToken::new())).expect("the job goes on");
            let expected: Vec<u64> = (0..500u64).filter(|i| i % 10 != 3).collect();
            assert_eq!(sorted(got.values()), expected, "p={p} chained={chained}");
            let mut refused: Vec<(String, String)> = failed
                .values()
                .into_iter()
                .map(|f| (f.record, f.error))
                .collect();
            refused.sort();
            assert_eq!(refused.len(), 50);
            assert!(
                refused
                    .iter()
                    .all(|(r, e)| r.starts_with('x') && e.contains("invalid digit"))
            );
            let parse = metrics.snapshot();
            let parse = parse.node("parse").expect("node").total;
            assert_eq!(parse.dead_lettered, 50);
            assert_eq!(parse.records_out, 450, "side records are not main output");
        }
    }
}

#[test]
fn a_side_output_nobody_asked_for_counts_what_it_drops() {
    let flow = Dataflow::with_config("parse", config(2));
    let good = CollectSink::new();
    let got = good.handle();
    flow.source("lines", MemorySource::new(lines(100)))
        .try_map_with_errors("parse", |l: &String| l.parse::<u64>(), UNPARSED)
        .sink("numbers", good);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    assert_eq!(got.values().len(), 90);
    let parse = metrics.snapshot().node("parse").expect("node").total;
    assert_eq!((parse.dropped, parse.dead_lettered), (10, 0));
}

type Ev = (u8, i64);
const LATE: OutputTag<Ev> = OutputTag::new("late");

/// Key 0 in order, then one record far behind the watermark.
fn events_with_one_late() -> Vec<Record<Ev>> {
    let mut v: Vec<Record<Ev>> = (0..300i64)
        .map(|t| Record::new(t * 10, (0, t * 10)))
        .collect();
    v.push(Record::new(5, (1, 5)));
    v
}

#[test]
fn a_window_at_parallelism_3_after_a_source_at_1_sends_late_records_to_its_side_output() {
    let flow = Dataflow::with_config("late", config(1));
    let (results, late) = (CollectSink::new(), CollectSink::new());
    let (got, late_got) = (results.handle(), late.handle());
    let windows = flow
        .source("events", MemorySource::from_records(events_with_one_late()))
        .assign_timestamps(|e: &Ev| e.1, Watermarks::monotonic())
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_millis(100)))
        .side_output_late_data(LATE)
        .aggregate("w", Count)
        .parallelism(3);
    windows.sink("results", results);
    // The late records, through a map that runs at another parallelism.
    windows
        .side_output(&LATE)
        .map("late-times", |e: Ev| e.1)
        .parallelism(2)
        .sink("late", late);
    let job = flow.build().expect("plan");
    assert_eq!(job.parallelism_of("events"), Some(1));
    assert_eq!(job.parallelism_of("w"), Some(3), "the window itself");
    assert_eq!(job.parallelism_of("late-times"), Some(2));
    let plan = job.describe();
    assert!(
        !plan.contains(".results") && !plan.contains("w.late"),
        "no extra nodes: {plan}"
    );
    assert!(plan.contains("w[late]"), "{plan}");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let mut counts: Vec<(i64, u64)> = got
        .values()
        .into_iter()
        .map(|w| (w.window.start, w.value))
        .collect();
    counts.sort();
    assert_eq!(counts.len(), 30);
    assert!(counts.iter().all(|&(_, c)| c == 10), "{counts:?}");
    assert_eq!(late_got.values(), vec![5]);
    assert_eq!(metrics.snapshot().node("w").expect("w").total.late, 1);
}

#[test]
fn disable_chaining_on_a_window_gives_it_its_own_task() {
    let task_count = |unchain: bool| {
        let flow = Dataflow::with_config("chain", config(2));
        let w = flow
            .source("events", MemorySource::from_records(events_with_one_late()))
            .assign_timestamps(|e: &Ev| e.1, Watermarks::monotonic())
            .key_by(|e: &Ev| e.0)
            .window(Tumbling::of(Duration::from_millis(100)))
            .aggregate("w", Count)
            .map("m", |w| w.value);
        let w = if unchain { w.disable_chaining() } else { w };
        w.sink("out", CollectSink::new());
        flow.build().expect("plan").task_count()
    };
    assert_eq!(task_count(true), task_count(false) + 1);
}

#[test]
fn side_outputs_are_refused_where_they_cannot_be() {
    let flow = Dataflow::new("f");
    let src = flow.source("src", MemorySource::new(vec![1u64]));
    src.sink("out", CollectSink::new());
    src.side_output(&OutputTag::<u64>::new("x"))
        .sink("side", CollectSink::new());
    match flow.build() {
        Err(Error::Plan(msg)) => assert!(msg.contains("only an operator"), "{msg}"),
        other => panic!("expected a plan error, got {other:?}"),
    }

    let flow = Dataflow::new("f");
    let m = flow
        .source("src", MemorySource::new(vec![1u64]))
        .map("m", |v| v);
    m.sink("out", CollectSink::new());
    m.side_output(&OutputTag::<u64>::new("x"))
        .sink("a", CollectSink::new());
    m.side_output(&OutputTag::<String>::new("x"))
        .sink("b", CollectSink::new());
    match flow.build() {
        Err(Error::Plan(msg)) => assert!(msg.contains("two record types"), "{msg}"),
        other => panic!("expected a plan error, got {other:?}"),
    }
}
