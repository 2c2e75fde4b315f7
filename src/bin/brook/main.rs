//! The `brook` command line.
//!
//! ```text
//! brook sql --table stats=brook-out/stats "SELECT service, sum(count_5xx) FROM stats GROUP BY service ORDER BY 2 DESC LIMIT 5"
//! brook sql --table stats=brook-out/stats            # an interactive prompt
//! ```

mod repl;

use std::io::Write;
use std::process::ExitCode;

use anyhow::Context;
use brook::sql::{OutputFormat, SqlEngine, TableSpec};
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
    /// The query to run; without it, an interactive prompt opens.
    query: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
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
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // `brook sql … | head`: the reader has what it wanted.
        Err(e)
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn sql(args: SqlArgs) -> anyhow::Result<()> {
    let engine = SqlEngine::with_memory_limit(args.memory_limit.saturating_mul(1 << 20))?;
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
            let result = engine.query(&query).await?;
            let mut out = std::io::stdout().lock();
            let text = result.format(args.format)?;
            out.write_all(text.as_bytes())?;
            if !text.ends_with('\n') {
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        None => repl::run(&engine, args.format).await,
    }
}
