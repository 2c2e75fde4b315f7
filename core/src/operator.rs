//! The [`Operator`] trait: per-batch logic with state, and its [`Collector`].
//!
//! Choose the least powerful tool that fits: closures (`map`, `filter`,
//! `flat_map`) for most work; an `Operator` when the logic needs state that
//! lives across batches or must act on watermarks and end of input.

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

    /// Called when the watermark advances, before the runtime forwards it.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_watermark(&mut self, _watermark: EventTime, _out: &mut Collector<Out>) -> Result<()> {
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
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            batch: Batch::new(),
        }
    }
}

impl<T> Collector<T> {
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
