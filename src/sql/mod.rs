//! SQL over what sinks wrote: DataFusion queries over Parquet sink
//! directories and live in-memory tables.
//!
//! ```no_run
//! # async fn example() -> Result<(), brook::sql::SqlError> {
//! use brook::sql::{OutputFormat, SqlEngine};
//!
//! let engine = SqlEngine::new()?;
//! engine.register_parquet("stats", "brook-out/stats").await?;
//! let result = engine
//!     .query("SELECT service, sum(count_5xx) FROM stats GROUP BY service ORDER BY 2 DESC LIMIT 5")
//!     .await?;
//! println!("{}", result.format(OutputFormat::Table)?);
//! # Ok(()) }
//! ```
//!
//! # Tables
//! - [`SqlEngine::register_parquet`] registers a directory of Parquet files
//!   (a [`ParquetSink`](brook_parquet::ParquetSink)'s output) as
//!   a DataFusion listing table. The files are listed again for every query,
//!   so a query sees every file closed so far. Only names ending in
//!   `.parquet` are read: a sink's hidden in-progress files
//!   (`.part-….parquet.inprogress`) never are, so a query never meets a
//!   partial file. In a directory whose sink replaces its output when a run
//!   succeeds ([`ParquetSink::replace_on_success`](brook_parquet::ParquetSink::replace_on_success)),
//!   only the files its commit record lists are read, so a query sees one
//!   whole run, never a run being written or two runs at once. Hive-style subdirectories (`service=svc-07/`) become
//!   string columns of that name, unless the files hold that column.
//! - [`SqlEngine::register_live`] registers a [`LiveTable`]: the latest row
//!   per key that a [`LiveTableSink`] received, read at the moment the
//!   query starts, while the job runs.
//!
//! # Read-only, with limits
//! Only queries run: `SELECT`, `WITH`, `VALUES`, `EXPLAIN`, `SHOW` and
//! `DESCRIBE`. DDL (`CREATE`, `DROP`), DML (`INSERT`, `COPY`) and other
//! statements (`SET`, transactions) are refused with
//! [`SqlError::Refused`] before anything runs. Every query is bounded:
//! - **Memory.** The engine's memory pool is limited
//!   ([`DEFAULT_MEMORY_LIMIT`] unless set), and nothing spills to disk: a
//!   query that needs more fails with DataFusion's "Resources exhausted"
//!   error instead of taking the machine's memory or disk. Functions whose
//!   output size comes from their arguments (`repeat`, `lpad`, `rpad`,
//!   `replace`, `regexp_replace`) refuse to make more than a quarter of the
//!   limit in one call. [`SqlEngine::query_stream`] hands the rows over
//!   batch by batch, and [`ResultWriter`] writes them as they come, so a
//!   large result is never held whole; [`SqlEngine::query`] collects the
//!   result, which must fit in the memory limit.
//! - **Time.** A query past its time limit ([`DEFAULT_TIMEOUT`] unless
//!   set with [`SqlEngine::with_timeout`]) is cancelled with
//!   [`SqlError::Timeout`].
//! - **Size.** A query of more than [`MAX_QUERY_TOKENS`] tokens is refused
//!   with [`SqlError::TooLarge`]; below that, queries nested thousands of
//!   levels deep (`1+1+…`, thousands of `AND`s or `UNION ALL`s) plan and
//!   run on the engine's own threads, whose stacks are large enough.
//!
//! # Malformed files
//! Every Parquet file listed for a table has its footer checked before
//! DataFusion reads it, and a panic in DataFusion or Parquet ends the
//! query, not the program ([`SqlError::Panicked`]); a file that cannot be
//! read gives [`SqlError::BadFile`], naming it.

mod committed;
mod diagnose;
mod error;
mod format;
mod limits;
mod live;
mod stream;
mod workers;

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::logical_expr::LogicalPlan;
use datafusion::object_store::ObjectStore;
use datafusion::prelude::{SessionConfig, SessionContext};
use futures::StreamExt;
use tokio::sync::mpsc;

pub use error::SqlError;
pub use format::{OutputFormat, ResultWriter};
pub use limits::MAX_QUERY_TOKENS;
pub use live::{LiveTable, LiveTableSink};
pub use stream::QueryStream;
pub use workers::THREAD_NAME_PREFIX;

use committed::BadParquetFile;
use workers::{AbortOnDrop, Workers};

/// The memory a query may use unless set otherwise: 1 GiB.
pub const DEFAULT_MEMORY_LIMIT: usize = 1 << 30;

/// How long a query may run unless set otherwise: 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// What [`SqlEngine::query`] accepts: queries only.
fn read_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A SQL engine over Brook's sink outputs: DataFusion with read-only
/// statements, a memory limit and a time limit, running each query on
/// threads of its own. Cheap to share: clone it.
#[derive(Clone)]
pub struct SqlEngine {
    ctx: SessionContext,
    memory_limit: usize,
    timeout: Option<Duration>,
    /// The local file system, as listing tables see it.
    files: Arc<committed::CommittedFiles>,
    /// The Parquet tables: name and absolute path.
    parquet_tables: Arc<RwLock<Vec<(String, PathBuf)>>>,
    /// How much the process's resident memory may grow during a query.
    rss_allowance: Option<usize>,
}

impl std::fmt::Debug for SqlEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqlEngine")
            .field("tables", &self.tables())
            .field("memory_limit", &self.memory_limit)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl SqlEngine {
    /// An engine with no tables, the [`DEFAULT_MEMORY_LIMIT`] and the
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// [`SqlError::Query`] if DataFusion's runtime cannot be set up.
    pub fn new() -> Result<Self, SqlError> {
        Self::with_memory_limit(DEFAULT_MEMORY_LIMIT)
    }

    /// An engine whose queries may use at most `bytes` of memory, with the
    /// [`DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    /// [`SqlError::Query`] if DataFusion's runtime cannot be set up.
    pub fn with_memory_limit(bytes: usize) -> Result<Self, SqlError> {
        // No spilling: a query past the limit fails. Spilling would also
        // expose DataFusion 55's RepartitionExec spill deadlock
        // (apache/datafusion#24883), where a query under a memory limit can
        // stop for good with every worker parked.
        // No cache of file listings (DataFusion keeps them forever by
        // default): every query lists a sink's directory again, to see the
        // files closed, committed or replaced since.
        let caches = CacheManagerConfig::default().with_list_files_cache_limit(0);
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(caches)
            .with_memory_limit(bytes, 1.0)
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .build_arc()?;
        // Local files as listed through sink directories' commit records.
        let files = Arc::new(committed::CommittedFiles::new());
        runtime.register_object_store(ObjectStoreUrl::local_filesystem().as_ref(), files.clone());
        // information_schema serves `SHOW TABLES` and `SHOW COLUMNS`.
        let config = SessionConfig::new().with_information_schema(true);
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        // The built-ins that make strings of any size, capped.
        for udf in limits::capped_functions(&ctx.state(), limits::function_output_cap(bytes)) {
            ctx.register_udf(udf);
        }
        Ok(SqlEngine {
            ctx,
            memory_limit: bytes,
            timeout: Some(DEFAULT_TIMEOUT),
            files,
            parquet_tables: Arc::default(),
            rss_allowance: None,
        })
    }

    /// The engine with a backstop for memory DataFusion does not account
    /// for (the copies some operators make, such as a grouped `array_agg`
    /// emitting its state): a query during which the process's resident
    /// memory grows by more than twice the memory limit (at least the
    /// limit plus 256 MiB) is cancelled with "Resources exhausted". The
    /// process's memory is checked every 10 ms while the caller waits for
    /// the next batch.
    ///
    /// This measures the whole process, so it suits a program whose main
    /// work is the engine's queries, one at a time (as `brook sql`); it is
    /// off by default. It does nothing where `/proc/self/status` cannot be
    /// read.
    pub fn with_process_memory_guard(mut self, on: bool) -> Self {
        self.rss_allowance = on.then(|| {
            self.memory_limit
                .saturating_mul(2)
                .max(self.memory_limit.saturating_add(256 << 20))
        });
        self
    }

    /// The engine with queries (and table registrations) limited to
    /// `limit` each, or unlimited with `None`. The time counts while the
    /// engine plans and runs the query, not while the caller holds a batch.
    pub fn with_timeout(mut self, limit: Option<Duration>) -> Self {
        self.timeout = limit;
        self
    }

    /// The memory limit of a query, in bytes.
    pub fn memory_limit(&self) -> usize {
        self.memory_limit
    }

    /// The time limit of a query, if any.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The registered tables' names, sorted.
    pub fn tables(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .ctx
            .catalog_names()
            .into_iter()
            .filter_map(|c| self.ctx.catalog(&c))
            .flat_map(|catalog| {
                catalog
                    .schema_names()
                    .into_iter()
                    .filter(|s| s != "information_schema")
                    .filter_map(move |s| catalog.schema(&s))
                    .flat_map(|schema| schema.table_names())
            })
            .collect();
        names.sort();
        names
    }

    /// Registers the Parquet files under `dir` (a directory, searched
    /// recursively, or one file) as table `name`.
    ///
    /// Hive-style partition directories (`key=value/`) become string
    /// columns named `key`, unless the files hold a column of that name
    /// already. The schema is read from the files present now,
    /// so there must be at least one.
    ///
    /// # Errors
    /// [`SqlError::Table`] for a name that is not a plain lower-case SQL
    /// identifier or is taken; [`SqlError::Directory`] when `dir` does not
    /// exist, holds no Parquet file yet, or cannot be read;
    /// [`SqlError::BadFile`] naming a file there that is not a readable
    /// Parquet file; [`SqlError::Timeout`] past the time limit.
    pub async fn register_parquet(
        &self,
        name: &str,
        dir: impl AsRef<Path>,
    ) -> Result<(), SqlError> {
        let dir = dir.as_ref();
        self.check_name(name)?;
        let fail = |reason: Box<dyn std::error::Error + Send + Sync>| SqlError::Directory {
            name: name.to_string(),
            path: dir.to_path_buf(),
            reason,
        };
        let absolute = std::path::absolute(dir).map_err(|e| fail(e.into()))?;
        let meta = std::fs::metadata(&absolute).map_err(|e| fail(e.into()))?;
        let mut location = absolute.to_string_lossy().into_owned();
        if meta.is_dir() && !location.ends_with('/') {
            location.push('/');
        }
        let url = ListingTableUrl::parse(&location).map_err(|e| fail(e.into()))?;
        if meta.is_dir() {
            self.files.watch(absolute.clone());
        }

        if meta.is_dir() && !has_parquet_file(&absolute) {
            return Err(fail(
                "no Parquet file there yet (a sink's files appear when they are closed)".into(),
            ));
        }
        // Schema inference reads every file's footer: on the engine's
        // threads, where a panic is an error.
        let state = self.ctx.state();
        let inferred = {
            let url = url.clone();
            self.limited(workers()?.run(async move {
                let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                    .with_file_extension(".parquet");
                let schema = options.infer_schema(&state, &url).await?;
                // A partition level named like a column the files hold
                // already (a sink partitioning by a field it also writes)
                // adds nothing.
                let partitions: Vec<(String, DataType)> = options
                    .infer_partitions(&state, &url)
                    .await?
                    .into_iter()
                    .filter(|column| schema.field_with_name(column).is_err())
                    .map(|column| (column, DataType::Utf8))
                    .collect();
                Ok((options.with_table_partition_cols(partitions), schema))
            }))
            .await
        };
        let (options, schema) = match inferred {
            Ok(inferred) => inferred,
            Err(e) => {
                let table = [(name.to_string(), absolute.clone())];
                return Err(match self.explain(e, &table).await {
                    e @ (SqlError::BadFile { .. }
                    | SqlError::Timeout { .. }
                    | SqlError::Panicked { .. }) => e,
                    e => fail(e.into()),
                });
            }
        };
        self.ctx
            .register_listing_table(name, location, options, Some(schema), None)
            .await
            .map_err(|e| fail(e.into()))?;
        self.parquet_tables
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((name.to_string(), absolute));
        Ok(())
    }

    /// Registers a live table: the rows a [`LiveTableSink`] holds when each
    /// query starts.
    ///
    /// # Errors
    /// [`SqlError::Table`] for a name that is not a plain lower-case SQL
    /// identifier or is taken.
    pub fn register_live<T, K>(&self, name: &str, table: &LiveTable<T, K>) -> Result<(), SqlError>
    where
        T: serde::Serialize + Send + 'static,
        K: Send + 'static,
    {
        self.check_name(name)?;
        self.ctx.register_table(name, table.provider())?;
        Ok(())
    }

    /// Runs one query and collects its result, which must fit in the
    /// memory limit; [`query_stream`](Self::query_stream) hands over a
    /// large result in batches instead.
    ///
    /// # Errors
    /// As [`query_stream`](Self::query_stream), and
    /// [`SqlError::Query`] ("Resources exhausted") for a result larger
    /// than the memory limit.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, SqlError> {
        let mut stream = self.query_stream(sql).await?;
        let reservation =
            MemoryConsumer::new("query result").register(&self.ctx.runtime_env().memory_pool);
        let mut batches = Vec::new();
        while let Some(batch) = stream.next_batch().await {
            let batch = batch?;
            reservation.try_grow(batch.get_array_memory_size())?;
            batches.push(batch);
        }
        Ok(QueryResult {
            schema: stream.schema(),
            batches,
        })
    }

    /// Starts one query: plans it, and hands its rows over batch by batch
    /// as [`QueryStream::next_batch`] asks for them. The query runs on the
    /// engine's threads, a batch or so ahead of the caller.
    ///
    /// # Errors
    /// [`SqlError::Refused`] for anything but a query, before it runs;
    /// [`SqlError::TooLarge`] for a query of more than
    /// [`MAX_QUERY_TOKENS`] tokens; [`SqlError::Query`] for a query
    /// DataFusion cannot plan; [`SqlError::Timeout`] past the time limit;
    /// [`SqlError::BadFile`] for a table's file that cannot be read;
    /// [`SqlError::Panicked`] when DataFusion panics. The stream's batches
    /// may fail the same ways, and with "Resources exhausted" past the
    /// memory limit.
    pub async fn query_stream(&self, sql: &str) -> Result<QueryStream, SqlError> {
        QueryStream::start(self, sql).await
    }

    /// `work`, cancelled past the time limit.
    async fn limited<T>(
        &self,
        work: impl Future<Output = Result<T, SqlError>>,
    ) -> Result<T, SqlError> {
        match self.timeout {
            None => work.await,
            Some(limit) => tokio::time::timeout(limit, work)
                .await
                .unwrap_or(Err(SqlError::Timeout { limit })),
        }
    }

    /// Table names are plain identifiers: SQL folds unquoted names to lower
    /// case, so a name with capitals could not be queried without quotes.
    fn check_name(&self, name: &str) -> Result<(), SqlError> {
        let refuse = |reason: &str| SqlError::Table {
            name: name.to_string(),
            reason: reason.to_string(),
        };
        let mut chars = name.chars();
        let plain = chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !plain {
            return Err(refuse(
                "a table name is lower-case letters, digits and `_`, not starting with a digit",
            ));
        }
        if self.ctx.table_exist(name)? {
            return Err(refuse("a table of that name is already registered"));
        }
        Ok(())
    }
}

/// Whether `dir` holds a visible `*.parquet` file, at any depth; hidden
/// names (`.` or `_` first) are skipped, as listing tables skip them.
fn has_parquet_file(dir: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name.starts_with('_') {
            return false;
        }
        match entry.file_type() {
            Ok(kind) if kind.is_dir() => has_parquet_file(&entry.path()),
            Ok(_) => name.ends_with(".parquet"),
            Err(_) => false,
        }
    })
}

/// Threads for one query or registration. Each query gets its own: a
/// cancelled query whose operator is deep in a long computation (a nested
/// loop join between two polls) keeps its threads busy until that
/// computation returns, and the next query must not wait for them.
fn workers() -> Result<Workers, SqlError> {
    Workers::new().map_err(|e| SqlError::Query(Box::new(DataFusionError::External(Box::new(e)))))
}

/// A `name=directory` pair, as `brook sql --table` takes it.
///
/// ```
/// let spec: brook::sql::TableSpec = "stats=brook-out/stats".parse().unwrap();
/// assert_eq!(spec.name, "stats");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSpec {
    /// The table's name.
    pub name: String,
    /// The directory of Parquet files.
    pub path: PathBuf,
}

impl std::str::FromStr for TableSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('=') {
            Some((name, path)) if !name.is_empty() && !path.is_empty() => Ok(TableSpec {
                name: name.to_string(),
                path: PathBuf::from(path),
            }),
            _ => Err(format!("expected NAME=DIRECTORY, got `{s}`")),
        }
    }
}

/// The result of a query: its schema and its rows as Arrow batches.
#[derive(Debug, Clone)]
pub struct QueryResult {
    /// The result's columns.
    pub schema: SchemaRef,
    /// The rows.
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    /// How many rows the result has.
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(RecordBatch::num_rows).sum()
    }

    /// The result as text: an aligned table, CSV with a header row, a JSON
    /// array of objects, or JSON lines.
    ///
    /// # Errors
    /// [`SqlError::Format`] for a value the format cannot show.
    pub fn format(&self, format: OutputFormat) -> Result<String, SqlError> {
        format::format(&self.schema, &self.batches, format)
    }
}

#[cfg(test)]
mod tests;
