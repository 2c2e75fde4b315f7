//! [`BadLinePolicy`]: what a file source does with a line it cannot parse,
//! and [`DeadLetter`], the record a dead-letter sink receives.

use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Batch, PlanContext, Result, Sink, SinkContext, SinkWriter};
use futures::future::BoxFuture;

/// What a file source does with a line it cannot parse.
///
/// A line longer than [`FileSource::max_line_length`](super::FileSource::max_line_length)
/// is a bad line too, blank or not.
///
/// Whatever the policy, every non-blank line of a file is accounted for:
/// records emitted + lines dropped + lines dead-lettered = non-blank lines
/// (not counting a CSV header; counting too-long lines).
#[derive(Clone, Default)]
pub enum BadLinePolicy {
    /// Fail the job with [`Error::BadRecord`](brook_core::Error::BadRecord),
    /// located as `<path>:<line>` (1-based, absolute in the file).
    #[default]
    Fail,
    /// Skip the line and count it in the node's `dropped` metric; log one
    /// warning per file, naming the first bad line's byte offset (and its
    /// line number when known without counting lines).
    Drop,
    /// Send the line as a [`DeadLetter`] to a sink, and count it in the
    /// node's `dead_lettered` metric. Build it with
    /// [`BadLinePolicy::dead_letter`].
    DeadLetter(DeadLetterTarget),
}

impl BadLinePolicy {
    /// Sends bad lines to `sink`, which is opened once per parallel instance
    /// of the source. Writes are awaited: a slow dead-letter sink slows the
    /// source down.
    pub fn dead_letter(sink: impl Sink<DeadLetter>) -> Self {
        BadLinePolicy::DeadLetter(DeadLetterTarget(Arc::new(Mutex::new(Box::new(sink)))))
    }
}

impl std::fmt::Debug for BadLinePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BadLinePolicy::Fail => f.write_str("Fail"),
            BadLinePolicy::Drop => f.write_str("Drop"),
            BadLinePolicy::DeadLetter(_) => f.write_str("DeadLetter(..)"),
        }
    }
}

/// A line a file source could not parse, as sent to a dead-letter sink.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeadLetter {
    /// The file's path.
    pub source: String,
    /// The line number, 1-based, in the whole file.
    pub line: u64,
    /// The byte offset of the line's start in the file.
    pub offset: u64,
    /// The line without its terminator, as UTF-8 (invalid bytes replaced).
    /// For a line longer than the maximum line length, only its first bytes
    /// (at most 1 KiB), and `reason` says so.
    pub raw: String,
    /// Why the line could not be parsed.
    pub reason: String,
}

/// The sink of [`BadLinePolicy::DeadLetter`], shared by every parallel
/// instance of the source. Made by [`BadLinePolicy::dead_letter`].
#[derive(Clone)]
pub struct DeadLetterTarget(Arc<Mutex<Box<dyn ErasedSink>>>);

impl DeadLetterTarget {
    /// Plans the dead-letter sink, when its source is planned.
    pub(crate) fn plan(&self, ctx: &PlanContext) -> Result<()> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .plan(ctx)
    }

    /// Opens one writer, for one source instance.
    pub(crate) fn open(&self, ctx: &SinkContext) -> Result<Box<dyn ErasedWriter>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .open(ctx)
    }
}

/// A [`Sink<DeadLetter>`] without its writer type.
trait ErasedSink: Send {
    fn plan(&mut self, ctx: &PlanContext) -> Result<()>;
    fn open(&mut self, ctx: &SinkContext) -> Result<Box<dyn ErasedWriter>>;
}

impl<S: Sink<DeadLetter>> ErasedSink for S {
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        Sink::plan(self, ctx)
    }

    fn open(&mut self, ctx: &SinkContext) -> Result<Box<dyn ErasedWriter>> {
        Ok(Box::new(Sink::open(self, ctx)?))
    }
}

/// A [`SinkWriter<DeadLetter>`] with boxed futures.
pub(crate) trait ErasedWriter: Send {
    /// Writes a batch of dead letters.
    fn write(&mut self, batch: Batch<DeadLetter>) -> BoxFuture<'_, Result<()>>;
    /// Flushes what was written.
    fn flush(&mut self) -> BoxFuture<'_, Result<()>>;
    /// Closes the writer after the last write.
    fn close(&mut self) -> BoxFuture<'_, Result<()>>;
}

impl<W: SinkWriter<DeadLetter>> ErasedWriter for W {
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
