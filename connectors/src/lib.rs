//! # brook-connectors
//!
//! Where records come from and go to:
//! - [`memory`]: a source from a `Vec` or an iterator, and a collecting sink;
//! - [`file`](mod@file): JSON-lines and CSV sources over files, directories and globs,
//!   split across parallel readers, with a follow mode for growing logs and a
//!   policy for bad lines;
//! - [`StdoutSink`]: one line per record on standard output;
//! - [`output`]: what every directory sink shares: one writer at a time, and
//!   the commit record of a run that replaces the one before;
//! - [`generator`]: deterministic events made in memory, such as the
//!   workload's log events ([`LogGenerator`]), for benches and tests.

pub mod file;
pub mod generator;
#[cfg(feature = "kafka")]
pub mod kafka;
pub mod memory;
pub mod output;
#[cfg(feature = "parquet")]
pub mod parquet;
mod publish;
mod stdout;
#[cfg(test)]
mod test_support;

pub use generator::{GeneratedLog, LogGenerator};
pub use memory::{CollectSink, Collected, MemorySource};
pub use stdout::{StdoutSink, StdoutWriter};
