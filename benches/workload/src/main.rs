//! `brook-workload`: writes the logs-window workload's input and checks a
//! job's output against the exact answer.
//!
//! ```text
//! cargo run --release -p brook-workload -- gen-logs --events 200000 --seed 1 --out /tmp/logs.jsonl
//! cargo run --release --example log_analysis -- --input /tmp/logs.jsonl --out /tmp/stats
//! cargo run --release -p brook-workload -- check --input /tmp/logs.jsonl --out /tmp/stats
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use brook_workload::LogGenerator;
use brook_workload::oracle;
use clap::{Parser, Subcommand};

/// The logs-window workload: its input and its exact answer.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes generated log events as JSON lines (the same events for the
    /// same arguments, on any machine).
    GenLogs {
        /// How many events.
        #[arg(long)]
        events: u64,
        /// The generator's seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// The file to write (replaced when complete).
        #[arg(long)]
        out: PathBuf,
    },
    /// Compares a job's Parquet output (a file or a directory) with the
    /// exact answer computed by SQL from the input; prints `OK rows=N`, or
    /// the differences and exits with status 1.
    Check {
        /// The JSON-lines input the job read.
        #[arg(long)]
        input: PathBuf,
        /// The job's output.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> anyhow::Result<()> {
    match Args::parse().command {
        Command::GenLogs { events, seed, out } => gen_logs(events, seed, &out),
        Command::Check { input, out } => {
            let runtime = tokio::runtime::Runtime::new()?;
            let c = runtime
                .block_on(oracle::compare(&input, &out))
                .with_context(|| format!("comparing {} with {}", out.display(), input.display()))?;
            if c.ok() {
                println!("OK rows={}", c.written);
                Ok(())
            } else {
                println!(
                    "MISMATCH: wrote {} rows, the answer has {}, {} rows differ or are missing",
                    c.written, c.expected, c.differing
                );
                std::process::exit(1);
            }
        }
    }
}

/// Writes `events` events of `seed` to `out`, through a temporary file.
fn gen_logs(events: u64, seed: u64, out: &std::path::Path) -> anyhow::Result<()> {
    let tmp = out.with_extension("part");
    let mut file = std::io::BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?,
    );
    let mut line = String::with_capacity(256);
    for e in LogGenerator::new(events, seed).iter() {
        line.clear();
        e.write_json_line(&mut line);
        file.write_all(line.as_bytes())
            .with_context(|| format!("writing {}", tmp.display()))?;
    }
    file.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, out).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("Wrote {events} events (seed {seed}) to {}.", out.display());
    Ok(())
}
