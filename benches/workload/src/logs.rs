//! The log-analysis workload ("logs-window"): the event type, the windowed
//! query, and a sequential computation of the same answer.
//!
//! Events are JSON lines as `benches/workload/README.md` describes them:
//!
//! ```text
//! {"ts":1700000000000,"level":"INFO","service":"svc-07","host":"host-123","status":200,"latency_ms":12.345,"message":"GET /api/v1/orders/42 ok"}
//! ```
//!
//! The query drops `DEBUG` events, keys by `(service, level)`, and per
//! 10-second tumbling event-time window (2 s bounded out-of-orderness)
//! emits the count, mean and max latency, and the number of 5xx responses:
//!
//! ```sql
//! SELECT ts // 10000 * 10000 AS window_start, ts // 10000 * 10000 + 10000 AS window_end,
//!        service, level, count(*) AS count, avg(latency_ms) AS avg_latency_ms,
//!        max(latency_ms) AS max_latency_ms, count(*) FILTER (WHERE status >= 500) AS count_5xx
//! FROM events WHERE level <> 'DEBUG' GROUP BY 1, 2, 3, 4;
//! ```

use std::collections::HashMap;
use std::time::Duration;

use crate::generator::GeneratedLog;
use brook_core::{Stream, Watermarks};
use brook_operators::StreamExt;
use brook_operators::window::{AggregateExt, Avg, Count, KeyedWindowExt, Max, Tumbling};
use serde::{Deserialize, Serialize};

/// The window size of the query.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The watermark's bound on out-of-orderness.
pub const MAX_OUT_OF_ORDERNESS: Duration = Duration::from_secs(2);

/// A log level: `DEBUG`, `INFO`, `WARN` or `ERROR` (the generator's type).
pub use crate::generator::Level;

/// One log event: the fields the query reads. Other fields of a line
/// (`host`, `message`) are skipped while parsing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEvent {
    /// Event time, milliseconds since the epoch.
    pub ts: i64,
    /// Severity.
    pub level: Level,
    /// The service that logged it.
    pub service: String,
    /// HTTP status.
    pub status: u16,
    /// Request latency in milliseconds.
    pub latency_ms: f64,
}

impl From<GeneratedLog> for LogEvent {
    /// The fields the query reads of a generated event.
    fn from(e: GeneratedLog) -> Self {
        LogEvent {
            ts: e.ts,
            level: e.level,
            service: e.service,
            status: e.status,
            latency_ms: e.latency_ms,
        }
    }
}

/// One result row: a window of one `(service, level)`, in the column order
/// of the workload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Window start, epoch milliseconds (inclusive).
    pub window_start: i64,
    /// Window end, epoch milliseconds (exclusive).
    pub window_end: i64,
    /// The service.
    pub service: String,
    /// The level.
    pub level: Level,
    /// Events in the window.
    pub count: u64,
    /// Mean latency.
    pub avg_latency_ms: f64,
    /// Largest latency.
    pub max_latency_ms: f64,
    /// Events with status >= 500.
    pub count_5xx: u64,
}

/// The logs-window query on a stream of events: timestamps and
/// watermarks (2 s bounded out-of-orderness, one generator per instance),
/// then [`window_stats_timed`]. Nodes: `<input>.timestamps`, then those of
/// [`window_stats_timed`].
pub fn window_stats(events: &Stream<LogEvent>) -> Stream<WindowStats> {
    window_stats_timed(
        &events.assign_timestamps(|e| e.ts, Watermarks::bounded(MAX_OUT_OF_ORDERNESS)),
    )
}

/// The logs-window query on events that already carry event times and
/// watermarks (a Kafka source makes them per partition): the `DEBUG`
/// filter, the key, the window and the aggregates. Nodes: `drop-debug`,
/// `stats`, `rows`.
pub fn window_stats_timed(events: &Stream<LogEvent>) -> Stream<WindowStats> {
    let stats = (
        Count,
        Avg::of(|e: &LogEvent| e.latency_ms),
        Max::of(|e: &LogEvent| e.latency_ms),
        Count.filter(|e: &LogEvent| e.status >= 500),
    );
    events
        .filter("drop-debug", |e| e.level != Level::Debug)
        .key_by(|e| (e.service.clone(), e.level))
        .window(Tumbling::of(WINDOW))
        .aggregate("stats", stats)
        .map("rows", |w| {
            let ((service, level), (count, avg, max, count_5xx)) = (w.key, w.value);
            WindowStats {
                window_start: w.window.start,
                window_end: w.window.end,
                service,
                level,
                count,
                avg_latency_ms: avg.unwrap_or(f64::NAN),
                max_latency_ms: max.unwrap_or(f64::NAN),
                count_5xx,
            }
        })
}

/// The same answer computed sequentially over all events at once: the
/// reference the job is checked against, and the hand-written baseline of
/// the benchmark. Rows are sorted by window, service and level.
pub fn window_stats_batch<'a>(events: impl IntoIterator<Item = &'a LogEvent>) -> Vec<WindowStats> {
    let size = WINDOW.as_millis() as i64;
    // (count, latency sum, latency max, 5xx count) per (window start, service, level)
    type Group = (u64, f64, f64, u64);
    let mut groups: HashMap<(i64, &str, Level), Group> = HashMap::new();
    for e in events {
        if e.level == Level::Debug {
            continue;
        }
        let start = e.ts - e.ts.rem_euclid(size);
        let g = groups
            .entry((start, e.service.as_str(), e.level))
            .or_insert((0, 0.0, f64::NEG_INFINITY, 0));
        g.0 += 1;
        g.1 += e.latency_ms;
        g.2 = g.2.max(e.latency_ms);
        g.3 += u64::from(e.status >= 500);
    }
    let mut rows: Vec<WindowStats> = groups
        .into_iter()
        .map(
            |((start, service, level), (n, sum, max, n5xx))| WindowStats {
                window_start: start,
                window_end: start + size,
                service: service.to_string(),
                level,
                count: n,
                avg_latency_ms: sum / n as f64,
                max_latency_ms: max,
                count_5xx: n5xx,
            },
        )
        .collect();
    rows.sort_by(|a, b| {
        (a.window_start, &a.service, a.level).cmp(&(b.window_start, &b.service, b.level))
    });
    rows
}
