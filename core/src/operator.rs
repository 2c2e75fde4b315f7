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
//!
//! # Side outputs
//!
//! Besides its main output, an operator may emit records of other types to
//! side outputs named by an [`OutputTag`], as Flink's `OutputTag`: a window
//! its late records, a parse step the records it could not parse.
//! [`Stream::side_output`](crate::Stream::side_output) makes a tag's
//! records a stream of their own; a tag no stream was made for has no
//! consumer, and [`Collector::emit_side`] then drops the record and says
//! so (the operator counts it). Side outputs carry the operator's
//! watermarks and end of input, as its main output does; within a call,
//! side records go downstream before the main output.

use std::any::Any;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::OperatorContext;
use crate::error::Result;
use crate::record::{Batch, EventTime, Record};
use crate::state::{RestoredState, Snapshot};

/// The name and record type of a side output: a second typed stream an
/// operator can emit to (see [the module docs](self)).
///
/// ```
/// use brook_core::OutputTag;
///
/// /// The lines a parser could not read, with why.
/// const BAD_LINES: OutputTag<(String, String)> = OutputTag::new("bad-lines");
/// assert_eq!(BAD_LINES.name(), "bad-lines");
/// ```
pub struct OutputTag<S> {
    name: &'static str,
    _s: PhantomData<fn() -> S>,
}

impl<S> OutputTag<S> {
    /// A tag named `name`, unique among one operator's side outputs.
    pub const fn new(name: &'static str) -> Self {
        OutputTag {
            name,
            _s: PhantomData,
        }
    }

    /// The tag's name.
    pub const fn name(&self) -> &'static str {
        self.name
    }
}

impl<S> Clone for OutputTag<S> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S> Copy for OutputTag<S> {}

impl<S> std::fmt::Debug for OutputTag<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "OutputTag({:?})", self.name)
    }
}

/// The records collected for one consumed side output: a `Batch<S>` of
/// the tag's type, made at its first record.
pub(crate) struct SideSlot {
    pub(crate) name: Arc<str>,
    pub(crate) batch: Option<Box<dyn Any + Send>>,
}

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

    /// Called when a checkpoint barrier arrives, before
    /// [`snapshot`](Operator::snapshot): what the operator emits here goes
    /// downstream ahead of the barrier, so it belongs to the checkpoint
    /// without being in this operator's state (an operator that buffers
    /// output, such as a pre-aggregation, sends it on here).
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_barrier(&mut self, _out: &mut Collector<Out>) -> Result<()> {
        Ok(())
    }

    /// The operator's state for a checkpoint, `None` for a stateless
    /// operator. Keyed state goes by key group
    /// ([`Snapshot::keyed`](crate::state::Snapshot::keyed)), so that the
    /// checkpoint restores at another parallelism; state of the instance as
    /// a whole (a watermark) goes in
    /// [`Snapshot::instance`](crate::state::Snapshot::instance).
    ///
    /// # Errors
    /// State that cannot be encoded.
    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Ok(None)
    }

    /// Restores state made by [`Operator::snapshot`], after `open` and
    /// before the first batch: this instance's key groups and, at the same
    /// parallelism, its own instance state, or at another parallelism every
    /// old instance's, to merge (see [`RestoredState`]).
    ///
    /// # Errors
    /// A snapshot this operator cannot read.
    fn restore(&mut self, _state: &RestoredState) -> Result<()> {
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
pub struct Collector<T> {
    batch: Batch<T>,
    watermark: Option<EventTime>,
    idle: bool,
    /// One slot per side output that has a consumer.
    sides: Vec<SideSlot>,
}

impl<T> std::fmt::Debug for Collector<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("records", &self.batch.len())
            .field("watermark", &self.watermark)
            .field("idle", &self.idle)
            .field(
                "sides",
                &self.sides.iter().map(|s| &*s.name).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl<T> Default for Collector<T> {
    fn default() -> Self {
        Collector {
            batch: Batch::new(),
            watermark: None,
            idle: false,
            sides: Vec::new(),
        }
    }
}

impl<T> Collector<T> {
    /// A collector whose side outputs `names` have consumers.
    pub(crate) fn with_sides(names: impl IntoIterator<Item = Arc<str>>) -> Self {
        Collector {
            sides: names
                .into_iter()
                .map(|name| SideSlot { name, batch: None })
                .collect(),
            ..Collector::default()
        }
    }

    /// Emits a value with an event time to the side output `tag`. Returns
    /// whether it went anywhere: `false` when no stream was made of the
    /// tag, and the value is dropped (count it, so it is never silently
    /// lost).
    pub fn emit_side<S: Send + 'static>(
        &mut self,
        tag: &OutputTag<S>,
        timestamp: EventTime,
        value: S,
    ) -> bool {
        let Some(slot) = self.sides.iter_mut().find(|s| &*s.name == tag.name) else {
            return false;
        };
        let batch = slot
            .batch
            .get_or_insert_with(|| Box::new(Batch::<S>::new()));
        match batch.downcast_mut::<Batch<S>>() {
            Some(batch) => {
                batch.push(timestamp, value);
                true
            }
            // Two tags of one name and different types: refused by the
            // builder, so never here.
            None => false,
        }
    }

    /// A collector as the runtime makes it when the side outputs named
    /// `names` have consumers: to run an operator outside a job (tests).
    pub fn with_side_outputs<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        Self::with_sides(names.into_iter().map(Arc::from))
    }

    /// Takes what was emitted to the side output `tag` since the last
    /// call: to read an operator's side output outside a job (tests).
    pub fn take_side<S: Send + 'static>(&mut self, tag: &OutputTag<S>) -> Batch<S> {
        self.sides
            .iter_mut()
            .find(|s| &*s.name == tag.name)
            .and_then(|s| s.batch.take())
            .and_then(|b| b.downcast::<Batch<S>>().ok())
            .map_or_else(Batch::new, |b| *b)
    }

    /// Whether the side output `tag` has a consumer.
    pub fn has_side<S>(&self, tag: &OutputTag<S>) -> bool {
        self.sides.iter().any(|s| &*s.name == tag.name)
    }

    /// Takes what was collected for each side output, by slot index.
    pub(crate) fn take_sides(&mut self) -> impl Iterator<Item = (usize, Box<dyn Any + Send>)> + '_ {
        self.sides
            .iter_mut()
            .enumerate()
            .filter_map(|(i, s)| s.batch.take().map(|b| (i, b)))
    }

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
