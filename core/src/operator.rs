//! The [`Operator`] trait: per-batch logic with state, and its [`Collector`].
//!
//! Choose the least powerful tool that fits: closures (`map`, `filter`,
//! `flat_map`) for most work; an `Operator` when the logic needs state that
//! lives across batches or must act on watermarks, timers and end of input.
//!
//! # Watermarks
//!
//! An operator's output watermark is what it puts in its collector with
//! [`Collector::emit_watermark`]. The default [`Operator::on_watermark`]
//! forwards the input watermark as it is; an operator that holds records
//! back (a window, a buffer) emits them first, then the watermark. Records
//! emitted in a call go downstream before the watermark emitted in it.
//! A watermark that does not advance is never forwarded.

use crate::context::OperatorContext;
use crate::error::Result;
use crate::record::{Batch, EventTime, Record};

/// Per-batch logic. Each parallel instance gets its own clone.
pub trait Operator<In, Out>: Clone + Send + 'static {
    /// Called once per instance before the first batch.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn open(&mut self, _ctx: &OperatorContext) -> Result<()> {
        Ok(())
    }

    /// Processes one batch, emitting into `out`.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()>;

    /// Called when the input watermark (the minimum over all inputs)
    /// advances. The default forwards it; an operator that overrides this
    /// emits its own output watermark, or none to hold it back.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<Out>) -> Result<()> {
        out.emit_watermark(watermark);
        Ok(())
    }

    /// Called once the processing time (wall clock, milliseconds since the
    /// epoch) asked for through the context's
    /// [`ProcessingTimer`](crate::time::ProcessingTimer) has come. Every
    /// operator of the task is called, so check what is actually due.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_processing_time(&mut self, _now_ms: i64, _out: &mut Collector<Out>) -> Result<()> {
        Ok(())
    }

    /// The operator's state, encoded for a checkpoint (see
    /// [`state::encode`](crate::state::encode)); `None` for a stateless
    /// operator.
    ///
    /// # Errors
    /// State that cannot be encoded.
    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        Ok(None)
    }

    /// Restores state made by [`Operator::snapshot`], after `open` and
    /// before the first batch.
    ///
    /// # Errors
    /// A snapshot this operator cannot read.
    fn restore(&mut self, _snapshot: &[u8]) -> Result<()> {
        Ok(())
    }

    /// Called once at end of input; the last chance to emit.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_end(&mut self, _out: &mut Collector<Out>) -> Result<()> {
        Ok(())
    }
}

/// Where an operator puts its output. The runtime takes what was collected
/// after each call and sends it on as one batch.
#[derive(Debug)]
pub struct Collector<T> {
    batch: Batch<T>,
    watermark: Option<EventTime>,
    idle: bool,
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            batch: Batch::new(),
            watermark: None,
            idle: false,
        }
    }
}

impl<T> Collector<T> {
    /// Emits a watermark, after the records emitted in this call. Of several
    /// in one call, the largest counts.
    pub fn emit_watermark(&mut self, watermark: EventTime) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        self.idle = false;
    }

    /// Marks this operator's output idle: downstream stops waiting for its
    /// watermark until it emits records or a watermark again.
    pub fn mark_idle(&mut self) {
        self.idle = true;
    }

    /// Takes the watermark emitted since the last call, if any.
    pub fn take_watermark(&mut self) -> Option<EventTime> {
        self.watermark.take()
    }

    /// Takes the idle mark set since the last call.
    pub fn take_idle(&mut self) -> bool {
        std::mem::take(&mut self.idle)
    }

    /// Emits a value with an event time.
    pub fn emit(&mut self, timestamp: EventTime, value: T) {
        self.batch.push(timestamp, value);
    }

    /// Emits a record.
    pub fn emit_record(&mut self, record: Record<T>) {
        self.batch.push_record(record);
    }

    /// Emits a whole batch; cheap when nothing else was emitted yet.
    pub fn emit_batch(&mut self, mut batch: Batch<T>) {
        if self.batch.is_empty() {
            self.batch = batch;
        } else {
            self.batch.append(&mut batch);
        }
    }

    /// The number of records collected so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    /// Whether nothing was collected.
    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Takes what was collected, leaving the collector empty.
    pub fn take(&mut self) -> Batch<T> {
        std::mem::take(&mut self.batch)
    }
}
