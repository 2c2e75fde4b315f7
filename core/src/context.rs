//! What a parallel instance of a source, operator or sink knows about where
//! it runs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::metrics::NodeMetrics;
use crate::time::{Clock, ProcessingTimer};

/// The context of one parallel instance of a node.
#[derive(Debug, Clone)]
pub struct TaskContext {
    pub(crate) job: Arc<str>,
    pub(crate) node: Arc<str>,
    pub(crate) instance: usize,
    pub(crate) parallelism: usize,
    pub(crate) batch_size: usize,
    pub(crate) shutdown: CancellationToken,
    pub(crate) metrics: Arc<NodeMetrics>,
    pub(crate) timer: ProcessingTimer,
    /// Where this instance acknowledges checkpoints, when the job takes
    /// them.
    pub(crate) acker: Option<crate::checkpoint::coordinator::Acker>,
    /// A source instance's positions in the newest completed checkpoint,
    /// left for its stream to take.
    pub(crate) completed: Option<Arc<CompletedPositions>>,
}

/// A source instance's split positions in the newest checkpoint that
/// completed: a `Vec<Position>` in split order.
#[derive(Debug, Default)]
pub(crate) struct CompletedPositions(
    std::sync::Mutex<Option<(crate::CheckpointId, Box<dyn std::any::Any + Send>)>>,
);

impl CompletedPositions {
    /// Leaves checkpoint `id`'s positions for the stream.
    pub(crate) fn set(&self, id: crate::CheckpointId, positions: Box<dyn std::any::Any + Send>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some((id, positions));
    }
}

impl TaskContext {
    /// A context for tests and for running a source or sink outside a job,
    /// on the [current](Clock::current) clock (the system clock unless
    /// another was [entered](Clock::enter); see also
    /// [`with_clock`](Self::with_clock)).
    pub fn standalone(node: &str, instance: usize, parallelism: usize) -> Self {
        TaskContext {
            job: Arc::from("standalone"),
            node: Arc::from(node),
            instance,
            parallelism,
            batch_size: crate::dataflow::DEFAULT_BATCH_SIZE,
            shutdown: CancellationToken::new(),
            metrics: Arc::new(NodeMetrics::default()),
            timer: ProcessingTimer::default(),
            acker: None,
            completed: None,
        }
    }

    /// For a source instance in a job with checkpoints: the positions of
    /// its splits (in the order [`Source::open`](crate::Source::open) got
    /// them) in the newest checkpoint that completed since the last call,
    /// with its number. A Kafka source commits them to its consumer group,
    /// so that lag shows what the job has made durable. `P` is the split's
    /// [`Position`](crate::SourceSplit::Position); `None` for another type.
    pub fn take_completed_positions<P: 'static>(&self) -> Option<(crate::CheckpointId, Vec<P>)> {
        let slot = self.completed.as_ref()?;
        let (id, positions) = slot.0.lock().unwrap_or_else(|p| p.into_inner()).take()?;
        positions.downcast::<Vec<P>>().ok().map(|p| (id, *p))
    }

    /// This context for a sink outside the dataflow, such as a source's
    /// dead-letter sink: it gets no checkpoint barriers, so it takes no part
    /// in checkpoints and publishes as it writes.
    pub fn detached(&self) -> TaskContext {
        TaskContext {
            acker: None,
            ..self.clone()
        }
    }

    /// Whether the job takes checkpoints: a sink then pre-commits at each
    /// barrier ([`SinkWriter::checkpoint`](crate::SinkWriter::checkpoint))
    /// instead of publishing as it goes.
    pub fn checkpoints_enabled(&self) -> bool {
        self.acker.is_some()
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.job
    }

    /// The node's name, as given to the builder.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// This instance's index, in `0..parallelism()`.
    pub fn instance(&self) -> usize {
        self.instance
    }

    /// The number of parallel instances of this node.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The number of records a batch should hold at most.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// Cancelled when the job shuts down. Sources stop reading when it is;
    /// the runtime then drains what they produced.
    pub fn shutdown(&self) -> &CancellationToken {
        &self.shutdown
    }

    /// This instance's counters, for a node to count what it drops or
    /// routes elsewhere.
    pub fn metrics(&self) -> &NodeMetrics {
        &self.metrics
    }

    /// This instance's counters, to keep past `open`.
    pub fn metrics_handle(&self) -> Arc<NodeMetrics> {
        self.metrics.clone()
    }

    /// The task's processing-time timer: an operator keeps a clone from
    /// [`Operator::open`](crate::Operator::open) and asks it for a call to
    /// [`Operator::on_processing_time`](crate::Operator::on_processing_time).
    pub fn processing_timer(&self) -> &ProcessingTimer {
        &self.timer
    }

    /// The clock of this task's processing time: read the time with
    /// `ctx.clock().now_ms()` (or its monotonic [`Clock::now`]), never the
    /// system clock directly, so that tests can drive time. The clock of
    /// the [`processing_timer`](Self::processing_timer).
    pub fn clock(&self) -> &Clock {
        self.timer.clock()
    }

    /// This context on `clock`, with a fresh processing-time timer on it:
    /// for a test that opens a source, operator or sink by hand on a
    /// [`ManualClock`](crate::time::ManualClock). Set it before opening
    /// anything with the context: what was opened keeps the old timer.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::TaskContext;
    /// use brook_core::time::ManualClock;
    ///
    /// let manual = ManualClock::new(1_000);
    /// let ctx = TaskContext::standalone("op", 0, 1).with_clock(manual.clock());
    /// manual.advance(Duration::from_secs(1));
    /// assert_eq!(ctx.clock().now_ms(), 2_000);
    /// ```
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.timer = ProcessingTimer::with_clock(clock);
        self
    }
}

/// The context given to a source instance when it opens.
pub type SourceContext = TaskContext;
/// The context given to a sink instance when it opens.
pub type SinkContext = TaskContext;
/// The context given to an operator instance when it opens.
pub type OperatorContext = TaskContext;
