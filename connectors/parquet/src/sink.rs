//! [`ParquetSink`]: the builder of the Parquet sink, and its [`Sink`] impl.

use std::fmt::Display;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::Fields;
use brook_core::{CheckpointId, Error, JobOutcome, PlanContext, Result, Sink, SinkContext};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_arrow::schema::TracingOptions;

use crate::part::FileFormat;
use crate::partition::{Partitioner, valid_key};
use crate::schema::{self, SchemaSource};
use crate::writer::{ParquetSinkWriter, Rolling, Shared};
use brook_connectors::output::{self, OutputLock};
use brook_connectors::publish::check_dir;

/// The default size at which a file rolls: 128 MiB, as in Flink.
pub const DEFAULT_MAX_FILE_BYTES: u64 = 128 << 20;
/// The default age at which a file rolls: 60 seconds, as in Flink.
pub const DEFAULT_ROLLOVER_INTERVAL: Duration = Duration::from_secs(60);
/// The default time without a new row after which a file rolls: 60
/// seconds, as in Flink.
pub const DEFAULT_INACTIVITY_INTERVAL: Duration = Duration::from_secs(60);
/// The default most rows in a row group: parquet's own, 1 Mi rows.
pub const DEFAULT_MAX_ROW_GROUP_SIZE: usize = 1 << 20;
/// How many rows a file buffers before they are encoded and written.
const BUFFER_ROWS: usize = 8192;
/// The zstd level of the default compression.
const ZSTD_LEVEL: i32 = 3;

/// A sink writing values of `T` as rows of Parquet files in a directory,
/// optionally partitioned into Hive-style subdirectories, rolling to a new
/// file by size, row count or age. See the [module docs](super) for the
/// files it writes, when they appear and what a crash leaves.
///
/// The Arrow schema comes from `T` once, when the job starts: traced from
/// the type ([`new`](Self::new)) or given ([`with_schema`](Self::with_schema)).
///
/// ```no_run
/// use std::time::Duration;
/// use brook_parquet::{Compression, ParquetSink};
///
/// #[derive(serde::Serialize, serde::Deserialize)]
/// struct Stat { window_start: i64, service: String, count: u64, p99_ms: Option<f64> }
///
/// let sink = ParquetSink::<Stat>::new("out/stats")
///     .timestamp_millis("window_start")
///     .partition_by_date(|s| s.window_start)
///     .partition_by_field("service", |s| s.service.clone())
///     .rollover_interval(Duration::from_secs(300))
///     .compression(Compression::SNAPPY);
/// ```
pub struct ParquetSink<T> {
    dir: PathBuf,
    schema: SchemaSource,
    timestamps: Vec<String>,
    partitioner: Partitioner<T>,
    /// A partition key that cannot name a directory, refused at open.
    bad_key: Option<String>,
    rolling: Rolling,
    compression: Compression,
    max_row_group_size: usize,
    properties: Option<WriterProperties>,
    buffer_rows: usize,
    /// Whether a run replaces the earlier output when it succeeds.
    replace: bool,
    /// Made when planned (or at the first open), for every instance.
    shared: Option<Arc<Shared<T>>>,
    /// The directory's lock, held from planning until the sink is dropped.
    lock: Option<OutputLock>,
    /// The files the checkpoint being restored had staged, final paths.
    restored: Vec<PathBuf>,
    _t: PhantomData<fn(T)>,
}

impl<T: Serialize + DeserializeOwned> ParquetSink<T> {
    /// A sink writing into `dir`, created if missing, with the schema
    /// traced from `T`, which must be a struct.
    ///
    /// Tracing reads the type through its `Deserialize` impl. By default
    /// strings are `Utf8`, sequences `List`, maps Arrow `Map`s, `Option`s
    /// nullable, and enums without data dictionary-encoded strings; see
    /// [`tracing_options`](Self::tracing_options). An `i64` or a
    /// `chrono::DateTime<Utc>` is stored as a plain integer or string
    /// unless marked with [`timestamp_millis`](Self::timestamp_millis).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_source(
            dir.into(),
            SchemaSource::Traced {
                tracer: schema::tracer::<T>(),
                options: schema::default_tracing_options(),
            },
        )
    }

    /// Replaces the options the schema is traced with (see
    /// [`TracingOptions`]), for example to add serde_arrow overwrites.
    /// Start from [`TracingOptions::default`] or from what
    /// [`new`](Self::new) uses; enums with data trace as unions, which
    /// Parquet cannot hold.
    pub fn tracing_options(mut self, options: TracingOptions) -> Self {
        if let SchemaSource::Traced { options: o, .. } = &mut self.schema {
            *o = options;
        }
        self
    }
}

impl<T: Serialize> ParquetSink<T> {
    /// A sink writing into `dir`, created if missing, with the given Arrow
    /// fields instead of tracing them: for types that do not trace (no
    /// `Deserialize`, untagged enums, flattened fields) or to choose the
    /// column types. Values are serialized into these fields by
    /// serde_arrow; a `Timestamp` field takes an `i64` in its unit or an
    /// RFC 3339 string.
    pub fn with_schema(dir: impl Into<PathBuf>, fields: impl Into<Fields>) -> Self {
        Self::with_source(dir.into(), SchemaSource::Given(fields.into()))
    }
}

impl<T> ParquetSink<T> {
    fn with_source(dir: PathBuf, schema: SchemaSource) -> Self {
        ParquetSink {
            dir,
            schema,
            timestamps: Vec::new(),
            partitioner: Partitioner::default(),
            bad_key: None,
            rolling: Rolling {
                max_rows: u64::MAX,
                max_bytes: DEFAULT_MAX_FILE_BYTES,
                rollover: Some(DEFAULT_ROLLOVER_INTERVAL),
                inactivity: Some(DEFAULT_INACTIVITY_INTERVAL),
            },
            compression: Compression::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL).unwrap_or_default()),
            max_row_group_size: DEFAULT_MAX_ROW_GROUP_SIZE,
            properties: None,
            buffer_rows: BUFFER_ROWS,
            replace: false,
            shared: None,
            lock: None,
            restored: Vec::new(),
            _t: PhantomData,
        }
    }

    /// The directory the files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Stores the field at `path` (a field name, dotted for a nested one:
    /// `"window.start"`) as a Parquet `TIMESTAMP(MILLIS)` column in UTC
    /// (Arrow `Timestamp(Millisecond, "UTC")`), which SQL reads as a time.
    /// The field must be an `i64` of milliseconds since the epoch, or a
    /// string in RFC 3339 (`chrono::DateTime<Utc>` serializes as one), and
    /// may be an `Option`. Checked when the job starts: a field that is
    /// missing or of another type fails it with [`Error::Config`].
    pub fn timestamp_millis(mut self, path: impl Into<String>) -> Self {
        self.timestamps.push(path.into());
        self
    }

    /// Adds a level of partition directories: the relative path `f` gives
    /// for a value, such as `format!("service={}", v.service)` or
    /// `"a/b"` for two levels. Each `/`-separated segment is made a plain
    /// directory name: empty segments are dropped, `\` and control
    /// characters become `%XX`, and a segment that is `.` or `..` or would
    /// be hidden (a leading `.` or `_`) has its first character escaped. A
    /// path with no segment adds no level. Values in the path are not
    /// escaped otherwise: prefer [`partition_by_field`](Self::partition_by_field).
    pub fn partition_by<F>(mut self, f: F) -> Self
    where
        F: Fn(&T) -> String + Send + Sync + 'static,
    {
        self.partitioner.add_path(f);
        self
    }

    /// Adds a level of Hive-style partition directories `key=value`
    /// (`service=svc-07/`), which DataFusion, Spark and others read as a
    /// partition column `key`. The value is `f`'s result formatted with
    /// `Display` and escaped as Hive does: `/`, `\`, `%`, `=`, `:`, quotes,
    /// `#`, `*`, `?`, brackets, `^` and control characters become `%XX`,
    /// and an empty value becomes `__HIVE_DEFAULT_PARTITION__`. The key
    /// must be a plain name (not empty, no `/`, `\` or `=`, no leading `.`
    /// or `_`), or the job fails to start with [`Error::Config`].
    pub fn partition_by_field<V, F>(mut self, key: impl Into<String>, f: F) -> Self
    where
        V: Display,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        let key = key.into();
        if !valid_key(&key) {
            self.bad_key.get_or_insert_with(|| key.clone());
        }
        self.partitioner.add_field(key, f);
        self
    }

    /// Adds a level of partition directories by UTC date, `date=YYYY-MM-DD`
    /// (`date=2023-11-14/`), of the epoch milliseconds `f` gives: an event
    /// time or a window start.
    pub fn partition_by_date<F>(mut self, f: F) -> Self
    where
        F: Fn(&T) -> i64 + Send + Sync + 'static,
    {
        self.partitioner.add_date("date".into(), f);
        self
    }

    /// Makes each run replace the output of the run before it, when (and
    /// only when) it succeeds, as a batch job's output should: the run's
    /// files stay hidden, staged, until every source reached its end and
    /// the job ended without error; then they are renamed into place, the
    /// directory's commit record (`_brook_output.json`) lists them, and the
    /// files of the run before them (those its record listed) are removed.
    /// Files Brook did not write are never removed. A run that fails, or is
    /// stopped before its input ends, leaves the earlier output as it was
    /// and its own files are removed; so does a run that wrote no row.
    /// `brook sql` reads only the files the record lists, so its readers
    /// see the old run's output or the new one's, never a mix. See
    /// [`output`](brook_connectors::output).
    ///
    /// Without it (the default, for a job that runs on), every run adds its
    /// files to the directory as they roll.
    pub fn replace_on_success(mut self) -> Self {
        self.replace = true;
        self
    }

    /// Rolls a file once it holds `rows` rows (default: no limit;
    /// `u64::MAX` removes a limit).
    pub fn max_rows_per_file(mut self, rows: u64) -> Self {
        self.rolling.max_rows = rows;
        self
    }

    /// Rolls a file once its estimated size reaches `bytes` (default:
    /// [`DEFAULT_MAX_FILE_BYTES`], 128 MiB; `u64::MAX` removes the limit).
    /// The estimate is taken after each write of buffered rows (8192 rows)
    /// and counts the row group in progress at its estimated encoded size,
    /// so a file can pass the limit by about one such write.
    pub fn max_file_bytes(mut self, bytes: u64) -> Self {
        self.rolling.max_bytes = bytes;
        self
    }

    /// Rolls a file once it has been open this long (default:
    /// [`DEFAULT_ROLLOVER_INTERVAL`], 60 s; `None` for no limit). Checked
    /// on every write, watermark and idle input, and the task wakes for it
    /// even when no input comes. Ages and inactivity are measured on the
    /// task's [`clock`](brook_core::TaskContext::clock).
    pub fn rollover_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.rolling.rollover = interval.into();
        self
    }

    /// Rolls a file that has had no new row for this long (default:
    /// [`DEFAULT_INACTIVITY_INTERVAL`], 60 s; `None` for no limit): a
    /// partition that stops getting rows (yesterday's date) is published
    /// and its memory freed.
    pub fn inactivity_interval(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.rolling.inactivity = interval.into();
        self
    }

    /// The compression of every column (default: zstd level 3). Ignored
    /// when [`writer_properties`](Self::writer_properties) are given.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// The most rows in a row group (default:
    /// [`DEFAULT_MAX_ROW_GROUP_SIZE`]). A file's row group in progress is
    /// held in memory, encoded, until it is full or the file rolls. Ignored
    /// when [`writer_properties`](Self::writer_properties) are given.
    pub fn max_row_group_size(mut self, rows: usize) -> Self {
        self.max_row_group_size = rows;
        self
    }

    /// Every Parquet writer setting at once (compression per column,
    /// encodings, statistics, bloom filters, row groups), taking the place
    /// of [`compression`](Self::compression) and
    /// [`max_row_group_size`](Self::max_row_group_size).
    pub fn writer_properties(mut self, properties: WriterProperties) -> Self {
        self.properties = Some(properties);
        self
    }

    /// How many rows a file buffers before they are encoded and written,
    /// for tests that want small writes.
    #[cfg(test)]
    pub(crate) fn buffer_rows(mut self, rows: usize) -> Self {
        self.buffer_rows = rows.max(1);
        self
    }

    /// Checks the settings, makes the schema and the writer properties.
    fn shared(&mut self, job: &str) -> Result<Arc<Shared<T>>> {
        if let Some(shared) = &self.shared {
            return Ok(shared.clone());
        }
        let dir = self.dir.display();
        let config = |what: String| Err(Error::Config(format!("parquet sink into {dir}: {what}")));
        if let Some(key) = &self.bad_key {
            return config(format!("'{key}' cannot name a partition directory"));
        }
        let Rolling {
            max_rows,
            max_bytes,
            rollover,
            inactivity,
        } = self.rolling;
        if max_rows == 0 || max_bytes == 0 || self.max_row_group_size == 0 {
            return config("row and byte limits must be at least 1".into());
        }
        if rollover.is_some_and(|d| d.is_zero()) || inactivity.is_some_and(|d| d.is_zero()) {
            return config("rolling intervals must be longer than zero".into());
        }
        let schema = schema::resolve(&self.schema, &self.timestamps, std::any::type_name::<T>())?;
        let properties = match &self.properties {
            Some(properties) => properties.clone(),
            None => WriterProperties::builder()
                .set_compression(self.compression)
                .set_max_row_group_row_count(Some(self.max_row_group_size))
                .build(),
        };
        let shared = Arc::new(Shared {
            dir: self.dir.clone(),
            format: Arc::new(FileFormat { schema, properties }),
            partitioner: std::mem::take(&mut self.partitioner),
            rolling: self.rolling,
            buffer_rows: self.buffer_rows,
            run: output::run_id(),
            job: job.to_string(),
            replace: self.replace,
            staged: std::sync::Mutex::default(),
            checkpointed: std::sync::Mutex::default(),
        });
        self.shared = Some(shared.clone());
        Ok(shared)
    }
}

impl<T> Sink<T> for ParquetSink<T>
where
    T: Serialize + Send + 'static,
{
    type Writer = ParquetSinkWriter<T>;

    /// Checks the settings and makes the schema; locks the directory
    /// (creating it) against a second writer, completes a commit an
    /// earlier run left half-way, and removes the in-progress files that
    /// crashed runs left.
    ///
    /// # Errors
    /// [`Error::Config`] for a schema that cannot be traced or stored, a
    /// bad setting, a directory that is a file or that another job is
    /// writing; [`Error::Io`] naming the directory when it cannot be
    /// created or cleaned.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        let shared = self.shared(ctx.job_name())?;
        if self.lock.is_none() {
            self.lock = Some(OutputLock::acquire(&self.dir, ctx.job_name())?);
            output::recover(&self.dir)?;
            output::remove_abandoned_except(&self.dir, &self.restored)?;
            let restored = std::mem::take(&mut self.restored);
            if shared.replace {
                // Published when the restored run ends, with the rest.
                let mut ck = shared.checkpointed();
                ck.files.extend(restored.iter().cloned());
                ck.carried.clone_from(&restored);
                drop(ck);
                shared.staged().extend(restored);
            } else {
                output::publish_staged(&self.dir, &restored)?;
            }
        }
        Ok(())
    }

    /// Publishes the files the writers pre-committed for a checkpoint
    /// that completed (for a replacing run, only notes them: it publishes
    /// when it ends).
    ///
    /// # Errors
    /// [`Error::Io`] naming the path; [`Error::State`] for a pre-commit
    /// that does not parse.
    fn commit(&mut self, _checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let files = output::PreCommit::files(&self.dir, pre_committed)?;
        if !shared.replace {
            output::publish_staged(&self.dir, &files)?;
        }
        shared.checkpointed().files.extend(files);
        Ok(())
    }

    /// Notes the files the checkpoint had staged: they survive the
    /// clean-up of in-progress files when the sink is planned, and are
    /// published then (for a replacing run, when it ends).
    ///
    /// # Errors
    /// [`Error::State`] for a pre-commit that does not parse.
    fn restore(&mut self, _checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        self.restored = output::PreCommit::files(&self.dir, pre_committed)?;
        self.restored.sort();
        self.restored.dedup();
        Ok(())
    }

    /// Opens instance `i`, whose files are named
    /// `part-<run>-<i>-<seq>.parquet`.
    ///
    /// # Errors
    /// Those of [`plan`](Self::plan), for a sink opened without planning.
    fn open(&mut self, ctx: &SinkContext) -> Result<ParquetSinkWriter<T>> {
        check_dir(&self.dir)?;
        let shared = self.shared(ctx.job_name())?;
        Ok(ParquetSinkWriter::new(
            shared,
            ctx.instance(),
            ctx.processing_timer().clone(),
            ctx.checkpoints_enabled(),
        ))
    }

    /// For a replacing run ([`replace_on_success`](Self::replace_on_success)):
    /// commits the staged files when the job completed, removes them when
    /// it was stopped.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path that could not be renamed, written or
    /// removed.
    fn finish(&mut self, outcome: JobOutcome) -> Result<()> {
        let Some(shared) = &self.shared else {
            return Ok(());
        };
        let mut staged = std::mem::take(&mut *shared.staged());
        staged.sort();
        staged.dedup();
        let checkpointed = std::mem::take(&mut shared.checkpointed().files);
        match outcome {
            JobOutcome::Completed if shared.replace => {
                output::commit_replacing(&self.dir, &shared.job, &shared.run, &staged)?;
            }
            // With checkpoints: what no completed checkpoint published.
            JobOutcome::Completed => {
                output::publish_staged(&self.dir, &staged)?;
            }
            JobOutcome::Stopped => {
                // What completed checkpoints hold stays, staged, for the
                // run that restores from them; the rest is written again
                // by that run.
                let rest: Vec<PathBuf> = staged
                    .into_iter()
                    .filter(|f| !checkpointed.contains(f))
                    .collect();
                output::discard(&rest)?;
                if shared.replace {
                    tracing::warn!(
                        dir = %self.dir.display(),
                        "The job was stopped before its input ended: its output is not \
                         committed and the earlier output stays."
                    );
                }
            }
        }
        Ok(())
    }
}
