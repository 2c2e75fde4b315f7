//! File sinks: JSON lines ([`JsonLinesSink`]) and CSV ([`CsvSink`]), one
//! part file per parallel instance in a directory.
//!
//! ```no_run
//! use brook_connectors::file::CsvSink;
//!
//! #[derive(serde::Serialize)]
//! struct Stat { service: String, count: u64 }
//!
//! let sink = CsvSink::<Stat>::new("out/stats").header(true);
//! ```
//!
//! # Files
//! Instance `i` of a sink writes `part-<i>.<ext>` in the sink's directory
//! (`part-0.csv`, `part-2.jsonl`), which is created if missing. An instance
//! that gets no records writes no file, not even a header-only one. The sink
//! does not empty the directory: a part file of an earlier run that this
//! run does not replace (a higher instance number, or an instance that got
//! nothing this time) stays. Give each run and each sink its own directory.
//!
//! # Rename on close
//! While an instance writes, its file has a hidden in-progress name,
//! `.part-<i>.<ext>.inprogress`. At end of input the instance writes what it
//! holds, syncs the file, renames it to `part-<i>.<ext>` (replacing a file
//! of that name) and syncs the directory. So a file under a final name is
//! always complete: no reader ever sees a partial file there. Readers skip
//! names that start with `.` or `_`, as Brook's file sources and most other
//! tools do. Output appears only at end of input: a job that never ends
//! (a followed source) publishes nothing until it is shut down.
//!
//! # With checkpoints: exactly once
//! In a job with checkpoints the sink commits in two phases, as the
//! Parquet sink does. Instance `i` writes `part-<i>-<run>-<seq>.<ext>`
//! (a run id and a sequence number: new names every run and checkpoint).
//! At each checkpoint barrier it finishes its file (writes the rest,
//! syncs it and its directory) under the hidden name and pre-commits it;
//! when the checkpoint is complete the sink publishes it (renames it to
//! its final name), and the next records go to a new file, with its own
//! CSV header. A job restored from a checkpoint publishes what that
//! checkpoint staged (a file already published counts as done) and
//! removes the in-progress files no checkpoint holds, which the restored
//! run writes again. So a reader never sees a partial file, nor one of a
//! checkpoint that did not complete, and after any crash every record is
//! in exactly one published file. Output then appears at each checkpoint,
//! not only at the end.
//!
//! # After a crash
//! Without checkpoints, a job that crashes, fails or is dropped before its
//! sinks close leaves
//! their in-progress files as they were: hidden, possibly partial, never
//! renamed. The next run of the same instance into the same directory
//! truncates and reuses the name; otherwise delete them by hand. A complete
//! part file from an earlier run keeps its final name until a new one
//! replaces it.
//!
//! # I/O and backpressure
//! Each instance encodes records on its task into an in-memory chunk of
//! about 1 MiB, and writes each full chunk on tokio's blocking pool; the
//! write is awaited, so a slow disk holds the input back. A writer holds at
//! most one chunk and one record beyond it. Idle-input flushes write
//! nothing: an in-progress file is invisible anyway.
//!
//! # Errors
//! A failed write is [`Error::Io`](brook_core::Error::Io) naming the path; a
//! value the format cannot hold (a nested struct in CSV) is
//! [`Error::BadRecord`](brook_core::Error::BadRecord) naming the file and
//! the record number. Either fails the job.

mod file_sink;
mod writer;

#[cfg(test)]
mod tests;

pub use file_sink::{CsvSink, FileSink, JsonLinesSink};
pub use writer::FileSinkWriter;
