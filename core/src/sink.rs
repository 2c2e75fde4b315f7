//! The [`Sink`] trait: where records leave a dataflow.

use std::future::Future;

use crate::context::SinkContext;
use crate::error::Result;
use crate::message::CheckpointId;
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

    /// Checkpoint `checkpoint` is complete and durable: publish what the
    /// writers pre-committed for it ([`SinkWriter::checkpoint`]), given
    /// here, one entry per writer that returned something. Called on the
    /// blocking pool, in checkpoint order. The default does nothing: a
    /// sink whose writes are visible at once gives at-least-once delivery
    /// (a restored job writes again what followed the checkpoint).
    ///
    /// # Errors
    /// The checkpoint is reported as failed; a restore will publish what it
    /// could not (see [`Sink::restore`]).
    fn commit(&mut self, checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        let _ = (checkpoint, pre_committed);
        Ok(())
    }

    /// The job restores from checkpoint `checkpoint`, whose writers
    /// pre-committed `pre_committed`: publish it (some or all of it may be
    /// published already: the process may have died during
    /// [`Sink::commit`]), and drop what was written after the checkpoint.
    /// Called once, before [`Sink::plan`].
    ///
    /// # Errors
    /// `build()` fails with the error, naming the node.
    fn restore(&mut self, checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        let _ = (checkpoint, pre_committed);
        Ok(())
    }

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

    /// Checkpoint barrier `checkpoint` has arrived: every record written
    /// before belongs to it. Pre-commit them: make them durable without
    /// making them visible (finish and sync the file being written) and
    /// return what [`Sink::commit`] must publish when the checkpoint
    /// completes, or `None` if nothing. The default flushes and returns
    /// `None`.
    ///
    /// # Errors
    /// Any failure fails the job with an error naming the sink node.
    fn checkpoint(
        &mut self,
        checkpoint: CheckpointId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>>> + Send {
        let _ = checkpoint;
        async {
            self.flush().await?;
            Ok(None)
        }
    }
}
