//! [`BadRecordPolicy`]: what a source does with a record it cannot read,
//! the same for every source (a file's lines, a Kafka topic's messages),
//! and [`DeadLetter`], the record a dead-letter sink receives.
//!
//! A dead-letter sink is any [`Sink<DeadLetter>`]: a Parquet directory
//! (queryable with `brook sql`), a JSON-lines file, or a Kafka topic
//! (`brook_kafka::KafkaDeadLetterSink`, which writes each message back
//! as it was, with headers saying where it came from and why).

use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Batch, PlanContext, Result, Sink, SinkContext, SinkWriter};
use futures::future::BoxFuture;

/// What a source does with a record it cannot read: a line a file
/// source cannot parse (or one longer than its maximum line length), a
/// message a Kafka source cannot deserialize.
///
/// Whatever the policy, every record read is accounted for: records
/// emitted + dropped + dead-lettered = records read (for files: non-blank
/// lines, not counting a CSV header).
#[derive(Clone, Default)]
pub enum BadRecordPolicy {
    /// Fail the job with [`Error::BadRecord`](brook_core::Error::BadRecord),
    /// located as the source names it: `<path>:<line>` (1-based, absolute
    /// in the file), `<topic>/<partition>@<offset>`.
    #[default]
    Fail,
    /// Skip the record and count it in the node's `dropped` metric; log one
    /// warning per file or partition.
    Drop,
    /// Send the record as a [`DeadLetter`] to a sink, and count it in the
    /// node's `dead_lettered` metric. Build it with
    /// [`BadRecordPolicy::dead_letter`].
    DeadLetter(DeadLetterTarget),
}

impl BadRecordPolicy {
    /// Sends bad records to `sink`, which is planned with the source and
    /// opened once per parallel instance of it. Writes are awaited: a slow
    /// dead-letter sink slows the source down. A source that commits what
    /// it read (Kafka) flushes the dead-letter writer first, so a record is
    /// never lost between the two.
    pub fn dead_letter(sink: impl Sink<DeadLetter>) -> Self {
        BadRecordPolicy::DeadLetter(DeadLetterTarget(Arc::new(Mutex::new(Box::new(sink)))))
    }
}

impl std::fmt::Debug for BadRecordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadRecordPolicy::Fail => f.write_str("Fail"),
            BadRecordPolicy::Drop => f.write_str("Drop"),
            BadRecordPolicy::DeadLetter(_) => f.write_str("DeadLetter(..)"),
        }
    }
}

/// A record a source could not read, as sent to a dead-letter sink: where
/// it came from, what it was, and why.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// Where it was read: a file's path, or a Kafka topic.
    pub source: String,
    /// The Kafka partition; `None` for a file.
    #[serde(default)]
    pub partition: Option<i32>,
    /// The line number in a file, 1-based, in the whole file; 0 for a
    /// Kafka message.
    pub line: u64,
    /// The byte offset of the line's start in a file, or the message's
    /// offset in its partition.
    pub offset: u64,
    /// The record as text: the line without its terminator, or the
    /// message's value, as UTF-8 (invalid bytes replaced). For a line longer
    /// than the maximum line length, only its first bytes (at most 1 KiB),
    /// and `reason` says so.
    pub raw: String,
    /// Why it could not be read.
    pub reason: String,
    /// The message's key (Kafka).
    #[serde(default)]
    pub key: Option<Vec<u8>>,
    /// The message's value, byte for byte, when the source keeps it (Kafka:
    /// a dead-letter topic gets the message back exactly); `None` for a
    /// tombstone or a file's line.
    #[serde(default)]
    pub value: Option<Vec<u8>>,
    /// The message's headers, in order (Kafka).
    #[serde(default)]
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The message's timestamp, epoch milliseconds (Kafka).
    #[serde(default)]
    pub timestamp: Option<i64>,
}

/// The sink of [`BadRecordPolicy::DeadLetter`], shared by every parallel
/// instance of the source. Made by [`BadRecordPolicy::dead_letter`].
#[derive(Clone)]
pub struct DeadLetterTarget(Arc<Mutex<Box<dyn ErasedSink>>>);

impl DeadLetterTarget {
    /// Plans the dead-letter sink, when its source is planned.
    ///
    /// # Errors
    /// The sink's own planning errors.
    pub fn plan(&self, ctx: &PlanContext) -> Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .plan(ctx)
    }

    /// Opens one writer, for one source instance.
    ///
    /// # Errors
    /// The sink's own errors of `open`.
    pub fn open(&self, ctx: &SinkContext) -> Result<Box<dyn DeadLetterWriter>> {
        // Outside the dataflow, it sees no barrier: it publishes as it
        // writes, whether the job checkpoints or not (at least once).
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open(&ctx.detached())
    }
}

/// A [`Sink<DeadLetter>`] without its writer type.
trait ErasedSink: Send {
    fn plan(&mut self, ctx: &PlanContext) -> Result<()>;
    fn open(&mut self, ctx: &SinkContext) -> Result<Box<dyn DeadLetterWriter>>;
}

impl<S: Sink<DeadLetter>> ErasedSink for S {
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        Sink::plan(self, ctx)
    }

    fn open(&mut self, ctx: &SinkContext) -> Result<Box<dyn DeadLetterWriter>> {
        Ok(Box::new(Sink::open(self, ctx)?))
    }
}

/// The writer of a dead-letter sink, for one source instance: a
/// [`SinkWriter<DeadLetter>`] with boxed futures.
pub trait DeadLetterWriter: Send {
    /// Writes a batch of dead letters.
    fn write(&mut self, batch: Batch<DeadLetter>) -> BoxFuture<'_, Result<()>>;
    /// Flushes what was written.
    fn flush(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Closes the writer after the last write.
    fn close(&mut self) -> BoxFuture<'_, Result<()>>;
}

impl<W: SinkWriter<DeadLetter>> DeadLetterWriter for W {
    fn write(&mut self, batch: Batch<DeadLetter>) -> BoxFuture<'_, Result<()>> {
        Box::pin(SinkWriter::write(self, batch))
    }

    fn flush(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(SinkWriter::flush(self))
    }

    fn close(&mut self) -> BoxFuture<'_, Result<()>> {
        Box::pin(SinkWriter::close(self))
    }
}

impl std::fmt::Debug for DeadLetterTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeadLetterTarget(..)")
    }
}
