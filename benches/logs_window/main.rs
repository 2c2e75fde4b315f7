//! End-to-end bench of the "logs-window" workload (`benches/workload/README.md`):
//! Brook against a hand-written loop, over the same JSON-lines file.
//!
//! ```text
//! cargo bench --bench logs_window                 # makes target/bench-logs-2m.jsonl once
//! cargo bench --bench logs_window -- /tmp/logs.jsonl
//! BROOK_BENCH_LOGS=/tmp/logs.jsonl BROOK_BENCH_ROUNDS=9 cargo bench --bench logs_window
//! ```
//!
//! Variants, interleaved over the rounds (the order rotates each round):
//! - `loop`: [`hand_loop`], one thread: read the file, parse each line with
//!   serde_json (borrowing `service`), drop `DEBUG`, fold in an Fx hash map;
//! - `brook p=1`: `JsonLinesSource::<LogEvent>` → `logs::window_stats` →
//!   `ParquetSink` (two-phase, replacing the last run's files on success)
//!   at parallelism 1, on a current-thread tokio runtime (the file source
//!   reads on tokio's blocking pool, so it may use a little more than one
//!   core: see the CPU column). The path `log_analysis` runs, on the
//!   runtime it runs on (`JobArgs::runtime`): its printed rate and this
//!   bench's measure the same thing;
//! - `brook p=2`: the same at parallelism 2, on two worker threads;
//! - `brook p=1 ck`, `brook p=2 ck` (only when asked for, as `p1ck,p2ck`):
//!   the same taking a checkpoint every `BROOK_BENCH_CHECKPOINT_MS` (100 by
//!   default) into a temporary directory; the bench prints how many
//!   completed, their mean and longest duration and their size.
//!
//! Every run's answer, read back from its Parquet files after the timing,
//! is checked against the loop's (counts exact, floats within 1e-9
//! relative), and Brook's against its own metrics (every event
//! read, none late); a mismatch fails the bench.
//!
//! The input is the file in env `BROOK_BENCH_LOGS` or the first argument;
//! else `target/bench-logs-2m-rust.jsonl`, made once by the workload's
//! `LogGenerator` (seed 1), as `brook-workload gen-logs` writes it. Env:
//! `BROOK_BENCH_ROUNDS` (default 5), `BROOK_BENCH_EVENTS` (events of a made
//! file, default 2,000,000), `BROOK_BENCH_VARIANTS` (comma-separated subset
//! of `loop,p1,p2,p1ck,p2ck`; default `loop,p1,p2`; `p1` profiles Brook
//! alone). With a checkpointed variant, the bench also times a restore: a
//! job stopped half-way after a checkpoint, then built again from it, from
//! `build()` to the first record reaching the window.
//!
//! The issue's goal: `brook p=1` ≥ 0.8× the loop, `brook p=2` ≥ 1.5×.

mod hand_loop;
mod input;

use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use brook::core::CheckpointStats;
use brook::prelude::*;
use brook_workload::logs::{self, LogEvent, WindowStats};
use tokio::runtime::Runtime;

// Both sides allocate through the same allocator; Brook's binaries use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Variant {
    Loop,
    Brook(usize),
    /// Brook at parallelism `p` taking checkpoints.
    Checkpointed(usize),
}

impl Variant {
    fn label(self) -> String {
        match self {
            Variant::Loop => "hand loop".into(),
            Variant::Brook(p) => format!("brook p={p}"),
            Variant::Checkpointed(p) => format!("brook p={p} ck"),
        }
    }

    fn id(self) -> String {
        match self {
            Variant::Loop => "loop".into(),
            Variant::Brook(p) => format!("p{p}"),
            Variant::Checkpointed(p) => format!("p{p}ck"),
        }
    }
}

/// One timed run.
#[derive(Debug, Clone, Copy)]
struct Run {
    /// Wall-clock seconds.
    secs: f64,
    /// CPU seconds of the whole process (all threads).
    cpu: f64,
}

fn main() -> anyhow::Result<()> {
    let input = input::locate()?;
    let rounds: usize = match std::env::var("BROOK_BENCH_ROUNDS") {
        Ok(v) => v.parse().context("BROOK_BENCH_ROUNDS: not a number")?,
        Err(_) => 5,
    };
    ensure!(rounds > 0, "BROOK_BENCH_ROUNDS must be at least 1");
    let checkpoint_ms: u64 = match std::env::var("BROOK_BENCH_CHECKPOINT_MS") {
        Ok(v) => v
            .parse()
            .context("BROOK_BENCH_CHECKPOINT_MS: not a number")?,
        Err(_) => 100,
    };
    let all = [
        Variant::Loop,
        Variant::Brook(1),
        Variant::Brook(2),
        Variant::Checkpointed(1),
        Variant::Checkpointed(2),
    ];
    let default = [Variant::Loop, Variant::Brook(1), Variant::Brook(2)];
    let variants: Vec<Variant> = match std::env::var("BROOK_BENCH_VARIANTS") {
        Ok(list) => {
            let ids: Vec<&str> = list.split(',').map(str::trim).collect();
            all.into_iter()
                .filter(|v| ids.contains(&v.id().as_str()))
                .collect()
        }
        Err(_) => default.to_vec(),
    };
    ensure!(
        !variants.is_empty(),
        "BROOK_BENCH_VARIANTS names none of loop,p1,p2,p1ck,p2ck"
    );
    let checkpoints = tempfile::tempdir()?;
    let ck = |p: usize| Checkpoints {
        dir: checkpoints.path().join(format!("p{p}")),
        interval: std::time::Duration::from_millis(checkpoint_ms),
    };
    let bytes = std::fs::metadata(&input.path)?.len();
    // Each variant's Parquet output, replaced by each of its runs.
    let outputs = tempfile::tempdir()?;
    let out = |v: Variant| outputs.path().join(v.id());

    // The reference answer; this run also warms the page cache.
    let reference = hand_loop::run(&input.path)?;
    let events = reference.events;
    println!(
        "logs-window over {} ({}): {events} events, {:.1} MB, {} result rows; {rounds} rounds",
        input.path.display(),
        input.origin,
        bytes as f64 / 1e6,
        reference.rows.len(),
    );
    let one_core = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let two_cores = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let runtime = |p: usize| if p == 1 { &one_core } else { &two_cores };
    let mut stats: Vec<Vec<CheckpointStats>> = vec![Vec::new(); variants.len()];
    for &v in &variants {
        match v {
            Variant::Brook(p) => {
                let job = brook_job(&input.path, p, None, &out(v))?;
                println!("plan at p={p}:\n{}", job.describe().trim_end());
                // It holds the output directory's lock until dropped.
                drop(job);
                // A warm-up run, checked like the others.
                run_brook(&input.path, p, None, &out(v), runtime(p), &reference)?;
            }
            Variant::Checkpointed(p) => {
                run_brook(
                    &input.path,
                    p,
                    Some(&ck(p)),
                    &out(v),
                    runtime(p),
                    &reference,
                )?;
            }
            Variant::Loop => {}
        }
    }

    let mut runs: Vec<Vec<Run>> = vec![Vec::new(); variants.len()];
    for round in 0..rounds {
        for j in 0..variants.len() {
            let k = (round + j) % variants.len();
            let run = match variants[k] {
                Variant::Loop => {
                    let (cpu0, t0) = (brook_workload::cpu_seconds(), Instant::now());
                    let got = hand_loop::run(&input.path)?;
                    let run = Run {
                        secs: t0.elapsed().as_secs_f64(),
                        cpu: brook_workload::cpu_seconds() - cpu0,
                    };
                    ensure!(got.events == events, "the loop read {} events", got.events);
                    check_same(&got.rows, &reference.rows, "hand loop")?;
                    run
                }
                Variant::Brook(p) => {
                    run_brook(
                        &input.path,
                        p,
                        None,
                        &out(variants[k]),
                        runtime(p),
                        &reference,
                    )?
                    .0
                }
                Variant::Checkpointed(p) => {
                    let (run, s) = run_brook(
                        &input.path,
                        p,
                        Some(&ck(p)),
                        &out(variants[k]),
                        runtime(p),
                        &reference,
                    )?;
                    stats[k].push(s);
                    run
                }
            };
            eprintln!(
                "round {}: {:<10} {:>7.3} s {:>7.2} M events/s",
                round + 1,
                variants[k].label(),
                run.secs,
                events as f64 / run.secs / 1e6
            );
            runs[k].push(run);
        }
    }
    report(&variants, &runs, events);
    for &v in &variants {
        if let Variant::Checkpointed(p) = v {
            let restore = ck(p);
            let mut times: Vec<f64> = (0..3)
                .map(|_| restore_time(&input.path, p, &restore, &out(v), runtime(p), &reference))
                .map(|t| t.map(|t| t.as_secs_f64() * 1e3))
                .collect::<anyhow::Result<_>>()?;
            times.sort_by(f64::total_cmp);
            println!(
                "{}: restore, from build() to the first record in the window: median {:.1} ms \
                 (of {times:.1?})",
                v.label(),
                times[1]
            );
        }
    }
    for (v, s) in variants.iter().zip(&stats) {
        if s.is_empty() {
            continue;
        }
        let completed: u64 = s.iter().map(|s| s.completed).sum();
        let max = s.iter().map(|s| s.max_duration).max().unwrap_or_default();
        let total: std::time::Duration = s.iter().map(|s| s.total_duration).sum();
        let bytes = s.iter().map(|s| s.max_bytes).max().unwrap_or(0);
        println!(
            "{}: a checkpoint every {checkpoint_ms} ms: {completed} in {} runs, mean {:.1} ms, \
             max {:.1} ms, largest {:.1} KB",
            v.label(),
            s.len(),
            total.as_secs_f64() * 1e3 / completed.max(1) as f64,
            max.as_secs_f64() * 1e3,
            bytes as f64 / 1e3
        );
    }
    Ok(())
}

/// Stops a checkpointed job at parallelism `p` half-way (after a checkpoint
/// completed), then times building it again from that checkpoint up to
/// the first record reaching the window operator; runs it to its end and
/// checks the answer.
fn restore_time(
    path: &Path,
    p: usize,
    c: &Checkpoints,
    out: &Path,
    rt: &Runtime,
    reference: &hand_loop::LoopResult,
) -> anyhow::Result<std::time::Duration> {
    // Checkpoints often enough that one completes before half the input
    // is read, whatever the measured variants' interval.
    let c = &Checkpoints {
        dir: c.dir.clone(),
        interval: c.interval.min(std::time::Duration::from_millis(20)),
    };
    let job = brook_job(path, p, Some(c), out)?;
    let metrics = job.metrics();
    let half = reference.events / 2;
    rt.block_on(async {
        let running = job.start(CancellationToken::new())?;
        loop {
            let s = metrics.snapshot();
            let read = s.node("logs").map_or(0, |n| n.total.records_out);
            if read >= half && s.checkpoints.completed > 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        running.shutdown();
        running.wait().await
    })?;
    let t0 = Instant::now();
    let job = brook_job(path, p, Some(c), out)?;
    ensure!(
        job.restored_from().is_some() && !job.restores_final(),
        "the stopped job left no checkpoint taken before its end"
    );
    let metrics = job.metrics();
    let first = rt.block_on(async {
        let running = job.start(CancellationToken::new())?;
        let first = loop {
            let s = metrics.snapshot();
            // The windowed aggregate's first phase: the window node itself
            // gets partials only at the next watermark or barrier.
            if s.node("stats.local")
                .is_some_and(|n| n.total.records_in > 0)
            {
                break t0.elapsed();
            }
            tokio::time::sleep(std::time::Duration::from_micros(200)).await;
        };
        running.wait().await?;
        Ok::<_, brook::Error>(first)
    })?;
    Ok(first)
}

/// Where and how often a checkpointed variant checkpoints.
struct Checkpoints {
    dir: std::path::PathBuf,
    interval: std::time::Duration,
}

/// The Brook job at parallelism `p`: the logs-window query from the file
/// into Parquet files in `out`, as `log_analysis` writes them (two-phase,
/// each run's files replacing the last run's when it succeeds).
fn brook_job(path: &Path, p: usize, checkpoints: Option<&Checkpoints>, out: &Path) -> Result<Job> {
    let config = JobConfig {
        parallelism: p,
        ..JobConfig::default()
    };
    let mut flow = Dataflow::with_config("logs-window", config);
    if let Some(c) = checkpoints {
        flow.set_checkpoints(CheckpointConfig::new(&c.dir).interval(c.interval));
    }
    let events = flow.source("logs", JsonLinesSource::<LogEvent>::new(path));
    logs::window_stats(&events).sink(
        "parquet",
        ParquetSink::<WindowStats>::new(out).replace_on_success(),
    );
    flow.build()
}

/// The rows of the Parquet output in `out`, as the last run left it.
fn read_output(out: &Path) -> anyhow::Result<Vec<WindowStats>> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let mut rows = Vec::new();
    for file in brook_workload::oracle::output_files(out)? {
        let open = std::fs::File::open(&file).with_context(|| file.display().to_string())?;
        for batch in ParquetRecordBatchReaderBuilder::try_new(open)?.build()? {
            rows.extend(serde_arrow::from_record_batch::<Vec<WindowStats>>(&batch?)?);
        }
    }
    Ok(rows)
}

/// Runs the job once (built outside the timing) and checks its answer, read
/// back from its Parquet files (outside the timing too).
fn run_brook(
    path: &Path,
    p: usize,
    checkpoints: Option<&Checkpoints>,
    out: &Path,
    rt: &Runtime,
    reference: &hand_loop::LoopResult,
) -> anyhow::Result<(Run, CheckpointStats)> {
    let job = brook_job(path, p, checkpoints, out)?;
    let metrics = job.metrics();
    let (cpu0, t0) = (brook_workload::cpu_seconds(), Instant::now());
    rt.block_on(job.run(CancellationToken::new()))
        .with_context(|| format!("brook p={p}"))?;
    let run = Run {
        secs: t0.elapsed().as_secs_f64(),
        cpu: brook_workload::cpu_seconds() - cpu0,
    };
    let snapshot = metrics.snapshot();
    let read = snapshot.node("logs").map_or(0, |n| n.total.records_out);
    let late = snapshot.node("stats").map_or(0, |n| n.total.late);
    ensure!(
        read == reference.events,
        "brook p={p} read {read} events, the loop {}",
        reference.events
    );
    ensure!(late == 0, "brook p={p}: {late} late events");
    let mut got = read_output(out)?;
    sort_rows(&mut got);
    check_same(&got, &reference.rows, &format!("brook p={p}"))?;
    Ok((run, snapshot.checkpoints))
}

/// Sorts rows by (window, service, level).
pub(crate) fn sort_rows(rows: &mut [WindowStats]) {
    rows.sort_by(|a, b| {
        (a.window_start, &a.service, a.level).cmp(&(b.window_start, &b.service, b.level))
    });
}

/// Fails unless `got` equals `want`: keys and counts exactly, the floats
/// within 1e-9 relative (sums may be added in another order).
fn check_same(got: &[WindowStats], want: &[WindowStats], what: &str) -> anyhow::Result<()> {
    if got.len() != want.len() {
        bail!("{what}: {} rows, expected {}", got.len(), want.len());
    }
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(f64::MIN_POSITIVE);
    for (g, w) in got.iter().zip(want) {
        let same = (
            g.window_start,
            g.window_end,
            &g.service,
            g.level,
            g.count,
            g.count_5xx,
        ) == (
            w.window_start,
            w.window_end,
            &w.service,
            w.level,
            w.count,
            w.count_5xx,
        ) && close(g.avg_latency_ms, w.avg_latency_ms)
            && close(g.max_latency_ms, w.max_latency_ms);
        if !same {
            bail!("{what}: wrong answer\n  got      {g:?}\n  expected {w:?}");
        }
    }
    Ok(())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

/// Prints events/s per variant and the ratios to the loop.
fn report(variants: &[Variant], runs: &[Vec<Run>], events: u64) {
    let rate = |r: &Run| events as f64 / r.secs / 1e6;
    println!();
    println!(
        "{:<12} {:>14} {:>10} {:>10} {:>9} {:>9}",
        "variant", "median Mev/s", "min", "max", "median s", "CPU s"
    );
    for (v, rs) in variants.iter().zip(runs) {
        let mut rates: Vec<f64> = rs.iter().map(rate).collect();
        let mut secs: Vec<f64> = rs.iter().map(|r| r.secs).collect();
        let mut cpu: Vec<f64> = rs.iter().map(|r| r.cpu).collect();
        let (min, max) = rates.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &r| {
            (lo.min(r), hi.max(r))
        });
        println!(
            "{:<12} {:>14.3} {:>10.3} {:>10.3} {:>9.3} {:>9.2}",
            v.label(),
            median(&mut rates),
            min,
            max,
            median(&mut secs),
            median(&mut cpu),
        );
    }
    let Some(base) = variants.iter().position(|v| *v == Variant::Loop) else {
        return;
    };
    println!();
    // Per round: each round ran every variant back to back.
    let ratios = |a: usize, b: usize, f: fn(&Run) -> f64| -> (f64, f64, f64) {
        let mut r: Vec<f64> = runs[a]
            .iter()
            .zip(&runs[b])
            .map(|(x, y)| f(x) / f(y))
            .collect();
        let (min, max) = r.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
        (median(&mut r), min, max)
    };
    let at = |v: Variant| variants.iter().position(|x| *x == v);
    let say = |what: String, (m, min, max): (f64, f64, f64), goal: &str, met: bool| {
        println!(
            "{what}: {m:.2}x (per-round median; min {min:.2}x, max {max:.2}x); goal {goal}: {}",
            if met { "met" } else { "NOT met" }
        );
    };
    for (v, goal) in [(Variant::Brook(1), 0.8), (Variant::Brook(2), 1.5)] {
        if let Some(k) = at(v) {
            let r = ratios(base, k, |r| r.secs);
            say(
                format!("{} speed / loop", v.id()),
                r,
                &format!(">= {goal:.1}x"),
                r.0 >= goal,
            );
        }
    }
    // Issue 15: CPU at parallelism 1 at most 0.8x the loop's; CPU at
    // parallelism N at most 1.1x parallelism 1's.
    if let Some(k) = at(Variant::Brook(1)) {
        let r = ratios(k, base, |r| r.cpu);
        say("p1 CPU / loop CPU".into(), r, "<= 0.8x", r.0 <= 0.8);
        if let Some(k2) = at(Variant::Brook(2)) {
            let r = ratios(k2, k, |r| r.cpu);
            say("p2 CPU / p1 CPU".into(), r, "<= 1.1x", r.0 <= 1.1);
        }
    }
}
