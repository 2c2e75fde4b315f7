//! # brook-connectors
//!
//! Where records come from and go to:
//! - [`memory`]: a source from a `Vec` or an iterator, and a collecting sink;
//! - [`file`](mod@file): JSON-lines and CSV sources over files, directories and globs,
//!   split across parallel readers, with a follow mode for growing logs and a
//!   policy for bad lines; CSV and JSON-lines file sinks;
//! - [`codec`]: JSON, CSV, text and bytes, one record at a time, for the
//!   file sources and sinks and for Kafka's;
//! - [`bad_record`]: the one policy for records a source cannot read (fail,
//!   drop, or dead-letter to any sink), for every source;
//! - [`StdoutSink`]: one line per record on standard output;
//! - [`output`] and [`publish`]: what every directory sink shares: one writer
//!   at a time, hidden in-progress files published by rename, and the commit
//!   record of a run that replaces the one before.
//!
//! Kafka (`brook-kafka`) and Parquet (`brook-parquet`) are crates of their
//! own beside this one, built on [`output`] and [`publish`].

pub mod bad_record;
pub mod codec;
pub mod file;
pub mod memory;
pub mod output;
pub mod publish;
mod stdout;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;

pub use bad_record::{BadRecordPolicy, DeadLetter, DeadLetterTarget, DeadLetterWriter};
pub use memory::{CollectSink, Collected, MemorySource};
pub use stdout::{StdoutSink, StdoutWriter};
