//! Latency of the logs-window job below its peak throughput: the time from
//! the moment the input holds what moves the watermark past a window's end
//! to that window's rows being
//! - **visible to SQL**: written to a live table (`LiveTableSink`, what
//!   the admin server's SQL box and `brook::sql` read), and
//! - **durable**: in a Parquet file published by a checkpoint (the
//!   exactly-once sink publishes a checkpoint's files when it completes).
//!
//! ```text
//! cargo bench --bench latency
//! BROOK_BENCH_SECONDS=30 BROOK_BENCH_PARALLELISM=2 cargo bench --bench latency
//! ```
//!
//! How: the job is the logs-window query on generated events
//! (`LogGenerator`, with one instance of the source and the steps chained
//! to it, then the windows at `BROOK_BENCH_PARALLELISM`, default 2). First it runs unthrottled over
//! 5 M events for the peak rate; then, for each setting below, for
//! `BROOK_BENCH_SECONDS` (default 20) at half that rate
//! (`LogGenerator::rate_limit`). Right after the source, a step notes the
//! wall-clock time at which the largest event time reaches each window's
//! end plus the watermark's 2 s bound: from then on, the watermark may pass
//! the window, once the timestamps node emits it. The window's rows then
//! note when they reach the live table, and a watcher thread polls the
//! Parquet directory every millisecond and notes when a file holding them
//! appears. Each row's latency is the difference; the bench prints the
//! median and the 99th percentile over all rows.
//!
//! Settings: the defaults (watermarks every 200 ms, Flink's default too; a
//! checkpoint every second), and low-latency ones (watermarks every 10 ms,
//! a checkpoint every 25 ms).

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use brook::prelude::*;
use brook::sql::LiveTableSink;
use brook_workload::LogGenerator;
use brook_workload::logs::{self, LogEvent, WINDOW, WindowStats};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The watermark's bound, as the logs-window query has it.
const BOUND: Duration = Duration::from_secs(2);

/// One setting measured.
#[derive(Debug, Clone, Copy)]
struct Setting {
    name: &'static str,
    watermark_every: Duration,
    checkpoint_every: Duration,
}

/// When each window's input was complete, and when its rows arrived.
#[derive(Default)]
struct Times {
    /// Window end → when the largest event time reached end + bound.
    complete: BTreeMap<i64, Instant>,
    /// (window end, when) of each row reaching the live table.
    visible: Vec<(i64, Instant)>,
    /// (window end, when) of each row found in a published file.
    durable: Vec<(i64, Instant)>,
}

type Shared = Arc<Mutex<Times>>;

fn lock(times: &Shared) -> std::sync::MutexGuard<'_, Times> {
    times.lock().unwrap_or_else(|e| e.into_inner())
}

/// The job: generated events at `rate` (or unthrottled) → the logs-window
/// query → a live table and Parquet files in `out`.
fn job(
    events: u64,
    rate: Option<u64>,
    parallelism: usize,
    setting: Setting,
    dirs: Option<(&Path, &Path)>,
    times: &Shared,
) -> anyhow::Result<Job> {
    let config = JobConfig {
        parallelism,
        ..JobConfig::default()
    };
    let mut flow = Dataflow::with_config("latency", config);
    let mut generator = LogGenerator::new(events, 1);
    if let Some(rate) = rate {
        generator = generator.rate_limit(rate);
    }
    let window = WINDOW.as_millis() as i64;
    let bound = BOUND.as_millis() as i64;
    let noted = times.clone();
    let mut next: Option<i64> = None;
    let events = flow
        .source("logs", generator)
        .parallelism(1)
        .map("event", LogEvent::from)
        .parallelism(1)
        .inspect("complete", move |e: &LogEvent| {
            // The first window end whose input is not complete yet.
            let end = *next.get_or_insert(e.ts - e.ts.rem_euclid(window) + window);
            if e.ts >= end + bound {
                let now = Instant::now();
                let mut t = lock(&noted);
                let mut end = end;
                while e.ts >= end + bound {
                    t.complete.insert(end, now);
                    end += window;
                }
                next = Some(end);
            }
        })
        .parallelism(1)
        .assign_timestamps(
            |e| e.ts,
            Watermarks::bounded(BOUND).with_emit_interval(setting.watermark_every),
        )
        .parallelism(1);
    let rows = logs::window_stats_timed(&events);
    if let Some((out, checkpoints)) = dirs {
        flow.set_checkpoints(CheckpointConfig::new(checkpoints).interval(setting.checkpoint_every));
        let seen = times.clone();
        let live =
            LiveTableSink::new(|r: &WindowStats| (r.window_start, r.service.clone(), r.level))?;
        rows.inspect("visible", move |r: &WindowStats| {
            lock(&seen).visible.push((r.window_end, Instant::now()));
        })
        .sink("live", live);
        rows.sink("parquet", ParquetSink::<WindowStats>::new(out));
    } else {
        rows.sink("count", CollectSink::new());
    }
    Ok(flow.build()?)
}

/// Polls `out` for published Parquet files until `stop`, noting when each
/// file's rows were found.
fn watch(out: PathBuf, times: Shared, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    use datafusion::arrow::array::Int64Array;
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut seen: HashSet<PathBuf> = HashSet::new();
    loop {
        let last = stop.load(Ordering::Acquire);
        if let Ok(files) = brook_workload::oracle::output_files(&out) {
            let new: Vec<PathBuf> = files.into_iter().filter(|f| !seen.contains(f)).collect();
            for file in new {
                let now = Instant::now();
                let open =
                    std::fs::File::open(&file).with_context(|| file.display().to_string())?;
                let mut ends = Vec::new();
                for batch in ParquetRecordBatchReaderBuilder::try_new(open)?.build()? {
                    let batch = batch?;
                    let column = batch
                        .column_by_name("window_end")
                        .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
                        .context("a window_end column")?;
                    ends.extend(column.values().iter().map(|&end| (end, now)));
                }
                lock(&times).durable.extend(ends);
                seen.insert(file);
            }
        }
        if last {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Median and 99th percentile, in ms, of each row's latency.
fn percentiles(rows: &[(i64, Instant)], complete: &BTreeMap<i64, Instant>) -> (f64, f64, usize) {
    let mut ms: Vec<f64> = rows
        .iter()
        .filter_map(|(end, at)| {
            let from = complete.get(end)?;
            Some(at.saturating_duration_since(*from).as_secs_f64() * 1e3)
        })
        .collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| {
        ms.get(((ms.len() as f64 - 1.0) * q).round() as usize)
            .copied()
    };
    (
        at(0.5).unwrap_or(f64::NAN),
        at(0.99).unwrap_or(f64::NAN),
        ms.len(),
    )
}

fn env(name: &str, default: u64) -> anyhow::Result<u64> {
    match std::env::var(name) {
        Ok(v) => v.parse().with_context(|| format!("{name}: not a number")),
        Err(_) => Ok(default),
    }
}

fn main() -> anyhow::Result<()> {
    let seconds = env("BROOK_BENCH_SECONDS", 20)?;
    let parallelism = env("BROOK_BENCH_PARALLELISM", 2)? as usize;
    ensure!(
        parallelism >= 1,
        "BROOK_BENCH_PARALLELISM must be at least 1"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(parallelism)
        .enable_all()
        .build()?;
    let settings = [
        Setting {
            name: "defaults",
            watermark_every: Duration::from_millis(200),
            checkpoint_every: Duration::from_secs(1),
        },
        Setting {
            name: "low latency",
            watermark_every: Duration::from_millis(10),
            checkpoint_every: Duration::from_millis(25),
        },
    ];

    // The peak: unthrottled, no checkpoints, rows counted.
    let peak_events = 5_000_000;
    let probe = job(
        peak_events,
        None,
        parallelism,
        settings[0],
        None,
        &Shared::default(),
    )?;
    let t0 = Instant::now();
    runtime.block_on(probe.run(CancellationToken::new()))?;
    let peak = peak_events as f64 / t0.elapsed().as_secs_f64();
    let rate = (peak / 2.0) as u64;
    println!(
        "logs-window on generated events, windows at parallelism {parallelism}: peak {:.2} M \
         events/s; measuring at half, {:.2} M events/s, for {seconds} s",
        peak / 1e6,
        rate as f64 / 1e6
    );
    println!(
        "| setting | watermarks every | checkpoint every | rows | visible p50 | visible p99 | \
         durable p50 | durable p99 |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for setting in settings {
        let out = tempfile::tempdir()?;
        let checkpoints = tempfile::tempdir()?;
        let times = Shared::default();
        let job = job(
            rate * seconds,
            Some(rate),
            parallelism,
            setting,
            Some((out.path(), checkpoints.path())),
            &times,
        )?;
        let stop = Arc::new(AtomicBool::new(false));
        let watcher = {
            let (out, times, stop) = (out.path().to_path_buf(), times.clone(), stop.clone());
            std::thread::spawn(move || watch(out, times, stop))
        };
        runtime.block_on(job.run(CancellationToken::new()))?;
        stop.store(true, Ordering::Release);
        watcher
            .join()
            .map_err(|_| anyhow::anyhow!("the watcher panicked"))??;
        let t = lock(&times);
        // The last window's input is completed by the end of input, not by
        // an event: leave it out.
        let (v50, v99, n) = percentiles(&t.visible, &t.complete);
        let (d50, d99, _) = percentiles(&t.durable, &t.complete);
        println!(
            "| {} | {} ms | {} ms | {n} | {v50:.1} ms | {v99:.1} ms | {d50:.1} ms | {d99:.1} ms |",
            setting.name,
            setting.watermark_every.as_millis(),
            setting.checkpoint_every.as_millis(),
        );
    }
    Ok(())
}
