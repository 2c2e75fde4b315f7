//! The [`Source`] trait: where records enter a dataflow.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use futures::stream::{BoxStream, Stream, StreamExt};

use crate::context::SourceContext;
use crate::error::Result;
use crate::record::{Batch, EventTime};
use crate::split::{PlanContext, SourceSplit, round_robin};

/// A partitioned producer of records.
///
/// A source is planned once, when the dataflow is built: [`plan`](Self::plan)
/// checks its configuration and cuts its input into splits, and
/// [`assign`](Self::assign) gives each parallel instance its share. When
/// the job starts, the runtime calls [`open`](Self::open) once per
/// instance, on the same value, with that instance's splits. See
/// [`split`](crate::split) for the whole lifecycle.
///
/// # Examples
///
/// ```
/// use brook_core::prelude::*;
/// use futures::stream::{self, StreamExt};
///
/// /// The numbers below `n`, cut into ranges of 100.
/// struct Numbers(u64);
///
/// #[derive(Debug, Clone)]
/// struct Range(u64, u64);
/// impl SourceSplit for Range {
///     type Position = u64; // the next number to emit
///     fn id(&self) -> SplitId { SplitId::new(format!("{}..{}", self.0, self.1)) }
///     fn start(&self) -> u64 { self.0 }
/// }
///
/// impl Source<u64> for Numbers {
///     type Split = Range;
///     fn plan(&mut self, _: &PlanContext) -> Result<Vec<Range>> {
///         Ok((0..self.0).step_by(100).map(|s| Range(s, (s + 100).min(self.0))).collect())
///     }
///     fn open(&mut self, _: &SourceContext, splits: Vec<Range>) -> Result<BoxedSourceStream<u64>> {
///         let values: Batch<u64> = splits.iter().flat_map(|r| r.0..r.1).map(Record::untimed).collect();
///         Ok(stream::iter([Ok(SourceEvent::Batch(values))]).boxed())
///     }
/// }
/// ```
pub trait Source<T>: Send + 'static {
    /// The pieces this source's input is cut into.
    type Split: SourceSplit;

    /// Plans the source, once, when the dataflow is built and the node's
    /// parallelism is known ([`PlanContext::parallelism`]): checks the
    /// configuration and lists the splits of the input. May do a little
    /// blocking I/O (listing files, asking brokers for metadata).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a configuration the
    /// source cannot run with (a path that names no file, a bad option);
    /// `build()` returns it naming the node.
    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<Self::Split>>;

    /// Gives each of `parallelism` instances its share of the planned
    /// splits: a vector of `parallelism` shares. By default, round-robin
    /// ([`round_robin`]).
    fn assign(&self, splits: Vec<Self::Split>, parallelism: usize) -> Vec<Vec<Self::Split>> {
        round_robin(splits, parallelism)
    }

    /// Opens one parallel instance, to read `splits`, its share.
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
    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<Self::Split>,
    ) -> Result<BoxedSourceStream<T>>;

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
    /// Records read, and where each split they came from now stands: the
    /// position after them (the next line, offset or index to read). A
    /// checkpoint records the latest position of each split, taken between
    /// two events, so a batch and its positions are always in it together;
    /// a restored job resumes there. Make it with
    /// [`SourceEvent::batch_at`]. Sources that can resume
    /// ([`SourceSplit::RESUMABLE`]) yield their batches this way.
    BatchAt(Batch<T>, Vec<SplitPosition>),
    /// How far this instance has read one of its splits, with no record
    /// (past lines that were dropped, say): every record yielded before
    /// comes before the position. Make it with [`SourceEvent::position`].
    Position(SplitPosition),
}

/// The position of one split, in a [`SourceEvent::Position`].
#[derive(Clone)]
pub struct SplitPosition {
    /// The index of the split among those the instance was opened with.
    pub(crate) split: usize,
    /// A `<Split as SourceSplit>::Position`.
    pub(crate) position: Arc<dyn Any + Send + Sync>,
}

impl fmt::Debug for SplitPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SplitPosition")
            .field("split", &self.split)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SplitPosition {
    /// The same split, and the same position value.
    fn eq(&self, other: &Self) -> bool {
        self.split == other.split && Arc::ptr_eq(&self.position, &other.position)
    }
}

impl<T> SourceEvent<T> {
    /// The position `position` of split `split`, the index of the split
    /// among those [`Source::open`] was given. `P` must be the split's
    /// [`SourceSplit::Position`]: another type fails the job.
    pub fn position<P: Any + Send + Sync>(split: usize, position: P) -> Self {
        SourceEvent::Position(SplitPosition::new(split, position))
    }

    /// A batch and the positions of the splits it read from (each the
    /// index of the split among those [`Source::open`] was given, and its
    /// [`SourceSplit::Position`] after the batch).
    pub fn batch_at<P: Any + Send + Sync>(
        batch: Batch<T>,
        positions: impl IntoIterator<Item = (usize, P)>,
    ) -> Self {
        let positions = positions
            .into_iter()
            .map(|(split, p)| SplitPosition::new(split, p))
            .collect();
        SourceEvent::BatchAt(batch, positions)
    }
}

impl SplitPosition {
    /// Position `position` of split `split`.
    fn new<P: Any + Send + Sync>(split: usize, position: P) -> Self {
        SplitPosition {
            split,
            position: Arc::new(position),
        }
    }
}

impl<T> SourceEvent<T> {
    /// The batch, if this is one.
    pub fn into_batch(self) -> Option<Batch<T>> {
        match self {
            SourceEvent::Batch(batch) | SourceEvent::BatchAt(batch, _) => Some(batch),
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

/// Plans `source` for `parallelism` instances and opens instance
/// `instance` with its share, outside a job: for tests and tools that read
/// a source directly. Each call plans again.
///
/// # Errors
/// What [`Source::plan`] or [`Source::open`] returns.
pub fn open_instance<T, S: Source<T>>(
    source: &mut S,
    node: &str,
    instance: usize,
    parallelism: usize,
) -> Result<BoxedSourceStream<T>> {
    open_in_context(
        source,
        &SourceContext::standalone(node, instance, parallelism),
    )
}

/// As [`open_instance`], with the instance, parallelism and node of `ctx`,
/// which the opened instance gets (its counters, timer and shutdown token).
///
/// # Errors
/// What [`Source::plan`] or [`Source::open`] returns.
pub fn open_in_context<T, S: Source<T>>(
    source: &mut S,
    ctx: &SourceContext,
) -> Result<BoxedSourceStream<T>> {
    let p = ctx.parallelism();
    let splits = source.plan(&PlanContext::standalone(ctx.node_name(), p))?;
    let share = source
        .assign(splits, p)
        .into_iter()
        .nth(ctx.instance())
        .unwrap_or_default();
    source.open(ctx, share)
}

/// Plans `source` once for `parallelism` instances and opens every
/// instance with its share, outside a job, as the runtime does: for tests
/// and tools that read a source directly.
///
/// # Errors
/// What [`Source::plan`] or [`Source::open`] returns.
pub fn open_all<T, S: Source<T>>(
    source: &mut S,
    node: &str,
    parallelism: usize,
) -> Result<Vec<BoxedSourceStream<T>>> {
    let splits = source.plan(&PlanContext::standalone(node, parallelism))?;
    let shares = source.assign(splits, parallelism);
    shares
        .into_iter()
        .enumerate()
        .map(|(i, share)| source.open(&SourceContext::standalone(node, i, parallelism), share))
        .collect()
}
