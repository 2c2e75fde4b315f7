//! The interactive prompt of `brook sql`: statements end with `;`, and
//! history is kept in `~/.brook_sql_history`.

use std::path::PathBuf;
use std::time::Instant;

use brook::sql::{OutputFormat, ResultWriter, SqlEngine, SqlError};
use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

const HELP: &str = "\
Type a query ending with `;` (it may span lines). Only queries run.
  \\d          list the tables
  \\d NAME     show a table's columns
  \\q          quit (or Ctrl-D)";

/// Reads statements until `\q` or end of input, printing each result in
/// `format`. A failing statement prints its error and the prompt goes on.
pub(crate) async fn run(engine: &SqlEngine, format: OutputFormat) -> anyhow::Result<()> {
    let mut editor = DefaultEditor::new()?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is the normal first run.
        let _ = editor.load_history(path);
    }
    let tables = engine.tables();
    if tables.is_empty() {
        println!("brook sql: no tables. \\h for help.");
    } else {
        println!("brook sql: tables {}. \\h for help.", tables.join(", "));
    }
    let mut statement = String::new();
    loop {
        let prompt = if statement.is_empty() {
            "brook> "
        } else {
            "  ...> "
        };
        let line = match editor.readline(prompt) {
            Ok(line) => line,
            Err(ReadlineError::Interrupted) => {
                statement.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if statement.is_empty() && trimmed.starts_with('\\') {
            let _ = editor.add_history_entry(trimmed);
            if !command(engine, trimmed).await {
                break;
            }
            continue;
        }
        if trimmed.is_empty() && statement.is_empty() {
            continue;
        }
        statement.push_str(&line);
        statement.push('\n');
        if !trimmed.ends_with(';') {
            continue;
        }
        let sql = statement.trim().trim_end_matches(';').to_string();
        statement.clear();
        let _ = editor.add_history_entry(format!("{sql};"));
        let started = Instant::now();
        match run_query(engine, &sql, format).await {
            Ok(rows) => println!(
                "({rows} row{} in {:.3} s)",
                if rows == 1 { "" } else { "s" },
                started.elapsed().as_secs_f64()
            ),
            Err(SqlError::Output(e)) => return Err(e.into()),
            Err(e) => eprintln!("error: {e}"),
        }
    }
    if let Some(path) = &history
        && let Err(e) = editor.save_history(path)
    {
        eprintln!("note: could not save history to {}: {e}", path.display());
    }
    Ok(())
}

/// Runs `sql`, writing its rows to stdout as they come; returns how many.
async fn run_query(engine: &SqlEngine, sql: &str, format: OutputFormat) -> Result<usize, SqlError> {
    let mut rows = engine.query_stream(sql).await?;
    let mut out = ResultWriter::new(std::io::stdout(), rows.schema(), format);
    while let Some(batch) = rows.next_batch().await {
        out.write(&batch?)?;
    }
    let count = out.rows();
    out.finish()?;
    Ok(count)
}

/// Runs a `\` command; false to quit.
async fn command(engine: &SqlEngine, line: &str) -> bool {
    let mut words = line.split_whitespace();
    match (words.next(), words.next()) {
        (Some("\\q"), _) => return false,
        (Some("\\d"), None) => {
            for table in engine.tables() {
                println!("{table}");
            }
        }
        (Some("\\d"), Some(table)) => match engine.query(&format!("DESCRIBE {table}")).await {
            Ok(result) => match result.format(OutputFormat::Table) {
                Ok(text) => println!("{text}"),
                Err(e) => eprintln!("error: {e}"),
            },
            Err(e) => eprintln!("error: {e}"),
        },
        _ => println!("{HELP}"),
    }
    true
}

/// `~/.brook_sql_history`, when there is a home directory.
fn history_path() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| PathBuf::from(home).join(".brook_sql_history"))
}
