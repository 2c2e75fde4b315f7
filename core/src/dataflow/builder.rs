//! [`Dataflow`]: the entry point of the builder.

use std::cell::RefCell;
use std::rc::Rc;

use crate::checkpoint::CheckpointConfig;
use crate::dataflow::config::JobConfig;
use crate::dataflow::graph::{Graph, Logic};
use crate::dataflow::stream::Stream;
use crate::error::Result;
use crate::runtime::erased::{Port, SourceFactory};
use crate::runtime::job::Job;
use crate::source::Source;

/// A dataflow under construction: add sources, chain operators on the
/// streams they return, end every branch in a sink, then [`build`](Self::build).
///
/// ```
/// use brook_core::prelude::*;
/// # use futures::stream::{self, StreamExt};
/// # struct Empty;
/// # impl Source<u32> for Empty {
/// #     type Split = InstanceSplit;
/// #     fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
/// #         Ok(InstanceSplit::per_instance(ctx))
/// #     }
/// #     fn open(&mut self, _: &SourceContext, _: Vec<InstanceSplit>) -> Result<BoxedSourceStream<u32>> {
/// #         Ok(stream::empty().boxed())
/// #     }
/// # }
/// let flow = Dataflow::new("example");
/// let numbers = flow.source("numbers", Empty);
/// // `numbers` is never consumed: build() says so.
/// let err = flow.build().err().expect("a plan error");
/// assert!(err.to_string().contains("'numbers'"));
/// ```
pub struct Dataflow {
    pub(crate) name: String,
    pub(crate) config: JobConfig,
    pub(crate) graph: Rc<RefCell<Graph>>,
    pub(crate) checkpoints: Option<CheckpointConfig>,
}

impl Dataflow {
    /// A new, empty dataflow with default settings.
    pub fn new(name: impl Into<String>) -> Self {
        Self::with_config(name, JobConfig::default())
    }

    /// A new, empty dataflow with the given settings.
    pub fn with_config(name: impl Into<String>, config: JobConfig) -> Self {
        Dataflow {
            name: name.into(),
            config,
            graph: Rc::default(),
            checkpoints: None,
        }
    }

    /// The job's settings.
    pub fn config(&self) -> &JobConfig {
        &self.config
    }

    /// Sets the parallelism of nodes that set none: at least 1 and at most
    /// [`MAX_PARALLELISM`](crate::MAX_PARALLELISM), or `build()` refuses it.
    pub fn set_parallelism(&mut self, parallelism: usize) -> &mut Self {
        self.config.parallelism = parallelism;
        self
    }

    /// Sets the most records a batch holds.
    pub fn set_batch_size(&mut self, batch_size: usize) -> &mut Self {
        self.config.batch_size = batch_size;
        self
    }

    /// Sets the capacity of task input channels, in batches.
    pub fn set_channel_capacity(&mut self, capacity: usize) -> &mut Self {
        self.config.channel_capacity = capacity;
        self
    }

    /// Takes checkpoints as `config` says, and restores from the newest
    /// complete one in its directory when the job is built (see
    /// [`checkpoint`](crate::checkpoint)). Off by default: a job without
    /// checkpoints that dies starts over.
    pub fn set_checkpoints(&mut self, config: CheckpointConfig) -> &mut Self {
        self.checkpoints = Some(config);
        self
    }

    /// Turns operator chaining on or off for the whole dataflow.
    pub fn set_chaining(&mut self, chaining: bool) -> &mut Self {
        self.config.chaining = chaining;
        self
    }

    /// Adds a source node named `name`.
    pub fn source<T: crate::Data, S: Source<T>>(
        &self,
        name: impl Into<String>,
        source: S,
    ) -> Stream<T> {
        let node = self.graph.borrow_mut().add_node(
            name.into(),
            Vec::new(),
            None,
            Some(Port::<T>::boxed()),
            Logic::Source(Box::new(SourceFactory::new(source))),
        );
        Stream::new(self.graph.clone(), node)
    }

    /// Validates the dataflow and plans it: each node's parallelism, each
    /// edge's partitioning, and which nodes are chained into one task.
    ///
    /// # Errors
    /// [`Error::Plan`](crate::Error::Plan) for misuse: a stream that is never
    /// consumed, a name used twice, a parallelism of 0, above what a node
    /// supports or above [`MAX_PARALLELISM`](crate::MAX_PARALLELISM)
    /// (the default or a node's own), a forward edge between different parallelisms, streams of
    /// another dataflow, or no source at all.
    pub fn build(self) -> Result<Job> {
        let graph = {
            let mut g = self.graph.borrow_mut();
            // Streams still held by the caller see an empty, built graph:
            // growing it is reported, never silently accepted.
            let built = Graph {
                built: true,
                ..Graph::default()
            };
            std::mem::replace(&mut *g, built)
        };
        Job::plan(self.name, self.config, graph, self.checkpoints)
    }
}
