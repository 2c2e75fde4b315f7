//! The [`Sink`] trait: where records leave a dataflow.

use std::future::Future;

use crate::context::SinkContext;
use crate::error::Result;
use crate::record::{Batch, EventTime};
use crate::split::{JobOutcome, PlanContext};

/// A consumer of records.
///
/// A sink is planned once when the dataflow is built ([`plan`](Self::plan)),
/// opens one [`SinkWriter`] per parallel instance when the job starts
/// ([`open`](Self::open)), and is told once when the whole job has ended
/// without error ([`finish`](Self::finish)). See [`split`](crate::split)
/// for the whole lifecycle.
pub trait Sink<T>: Send + 'static {
    /// The writer of one instance.
    type Writer: SinkWriter<T>;

    /// Plans the sink, once, when the dataflow is built: checks the
    /// configuration and claims the output (for example, locks an output
    /// directory against a second writer). Writes no data.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a configuration the sink
    /// cannot run with (an output directory that is a file, one another
    /// job is writing); `build()` returns it naming the node.
    fn plan(&mut self, _ctx: &PlanContext) -> Result<()> {
        Ok(())
    }

    /// Called once, on the blocking pool, after every task of the job has
    /// ended without error (every writer of this sink is closed): the
    /// point where the run's output becomes final. Not called when the job
    /// fails, nor when its future is dropped.
    ///
    /// # Errors
    /// The job then fails with the error, naming the sink.
    fn finish(&mut self, _outcome: JobOutcome) -> Result<()> {
        Ok(())
    }

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
