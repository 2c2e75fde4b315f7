//! `nexmark`: runs Nexmark queries on generated events and measures them.
//!
//! ```text
//! cargo run --release -p brook-workload --bin nexmark -- --query q5 --events 10000000 --parallelism 2
//! cargo run --release -p brook-workload --bin nexmark -- --query all --parallelism 1
//! ```
//!
//! Each query runs as its own job: a [`NexmarkSource`] of `--events`
//! events, the query's pipeline, and a sink that counts its rows and drops
//! them. `--query gen` is the baseline, the source alone into the counting
//! sink; `--query raw` makes the events on one thread with no job at all
//! (the generator's own speed). The job runs on a tokio runtime with one
//! worker thread per unit of parallelism (`--threads` to change it).
//!
//! Prints one table row per query: events per second of wall time, and per
//! CPU-second (user + system time of the whole process, from
//! `/proc/self/stat`, in 10 ms ticks).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use brook_core::prelude::*;
use brook_workload::nexmark::{NexmarkSource, Query, QueryOutput, QueryRow};
use clap::Parser;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Runs Nexmark queries on generated events and prints their throughput.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// `q0`, `q1`, `q2`, `q5`, `q7` (the queries Brook has), `all` (each of
    /// them, after `gen`), `gen` (the source alone) or `raw` (the generator
    /// on one thread, no job).
    #[arg(long, default_value = "all")]
    query: String,
    /// Events to generate.
    #[arg(long, default_value_t = 10_000_000)]
    events: u64,
    /// The job's parallelism.
    #[arg(long, default_value_t = 1)]
    parallelism: usize,
    /// Tokio worker threads (default: the parallelism).
    #[arg(long)]
    threads: Option<usize>,
    /// Events per second of event time.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
}

/// What to run.
#[derive(Debug, Clone, Copy)]
enum Run {
    Raw,
    Gen,
    Query(Query),
}

impl Run {
    fn name(self) -> &'static str {
        match self {
            Run::Raw => "raw",
            Run::Gen => "gen",
            Run::Query(q) => q.name(),
        }
    }
}

/// A sink that counts what it gets and drops it.
#[derive(Clone)]
struct CountSink(Arc<AtomicU64>);

impl<T: Send + 'static> Sink<T> for CountSink {
    type Writer = CountSink;

    fn open(&mut self, _ctx: &SinkContext) -> Result<CountSink> {
        Ok(self.clone())
    }
}

impl<T: Send + 'static> SinkWriter<T> for CountSink {
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

impl QueryOutput for CountSink {
    fn attach<R: QueryRow>(&mut self, rows: &Stream<R>) {
        rows.sink("count", self.clone());
    }
}

/// One measured run.
struct Figures {
    wall: f64,
    cpu: f64,
    rows: u64,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runs: Vec<Run> = match args.query.as_str() {
        "raw" => vec![Run::Raw],
        "gen" => vec![Run::Gen],
        "all" => std::iter::once(Run::Gen)
            .chain(Query::ALL.iter().map(|&q| Run::Query(q)))
            .collect(),
        name => vec![Run::Query(name.parse()?)],
    };
    if args.parallelism == 0 || args.events == 0 {
        bail!("--parallelism and --events must be at least 1");
    }
    let threads = args.threads.unwrap_or(args.parallelism).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .context("starting tokio")?;
    println!("| query | parallelism | events | wall s | events/s | CPU s | events/CPU-s | rows |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for run in runs {
        let f = match run {
            Run::Raw => raw(&args),
            _ => runtime
                .block_on(job(run, &args))
                .with_context(|| format!("running {}", run.name()))?,
        };
        let p = if matches!(run, Run::Raw) {
            1
        } else {
            args.parallelism
        };
        println!(
            "| {} | {p} | {} | {:.2} | {:.2} M | {:.2} | {:.2} M | {} |",
            run.name(),
            args.events,
            f.wall,
            args.events as f64 / f.wall / 1e6,
            f.cpu,
            args.events as f64 / f.cpu / 1e6,
            f.rows
        );
    }
    Ok(())
}

fn source(args: &Args) -> NexmarkSource {
    NexmarkSource::new(args.events).events_per_second(args.rate)
}

/// The generator alone, on this thread.
fn raw(args: &Args) -> Figures {
    let (start, cpu) = (Instant::now(), brook_workload::cpu_seconds());
    let mut rows = 0u64;
    for e in source(args).iter() {
        rows += u64::from(e.date_time() > 0);
    }
    Figures {
        wall: start.elapsed().as_secs_f64(),
        cpu: brook_workload::cpu_seconds() - cpu,
        rows,
    }
}

/// One job: the source, the query, a counting sink.
async fn job(run: Run, args: &Args) -> anyhow::Result<Figures> {
    let mut flow = Dataflow::new(format!("nexmark-{}", run.name()));
    flow.set_parallelism(args.parallelism);
    let events = flow.source("nexmark", source(args));
    let mut sink = CountSink(Arc::default());
    match run {
        Run::Query(q) => q.build(&events, &mut sink),
        Run::Raw | Run::Gen => {
            events.sink("count", sink.clone());
        }
    }
    let job = flow.build()?;
    let (start, cpu) = (Instant::now(), brook_workload::cpu_seconds());
    job.run(CancellationToken::new()).await?;
    Ok(Figures {
        wall: start.elapsed().as_secs_f64(),
        cpu: brook_workload::cpu_seconds() - cpu,
        rows: sink.0.load(Ordering::Relaxed),
    })
}
