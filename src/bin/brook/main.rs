//! The `brook` command line.
//!
//! ```text
//! brook sql --table stats=brook-out/stats "SELECT service, sum(count_5xx) FROM stats GROUP BY service ORDER BY 2 DESC LIMIT 5"
//! brook sql --table stats=brook-out/stats            # an interactive prompt
//! brook crash-test --kills 20 --check "brook-workload check --input logs.jsonl --out out" -- \
//!     log_analysis --input logs.jsonl --out out --checkpoint-dir ck
//! brook top --admin 127.0.0.1:8686                    # a running job's figures
//! ```

mod crash_test;
mod repl;
mod top;

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use brook::sql::{OutputFormat, ResultWriter, SqlEngine, SqlError, TableSpec};
use clap::{Parser, Subcommand};

/// Brook: stream processing for log and event pipelines.
#[derive(Parser, Debug)]
#[command(name = "brook", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Query what sinks wrote, with SQL (DataFusion). Only queries run.
    ///
    /// Without QUERY, opens an interactive prompt (history in
    /// ~/.brook_sql_history).
    Sql(SqlArgs),
    /// Runs a job command again and again, killing it with SIGKILL at
    /// random moments (or at a named failpoint), until a run completes;
    /// then runs a check command. For jobs with checkpoints.
    CrashTest(crash_test::CrashTestArgs),
    /// Shows a running job's nodes (λ, μ, ρ, queue, backpressure,
    /// watermark lag) and its bottleneck, refreshed, from its admin server.
    Top(top::TopArgs),
}

#[derive(clap::Args, Debug)]
struct SqlArgs {
    /// A table: NAME=DIRECTORY of Parquet files (a Parquet sink's output).
    /// Repeat for several tables.
    #[arg(long = "table", short = 't', value_name = "NAME=DIR")]
    tables: Vec<TableSpec>,
    /// How results are printed.
    #[arg(long, short = 'f', value_enum, default_value_t = OutputFormat::Table)]
    format: OutputFormat,
    /// The most memory a query may use, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = brook::sql::DEFAULT_MEMORY_LIMIT >> 20)]
    memory_limit: usize,
    /// The longest a query may run, in seconds (fractions allowed; 0: no
    /// limit). A query past it is cancelled with an error.
    #[arg(long, value_name = "SECONDS", default_value_t = brook::sql::DEFAULT_TIMEOUT.as_secs_f64(), value_parser = parse_seconds)]
    timeout: f64,
    /// The query to run; without it, an interactive prompt opens.
    query: Option<String>,
}

/// A non-negative, finite number of seconds.
fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 && Duration::try_from_secs_f64(v).is_ok() => Ok(v),
        _ => Err(format!(
            "expected a number of seconds (0 for no limit), got `{s}`"
        )),
    }
}

/// Whether `e` is a write to a closed pipe (`brook sql … | head`).
fn broken_pipe(e: &anyhow::Error) -> bool {
    let is = |e: &std::io::Error| e.kind() == std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(is)
            || matches!(c.downcast_ref::<SqlError>(), Some(SqlError::Output(e)) if is(e))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The library's warnings (a file it skipped, a limit it applied) reach
    // the user: warnings and errors on standard error by default, more with
    // RUST_LOG.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    // A panic on the engine's threads reaches the user as an error
    // (`internal error of the query engine`); the default message and
    // backtrace would only repeat it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let on_engine = std::thread::current()
            .name()
            .is_some_and(|name| name.starts_with(brook::sql::THREAD_NAME_PREFIX));
        if !on_engine {
            default_hook(info);
        }
    }));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Sql(args) => sql(args).await,
            Command::CrashTest(args) => tokio::task::spawn_blocking(move || crash_test::run(args))
                .await
                .context("the crash test")?,
            Command::Top(args) => tokio::task::spawn_blocking(move || top::run(args))
                .await
                .context("brook top")?,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `brook sql … | head`: the reader has what it wanted.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let timeout = Some(Duration::from_secs_f64(args.timeout)).filter(|t| !t.is_zero());
    let engine = SqlEngine::with_memory_limit(args.memory_limit.saturating_mul(1 << 20))?
        .with_timeout(timeout)
        .with_process_memory_guard(true);
    for table in &args.tables {
        engine
            .register_parquet(&table.name, &table.path)
            .await
            .with_context(|| {
                format!(
                    "registering --table {}={}",
                    table.name,
                    table.path.display()
                )
            })?;
    }
    match args.query {
        Some(query) => {
            // Rows are written as they come: a large result is never held.
            let mut rows = engine.query_stream(&query).await?;
            let stdout = std::io::BufWriter::new(std::io::stdout());
            let mut out = ResultWriter::new(stdout, rows.schema(), args.format);
            while let Some(batch) = rows.next_batch().await {
                out.write(&batch?)?;
            }
            let empty = out.rows() == 0;
            let mut stdout = out.finish()?;
            // JSON lines of no rows: an empty line, as ever.
            if empty && args.format == OutputFormat::Ndjson {
                stdout.write_all(b"\n")?;
                stdout.flush()?;
            }
            Ok(())
        }
        None => repl::run(&engine, args.format).await,
    }
}
