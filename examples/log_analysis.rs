//! The log-analysis job, Brook's main example: per service and level, in
//! 10-second event-time windows, the request count, mean and worst latency
//! and the 5xx responses, written as Parquet, then asked a question with
//! SQL.
//!
//! With no arguments it generates a million web-service log events
//! in-process (deterministic: the same events on every run). The dataflow
//! is written out below in `main`: a source, event time with a 2-second
//! watermark, a filter dropping `DEBUG`, `key_by (service, level)`, a
//! tumbling window aggregating into a [`WindowStats`] row, and a Parquet
//! sink. Then DataFusion SQL answers "which services returned the most 5xx
//! responses?" over what the job wrote, and it prints the `brook sql`
//! command to explore further.
//!
//! ```text
//! cargo run --release --example log_analysis
//! cargo run --release --example log_analysis -- --events 5000000 --parallelism 2
//! cargo run --release -p brook-workload -- gen-logs --events 200000 --seed 1 --out /tmp/logs.jsonl
//! cargo run --release --example log_analysis -- --input /tmp/logs.jsonl --out /tmp/stats
//! cargo run --release -p brook-workload -- check --input /tmp/logs.jsonl --out /tmp/stats
//! ```
//!
//! A run replaces the output of the run before it only once it has
//! succeeded: until then its files are hidden and the earlier results stay
//! readable; a run that fails, or that Ctrl-C interrupts (exit status 130),
//! leaves them as they were. Only files an earlier run of Brook recorded
//! are removed, and a second run into the same directory at the same time
//! is refused.
//!
//! With `--checkpoint-dir DIR` the job takes a checkpoint every
//! `--checkpoint-interval-ms` (1000 by default). Killed (even with
//! `kill -9`) or interrupted, the same command resumes from the newest one:
//! the answer is the same as if it had never stopped.
//!
//! With `--input`, a line that is not a log event fails the run naming its
//! file and line (`--on-bad-line fail`, the default), or is counted and
//! skipped (`drop`), or is written with its file, line and reason as
//! Parquet rows under `--dead-letters DIR` (`dead-letter`), which `brook
//! sql` can query.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

// The allocator the end-to-end bench measures Brook with: glibc's malloc
// cost this job about a tenth of its CPU in allocation and free.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use brook::RunOutcome;
use brook::job::JobArgs;
use brook::parquet::ParquetSink;
use brook::prelude::*;
use brook::sql::{OutputFormat, SqlEngine};
use brook_workload::LogGenerator;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::{Deserialize, Serialize};

/// A log event: the fields the job reads of a JSON line such as
/// `{"ts":1700000000000,"level":"INFO","service":"svc-07","host":"h-1",
/// "status":200,"latency_ms":12.3,"message":"GET /"}`; other fields are
/// skipped.
#[derive(Debug, Clone, Deserialize)]
struct LogLine {
    /// Event time, milliseconds since the epoch.
    ts: i64,
    level: Level,
    service: String,
    status: u16,
    latency_ms: f64,
}

/// A log level, written in capitals in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// One result row: a window of one `(service, level)`. Its fields are the
/// Parquet columns.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WindowStats {
    window_start: i64,
    window_end: i64,
    service: String,
    level: Level,
    count: u64,
    avg_latency_ms: f64,
    max_latency_ms: f64,
    count_5xx: u64,
}

/// What to do with a line of `--input` that is not a log event.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum OnBadLine {
    /// Fail the run, naming the file and line.
    Fail,
    /// Count the line and skip it.
    Drop,
    /// Write it, with its file, line and reason, under `--dead-letters`.
    DeadLetter,
}

/// Runs the logs-window query over generated logs or a JSON-lines file,
/// writes Parquet, and answers a question about it with SQL.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// JSON-lines input (a file, a directory or a glob); without it,
    /// events are generated.
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
    /// What to do with a line of --input that is not a log event.
    #[arg(long, value_enum, default_value = "fail")]
    on_bad_line: OnBadLine,
    /// Where `--on-bad-line dead-letter` writes bad lines (Parquet).
    #[arg(long, default_value = "brook-out/dead-letters")]
    dead_letters: PathBuf,
    /// The standard job flags: parallelism, checkpoints, the admin server
    /// (off unless asked for here: this job is run by hand), logging.
    #[command(flatten)]
    job: JobArgs,
}

/// The question asked of the output once the job is done.
const QUESTION: &str = "Which services returned the most 5xx responses, and how slow did they get?";
const QUERY: &str = "\
SELECT service, sum(count_5xx) AS responses_5xx,
       round(100.0 * sum(count_5xx) / sum(count), 2) AS pct_5xx,
       round(max(max_latency_ms), 1) AS worst_latency_ms
FROM stats GROUP BY service ORDER BY responses_5xx DESC, service LIMIT 5";

/// Prints a line on standard output; a closed pipe (`| head`) is an
/// error that ends the program quietly.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        writeln!(std::io::stdout().lock(), $($arg)*)?
    }};
}

fn main() -> std::process::ExitCode {
    // The admin server is off unless asked for: this job runs by hand, and
    // its runs often side by side.
    let command = Args::command().mut_arg("admin", |a| a.default_value("off"));
    let args = match Args::from_arg_matches(&command.get_matches()) {
        Ok(args) => args,
        Err(e) => e.exit(),
    };
    // Warnings of the library (bad lines skipped, late events, abandoned
    // files cleaned) show by default; --log-level or RUST_LOG changes it.
    if let Err(e) = args.job.init_logging() {
        eprintln!("error: {e}");
        return std::process::ExitCode::FAILURE;
    }
    // One thread at parallelism 1, else one per instance: the same
    // runtime the end-to-end bench measures the job on.
    let result = args
        .job
        .runtime()
        .context("starting the runtime")
        .and_then(|rt| rt.block_on(run(args)));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // `log_analysis | head`: the reader has what it wanted.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            // The causes on one line, each said once.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let config = args.job.config();
    let parallelism = config.parallelism;

    // The dataflow. Sources: JSON lines from files, or generated events.
    let mut flow = Dataflow::with_config("log-analysis", config);
    args.job.configure(&mut flow)?;
    let (events, total, what) = match &args.input {
        Some(path) => {
            let policy = match args.on_bad_line {
                OnBadLine::Fail => BadRecordPolicy::Fail,
                OnBadLine::Drop => BadRecordPolicy::Drop,
                OnBadLine::DeadLetter => {
                    BadRecordPolicy::dead_letter(ParquetSink::<DeadLetter>::new(&args.dead_letters))
                }
            };
            let source = JsonLinesSource::<LogLine>::new(path).on_bad_line(policy);
            (
                flow.source("logs", source),
                estimate_lines(path),
                format!("events from {}", path.display()),
            )
        }
        None => {
            let generated = flow.source("logs", LogGenerator::new(args.events, args.seed));
            let events = generated.map("event", |e| LogLine {
                ts: e.ts,
                level: match e.level {
                    brook_workload::Level::Debug => Level::Debug,
                    brook_workload::Level::Info => Level::Info,
                    brook_workload::Level::Warn => Level::Warn,
                    brook_workload::Level::Error => Level::Error,
                },
                service: e.service,
                status: e.status,
                latency_ms: e.latency_ms,
            });
            let what = format!("generated events (seed {})", args.seed);
            (events, Some(args.events), what)
        }
    };
    // Event time from `ts`; the watermark trails the largest time seen by
    // 2 s, so events up to 2 s out of order still count. An event more
    // than an hour ahead of the watermark and the clock (a broken clock, a
    // typo in a year) is refused and counted instead of moving time.
    let strategy =
        Watermarks::bounded(Duration::from_secs(2)).with_max_ahead(Duration::from_secs(3600));
    let timed = events.assign_timestamps(|e| e.ts, strategy);
    let timestamps = timed.node_name();
    // Count, mean and max latency, and 5xx responses, in one pass.
    let aggregates = (
        Count,
        Avg::of(|e: &LogLine| e.latency_ms),
        Max::of(|e: &LogLine| e.latency_ms),
        Count.filter(|e: &LogLine| e.status >= 500),
    );
    let windows = timed
        .filter("drop-debug", |e| e.level != Level::Debug)
        .key_by(|e| (e.service.clone(), e.level))
        .window(Tumbling::of(Duration::from_secs(10)))
        .aggregate("stats", aggregates);
    let rows = windows.map("rows", |w| {
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
    });
    // The run's files replace the earlier run's only when it succeeds.
    rows.sink(
        "parquet",
        ParquetSink::<WindowStats>::new(&args.out).replace_on_success(),
    );
    let job = flow.build()?;
    let resumed = job.restored_from();
    if let Some(id) = resumed {
        let dir = Path::new(args.job.checkpoint_dir.as_deref().unwrap_or(""));
        if job.restores_final() {
            say!(
                "Resuming from checkpoint {id} in {}, the final one: the input was all read \
                 before the last run stopped, so this run only commits its output.",
                dir.display()
            );
        } else {
            say!(
                "Resuming from checkpoint {id} in {}: the counts below are of this run only.",
                dir.display()
            );
        }
    }
    let metrics = job.metrics();
    // Ctrl-C stops reading; a second Ctrl-C aborts. Listened for from here.
    // With --admin, the admin server's SQL box queries the output.
    let run = args
        .job
        .run_serving(job, vec![("stats".to_string(), args.out.clone())]);
    tokio::pin!(run);
    say!("Running the logs-window query over {what} at parallelism {parallelism}.");

    let started = Instant::now();
    let progress = progress_bar(total);
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
    let counter = |node: &str, f: fn(&brook::core::Counters) -> u64| {
        snapshot.node(node).map_or(0, |n| f(&n.total))
    };
    let parsed = counter("logs", |c| c.records_out);
    if outcome != RunOutcome::Completed {
        let of = total.map_or_else(String::new, |t| format!(" of about {t}"));
        let done = if outcome == RunOutcome::Aborted {
            "aborted"
        } else {
            "drained"
        };
        eprintln!(
            "Interrupted after reading {parsed}{of} events in {:.2} s (the job {done}): the \
             results would be partial, so none were written; the earlier output in {} is \
             unchanged.",
            elapsed.as_secs_f64(),
            args.out.display()
        );
        if let Some(dir) = &args.job.checkpoint_dir {
            eprintln!(
                "Run the same command again to resume from the last checkpoint in {}.",
                dir
            );
        }
        std::process::exit(outcome.exit_code());
    }
    let dropped = counter("logs", |c| c.dropped);
    let dead = counter("logs", |c| c.dead_lettered);
    let debug = counter("drop-debug", |c| c.records_in.saturating_sub(c.records_out));
    let late = counter("stats", |c| c.late);
    let rejected = counter(&timestamps, |c| c.rejected);
    // What reached the windows (the window node itself counts partial
    // aggregates in: see `WindowedStream::aggregate`).
    let counted = counter("drop-debug", |c| c.records_out).saturating_sub(late);
    let rows = counter("parquet", |c| c.records_in);
    say!(
        "Read {} events in {:.2} s ({:.2} M events/s): {counted} counted in windows, {debug} \
         DEBUG left out, {late} late, {rejected} refused for a time too far ahead, {dropped} bad \
         lines dropped, {dead} dead-lettered. Wrote {rows} window rows to {}.",
        parsed + dropped + dead,
        elapsed.as_secs_f64(),
        (parsed + dropped + dead) as f64 / elapsed.as_secs_f64() / 1e6,
        args.out.display(),
    );
    if dead > 0 {
        say!(
            "Bad lines, with their file, line and reason: cargo run --release --bin brook -- \
             sql --table bad={} \"SELECT source, line, reason FROM bad ORDER BY source, line\"",
            args.dead_letters.display()
        );
    }
    // A resumed run may have little or nothing left to read; its answer
    // is the whole output's.
    if resumed.is_none() && parsed == 0 && dropped + dead == 0 {
        say!("The input holds no events: nothing was written.");
        return Ok(());
    }
    if resumed.is_none() && rows == 0 {
        say!(
            "No window results: the input had no events past DEBUG; the earlier output in {} \
             (if any) is unchanged.",
            args.out.display()
        );
        return Ok(());
    }

    let engine = SqlEngine::new()?;
    engine.register_parquet("stats", &args.out).await?;
    let answer = engine.query(QUERY).await?;
    say!("\n{QUESTION}\n{}", answer.format(OutputFormat::Table)?);
    let table = format!("stats={}", args.out.display());
    say!(
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
