//! # brook-core
//!
//! The heart of Brook: typed records and batches, the dataflow builder, the
//! physical plan and the runtime; event time and watermarks ([`time`]);
//! keyed state, timers and state encoding ([`state`]).
//!
//! A dataflow is built from [`Source`]s, operators and [`Sink`]s:
//! [`Dataflow::source`] returns a [`Stream`], operators (from
//! `brook-operators`, or any [`Operator`] through [`Stream::process`]) return
//! new streams, and [`Stream::sink`] ends a branch. [`Dataflow::build`]
//! validates the graph once and plans it; [`Job::run`] runs it on tokio.
//!
//! ```
//! use brook_core::prelude::*;
//! use futures::stream::{self, StreamExt};
//!
//! /// Emits 0..n once (on instance 0).
//! struct Count(u64);
//! impl Source<u64> for Count {
//!     type Split = InstanceSplit;
//!     fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
//!         Ok(InstanceSplit::per_instance(ctx))
//!     }
//!     fn open(&mut self, _: &SourceContext, splits: Vec<InstanceSplit>) -> Result<BoxedSourceStream<u64>> {
//!         let n = if splits.iter().any(|s| s.index == 0) { self.0 } else { 0 };
//!         let batch: Batch<u64> = (0..n).map(Record::untimed).collect();
//!         Ok(stream::iter([Ok(SourceEvent::Batch(batch))]).boxed())
//!     }
//! }
//!
//! /// Keeps the even numbers.
//! #[derive(Clone)]
//! struct Even;
//! impl Operator<u64, u64> for Even {
//!     fn process(&mut self, mut batch: Batch<u64>, out: &mut Collector<u64>) -> Result<()> {
//!         batch.retain(|v| v % 2 == 0);
//!         out.emit_batch(batch);
//!         Ok(())
//!     }
//! }
//!
//! /// Counts what it gets.
//! struct Total(std::sync::Arc<std::sync::atomic::AtomicU64>);
//! struct TotalWriter(std::sync::Arc<std::sync::atomic::AtomicU64>);
//! impl Sink<u64> for Total {
//!     type Writer = TotalWriter;
//!     fn open(&mut self, _: &SinkContext) -> Result<TotalWriter> { Ok(TotalWriter(self.0.clone())) }
//! }
//! impl SinkWriter<u64> for TotalWriter {
//!     async fn write(&mut self, batch: Batch<u64>) -> Result<()> {
//!         self.0.fetch_add(batch.len() as u64, std::sync::atomic::Ordering::Relaxed);
//!         Ok(())
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let total = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
//! let flow = Dataflow::new("evens");
//! flow.source("numbers", Count(10))
//!     .process("even", Even)
//!     .sink("total", Total(total.clone()));
//! flow.build()?.run(Default::default()).await?;
//! assert_eq!(total.load(std::sync::atomic::Ordering::Relaxed), 5);
//! # Ok::<(), Error>(()) }).unwrap();
//! ```

pub mod checkpoint;
pub mod context;
pub mod dataflow;
pub mod error;
pub mod message;
pub mod metrics;
pub mod operator;
pub mod partition;
pub mod record;
pub mod runtime;
pub mod sink;
pub mod source;
pub mod split;
pub mod state;
pub mod time;

pub use checkpoint::{CheckpointConfig, Restore};
pub use context::{OperatorContext, SinkContext, SourceContext, TaskContext};
pub use dataflow::{
    Dataflow, JobConfig, KeySelector, KeyedStream, MAX_PARALLELISM, SinkHandle, Stream,
};
pub use error::{BoxError, Error, Result, RetryHint};
pub use message::{CheckpointId, Message};
pub use metrics::{
    CheckpointRecord, CheckpointStats, Counters, EdgeInfo, JobMetrics, MetricsSnapshot, NodeKind,
    NodeMetrics, NodeSnapshot,
};
pub use operator::{Collector, Operator, OutputTag};
pub use record::{
    Batch, Data, EventTime, MAX_EVENT_TIME, MIN_EVENT_TIME, NO_TIMESTAMP, Record, is_event_time,
};
pub use runtime::{Job, RunningJob};
pub use sink::{Sink, SinkWriter};
pub use source::{
    BoxedSourceStream, Source, SourceEvent, SplitPosition, open_all, open_in_context, open_instance,
};
pub use split::{InstanceSplit, JobOutcome, PlanContext, SourceSplit, SplitId, round_robin};
pub use time::{Clock, ManualClock, ProcessingTimer, WatermarkGenerator, Watermarks};
pub use tokio_util::sync::CancellationToken;

/// Everything a pipeline author needs, in one import.
pub mod prelude {
    pub use crate::{
        Batch, BoxedSourceStream, CancellationToken, CheckpointConfig, Collector, Data, Dataflow,
        Error, EventTime, InstanceSplit, Job, JobConfig, JobOutcome, KeyedStream, NO_TIMESTAMP,
        Operator, OperatorContext, OutputTag, PlanContext, Record, Result, Sink, SinkContext,
        SinkWriter, Source, SourceContext, SourceEvent, SourceSplit, SplitId, Stream, Watermarks,
    };
}
