//! The [`Source`] trait: where records enter a dataflow.

use futures::stream::BoxStream;

use crate::context::SourceContext;
use crate::error::Result;
use crate::record::Batch;

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
///     fn open(&mut self, ctx: &SourceContext) -> Result<BoxedBatchStream<u64>> {
///         let (me, n) = (ctx.instance() as u64, ctx.parallelism() as u64);
///         let values: Batch<u64> = (0..self.0).filter(move |v| v % n == me)
///             .map(Record::untimed).collect();
///         Ok(stream::iter([Ok(values)]).boxed())
///     }
/// }
/// ```
pub trait Source<T>: Send + 'static {
    /// Opens one parallel instance.
    ///
    /// Should do no blocking I/O itself: the work starts when the stream is
    /// first polled. The stream ends when this instance's input is
    /// exhausted; an unbounded source's stream never ends and is dropped at
    /// shutdown.
    ///
    /// # Errors
    /// A configuration the source cannot open with. Errors while reading
    /// come through the stream and fail the job, naming the source.
    ///
    /// # Cancellation
    /// Dropping the stream releases every resource it holds.
    fn open(&mut self, ctx: &SourceContext) -> Result<BoxedBatchStream<T>>;

    /// The most parallel instances this source can use, if it is limited
    /// (an iterator can be read by one instance only).
    fn max_parallelism(&self) -> Option<usize> {
        None
    }
}

/// The stream of batches a source instance produces.
pub type BoxedBatchStream<T> = BoxStream<'static, Result<Batch<T>>>;
