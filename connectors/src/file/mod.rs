//! File sources: JSON lines ([`JsonLinesSource`]) and CSV ([`CsvSource`])
//! over a file, a directory or a glob pattern; and file sinks
//! ([`JsonLinesSink`], [`CsvSink`]) writing one part file per parallel
//! instance into a directory, renamed into place when complete ([`FileSink`]
//! says how). The sections below are about the sources.
//!
//! ```no_run
//! use brook_connectors::file::{BadRecordPolicy, JsonLinesSource};
//!
//! #[derive(serde::Deserialize)]
//! struct Hit { path: String, status: u16 }
//!
//! let source = JsonLinesSource::<Hit>::new("access/*.jsonl")
//!     .on_bad_line(BadRecordPolicy::Drop);
//! ```
//!
//! # Parallel reading
//! Files are cut into byte ranges that the parallel instances share. A
//! range's reader owns the lines that start in it, so every line is read
//! exactly once, whatever the cut points: lines may be longer than a range,
//! end in `\n` or `\r\n`, and the last may lack its terminator. Blank lines
//! (empty, or only whitespace) are skipped; they are not records. Each instance emits its lines in file
//! order; there is no order across instances.
//!
//! # I/O and backpressure
//! Each instance reads on tokio's blocking pool, in chunks of about 1 MiB cut
//! at a line end, and sends them over a small bounded channel to its stream,
//! which parses them into batches of at most `batch_size` records. A slow
//! downstream fills the channel and holds the reader back.
//!
//! # Bad lines
//! [`BadRecordPolicy`] decides: fail the job naming `path:line`, drop and
//! count the line, or send it as a [`DeadLetter`] to a sink. A line longer
//! than [`FileSource::max_line_length`] is a bad line too: it is never
//! buffered whole, only its first bytes are kept.
//!
//! # Memory
//! Each instance holds a few chunks, one line of at most the maximum line
//! length, and parsing state for the files it is reading at the moment (all
//! its files in follow mode), not for every file it has read.
//!
//! # Shutdown
//! A stream ends when its files are read; if its reader stops before that
//! (it panicked), the stream fails naming the file. In follow mode
//! ([`FileSource::follow`]) it never ends by itself: the job drops it at
//! shutdown, and the reader notices within about one poll interval.

mod bad_line;
mod follow;
mod lines;
mod plan;
mod reader;
mod sink;
mod slots;
mod source;
mod stream;

#[cfg(test)]
mod tests;

pub use crate::bad_record::{BadRecordPolicy, DeadLetter, DeadLetterTarget};
pub use crate::codec::{Csv, Json, Text};
pub use sink::{CsvSink, FileSink, FileSinkWriter, JsonLinesSink};
pub use source::{
    CsvSource, DEFAULT_MAX_LINE_LENGTH, DEFAULT_POLL_INTERVAL, DEFAULT_SPLIT_SIZE, FileSource,
    FileSplit, JsonLinesSource,
};
