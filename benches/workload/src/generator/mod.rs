//! Generators: deterministic events made in memory, for benches, tests and
//! demos that need volume without files or brokers.
//!
//! [`LogGenerator`] makes the log events of the "logs-window" workload
//! (`benches/workload/README.md`) as [`GeneratedLog`]s: the same seven fields
//! and the same mix as `gen_logs.py`, event time advancing 1 ms per 100
//! events with bounded disorder (every event less than 2 s behind the
//! largest event time before it). Event `i` is a pure function of the seed
//! and `i`, so a run is the same on every machine, at every parallelism.
//!
//! # Ordering, backpressure and shutdown
//! Each instance makes its chunks of indexes in order, one batch per poll,
//! only as fast as downstream takes them: a generator blocked on a full
//! channel makes nothing. It is bounded: each instance's stream ends after
//! its last chunk, and the job then ends as any bounded job does; at
//! shutdown the runtime stops polling it.
//!
//! # Examples
//! The `ERROR` events of 10,000, through a job at parallelism 2:
//! ```
//! use brook_connectors::CollectSink;
//! use brook_workload::generator::{Level, LogGenerator};
//! use brook_core::prelude::*;
//! use brook_operators::StreamExt;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let mut flow = Dataflow::new("errors");
//! flow.set_parallelism(2);
//! let out = CollectSink::new();
//! let errors = out.handle();
//! flow.source("logs", LogGenerator::new(10_000, 42))
//!     .filter("errors", |e| e.level == Level::Error)
//!     .sink("collect", out);
//! let job = flow.build()?;
//! let metrics = job.metrics();
//! job.run(CancellationToken::new()).await?;
//! // The source's records_out is the progress: here, all of it.
//! assert_eq!(metrics.snapshot().node("logs").map(|n| n.total.records_out), Some(10_000));
//! assert!((350..650).contains(&errors.len()));
//! # Ok::<(), Error>(()) }).unwrap();
//! ```
//!
//! The same events as a JSON-lines file in `gen_logs.py`'s format, for
//! anything that reads one (a `JsonLinesSource`, another engine):
//! ```no_run
//! use brook_workload::generator::LogGenerator;
//!
//! let mut text = String::new();
//! for event in LogGenerator::new(100_000, 1).iter() {
//!     event.write_json_line(&mut text);
//! }
//! std::fs::write("logs.jsonl", text)?;
//! # Ok::<(), std::io::Error>(())
//! ```

mod event;
mod recipe;
pub(crate) mod rng;
mod source;
#[cfg(test)]
mod tests;

pub use event::{GeneratedLog, Level};
pub(crate) use source::Share;
pub use source::{CHUNK_EVENTS, DEFAULT_START_MS, GeneratedLogs, GeneratorSplit, LogGenerator};
