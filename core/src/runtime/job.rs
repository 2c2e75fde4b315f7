//! [`Job`]: a planned dataflow, and how it starts (see
//! [`RunningJob`](super::running::RunningJob) for how it ends).
//!
//! # Shutdown
//! Cancelling the token passed to [`Job::start`] stops the sources; what
//! they produced still drains through the dataflow, every operator sees end
//! of input, sinks flush and close, and the job ends with `Ok`.
//!
//! # Failure
//! The first task to fail ends the job: every other task is aborted, and the
//! error returned names the node that failed. Errors that are only an echo
//! of another failure (a channel closed because its reader died) are never
//! reported in place of the cause.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::checkpoint::CheckpointConfig;
use crate::checkpoint::coordinator::{
    Ack, Acker, Coordinator, Expected, SharedSinks, Triggers, ack_channel,
};
use crate::checkpoint::restore::{self, Restored};
use crate::checkpoint::storage::Storage;
use crate::dataflow::JobConfig;
use crate::dataflow::graph::{Graph, Logic, NodeId};
use crate::error::{Error, Result};
use crate::message::CheckpointId;
use crate::metrics::{EdgeInfo, JobMetrics, NodeEntry, NodeMetrics};
use crate::runtime::erased::Erased;
use crate::runtime::plan::Plan;
use crate::runtime::running::{CoordinatorHandle, RunningJob};
use crate::split::{PlanContext, SplitId};
use crate::time::ProcessingTimer;

mod wiring;

/// A validated, planned dataflow, ready to run.
pub struct Job {
    name: Arc<str>,
    config: JobConfig,
    graph: Graph,
    plan: Plan,
    /// The ids of each instance's splits, per source node.
    splits: Vec<(NodeId, Vec<Vec<SplitId>>)>,
    metrics: Vec<Vec<Arc<NodeMetrics>>>,
    job_metrics: JobMetrics,
    shutdown: CancellationToken,
    /// The processing-time timer of the task instance being built.
    timer: ProcessingTimer,
    /// Checkpoints, when the job takes them.
    checkpoints: Option<Checkpointing>,
}

/// A job's checkpoint setup, made when it is built.
struct Checkpointing {
    config: CheckpointConfig,
    storage: Storage,
    /// The checkpoint the job restores from.
    restored: Option<CheckpointId>,
    /// Whether that is a final checkpoint: the job read all its input and
    /// has only its sinks to commit and finish.
    restored_final: bool,
    /// Each operator instance's restored state, by node.
    states: std::collections::HashMap<NodeId, Vec<Option<crate::state::RestoredState>>>,
    next_id: CheckpointId,
    acker: Acker,
    acks: Option<tokio::sync::mpsc::UnboundedReceiver<Ack>>,
    triggers: Triggers,
    /// The first trigger slot of each source node.
    slots: std::collections::HashMap<NodeId, usize>,
}

impl std::fmt::Debug for Job {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("name", &self.name)
            .field("plan", &self.describe())
            .finish()
    }
}

impl Job {
    pub(crate) fn plan(
        name: String,
        config: JobConfig,
        mut graph: Graph,
        checkpoint_config: Option<CheckpointConfig>,
    ) -> Result<Job> {
        let plan = Plan::new(&config, &graph)?;
        let name: Arc<str> = name.into();
        // With checkpoints: the checkpoint to restore from, if any.
        let mut restored: Option<Restored> = None;
        let mut storage = None;
        if let Some(ck) = &checkpoint_config {
            let s = Storage::open(ck.place())?;
            restored = restore::choose(ck, &s)?;
            if let Some(r) = &restored {
                let nodes = graph
                    .nodes
                    .iter()
                    .map(|n| (n.name.clone(), n.kind()))
                    .collect();
                r.check_nodes(&nodes)?;
                tracing::info!(job = %name, checkpoint = r.id(), dir = %s.describe(), "Restoring from a checkpoint.");
            }
            storage = Some(s);
        }
        // Plan every source and sink once, in topological order, now that
        // parallelism is known: configuration errors surface here.
        let mut splits = Vec::new();
        let mut states = std::collections::HashMap::new();
        for (id, node) in graph.nodes.iter_mut().enumerate() {
            let ctx = PlanContext {
                job: name.clone(),
                node: Arc::from(node.name.as_str()),
                parallelism: plan.parallelism[id],
                checkpoints: checkpoint_config.is_some(),
            };
            match &mut node.logic {
                Logic::Source(source) => {
                    let positions = restored
                        .as_ref()
                        .and_then(|r| Some((r.positions(&node.name)?, r.parallelism(&node.name)?)));
                    splits.push((
                        id,
                        source.plan(&ctx, checkpoint_config.is_some(), positions)?,
                    ));
                }
                Logic::Sink(sink) => {
                    if let Some(r) = &restored {
                        sink.restore(&node.name, r.id(), &r.pre_committed(&node.name)?)?;
                    }
                    sink.plan(&ctx)?;
                }
                Logic::Operator(_) => {
                    if let Some(r) = &restored {
                        states.insert(id, r.states(&node.name, plan.parallelism[id])?);
                    }
                }
            }
        }
        let checkpoints = match (checkpoint_config, storage) {
            (Some(config), Some(storage)) => {
                let (acker, acks) = ack_channel();
                let mut slots = std::collections::HashMap::new();
                let mut n = 0;
                for (id, node) in graph.nodes.iter().enumerate() {
                    if let Logic::Source(_) = node.logic {
                        slots.insert(id, n);
                        n += plan.parallelism[id];
                    }
                }
                Some(Checkpointing {
                    next_id: storage.next_id()?,
                    restored: restored.as_ref().map(Restored::id),
                    restored_final: restored.as_ref().is_some_and(Restored::is_final),
                    config,
                    storage,
                    states,
                    acker,
                    acks: Some(acks),
                    triggers: Triggers::new(n),
                    slots,
                })
            }
            _ => None,
        };
        let metrics: Vec<Vec<Arc<NodeMetrics>>> = plan
            .parallelism
            .iter()
            .map(|&p| (0..p).map(|_| Arc::new(NodeMetrics::default())).collect())
            .collect();
        let entries = graph
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| NodeEntry {
                name: n.name.clone(),
                kind: n.kind(),
                task: plan.task_of[id],
                instances: metrics[id].clone(),
            })
            .collect();
        let edges = graph
            .nodes
            .iter()
            .enumerate()
            .flat_map(|(id, n)| {
                let graph = &graph;
                let plan = &plan;
                n.inputs
                    .iter()
                    .zip(&plan.partitioning[id])
                    .map(move |(e, p)| {
                        let from = &graph.nodes[e.from];
                        EdgeInfo {
                            from: from.name.clone(),
                            side: (e.port > 0).then(|| from.sides[e.port - 1].name.to_string()),
                            to: n.name.clone(),
                            partitioning: if plan.task_of[e.from] == plan.task_of[id] {
                                "chained".to_string()
                            } else {
                                format!("{p:?}")
                            },
                        }
                    })
            })
            .collect();
        let job_metrics = JobMetrics {
            job: name.clone(),
            edges: Arc::new(edges),
            nodes: Arc::new(entries),
            started: Instant::now(),
            checkpoints: Arc::default(),
        };
        Ok(Job {
            name,
            config,
            graph,
            plan,
            splits,
            metrics,
            job_metrics,
            shutdown: CancellationToken::new(),
            timer: ProcessingTimer::default(),
            checkpoints,
        })
    }

    /// The checkpoint the job restores from, if it restores.
    pub fn restored_from(&self) -> Option<CheckpointId> {
        self.checkpoints.as_ref().and_then(|c| c.restored)
    }

    /// The job's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The job's metrics handle; it stays valid while and after the job runs.
    pub fn metrics(&self) -> JobMetrics {
        self.job_metrics.clone()
    }

    /// The number of tasks per parallel instance set: one per fused chain.
    pub fn task_count(&self) -> usize {
        self.plan.heads.len()
    }

    /// Whether the job restores from its final checkpoint, taken after it
    /// had read all its input: it runs nothing, its sinks commit and
    /// finish.
    pub fn restores_final(&self) -> bool {
        self.checkpoints.as_ref().is_some_and(|c| c.restored_final)
    }

    /// The parallelism the plan gave the node named `name`.
    pub fn parallelism_of(&self, name: &str) -> Option<usize> {
        self.graph
            .nodes
            .iter()
            .position(|n| n.name == name)
            .map(|id| self.plan.parallelism[id])
    }

    /// The splits the source named `name` was planned with: for each
    /// parallel instance, the ids of the splits it reads.
    pub fn splits_of(&self, name: &str) -> Option<&[Vec<SplitId>]> {
        self.splits
            .iter()
            .find(|(id, _)| self.graph.nodes[*id].name == name)
            .map(|(_, s)| s.as_slice())
    }

    /// A readable description of the plan: tasks, their chains, parallelism
    /// and the partitioning of the edges between them.
    pub fn describe(&self) -> String {
        let mut s = String::new();
        for (t, &head) in self.plan.heads.iter().enumerate() {
            let chain: Vec<&str> = (0..self.graph.nodes.len())
                .filter(|&id| self.plan.task_of[id] == t)
                .map(|id| self.graph.nodes[id].name.as_str())
                .collect();
            let inputs: Vec<String> = self.graph.nodes[head]
                .inputs
                .iter()
                .zip(&self.plan.partitioning[head])
                .map(|(e, p)| {
                    let from = &self.graph.nodes[e.from];
                    match e.port {
                        0 => format!("{} ({p:?})", from.name),
                        k => format!("{}[{}] ({p:?})", from.name, from.sides[k - 1].name),
                    }
                })
                .collect();
            let _ = write!(
                s,
                "task {t} x{}: {}",
                self.plan.parallelism[head],
                chain.join(" -> ")
            );
            if !inputs.is_empty() {
                let _ = write!(s, " <- {}", inputs.join(", "));
            }
            s.push('\n');
        }
        s
    }

    /// Runs the job to completion: until every source is exhausted, or the
    /// token is cancelled and the dataflow has drained.
    ///
    /// # Errors
    /// The first failure of any node, naming it.
    pub async fn run(self, shutdown: CancellationToken) -> Result<()> {
        self.start(shutdown)?.wait().await
    }

    /// Starts every task on the current tokio runtime and returns at once.
    ///
    /// # Errors
    /// A source, operator or sink that fails to open, or no tokio runtime.
    pub fn start(mut self, shutdown: CancellationToken) -> Result<RunningJob> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::Config(
                "a job must be started inside a tokio runtime".into(),
            ));
        }
        self.shutdown = shutdown.clone();
        if self.checkpoints.as_ref().is_some_and(|c| c.restored_final) {
            return Ok(self.start_finished(shutdown));
        }
        // One input channel per instance of every task fed by channels.
        let mut receivers: Vec<Vec<Option<Erased>>> = Vec::new();
        let mut senders: Vec<Vec<Erased>> = Vec::new();
        for &head in &self.plan.heads {
            let (mut tx, mut rx) = (Vec::new(), Vec::new());
            if let Some(port) = &self.graph.nodes[head].input {
                for _ in 0..self.plan.parallelism[head] {
                    let (s, r) = port.channel(self.config.channel_capacity);
                    tx.push(s);
                    rx.push(Some(r));
                }
            }
            senders.push(tx);
            receivers.push(rx);
        }

        // Open every node before spawning any task: a job that fails to
        // start has read and written nothing.
        let mut built = Vec::new();
        for t in 0..self.plan.heads.len() {
            let head = self.plan.heads[t];
            for instance in 0..self.plan.parallelism[head] {
                let fut = self.task(t, instance, &senders, &mut receivers)?;
                built.push((self.graph.nodes[head].name.clone(), instance, fut));
            }
        }
        let mut tasks = JoinSet::new();
        let mut names = std::collections::HashMap::new();
        for (name, instance, fut) in built {
            let guarded = {
                let name = name.clone();
                async move {
                    match std::panic::AssertUnwindSafe(fut).catch_unwind().await {
                        Ok(r) => r,
                        Err(panic) => Err(Error::from_panic(panic).in_node(&name)),
                    }
                }
            };
            let span = tracing::info_span!("task", job = %self.name, head = %name, instance);
            let handle = tasks.spawn(guarded.instrument(span));
            names.insert(handle.id(), name);
        }
        drop(senders);
        // The nodes the coordinator hears from, before the graph is taken.
        let expected: Vec<Expected> = self
            .graph
            .nodes
            .iter()
            .enumerate()
            .map(|(id, n)| Expected {
                name: Arc::from(n.name.as_str()),
                kind: n.kind(),
                parallelism: self.plan.parallelism[id],
            })
            .collect();
        // The sinks stay with the running job, to be told how it ended,
        // and with the coordinator, to commit checkpoints.
        let sinks: SharedSinks = self.take_sinks();
        let mut checkpoint_storage = None;
        let coordinator = match self.checkpoints.take() {
            Some(mut ck) => {
                let (stop, abandon) = (CancellationToken::new(), CancellationToken::new());
                let acks = ck
                    .acks
                    .take()
                    .ok_or_else(|| Error::Internal("a job started twice".into()))?;
                checkpoint_storage = Some(ck.storage.clone());
                let coordinator = Coordinator {
                    job: self.name.clone(),
                    storage: ck.storage,
                    interval: ck.config.checkpoint_interval(),
                    retain: ck.config.retained(),
                    next_id: ck.next_id,
                    expected,
                    triggers: ck.triggers,
                    acks,
                    sinks: sinks.clone(),
                    stop: stop.clone(),
                    abandon: abandon.clone(),
                    metrics: self.job_metrics.clone(),
                };
                let finished = coordinator.triggers.final_committed();
                let mut task = JoinSet::new();
                task.spawn(coordinator.run());
                Some(CoordinatorHandle {
                    task,
                    stop,
                    abandon,
                    finished,
                })
            }
            None => None,
        };
        tracing::info!(job = %self.name, tasks = tasks.len(), "Job started.");
        Ok(RunningJob {
            name: self.name.clone(),
            tasks,
            names,
            sinks,
            coordinator,
            checkpoint_storage,
            metrics: self.job_metrics.clone(),
            shutdown,
        })
    }

    /// A job restored from its final checkpoint runs no task: its sinks
    /// committed that checkpoint when the job was built, and are finished
    /// as after any completed run.
    fn start_finished(mut self, shutdown: CancellationToken) -> RunningJob {
        tracing::info!(job = %self.name, "Restored from the final checkpoint: the input was all read; finishing the sinks.");
        let sinks: SharedSinks = self.take_sinks();
        RunningJob {
            name: self.name.clone(),
            tasks: JoinSet::new(),
            names: std::collections::HashMap::new(),
            sinks,
            coordinator: None,
            checkpoint_storage: self.checkpoints.take().map(|c| c.storage),
            metrics: self.job_metrics.clone(),
            shutdown,
        }
    }

    /// Takes every sink node out of the graph, by name: they stay with the
    /// running job, to be told how it ended, and with the coordinator, to
    /// commit checkpoints.
    fn take_sinks(&mut self) -> SharedSinks {
        Arc::new(std::sync::Mutex::new(
            std::mem::take(&mut self.graph.nodes)
                .into_iter()
                .filter_map(|n| match n.logic {
                    Logic::Sink(sink) => Some((n.name, sink)),
                    _ => None,
                })
                .collect(),
        ))
    }
}
