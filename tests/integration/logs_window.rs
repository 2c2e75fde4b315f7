//! The logs-window query as a job, checked against exact answers: the
//! sequential reference in `brook::logs`, and the answer pyarrow computed
//! for the fixture (`tests/data/README.md`), with no Python at test time.

use std::path::PathBuf;

use brook::prelude::*;
use brook_workload::logs::{self, Level, LogEvent, WindowStats};

use crate::support::{block_on, config};

pub(crate) fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn run_job(parallelism: usize, chaining: bool) -> Vec<WindowStats> {
    let mut cfg = config(parallelism);
    cfg.chaining = chaining;
    let flow = Dataflow::with_config("logs-window", cfg);
    let events = flow.source(
        "logs",
        JsonLinesSource::<LogEvent>::new(fixture("logs_3k.jsonl")),
    );
    let sink = CollectSink::new();
    let rows = sink.handle();
    logs::window_stats(&events).sink("out", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let snapshot = metrics.snapshot();
    assert_eq!(
        snapshot.node("stats").map(|n| n.total.late),
        Some(0),
        "no event is late with a 2 s watermark"
    );
    sort(rows.values())
}

pub(crate) fn sort(mut rows: Vec<WindowStats>) -> Vec<WindowStats> {
    rows.sort_by(|a, b| {
        (a.window_start, &a.service, a.level).cmp(&(b.window_start, &b.service, b.level))
    });
    rows
}

/// Counts equal; floats equal up to summation order.
pub(crate) fn assert_same(got: &[WindowStats], want: &[WindowStats], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: row count");
    for (g, w) in got.iter().zip(want) {
        let key = (g.window_start, &g.service, g.level);
        assert_eq!(key, (w.window_start, &w.service, w.level), "{what}");
        assert_eq!(g.window_end, w.window_end, "{what} {key:?}");
        assert_eq!(g.count, w.count, "{what} {key:?}");
        assert_eq!(g.count_5xx, w.count_5xx, "{what} {key:?}");
        assert_eq!(g.max_latency_ms, w.max_latency_ms, "{what} {key:?}");
        let rel = (g.avg_latency_ms - w.avg_latency_ms).abs() / w.avg_latency_ms.abs().max(1.0);
        assert!(
            rel < 1e-12,
            "{what} {key:?}: {} vs {}",
            g.avg_latency_ms,
            w.avg_latency_ms
        );
    }
}

/// The exact answer pyarrow computed for the fixture.
pub(crate) fn expected_from_pyarrow() -> Vec<WindowStats> {
    let text = std::fs::read_to_string(fixture("logs_3k.expected.csv")).expect("expected csv");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("window_start,window_end,service,level,count,avg_latency_ms,max_latency_ms,count_5xx")
    );
    let rows = lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 8, "{line}");
            let level = match f[3] {
                "INFO" => Level::Info,
                "WARN" => Level::Warn,
                "ERROR" => Level::Error,
                other => panic!("unexpected level {other}"),
            };
            WindowStats {
                window_start: f[0].parse().expect("start"),
                window_end: f[1].parse().expect("end"),
                service: f[2].to_string(),
                level,
                count: f[4].parse().expect("count"),
                avg_latency_ms: f[5].parse().expect("avg"),
                max_latency_ms: f[6].parse().expect("max"),
                count_5xx: f[7].parse().expect("count_5xx"),
            }
        })
        .collect();
    sort(rows)
}

fn events() -> Vec<LogEvent> {
    std::fs::read_to_string(fixture("logs_3k.jsonl"))
        .expect("fixture")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect()
}

#[test]
fn the_sequential_reference_matches_pyarrow_exactly() {
    let reference = logs::window_stats_batch(&events());
    assert_eq!(reference.len(), 259);
    assert_same(&reference, &expected_from_pyarrow(), "reference vs pyarrow");
}

#[test]
fn the_job_gives_the_exact_answer_at_every_parallelism() {
    let want = expected_from_pyarrow();
    for p in [1, 2, 4] {
        for chaining in [true, false] {
            let got = run_job(p, chaining);
            assert_same(
                &got,
                &want,
                &format!("parallelism {p}, chaining {chaining}"),
            );
        }
    }
}

#[test]
fn the_job_writes_csv_the_checker_reads() {
    let dir = tempfile::tempdir().expect("tempdir");
    let flow = Dataflow::with_config("logs-window-csv", config(2));
    let events = flow.source(
        "logs",
        JsonLinesSource::<LogEvent>::new(fixture("logs_3k.jsonl")),
    );
    logs::window_stats(&events).sink("csv", CsvSink::new(dir.path()));
    block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("job");
    let mut lines = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("out dir") {
        let path = entry.expect("entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name == brook::connectors::output::LOCK_FILE {
            continue;
        }
        assert!(!name.starts_with('.'), "a hidden file was left: {name}");
        let text = std::fs::read_to_string(&path).expect("part");
        let mut part = text.lines();
        assert_eq!(
            part.next(),
            Some(
                "window_start,window_end,service,level,count,avg_latency_ms,max_latency_ms,count_5xx"
            ),
            "header of {name}"
        );
        lines.extend(part.map(str::to_string));
    }
    assert_eq!(lines.len(), 259);
}
