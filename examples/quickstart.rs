//! Brook's quick start: which services log the most errors?
//!
//! Generates synthetic JSON log lines in-process (no files, no broker),
//! parses them, drops DEBUG lines, partitions by service and counts lines,
//! warnings and errors per service on every core, then prints the services
//! with the most errors and what each node of the dataflow did.
//!
//! ```text
//! cargo run --release --example quickstart -- [--events N] [--parallelism P]
//! ```

use std::collections::HashMap;
use std::time::Instant;

use anyhow::Context;
use brook::prelude::*;
use serde::Deserialize;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// One log line, as parsed from JSON.
#[derive(Debug, Clone, Deserialize)]
struct LogLine {
    service: String,
    level: String,
    status: u16,
}

/// Lines, warnings, errors and 5xx responses of one service.
#[derive(Debug, Clone, Default)]
struct ServiceStats {
    service: String,
    lines: u64,
    warnings: u64,
    errors: u64,
    status_5xx: u64,
}

/// Counts per service on each instance; emits the totals at end of input.
/// Behind `key_by(service)`, each service is counted on exactly one instance.
#[derive(Clone, Default)]
struct CountByService {
    stats: HashMap<String, ServiceStats>,
}

impl Operator<LogLine, ServiceStats> for CountByService {
    fn process(&mut self, batch: Batch<LogLine>, _out: &mut Collector<ServiceStats>) -> Result<()> {
        for line in batch.values() {
            let s = self
                .stats
                .entry(line.service.clone())
                .or_insert_with(|| ServiceStats {
                    service: line.service.clone(),
                    ..ServiceStats::default()
                });
            s.lines += 1;
            s.warnings += u64::from(line.level == "WARN");
            s.errors += u64::from(line.level == "ERROR");
            s.status_5xx += u64::from(line.status >= 500);
        }
        Ok(())
    }

    fn on_end(&mut self, out: &mut Collector<ServiceStats>) -> Result<()> {
        for (_, s) in self.stats.drain() {
            out.emit(NO_TIMESTAMP, s);
        }
        Ok(())
    }
}

/// The i-th synthetic log line: a deterministic mix of services and levels.
fn log_line(i: u64) -> String {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let service = (h >> 32) % 50;
    let (level, status) = match (h >> 56) % 20 {
        0..=7 => ("DEBUG", 200),
        8..=16 => (
            "INFO",
            if (h >> 20).is_multiple_of(50) {
                404
            } else {
                200
            },
        ),
        17..=18 => (
            "WARN",
            if (h >> 20).is_multiple_of(service + 2) {
                503
            } else {
                200
            },
        ),
        _ => ("ERROR", 500),
    };
    format!(
        r#"{{"ts":{},"level":"{level}","service":"svc-{service:02}","status":{status},"message":"request {i}"}}"#,
        1_700_000_000_000 + i / 100
    )
}

fn arg(args: &[String], flag: &str) -> anyhow::Result<Option<usize>> {
    match args.iter().position(|a| a == flag) {
        None => Ok(None),
        Some(i) => {
            let v = args
                .get(i + 1)
                .with_context(|| format!("{flag} needs a value"))?;
            Ok(Some(
                v.parse()
                    .with_context(|| format!("{flag} {v}: not a number"))?,
            ))
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let events = arg(&args, "--events")?.unwrap_or(2_000_000) as u64;
    let mut flow = Dataflow::new("quickstart");
    if let Some(p) = arg(&args, "--parallelism")? {
        flow.set_parallelism(p);
    }

    let results = CollectSink::new();
    let stats = results.handle();
    flow.source(
        "generate",
        MemorySource::from_iterator((0..events).map(log_line)),
    )
    .rebalance()
    .try_map("parse", |line: String| {
        serde_json::from_str::<LogLine>(&line)
    })
    .filter("drop-debug", |l| l.level != "DEBUG")
    .key_by(|l| l.service.clone())
    .process("count-by-service", CountByService::default())
    .sink("results", results);

    let job = flow.build()?;
    println!("Plan:\n{}", job.describe());
    let metrics = job.metrics();
    let started = Instant::now();
    job.run(CancellationToken::new()).await?;
    let elapsed = started.elapsed();

    let mut stats = stats.values();
    stats.sort_by(|a, b| {
        b.errors
            .cmp(&a.errors)
            .then_with(|| a.service.cmp(&b.service))
    });
    println!(
        "{events} log lines in {:.2} s ({:.1} M lines/s)\n",
        elapsed.as_secs_f64(),
        events as f64 / elapsed.as_secs_f64() / 1e6
    );
    println!(
        "{:<8} {:>9} {:>9} {:>9} {:>9}",
        "service", "lines", "warnings", "errors", "5xx"
    );
    for s in stats.iter().take(5) {
        println!(
            "{:<8} {:>9} {:>9} {:>9} {:>9}",
            s.service, s.lines, s.warnings, s.errors, s.status_5xx
        );
    }
    println!(
        "\n{:<18} {:>11} {:>11} {:>10} {:>12}",
        "node", "records in", "records out", "busy", "blocked"
    );
    for n in metrics.snapshot().nodes {
        let t = n.total;
        println!(
            "{:<18} {:>11} {:>11} {:>9.2}s {:>11.2}s",
            format!("{} x{}", n.name, n.parallelism),
            t.records_in,
            t.records_out,
            t.busy.as_secs_f64(),
            t.blocked.as_secs_f64()
        );
    }
    Ok(())
}
