//! The log-analysis job: the "logs-window" query of
//! `shared/bench/WORKLOAD.md` over a file of JSON log lines.
//!
//! It drops `DEBUG` events, keys by `(service, level)`, and per 10-second
//! tumbling event-time window (watermark: 2 s of bounded out-of-orderness)
//! writes the count, mean and max latency and the number of 5xx responses,
//! as CSV part files with a header, one per parallel instance of the sink.
//!
//! ```text
//! python3 ../shared/bench/gen_logs.py --events 200000 --seed 1 --out /tmp/logs.jsonl
//! cargo run --release --example log_analysis -- --input /tmp/logs.jsonl --out /tmp/stats
//! python3 ../shared/bench/check_logs_window.py /tmp/logs.jsonl /tmp/stats
//! ```
//!
//! (`scripts/setup.sh --python` installs what the checker needs.)

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use brook::logs::{self, LogEvent};
use brook::prelude::*;
use clap::Parser;

/// Runs the logs-window query over a JSON-lines file.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// JSON-lines input: a file, a directory or a glob.
    #[arg(long)]
    input: PathBuf,
    /// Directory for the window results (CSV part files).
    #[arg(long, default_value = "brook-out/stats")]
    out: PathBuf,
    /// Parallel instances per node (default: the number of cores).
    #[arg(long)]
    parallelism: Option<usize>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = JobConfig::default();
    if let Some(p) = args.parallelism {
        config.parallelism = p;
    }
    let parallelism = config.parallelism;
    let flow = Dataflow::with_config("log-analysis", config);
    let events = flow.source("logs", JsonLinesSource::<LogEvent>::new(&args.input));
    logs::window_stats(&events).sink("csv", CsvSink::new(&args.out));
    let job = flow.build()?;
    println!("{}", job.describe());

    let started = Instant::now();
    let metrics = job.metrics();
    // Ctrl-C stops reading; what was read still flows through and is written.
    let result = brook::run_until_ctrl_c(job).await;
    result.with_context(|| format!("running the job over {}", args.input.display()))?;
    let elapsed = started.elapsed();

    let snapshot = metrics.snapshot();
    let read = snapshot.node("logs").map_or(0, |n| n.total.records_out);
    let rows = snapshot.node("csv").map_or(0, |n| n.total.records_in);
    let late = snapshot.node("stats").map_or(0, |n| n.total.late);
    println!(
        "read {read} events in {:.2} s ({:.2} M events/s at parallelism {parallelism}); \
         wrote {rows} window rows to {} ({late} late events)",
        elapsed.as_secs_f64(),
        read as f64 / elapsed.as_secs_f64() / 1e6,
        args.out.display(),
    );
    Ok(())
}
