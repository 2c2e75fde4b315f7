//! Timestamps that cannot break a job (issue 16, item 6): an event from the
//! future is refused instead of moving the watermark, reserved times are bad
//! records rather than "no event time", and windows hold events at both ends
//! of the `i64` range.

use std::collections::BTreeMap;
use std::time::Duration;

use brook::core::time::now_ms;
use brook::core::{Counters, JobMetrics, MAX_EVENT_TIME, MIN_EVENT_TIME};
use brook::prelude::*;

use crate::support::{block_on, config};

/// An event: (key, event time).
type Ev = (u8, i64);

/// 2100-01-01T00:00:00Z.
const YEAR_2100: i64 = 4_102_444_800_000;

/// Window results by (key, start, end).
type Counts = BTreeMap<(u8, i64, i64), u64>;

/// 20,000 events of the last day, 10 ms apart, over five keys, with one
/// event dated 2100 among the first.
fn events_with_one_from_2100() -> Vec<Ev> {
    let start = now_ms() - 86_400_000;
    let mut events: Vec<Ev> = (0..20_000)
        .map(|i| ((i % 5) as u8, start + i64::from(i) * 10))
        .collect();
    events.insert(100, (9, YEAR_2100));
    events
}

/// Runs `events` → `assign_timestamps` (bounded 2 s, with `strategy`'s
/// other settings) → key → tumbling 10 s count, and returns the windows
/// and the metrics.
fn count_windows(
    events: Vec<Ev>,
    strategy: Watermarks,
    parallelism: usize,
    extract: fn(&Ev) -> i64,
) -> (Counts, JobMetrics) {
    let flow = Dataflow::with_config("time-bounds", config(parallelism));
    let sink = CollectSink::new();
    let got = sink.handle();
    flow.source("src", MemorySource::new(events))
        .assign_timestamps(extract, strategy)
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(10)))
        .aggregate("w", Count)
        .sink("out", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let mut counts = Counts::new();
    for r in got.records() {
        let w = r.value;
        assert!(w.window.start < w.window.end, "{:?}", w.window);
        counts.insert((w.key, w.window.start, w.window.end), w.value);
    }
    (counts, metrics)
}

fn total(metrics: &JobMetrics, node: &str) -> Counters {
    metrics
        .snapshot()
        .node(node)
        .map(|n| n.total)
        .unwrap_or_else(|| panic!("no node {node}"))
}

fn time(e: &Ev) -> i64 {
    e.1
}

#[test]
fn one_event_from_2100_is_rejected_and_the_answer_does_not_depend_on_parallelism() {
    let events = events_with_one_from_2100();
    let strategy = Watermarks::bounded(Duration::from_secs(2))
        .with_max_ahead(Duration::from_secs(3600))
        .with_emit_interval(Duration::ZERO);
    let mut answers = Vec::new();
    for p in [1, 2, 4] {
        let (counts, metrics) = count_windows(events.clone(), strategy, p, time);
        let counted: u64 = counts.values().sum();
        assert_eq!(counted, 20_000, "p={p}: every event of today is counted");
        assert!(
            !counts.keys().any(|k| k.0 == 9),
            "p={p}: 2100 is in no window"
        );
        assert_eq!(total(&metrics, "w").late, 0, "p={p}: nothing is late");
        assert_eq!(total(&metrics, "src.timestamps").rejected, 1, "p={p}");
        answers.push(counts);
    }
    assert!(
        answers.windows(2).all(|a| a[0] == a[1]),
        "the same answer at p = 1, 2, 4"
    );
}

/// Where the refused records go.
const BAD_TIMES: OutputTag<Ev> = OutputTag::new("bad-times");

#[test]
fn events_refused_for_their_time_can_be_kept_in_a_side_stream() {
    let flow = Dataflow::with_config("time-bounds", config(2));
    let (on_time, rejected) = (CollectSink::new(), CollectSink::new());
    let (got, bad) = (on_time.handle(), rejected.handle());
    let strategy =
        Watermarks::bounded(Duration::from_secs(2)).with_max_ahead(Duration::from_secs(3600));
    let timed = flow
        .source("src", MemorySource::new(events_with_one_from_2100()))
        .assign_timestamps_with_rejected(time, strategy, BAD_TIMES);
    timed.side_output(&BAD_TIMES).sink("bad-times", rejected);
    timed
        .key_by(|e: &Ev| e.0)
        .window(Tumbling::of(Duration::from_secs(10)))
        .aggregate("w", Count)
        .sink("out", on_time);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let bad: Vec<(i64, Ev)> = bad
        .records()
        .into_iter()
        .map(|r| (r.timestamp, r.value))
        .collect();
    assert_eq!(bad, [(YEAR_2100, (9, YEAR_2100))], "with its time");
    assert_eq!(got.values().iter().map(|w| w.value).sum::<u64>(), 20_000);
    assert_eq!(total(&metrics, "src.timestamps").rejected, 1);
    assert_eq!(
        total(&metrics, "bad-times").records_in,
        1,
        "one node, its side output"
    );
}

#[test]
fn an_extracted_i64_min_is_a_rejected_record_not_a_configuration_error() {
    // The extractor gives i64::MIN for key 7: once read as "no event time",
    // which failed the job blaming its configuration.
    let events: Vec<Ev> = vec![(0, 1_000), (7, 0), (0, 2_000), (0, 15_000)];
    let extract: fn(&Ev) -> i64 = |e| if e.0 == 7 { i64::MIN } else { e.1 };
    let (counts, metrics) = count_windows(events, Watermarks::monotonic(), 1, extract);
    assert_eq!(
        counts,
        Counts::from([((0, 0, 10_000), 2), ((0, 10_000, 20_000), 1)])
    );
    assert_eq!(total(&metrics, "src.timestamps").rejected, 1);
    assert_eq!(total(&metrics, "w").late, 0);
}

#[test]
fn events_at_the_ends_of_the_time_range_land_in_well_formed_windows() {
    for p in [1, 2] {
        let events: Vec<Ev> = vec![
            (0, MIN_EVENT_TIME),
            (0, MIN_EVENT_TIME + 1),
            (1, MAX_EVENT_TIME - 1),
            (1, MAX_EVENT_TIME),
            (2, i64::MAX),
        ];
        let strategy = Watermarks::bounded(Duration::from_secs(2));
        let (counts, metrics) = count_windows(events, strategy, p, time);
        assert_eq!(counts.len(), 2, "p={p}: {counts:?}");
        let first = counts.iter().find(|(k, _)| k.0 == 0);
        assert!(
            matches!(first, Some(((0, i64::MIN, _), 2))),
            "p={p}: the first window starts at i64::MIN: {counts:?}"
        );
        let last = counts.iter().find(|(k, _)| k.0 == 1);
        assert!(
            matches!(last, Some(((1, _, i64::MAX), 2))),
            "p={p}: the last window ends at i64::MAX: {counts:?}"
        );
        // i64::MAX is the end-of-input watermark: refused, and said so.
        assert_eq!(total(&metrics, "src.timestamps").rejected, 1, "p={p}");
        assert_eq!(total(&metrics, "w").late, 0, "p={p}");
    }
}
