//! The logs-window workload's oracle: the exact answer, computed by
//! DataFusion SQL from the JSON-lines input, compared with what a job
//! wrote as Parquet.

use std::path::{Path, PathBuf};

use datafusion::arrow::array::Int64Array;
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{JsonReadOptions, ParquetReadOptions, SessionContext};

/// The workload's query over table `events`, as SQL.
pub const QUERY: &str = "\
SELECT ts / 10000 * 10000 AS window_start, ts / 10000 * 10000 + 10000 AS window_end,
       service, level, count(*) AS count, avg(latency_ms) AS avg_latency_ms,
       max(latency_ms) AS max_latency_ms, count(*) FILTER (WHERE status >= 500) AS count_5xx
FROM events WHERE level <> 'DEBUG' GROUP BY 1, 2, 3, 4";

/// How a job's output compares with the exact answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Comparison {
    /// Rows the job wrote.
    pub written: i64,
    /// Rows of the exact answer.
    pub expected: i64,
    /// Rows on one side only, or whose values differ (floats beyond a
    /// relative 1e-9).
    pub differing: i64,
}

impl Comparison {
    /// Whether the output is exactly the answer.
    pub fn ok(&self) -> bool {
        self.written == self.expected && self.differing == 0
    }
}

/// The Parquet files of a job's output: a file, or the files of a
/// directory; in a directory with a Brook commit record
/// (`_brook_output.json`), only those it lists.
///
/// # Errors
/// When the directory or its record cannot be read.
pub fn output_files(output: &Path) -> Result<Vec<PathBuf>> {
    if output.is_file() {
        return Ok(vec![output.to_path_buf()]);
    }
    let record = output.join("_brook_output.json");
    if record.is_file() {
        let text = std::fs::read_to_string(&record)?;
        let value: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| DataFusionError::External(Box::new(e)))?;
        let files = value["files"]
            .as_array()
            .ok_or_else(|| DataFusionError::Plan(format!("{}: no files", record.display())))?;
        return Ok(files
            .iter()
            .filter_map(|f| f.as_str())
            .map(|f| output.join(f))
            .collect());
    }
    let mut files = Vec::new();
    let mut dirs = vec![output.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if name.starts_with('.') || name.starts_with('_') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".parquet") {
                files.push(path);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Compares the Parquet output at `output` (see [`output_files`]) with the
/// exact answer computed from the JSON-lines `events`.
///
/// # Errors
/// DataFusion's, when a file cannot be read.
pub async fn compare(events: &Path, output: &Path) -> Result<Comparison> {
    let ctx = SessionContext::new();
    let name = events
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let extension = name
        .rfind('.')
        .map_or(String::new(), |i| name[i..].to_string());
    let events = events
        .to_str()
        .ok_or_else(|| DataFusionError::Plan("a path that is not UTF-8".into()))?;
    ctx.register_json(
        "events",
        events,
        JsonReadOptions::default().file_extension(&extension),
    )
    .await?;
    let files: Vec<String> = output_files(output)?
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if files.is_empty() {
        return Err(DataFusionError::Plan(format!(
            "no Parquet file in {}",
            output.display()
        )));
    }
    let stats = ctx
        .read_parquet(files, ParquetReadOptions::default())
        .await?;
    ctx.register_table("stats", stats.into_view())?;
    let query = format!(
        "WITH oracle AS ({QUERY}),
         got AS (
             SELECT window_start, window_end, service, CAST(level AS VARCHAR) AS level,
                    count, avg_latency_ms, max_latency_ms, count_5xx FROM stats)
         SELECT (SELECT count(*) FROM got) AS written,
                (SELECT count(*) FROM oracle) AS expected,
                (SELECT count(*) FROM oracle o FULL OUTER JOIN got g
                    ON o.window_start = g.window_start AND o.service = g.service AND o.level = g.level
                 WHERE o.window_start IS NULL OR g.window_start IS NULL
                    OR o.window_end <> g.window_end OR o.count <> g.count
                    OR o.count_5xx <> g.count_5xx OR o.max_latency_ms <> g.max_latency_ms
                    OR abs(o.avg_latency_ms - g.avg_latency_ms) > 1e-9 * abs(o.avg_latency_ms)
                ) AS differing"
    );
    let batches = ctx.sql(&query).await?.collect().await?;
    let value = |i: usize| -> Result<i64> {
        batches
            .first()
            .and_then(|b| b.column(i).as_any().downcast_ref::<Int64Array>())
            .map(|a| a.value(0))
            .ok_or_else(|| DataFusionError::Internal("the comparison returned no row".into()))
    };
    Ok(Comparison {
        written: value(0)?,
        expected: value(1)?,
        differing: value(2)?,
    })
}
