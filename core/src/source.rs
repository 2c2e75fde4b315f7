//! The [`Source`] trait: where records enter a dataflow.

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::context::SourceContext;
use crate::error::Result;
use crate::record::{Batch, EventTime};

/// A partitioned producer of records.
///
/// The runtime calls [`Source::open`] once per parallel instance, on the
/// same value, with the instance's index in the context; each instance reads
/// its own share of the input (files, byte ranges, partitions).
///
/// # Examples
///
/// ```
/// use brook_core::prelude::*;
/// use futures::stream::{self, StreamExt};
///
/// struct Numbers(u64);
/// impl Source<u64> for Numbers {
///     fn open(&mut self, ctx: &SourceContext) -> Result<BoxedSourceStream<u64>> {
///         let (me, n) = (ctx.instance() as u64, ctx.parallelism() as u64);
///         let values: Batch<u64> = (0..self.0).filter(move |v| v % n == me)
///             .map(Record::untimed).collect();
///         Ok(stream::iter([Ok(SourceEvent::Batch(values))]).boxed())
///     }
/// }
/// ```
pub trait Source<T>: Send + 'static {
    /// Opens one parallel instance.
    ///
    /// Should do no blocking I/O itself: the work starts when the stream is
    /// first polled. The stream ends when this instance's input is
    /// exhausted; an unbounded source's stream never ends and is dropped at
    /// shutdown. Besides batches it may yield watermarks (a source that
    /// knows its event times best, such as one with partitions) and idle
    /// marks; see [`SourceEvent`].
    ///
    /// # Errors
    /// A configuration the source cannot open with. Errors while reading
    /// come through the stream and fail the job, naming the source.
    ///
    /// # Cancellation
    /// Dropping the stream releases every resource it holds.
    fn open(&mut self, ctx: &SourceContext) -> Result<BoxedSourceStream<T>>;

    /// The most parallel instances this source can use, if it is limited
    /// (an iterator can be read by one instance only).
    fn max_parallelism(&self) -> Option<usize> {
        None
    }
}

/// What a source instance yields: batches, and the control events only a
/// source can know.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceEvent<T> {
    /// Records read.
    Batch(Batch<T>),
    /// No record at or below this event time will follow from this
    /// instance. Watermarks that do not advance are ignored.
    Watermark(EventTime),
    /// This instance has nothing to read for now (no partitions assigned, or
    /// all of them quiet past the idle timeout): downstream stops waiting
    /// for its watermark until it yields again.
    Idle,
}

impl<T> SourceEvent<T> {
    /// The batch, if this is one.
    pub fn into_batch(self) -> Option<Batch<T>> {
        match self {
            SourceEvent::Batch(batch) => Some(batch),
            _ => None,
        }
    }
}

impl<T> From<Batch<T>> for SourceEvent<T> {
    fn from(batch: Batch<T>) -> Self {
        SourceEvent::Batch(batch)
    }
}

/// The stream a source instance produces.
pub type BoxedSourceStream<T> = BoxStream<'static, Result<SourceEvent<T>>>;

/// Turns a stream of batches into a source stream.
pub fn from_batches<T, S>(batches: S) -> BoxedSourceStream<T>
where
    T: Send + 'static,
    S: Stream<Item = Result<Batch<T>>> + Send + 'static,
{
    batches.map(|r| r.map(SourceEvent::Batch)).boxed()
}
