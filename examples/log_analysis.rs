//! The log-analysis job, Brook's main example: the "logs-window" query of
//! `shared/bench/WORKLOAD.md`, written as Parquet, then asked a question
//! with SQL.
//!
//! With no arguments it generates a million log events in-process
//! (deterministic: the same events on every run), drops `DEBUG` events,
//! keys by `(service, level)`, and per 10-second tumbling event-time window
//! (watermark: 2 s of bounded out-of-orderness) computes the count, mean
//! and max latency and the number of 5xx responses, on every core. The
//! window results go to Parquet files under `brook-out/stats/`. Then it
//! asks DataFusion SQL which services had the most 5xx responses, and how
//! slow they got, and prints the `brook sql` command to explore further.
//!
//! ```text
//! cargo run --release --example log_analysis
//! cargo run --release --example log_analysis -- --events 5000000 --parallelism 2
//! python3 ../shared/bench/gen_logs.py --events 200000 --seed 1 --out /tmp/logs.jsonl
//! cargo run --release --example log_analysis -- --input /tmp/logs.jsonl --out /tmp/stats
//! python3 ../shared/bench/check_logs_window.py /tmp/logs.jsonl /tmp/stats
//! ```
//!
//! (`scripts/setup.sh --python` installs what the checker needs.)
//!
//! A run replaces the output of the run before it only once it has
//! succeeded: until then its files are hidden and the earlier results stay
//! readable; a run that fails, or that Ctrl-C interrupts (exit status 130),
//! leaves them as they were. Only files an earlier run of Brook recorded
//! are removed, and a second run into the same directory at the same time
//! is refused.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use brook::RunOutcome;
use brook::logs::{self, LogEvent, WindowStats};
use brook::prelude::*;
use brook::sql::{OutputFormat, SqlEngine};
use clap::Parser;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Runs the logs-window query over generated logs or a JSON-lines file,
/// writes Parquet, and answers a question about it with SQL.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// JSON-lines input (a file, a directory or a glob), as gen_logs.py
    /// writes it; without it, events are generated.
    #[arg(long)]
    input: Option<PathBuf>,
    /// How many events to generate (without --input).
    #[arg(long, default_value_t = 1_000_000)]
    events: u64,
    /// The generator's seed (without --input).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory for the window results (Parquet files).
    #[arg(long, default_value = "brook-out/stats")]
    out: PathBuf,
    /// Parallel instances per node (default: the number of cores).
    #[arg(long)]
    parallelism: Option<usize>,
}

/// The question asked of the output once the job is done.
const QUESTION: &str = "Which services returned the most 5xx responses, and how slow did they get?";
const QUERY: &str = "\
SELECT service, sum(count_5xx) AS responses_5xx,
       round(100.0 * sum(count_5xx) / sum(count), 2) AS pct_5xx,
       round(max(max_latency_ms), 1) AS worst_latency_ms
FROM stats GROUP BY service ORDER BY responses_5xx DESC, service LIMIT 5";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = JobConfig::default();
    if let Some(p) = args.parallelism {
        config.parallelism = p;
    }
    let parallelism = config.parallelism;

    let flow = Dataflow::with_config("log-analysis", config);
    let (events, total, what) = match &args.input {
        Some(path) => (
            flow.source("logs", JsonLinesSource::<LogEvent>::new(path)),
            estimate_lines(path),
            format!("events from {}", path.display()),
        ),
        None => (
            flow.source("logs", LogGenerator::new(args.events, args.seed))
                .map("event", LogEvent::from),
            Some(args.events),
            format!("generated events (seed {})", args.seed),
        ),
    };
    // The run's files replace the earlier run's only when it succeeds.
    let sink = ParquetSink::<WindowStats>::new(&args.out).replace_on_success();
    logs::window_stats(&events).sink("parquet", sink);
    let job = flow.build()?;
    println!("Running the logs-window query over {what} at parallelism {parallelism}.");

    let started = Instant::now();
    let metrics = job.metrics();
    let progress = progress_bar(total);
    // Ctrl-C stops reading; what was read still flows through and is written.
    let run = brook::run_until_ctrl_c(job);
    tokio::pin!(run);
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            _ = tick.tick() => {
                let read = metrics.snapshot().node("logs").map_or(0, |n| n.total.records_out);
                progress.set_position(read);
            }
        }
    };
    progress.finish_and_clear();
    let outcome = result.context("running the job")?;
    let elapsed = started.elapsed();

    let snapshot = metrics.snapshot();
    let read = snapshot.node("logs").map_or(0, |n| n.total.records_out);
    if outcome != RunOutcome::Completed {
        let of = total.map_or_else(String::new, |t| format!(" of about {t}"));
        let done = if outcome == RunOutcome::Aborted {
            "aborted"
        } else {
            "drained"
        };
        eprintln!(
            "Interrupted after reading {read}{of} events in {:.2} s (the job {done}): the results \
             would be partial, so none were written; the earlier output in {} is unchanged.",
            elapsed.as_secs_f64(),
            args.out.display()
        );
        std::process::exit(outcome.exit_code());
    }
    let rows = snapshot.node("parquet").map_or(0, |n| n.total.records_in);
    let late = snapshot.node("stats").map_or(0, |n| n.total.late);
    println!(
        "Read {read} events in {:.2} s ({:.2} M events/s); wrote {rows} window rows to {} ({late} late events).",
        elapsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64() / 1e6,
        args.out.display(),
    );
    if rows == 0 {
        println!(
            "No window results: the input had no events past DEBUG; the earlier output in {} \
             (if any) is unchanged.",
            args.out.display()
        );
        return Ok(());
    }

    let engine = SqlEngine::new()?;
    engine.register_parquet("stats", &args.out).await?;
    let answer = engine.query(QUERY).await?;
    println!("\n{QUESTION}\n{}", answer.format(OutputFormat::Table)?);
    let table = format!("stats={}", args.out.display());
    println!(
        "\nExplore further with SQL (a prompt opens without a query):\n  \
         cargo run --release --bin brook -- sql --table {table}\n  \
         cargo run --release --bin brook -- sql --table {table} \
         \"SELECT level, sum(count) AS events, avg(avg_latency_ms) AS latency FROM stats GROUP BY level\""
    );
    Ok(())
}

/// About how many lines a file holds: its size over the mean length of its
/// first lines. `None` for a directory or glob (a spinner shows instead).
fn estimate_lines(path: &Path) -> Option<u64> {
    let size = std::fs::metadata(path).ok().filter(|m| m.is_file())?.len();
    let file = std::fs::File::open(path).ok()?;
    let mut head = BufReader::new(file.take(1 << 20));
    let (mut lines, mut bytes, mut line) = (0u64, 0u64, String::new());
    while lines < 1000 {
        line.clear();
        match head.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                lines += 1;
                bytes += n as u64;
            }
        }
    }
    (lines > 0).then(|| size * lines / bytes.max(1))
}

/// A progress bar of events read, drawn on standard error when it is a
/// terminal (hidden otherwise).
fn progress_bar(total: Option<u64>) -> ProgressBar {
    let bar = match total {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{bar:40} {human_pos}/{human_len} events  {per_sec}  eta {eta}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {human_pos} events  {per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
    };
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}
