//! The [`Sink`] trait: where records leave a dataflow.

use std::future::Future;

use crate::context::SinkContext;
use crate::error::Result;
use crate::record::{Batch, EventTime};

/// A consumer of records. The runtime opens one [`SinkWriter`] per parallel
/// instance.
pub trait Sink<T>: Send + 'static {
    /// The writer of one instance.
    type Writer: SinkWriter<T>;

    /// Opens one parallel instance.
    ///
    /// # Errors
    /// A configuration the sink cannot open with.
    fn open(&mut self, ctx: &SinkContext) -> Result<Self::Writer>;

    /// The most parallel instances this sink can use, if it is limited.
    fn max_parallelism(&self) -> Option<usize> {
        None
    }
}

/// One instance of a sink.
///
/// Writes are awaited: a slow writer holds its input back, and through the
/// bounded channels, the sources (backpressure).
pub trait SinkWriter<T>: Send + 'static {
    /// Writes a batch.
    ///
    /// # Errors
    /// Any failure fails the job with an error naming the sink node.
    fn write(&mut self, batch: Batch<T>) -> impl Future<Output = Result<()>> + Send;

    /// Called when the watermark advances.
    fn on_watermark(&mut self, _watermark: EventTime) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Called when no input is waiting: a chance to flush buffers so that
    /// output is not held back while the input is idle.
    fn flush(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }

    /// Called once at end of input, after the last write.
    fn close(&mut self) -> impl Future<Output = Result<()>> + Send {
        async { Ok(()) }
    }
}
