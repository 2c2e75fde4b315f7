//! [`SqlError`]: what can go wrong registering tables and running queries.

use std::path::PathBuf;

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

    /// The result could not be formatted.
    #[error("formatting the result: {0}")]
    Format(arrow::error::ArrowError),
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
