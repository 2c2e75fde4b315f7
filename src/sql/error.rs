//! [`SqlError`]: what can go wrong registering tables and running queries.

use std::path::PathBuf;
use std::time::Duration;

use datafusion::error::DataFusionError;

/// An error of [`SqlEngine`](super::SqlEngine).
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The statement is not a query. Only queries run: `SELECT`, `WITH`,
    /// `VALUES`, `EXPLAIN`, `SHOW` and `DESCRIBE`.
    #[error("only queries run here (SELECT, WITH, VALUES, EXPLAIN, SHOW, DESCRIBE): {reason}")]
    Refused {
        /// Which kind of statement was refused, as DataFusion names it.
        reason: String,
    },

    /// A table's name is empty, malformed, or already taken.
    #[error("table `{name}`: {reason}")]
    Table {
        /// The table name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },

    /// A table's directory cannot be read as Parquet.
    #[error("table `{name}` at {}: {reason}", path.display())]
    Directory {
        /// The table name.
        name: String,
        /// The directory.
        path: PathBuf,
        /// Why it cannot be read.
        reason: Box<dyn std::error::Error + Send + Sync>,
    },

    /// Planning or running the query failed; a query past the memory limit
    /// ends here with DataFusion's "Resources exhausted" message.
    #[error("{0}")]
    Query(Box<DataFusionError>),

    /// A file of a table is not a readable Parquet file: too short, not
    /// Parquet, truncated, or corrupt.
    #[error("table `{table}`: {}: {reason}", file.display())]
    BadFile {
        /// The table whose directory holds the file.
        table: String,
        /// The file.
        file: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// The query has more tokens than a query may have
    /// ([`MAX_QUERY_TOKENS`](super::MAX_QUERY_TOKENS)): its nesting could
    /// be deeper than the engine can plan.
    #[error("the query is too large: {tokens} tokens, more than the {limit} a query may have")]
    TooLarge {
        /// The query's tokens.
        tokens: usize,
        /// The most a query may have.
        limit: usize,
    },

    /// The query ran past its time limit and was cancelled.
    #[error("the query was cancelled: it ran past its time limit of {}", seconds(*limit))]
    Timeout {
        /// The time limit.
        limit: Duration,
    },

    /// DataFusion or Parquet panicked while the engine planned or ran the
    /// query or read a table; the panic ended that work only, and the
    /// engine goes on.
    #[error("internal error of the query engine (a panic: {message})")]
    Panicked {
        /// The panic's message.
        message: String,
    },

    /// The result could not be formatted.
    #[error("formatting the result: {0}")]
    Format(arrow::error::ArrowError),

    /// The result could not be written out.
    #[error("writing the result: {0}")]
    Output(std::io::Error),
}

/// `60 s`, `1.5 s`.
fn seconds(limit: Duration) -> String {
    format!("{} s", limit.as_secs_f64())
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        SqlError::Query(Box::new(e))
    }
}

impl From<arrow::error::ArrowError> for SqlError {
    fn from(e: arrow::error::ArrowError) -> Self {
        SqlError::Format(e)
    }
}
