//! Memory per key of the windowed aggregate: how many bytes of state one
//! live key costs, against the key and accumulator themselves.
//!
//! ```text
//! cargo bench --bench state_memory                      # 1,000,000 keys
//! BROOK_BENCH_KEYS=200000 cargo bench --bench state_memory
//! ```
//!
//! The job is the logs-window query (`brook_workload::logs`): key
//! `(service, level)`, a 10 s tumbling window, count, mean, max and a
//! filtered count. A source emits one event for each of N distinct
//! services, all in one window, and then holds the window open (no
//! watermark) until the bench has measured; then it ends and the window
//! fires. (The aggregate runs in two phases: until the watermark, the
//! accumulators are in its first phase, `stats.local`.) The bench reports, per key, the resident memory the job added
//! while every key is in the window's state (the state, and little
//! else: the source's batches are gone by then), and the peak resident
//! memory of the run (the state plus the results the window emits at
//! once), from `/proc/self/status`. The workspace forbids `unsafe`, so
//! there is no counting allocator: resident pages are the measure.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use brook::prelude::*;
use brook_workload::Level;
use brook_workload::logs::{self, LogEvent, WindowStats};
use futures::StreamExt;

// Brook's binaries allocate through mimalloc; so does the bench.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A source of one event per service, all in one window, that ends only
/// when released.
#[derive(Clone)]
struct DistinctKeys {
    keys: u64,
    release: Arc<AtomicBool>,
}

impl Source<LogEvent> for DistinctKeys {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> brook::Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        ctx: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> brook::Result<BoxedSourceStream<LogEvent>> {
        let (keys, release) = (self.keys, self.release.clone());
        let (i, p) = (ctx.instance() as u64, ctx.parallelism() as u64);
        let batches = (i..keys).step_by(p as usize).collect::<Vec<_>>();
        let events = futures::stream::iter(
            batches
                .chunks(1024)
                .map(|chunk| {
                    let batch: Batch<LogEvent> = chunk
                        .iter()
                        .map(|&k| {
                            let ts = 1_700_000_000_000 + (k % 5_000) as i64;
                            Record::new(
                                ts,
                                LogEvent {
                                    ts,
                                    level: Level::Info,
                                    service: format!("svc-{k:07}"),
                                    status: 200,
                                    latency_ms: (k % 997) as f64,
                                },
                            )
                        })
                        .collect();
                    Ok(SourceEvent::Batch(batch))
                })
                .collect::<Vec<_>>(),
        );
        let hold = futures::stream::unfold(release, |release| async move {
            while !release.load(Ordering::Acquire) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            None::<(brook::Result<SourceEvent<LogEvent>>, Arc<AtomicBool>)>
        });
        Ok(events.chain(hold).boxed())
    }
}

/// Counts rows and drops them.
#[derive(Clone, Default)]
struct CountRows(Arc<AtomicUsize>);

struct CountWriter(Arc<AtomicUsize>);

impl Sink<WindowStats> for CountRows {
    type Writer = CountWriter;

    fn open(&mut self, _ctx: &SinkContext) -> brook::Result<CountWriter> {
        Ok(CountWriter(self.0.clone()))
    }
}

impl SinkWriter<WindowStats> for CountWriter {
    async fn write(&mut self, batch: Batch<WindowStats>) -> brook::Result<()> {
        self.0.fetch_add(batch.len(), Ordering::Relaxed);
        Ok(())
    }
}

/// A figure of `/proc/self/status` in bytes (`VmRSS`, `VmHWM`); 0 where
/// there is none.
fn status(field: &str) -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<usize>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

fn main() -> anyhow::Result<()> {
    let keys: u64 = std::env::var("BROOK_BENCH_KEYS")
        .ok()
        .map(|v| v.parse())
        .transpose()
        .context("BROOK_BENCH_KEYS")?
        .unwrap_or(1_000_000);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let base = status("VmRSS:");
    let release = Arc::new(AtomicBool::new(false));
    let rows = CountRows::default();
    let config = JobConfig {
        parallelism: 1,
        ..JobConfig::default()
    };
    let flow = Dataflow::with_config("state-memory", config);
    let events = flow.source(
        "keys",
        DistinctKeys {
            keys,
            release: release.clone(),
        },
    );
    logs::window_stats_timed(&events).sink("out", rows.clone());
    let job = flow.build()?;
    let metrics = job.metrics();
    let started = Instant::now();
    let live = rt.block_on(async {
        let running = job.start(CancellationToken::new())?;
        // Every event in the aggregate's state, and the batches drained.
        // A tumbling aggregate runs in two phases: with no watermark yet,
        // every key's accumulator is in the first phase (`stats.local`),
        // which hands them to the window node ahead of the watermark.
        loop {
            let n = metrics
                .snapshot()
                .node("stats.local")
                .map_or(0, |n| n.total.records_in);
            if n >= keys {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let live = status("VmRSS:").saturating_sub(base);
        release.store(true, Ordering::Release);
        running.wait().await?;
        anyhow::Ok(live)
    })?;
    let elapsed = started.elapsed();
    let peak = status("VmHWM:").saturating_sub(base);
    let written = rows.0.load(Ordering::Relaxed) as u64;
    ensure!(written == keys, "{written} rows for {keys} keys");
    // What one key and its accumulator hold: the key `(String, Level)`
    // with its 11 bytes of text, and the accumulator of count, mean (sum
    // and count), max and filtered count.
    let key = std::mem::size_of::<(String, Level)>() + "svc-0000000".len();
    let acc = std::mem::size_of::<(u64, (f64, u64), Option<f64>, u64)>();
    let per = |b: usize| b as f64 / keys as f64;
    println!(
        "Windowed aggregate, {keys} distinct keys in one window, parallelism 1 ({:.2} s)",
        elapsed.as_secs_f64()
    );
    println!("| measure | bytes per key |");
    println!("|---|---|");
    println!("| key + accumulator (their sizes) | {} |", key + acc);
    println!(
        "| resident, every key in the window's state | {:.0} |",
        per(live)
    );
    println!(
        "| peak resident of the run (state + results) | {:.0} |",
        per(peak)
    );
    Ok(())
}
