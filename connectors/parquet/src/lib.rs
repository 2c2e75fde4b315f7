//! The Parquet sink ([`ParquetSink`]): values of the user's own type as rows
//! of rolling, optionally partitioned Parquet files, with the Arrow schema
//! derived from the type once. Feature `parquet`.
//!
//! ```no_run
//! use brook_parquet::ParquetSink;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Stat { window_start: i64, service: String, count: u64 }
//!
//! let sink = ParquetSink::<Stat>::new("out/stats")
//!     .timestamp_millis("window_start")
//!     .partition_by_date(|s| s.window_start);
//! ```
//!
//! # Schema
//! [`ParquetSink::new`] traces the Arrow schema from `T` (a struct that is
//! `Serialize + Deserialize`) with serde_arrow when the job starts: nested
//! structs are struct columns, `Vec`s lists, `Option`s nullable, enums
//! without data dictionary-encoded strings. [`ParquetSink::with_schema`]
//! takes the fields instead, for types that do not trace. Either way a
//! schema that serde_arrow or Parquet cannot handle (an enum with data is a
//! union, which Parquet cannot hold) fails the job at start with
//! [`Error::Config`](brook_core::Error::Config), before anything is written.
//!
//! # Timestamps
//! Parquet has a `TIMESTAMP` type, which SQL reads as a time rather than a
//! number. [`ParquetSink::timestamp_millis`] stores a field that way
//! (`TIMESTAMP(MILLIS)`, UTC): the field is an `i64` of epoch milliseconds,
//! as Brook's event times are, or an RFC 3339 string such as a
//! `chrono::DateTime<Utc>`. With an explicit schema, give the field the
//! type `DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()))`
//! (any unit) over the same values.
//!
//! # Files
//! Instance `i` writes files named `part-<run>-<i>-<seq>.parquet` in the
//! sink's directory, or in a partition directory below it; the directory is
//! created, and locked against a second writer, when the dataflow is built
//! (see [`output`](brook_connectors::output)). `<run>` is the time the sink started, in epoch
//! milliseconds, and 6 random hex digits (`1700000000000-3fa9c2`), so a
//! later run into the same directory adds files next to the earlier ones
//! and never overwrites them; `<seq>` (`00000`, `00001`, ...) counts the
//! files the instance started in this run. An instance or a partition that
//! gets no rows writes no file. Only the values are written, not their
//! event times (mark a field holding one as a timestamp).
//!
//! # Rename on close
//! While it is written, a file has a hidden in-progress name in the same
//! directory, `.part-<run>-<i>-<seq>.parquet.inprogress`. When it rolls, or
//! at end of input, the instance writes its last rows and the Parquet
//! footer, syncs the file, renames it to its final name and syncs the
//! directory. A file under a final name is always complete. Readers never
//! pick up an in-progress file: DataFusion listing tables take only names
//! ending in `.parquet`, and most tools (Hive, Spark, Brook's file sources)
//! also skip names starting with `.` or `_`. At end of input, and when the
//! job drains on a graceful shutdown (Ctrl-C), every open file of every
//! partition is published.
//!
//! # Rolling
//! A file is published and the next started when it reaches
//! [`max_file_bytes`](ParquetSink::max_file_bytes) (estimated; default 128
//! MiB), [`max_rows_per_file`](ParquetSink::max_rows_per_file) (default no
//! limit), or has been open for
//! [`rollover_interval`](ParquetSink::rollover_interval) (default 60 s) or
//! without a new row for
//! [`inactivity_interval`](ParquetSink::inactivity_interval) (default 60
//! s): the defaults of Flink's rolling policy. Time limits are checked on
//! every write, watermark and idle input, and the instance's task wakes for
//! them when no input comes, so rows become visible at most about a
//! rollover interval after they arrive.
//!
//! # Partitioning
//! [`partition_by_field`](ParquetSink::partition_by_field) and
//! [`partition_by_date`](ParquetSink::partition_by_date) add Hive-style
//! `key=value` directory levels (`date=2023-11-14/service=api/`), which
//! DataFusion listing tables with partition columns, Spark and Hive read
//! back as columns; [`partition_by`](ParquetSink::partition_by) adds any
//! relative path. Levels nest in the order they are added. Values are
//! escaped so that they cannot leave the sink's directory or hide a
//! directory. Each instance keeps one open file per partition it writes
//! to, with its buffer and row group in memory; a partition that goes
//! quiet is closed after the inactivity interval.
//!
//! # Replacing the earlier output
//! By default every run adds its files to the directory.
//! [`ParquetSink::replace_on_success`] makes a run replace the one before
//! it when, and only when, the whole job succeeds; its files stay hidden
//! until then (see [`output`](brook_connectors::output) for the commit record that
//! makes this atomic for `brook sql`).
//!
//! # After a crash
//! A job that crashes, fails or is dropped before its files roll leaves
//! them hidden under their in-progress names, possibly partial, never
//! renamed. The next job to write the directory holds its lock, so no
//! writer is at work on them: it removes them when it is built. Files
//! already published stay. The sink does not yet take part in
//! checkpoints: after a restart, rows in published files may be written
//! again.
//!
//! # I/O and backpressure
//! Values are serialized into Arrow arrays on the task, 8192 rows per file
//! at most; each full buffer is encoded, compressed (zstd level 3 by
//! default, see [`compression`](ParquetSink::compression) and
//! [`writer_properties`](ParquetSink::writer_properties)) and written on
//! tokio's blocking pool, and the write is awaited, so a slow disk holds
//! the input back. Row groups hold up to 1 Mi rows
//! ([`max_row_group_size`](ParquetSink::max_row_group_size)).
//!
//! # Errors
//! A failed write, rename or directory creation is
//! [`Error::Io`](brook_core::Error::Io) naming the path; a value that does
//! not fit the schema (with an explicit one) is
//! [`Error::BadRecord`](brook_core::Error::BadRecord) naming the file and
//! row. Either fails the job; the failing instance's files stay in
//! progress.

mod part;
mod partition;
mod schema;
mod sink;
mod writer;

#[cfg(test)]
mod tests;

pub use arrow::datatypes::{DataType, Field, FieldRef, Fields, TimeUnit};
pub use parquet::basic::{Compression, ZstdLevel};
pub use parquet::file::properties::WriterProperties;
pub use serde_arrow::schema::TracingOptions;
pub use sink::{
    DEFAULT_INACTIVITY_INTERVAL, DEFAULT_MAX_FILE_BYTES, DEFAULT_MAX_ROW_GROUP_SIZE,
    DEFAULT_ROLLOVER_INTERVAL, ParquetSink,
};
pub use writer::ParquetSinkWriter;
