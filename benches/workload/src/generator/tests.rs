//! Tests of the log generator: determinism, the same events at every
//! parallelism, the workload's mix, bounded disorder and the JSON shape.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use brook_core::{Batch, Dataflow, Error, SourceEvent, Watermarks, open_instance};
use brook_operators::StreamExt;
use brook_operators::window::{Count, KeyedWindowExt, Tumbling};
use futures::TryStreamExt;

use super::source::Share;
use super::{CHUNK_EVENTS, DEFAULT_START_MS, GeneratedLog, Level, LogGenerator};
use brook_connectors::CollectSink;

/// Events in the statistical tests: a little over 3 chunks, so that
/// parallelism 3 gives one instance two chunks and another a partial one.
const N: u64 = 200_000;

/// Each instance's output, in order, as `open` makes it outside a job.
async fn instances(generator: &mut LogGenerator, p: usize) -> Vec<Vec<GeneratedLog>> {
    let mut out = Vec::new();
    for k in 0..p {
        let stream = open_instance(generator, "logs", k, p).expect("open");
        let events: Vec<SourceEvent<GeneratedLog>> = stream.try_collect().await.expect("read");
        let mut values = Vec::new();
        for batch in events
            .into_iter()
            .map(|e| e.into_batch().expect("only batches"))
        {
            for r in batch {
                assert_eq!(r.timestamp, r.value.ts, "records carry ts as event time");
                values.push(r.value);
            }
        }
        out.push(values);
    }
    out
}

fn sorted_lines<'a>(events: impl IntoIterator<Item = &'a GeneratedLog>) -> Vec<String> {
    let mut lines: Vec<String> = events.into_iter().map(GeneratedLog::to_json_line).collect();
    lines.sort_unstable();
    lines
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<LogGenerator>();
    send_sync::<GeneratedLog>();
    send_sync::<super::GeneratedLogs>();
}

#[test]
fn the_same_seed_gives_the_same_events_and_another_seed_others() {
    let a: Vec<_> = LogGenerator::new(5_000, 1).iter().collect();
    let b: Vec<_> = LogGenerator::new(5_000, 1).iter().collect();
    assert_eq!(a, b);
    let c: Vec<_> = LogGenerator::new(5_000, 2).iter().collect();
    let same = a.iter().zip(&c).filter(|(x, y)| x == y).count();
    assert!(same < 50, "{same} of 5000 events equal under another seed");
    // Random access agrees with the sequence, and the count does not
    // change the events.
    let long = LogGenerator::new(1_000_000, 1);
    assert_eq!(long.event(4_321), a[4_321]);
    assert_eq!(long.iter().nth(4_999).as_ref(), a.last());
}

#[test]
fn start_ms_shifts_event_time_only() {
    let a = LogGenerator::new(1_000, 9);
    let b = LogGenerator::new(1_000, 9).start_ms(0);
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!(x.ts - DEFAULT_START_MS, y.ts);
        assert_eq!(GeneratedLog { ts: 0, ..x }, GeneratedLog { ts: 0, ..y });
    }
}

#[test]
fn shares_cover_every_index_once() {
    for total in [0, 1, CHUNK_EVENTS - 1, CHUNK_EVENTS, 3 * CHUNK_EVENTS + 7] {
        for p in 1..=4 {
            let mut seen = Vec::new();
            for k in 0..p {
                let mut share = Share::new(total, k, p);
                let mut last = None;
                while let Some((_, r)) = share.take(1000) {
                    assert!(!r.is_empty() && r.end - r.start <= 1000);
                    assert!(last.is_none_or(|l| l <= r.start), "in index order");
                    last = Some(r.end);
                    // Whole chunks, round-robin.
                    assert_eq!((r.start / CHUNK_EVENTS) % p as u64, k as u64);
                    seen.extend(r);
                }
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..total).collect::<Vec<_>>(), "{total} at {p}");
        }
    }
}

#[tokio::test]
async fn instances_make_the_same_multiset_at_any_parallelism_in_bounded_disorder() {
    let mut generator = LogGenerator::new(N, 11).batch_size(777);
    let want = sorted_lines(&generator.iter().collect::<Vec<_>>());
    for p in 1..=3 {
        let shares = instances(&mut generator, p).await;
        for (k, share) in shares.iter().enumerate() {
            let mut max = i64::MIN;
            for e in share {
                assert!(
                    e.ts > max.saturating_sub(2000),
                    "instance {k} of {p}: {} after {max}",
                    e.ts
                );
                max = max.max(e.ts);
            }
        }
        assert_eq!(
            sorted_lines(shares.iter().flatten()),
            want,
            "parallelism {p}"
        );
    }
}

#[tokio::test]
async fn a_zero_batch_size_is_a_config_error() {
    let mut generator = LogGenerator::new(10, 1).batch_size(0);
    let r = open_instance(&mut generator, "logs", 0, 1);
    assert!(matches!(r, Err(Error::Config(_))));
}

#[tokio::test]
async fn batches_hold_at_most_the_batch_size() {
    let mut generator = LogGenerator::new(3_000, 1).batch_size(256);
    let stream = open_instance(&mut generator, "logs", 0, 1).expect("open");
    let events: Vec<SourceEvent<GeneratedLog>> = stream.try_collect().await.expect("read");
    let sizes: Vec<usize> = events
        .into_iter()
        .filter_map(SourceEvent::into_batch)
        .map(|b: Batch<GeneratedLog>| b.len())
        .collect();
    assert!(sizes.iter().all(|&n| n > 0 && n <= 256));
    assert_eq!(sizes.iter().sum::<usize>(), 3_000);
}

/// Runs the generator through a job at parallelism `p`; returns what the
/// sink got and the source's `records_out`.
async fn run_job(events: u64, seed: u64, p: usize) -> (Vec<GeneratedLog>, u64) {
    let mut flow = Dataflow::new("generate");
    flow.set_parallelism(p);
    let sink = CollectSink::new();
    let got = sink.handle();
    flow.source("logs", LogGenerator::new(events, seed))
        .sink("collect", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    job.run(Default::default()).await.expect("job");
    let out = metrics
        .snapshot()
        .node("logs")
        .map_or(0, |n| n.total.records_out);
    (got.values(), out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_at_parallelism_1_2_and_3_get_the_same_events() {
    let want = sorted_lines(&LogGenerator::new(N, 5).iter().collect::<Vec<_>>());
    for p in 1..=3 {
        let (got, records_out) = run_job(N, 5, p).await;
        assert_eq!(records_out, N, "progress is records_out, at {p}");
        assert_eq!(sorted_lines(&got), want, "parallelism {p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_event_is_late_for_a_2s_watermark_at_parallelism_3() {
    let generator = LogGenerator::new(N, 3);
    let mut want: BTreeMap<(i64, String, Level), u64> = BTreeMap::new();
    for e in generator.iter() {
        *want
            .entry((e.ts.div_euclid(10_000) * 10_000, e.service, e.level))
            .or_default() += 1;
    }
    let mut flow = Dataflow::new("windows");
    flow.set_parallelism(3);
    let sink = CollectSink::new();
    let got = sink.handle();
    flow.source("logs", generator)
        .assign_timestamps(|e| e.ts, Watermarks::bounded(Duration::from_secs(2)))
        .key_by(|e| (e.service.clone(), e.level))
        .window(Tumbling::of(Duration::from_secs(10)))
        .aggregate("count", Count)
        .sink("collect", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    job.run(Default::default()).await.expect("job");
    let late = metrics.snapshot().node("count").map_or(0, |n| n.total.late);
    assert_eq!(late, 0);
    let got: BTreeMap<_, _> = got
        .values()
        .into_iter()
        .map(|w| ((w.window.start, w.key.0, w.key.1), w.value))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_mix_is_the_workloads() {
    let generator = LogGenerator::new(N, 1);
    let n = N as f64;
    let (mut levels, mut statuses) = (HashMap::new(), HashMap::new());
    let (mut services, mut hosts, mut messages) = (HashSet::new(), HashSet::new(), HashSet::new());
    let (mut delayed, mut fivexx) = (0u64, 0u64);
    for (i, e) in generator.iter().enumerate() {
        *levels.entry(e.level).or_insert(0u64) += 1;
        *statuses.entry(e.status).or_insert(0u64) += 1;
        let on_time = DEFAULT_START_MS + i as i64 / 100;
        assert!(
            e.ts <= on_time && e.ts > on_time - 2000,
            "event {i}: {}",
            e.ts
        );
        delayed += u64::from(e.ts < on_time);
        fivexx += u64::from(e.status >= 500);
        assert!(
            e.latency_ms > 0.0 && e.latency_ms < 3001.0,
            "{}",
            e.latency_ms
        );
        assert!(e.service.starts_with("svc-") && e.service.len() == 6);
        assert!(e.host.starts_with("host-") && e.host.len() == 8);
        services.insert(e.service);
        hosts.insert(e.host);
        messages.insert(e.message);
    }
    let share = |c: u64| c as f64 / n;
    for (level, want) in [
        (Level::Debug, 0.40),
        (Level::Info, 0.45),
        (Level::Warn, 0.10),
        (Level::Error, 0.05),
    ] {
        let got = share(levels[&level]);
        assert!((got - want).abs() < 0.01, "{level}: {got}");
    }
    // A delay of 0 ms looks on time: 1 in 2000 delayed events.
    assert!(
        (share(delayed) - 0.25).abs() < 0.02,
        "delayed {}",
        share(delayed)
    );
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert!(share(statuses[&200]) > 0.85, "{statuses:?}");
    for status in [404, 500, 503] {
        assert!(share(statuses[&status]) > 0.005, "{statuses:?}");
    }
    // WARN's 5% 503s and ERROR's 90% 5xx: 0.5% + 4.5%.
    assert!(
        (share(fivexx) - 0.05).abs() < 0.005,
        "5xx {}",
        share(fivexx)
    );
    assert_eq!(services.len(), 50);
    assert_eq!(hosts.len(), 200);
    assert!(messages.len() > 400, "{} messages", messages.len());
    for m in &messages {
        assert!((20..=60).contains(&m.chars().count()), "{m:?}");
        assert!(
            m.bytes()
                .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
            "needs escaping: {m:?}"
        );
    }
}

#[test]
fn event_time_advances_1_ms_per_100_events() {
    let generator = LogGenerator::new(N, 4).start_ms(0);
    let mut max = i64::MIN;
    for (i, e) in generator.iter().enumerate() {
        max = max.max(e.ts);
        // The largest ts so far is the on-time ts of the latest event, or
        // of one at most a few events before it.
        assert!(
            max <= i as i64 / 100 && max >= (i as i64 - 20) / 100,
            "{i}: {max}"
        );
    }
    assert_eq!(max, (N as i64 - 1) / 100);
}

/// Lines from `gen_logs.py --events 3000 --seed 7` (tests/data/logs_3k.jsonl).
const PYTHON_LINES: [&str; 3] = [
    r#"{"ts":1699999998680,"level":"DEBUG","service":"svc-26","host":"host-112","status":200,"latency_ms":14.108,"message":"PATCH /api/v1/users/78838 upstream returned error"}"#,
    r#"{"ts":1699999999639,"level":"WARN","service":"svc-43","host":"host-050","status":200,"latency_ms":335.520,"message":"POST /api/v2/sessions/13107 connection reset"}"#,
    r#"{"ts":1700000000000,"level":"DEBUG","service":"svc-11","host":"host-114","status":200,"latency_ms":10.330,"message":"PATCH /api/v3/tokens/25959 timeout talking to db"}"#,
];

#[test]
fn python_lines_parse_and_print_back_byte_for_byte() {
    for line in PYTHON_LINES {
        let e: GeneratedLog = serde_json::from_str(line).expect("parse");
        assert_eq!(e.to_json_line(), line);
    }
}

#[test]
fn json_lines_have_the_workloads_shape() {
    let keys = [
        "ts",
        "level",
        "service",
        "host",
        "status",
        "latency_ms",
        "message",
    ];
    let mut text = String::new();
    for e in LogGenerator::new(20_000, 8).iter() {
        let line = e.to_json_line();
        text.clear();
        e.write_json_line(&mut text);
        assert_eq!(text, format!("{line}\n"));
        // Keys in the workload's order, compact.
        let mut at = 0;
        for key in keys {
            let pos = line[at..]
                .find(&format!("\"{key}\":"))
                .unwrap_or_else(|| panic!("{key} after byte {at} in {line}"));
            at += pos + key.len() + 3;
        }
        let v: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        let obj = v.as_object().expect("object");
        assert_eq!(obj.len(), 7);
        assert!(obj["ts"].is_i64() && obj["status"].is_u64());
        assert!(["DEBUG", "INFO", "WARN", "ERROR"].contains(&obj["level"].as_str().expect("str")));
        // Exactly 3 decimals, as gen_logs.py's "{:.3f}".
        let latency = line
            .split("\"latency_ms\":")
            .nth(1)
            .and_then(|s| s.split(',').next())
            .expect("latency");
        let (_, decimals) = latency.split_once('.').expect("a decimal point");
        assert_eq!(decimals.len(), 3, "{latency}");
        assert!(decimals.bytes().all(|b| b.is_ascii_digit()));
        // And it parses back into the same event.
        let back: GeneratedLog = serde_json::from_str(&line).expect("parse");
        assert_eq!(back, e);
    }
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_spaces_the_batches_by_their_share_of_the_rate() {
    use futures::StreamExt as _;
    // 10,000 events per second over 2 instances, batches of 500: each
    // instance makes a batch every 100 ms (here instance 0 has the one
    // chunk, all 10 batches).
    let mut generator = LogGenerator::new(5_000, 3)
        .batch_size(500)
        .rate_limit(10_000);
    let mut stream = open_instance(&mut generator, "logs", 0, 2).expect("open");
    let start = tokio::time::Instant::now();
    let mut at = Vec::new();
    while let Some(event) = stream.next().await {
        event.expect("batch");
        at.push((tokio::time::Instant::now() - start).as_millis());
    }
    assert_eq!(at, [0, 100, 200, 300, 400, 500, 600, 700, 800, 900]);
}
