//! The type-erased face of typed nodes.
//!
//! The graph holds nodes of many record types. Each node keeps boxed
//! factories that know its types; when a job starts they build the typed
//! pushers, channels and task loops, passing them around as `Box<dyn Any>`
//! and downcasting once, at start-up. Nothing here runs per record.

use std::any::Any;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::future::BoxFuture;
use tokio::sync::mpsc;

use crate::checkpoint::coordinator::SourceTrigger;
use crate::context::TaskContext;
use crate::error::{Error, Result};
use crate::message::{CheckpointId, Envelope};
use crate::metrics::NodeMetrics;
use crate::operator::{Collector, Operator};
use crate::runtime::exit::{Exit, KeyHashFn, Route, Target};
use crate::runtime::node::{OperatorNode, SinkNode};
use crate::runtime::push::{BoxPush, Feeder, SidePush, Tee, TypedSide};
use crate::runtime::task::{self, PositionBook, SourceCheckpoints};
use crate::sink::Sink;
use crate::source::{Source, SplitPosition};
use crate::split::{JobOutcome, PlanContext, SourceSplit, SplitId};
use crate::state::RestoredState;
use crate::time::ProcessingTimer;

/// A task's future, as spawned.
pub(crate) type TaskFuture = BoxFuture<'static, Result<()>>;

/// A boxed value of a type only the node that made it knows.
pub(crate) type Erased = Box<dyn Any + Send>;

/// How records leave a node for a consumer in another task.
#[derive(Clone)]
pub(crate) enum Partitioning {
    /// Forward if the parallelism matches, else rebalance.
    Default,
    /// Instance i to instance i; needs equal parallelism.
    Forward,
    /// Batches round-robin over the consumer's instances.
    Rebalance,
    /// Every record to every instance.
    Broadcast,
    /// By key; holds a `KeyHashFn<T>` for the stream's type.
    Hash(Arc<dyn Any + Send + Sync>),
}

impl std::fmt::Debug for Partitioning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Partitioning::Default => "default",
            Partitioning::Forward => "forward",
            Partitioning::Rebalance => "rebalance",
            Partitioning::Broadcast => "broadcast",
            Partitioning::Hash(_) => "hash",
        })
    }
}

/// Runs user code that opens a node, turning an error or a panic into an
/// error naming the node.
fn guard_open<R>(node: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(r) => r.map_err(|e| e.in_node(node)),
        Err(panic) => Err(Error::from_panic(panic).in_node(node)),
    }
}

/// Runs user code that plans a node. A configuration or plan error is
/// returned as one, its message naming the node; any other error or a
/// panic as an error naming the node.
fn guard_plan<R>(node: &str, f: impl FnOnce() -> Result<R>) -> Result<R> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(Error::Config(m))) => Err(Error::Config(format!("node '{node}': {m}"))),
        Ok(Err(Error::Plan(m))) => Err(Error::Plan(format!("node '{node}': {m}"))),
        Ok(Err(e)) => Err(e.in_node(node)),
        Err(panic) => Err(Error::from_panic(panic).in_node(node)),
    }
}

fn downcast<T: 'static>(b: Erased, what: &str) -> Result<T> {
    b.downcast::<T>()
        .map(|b| *b)
        .map_err(|_| Error::Internal(format!("type mismatch building {what}")))
}

/// The operations that need a node's input record type.
pub(crate) trait InputPort: Send {
    /// A bounded channel of the input type: (sender, receiver).
    fn channel(&self, capacity: usize) -> (Erased, Erased);
    /// Another handle to a sender made by `channel`.
    fn clone_sender(&self, sender: &Erased) -> Result<Erased>;
    /// The loop that feeds the chain headed by this node from its channel.
    fn run(
        &self,
        rx: Erased,
        senders: usize,
        head: Arc<NodeMetrics>,
        timer: ProcessingTimer,
        push: Erased,
        checkpoints: bool,
    ) -> Result<TaskFuture>;
}

/// The operations that need a node's output record type.
pub(crate) trait OutputPort: Send {
    /// An exit to the given targets, as a pusher of the output type.
    fn exit(
        &self,
        partitioning: &Partitioning,
        targets: Vec<(Erased, Arc<NodeMetrics>)>,
        batch_size: usize,
        from: u32,
        feeder: Feeder,
    ) -> Result<Erased>;
    /// A tee feeding every pusher in `outputs`.
    fn tee(&self, outputs: Vec<Erased>, feeder: Feeder) -> Result<Erased>;
    /// A pusher made by `exit` or `tee`, as a side output's.
    fn side(&self, push: Erased) -> Result<Box<dyn SidePush>>;
}

/// The input and output port of record type `T`.
pub(crate) struct Port<T>(PhantomData<fn() -> T>);

impl<T> Port<T> {
    pub(crate) fn boxed() -> Box<Self> {
        Box::new(Port(PhantomData))
    }
}

impl<T: crate::Data> InputPort for Port<T> {
    fn channel(&self, capacity: usize) -> (Erased, Erased) {
        let (tx, rx) = mpsc::channel::<Envelope<T>>(capacity.max(1));
        (Box::new(tx), Box::new(rx))
    }

    fn clone_sender(&self, sender: &Erased) -> Result<Erased> {
        sender
            .downcast_ref::<mpsc::Sender<Envelope<T>>>()
            .map(|s| Box::new(s.clone()) as Erased)
            .ok_or_else(|| Error::Internal("type mismatch cloning a sender".into()))
    }

    fn run(
        &self,
        rx: Erased,
        senders: usize,
        head: Arc<NodeMetrics>,
        timer: ProcessingTimer,
        push: Erased,
        checkpoints: bool,
    ) -> Result<TaskFuture> {
        let rx = downcast::<mpsc::Receiver<Envelope<T>>>(rx, "an input channel")?;
        let push = downcast::<BoxPush<T>>(push, "a chain head")?;
        Ok(Box::pin(task::run_input(
            rx,
            senders,
            head,
            timer,
            push,
            checkpoints,
        )))
    }
}

impl<T: crate::Data> OutputPort for Port<T> {
    fn exit(
        &self,
        partitioning: &Partitioning,
        targets: Vec<(Erased, Arc<NodeMetrics>)>,
        batch_size: usize,
        from: u32,
        feeder: Feeder,
    ) -> Result<Erased> {
        let targets = targets
            .into_iter()
            .map(|(tx, head)| {
                Ok(Target {
                    tx: downcast(tx, "an exit")?,
                    head,
                })
            })
            .collect::<Result<Vec<Target<T>>>>()?;
        let route = match partitioning {
            Partitioning::Default | Partitioning::Forward => Route::Forward,
            Partitioning::Rebalance => Route::Rebalance {
                next: from as usize % targets.len(),
            },
            Partitioning::Broadcast => Route::Broadcast,
            Partitioning::Hash(f) => Route::Hash(
                f.downcast_ref::<KeyHashFn<T>>()
                    .cloned()
                    .ok_or_else(|| Error::Internal("type mismatch in a key function".into()))?,
            ),
        };
        let exit: BoxPush<T> = Box::new(Exit::new(targets, route, batch_size, from, feeder));
        Ok(Box::new(exit))
    }

    fn tee(&self, outputs: Vec<Erased>, feeder: Feeder) -> Result<Erased> {
        let outputs = outputs
            .into_iter()
            .map(|o| downcast::<BoxPush<T>>(o, "a tee"))
            .collect::<Result<Vec<_>>>()?;
        let tee: BoxPush<T> = Box::new(Tee {
            outputs,
            node: feeder.node,
        });
        Ok(Box::new(tee))
    }

    fn side(&self, push: Erased) -> Result<Box<dyn SidePush>> {
        let push = downcast::<BoxPush<T>>(push, "a side output")?;
        Ok(Box::new(TypedSide(push)))
    }
}

/// A source node, type-erased.
pub(crate) trait ErasedSource: Send {
    fn max_parallelism(&self) -> Option<usize>;
    /// Plans the source and deals its splits to the instances; returns the
    /// ids of each instance's splits. With checkpoints, `restored` holds
    /// the positions to resume at, by split id, and the parallelism the
    /// source had, when the job restores.
    fn plan(
        &mut self,
        ctx: &PlanContext,
        checkpoints: bool,
        restored: Option<(&BTreeMap<String, serde_json::Value>, usize)>,
    ) -> Result<Vec<Vec<SplitId>>>;
    /// Opens one instance feeding `push` and returns its task; `trigger`
    /// is where it is asked for checkpoints, when the job takes them.
    fn start(
        &mut self,
        ctx: TaskContext,
        push: Erased,
        trigger: Option<SourceTrigger>,
    ) -> Result<TaskFuture>;
}

/// The latest positions of one source instance's splits, typed.
struct Positions<S: SourceSplit> {
    ids: Vec<SplitId>,
    positions: Vec<S::Position>,
    /// The positions at each checkpoint taken and not yet completed.
    taken: std::collections::VecDeque<(CheckpointId, Vec<S::Position>)>,
}

impl<S: SourceSplit> PositionBook for Positions<S> {
    fn update(&mut self, p: SplitPosition) -> Result<()> {
        let Some(slot) = self.positions.get_mut(p.split) else {
            return Err(Error::Internal(format!(
                "a position for split {} of {}",
                p.split,
                self.ids.len()
            )));
        };
        let position = p.position.downcast_ref::<S::Position>().ok_or_else(|| {
            Error::Internal(format!(
                "a position for split {} that is not a {}",
                self.ids[p.split],
                std::any::type_name::<S::Position>()
            ))
        })?;
        slot.clone_from(position);
        Ok(())
    }

    fn completed(&mut self, id: CheckpointId) -> Option<Box<dyn Any + Send>> {
        let mut newest = None;
        while self.taken.front().is_some_and(|(t, _)| *t <= id) {
            newest = self.taken.pop_front().map(|(_, p)| p);
        }
        newest.map(|p| Box::new(p) as Box<dyn Any + Send>)
    }

    fn snapshot(&mut self, id: CheckpointId) -> Result<Vec<(String, serde_json::Value)>> {
        self.taken.push_back((id, self.positions.clone()));
        self.ids
            .iter()
            .zip(&self.positions)
            .map(|(id, p)| {
                let value = serde_json::to_value(p).map_err(|e| {
                    Error::State(format!("writing the position of split {id}: {e}"))
                })?;
                Ok((id.to_string(), value))
            })
            .collect()
    }
}

/// A source and, once planned, the splits of each instance not yet opened.
pub(crate) struct SourceFactory<T, S: Source<T>> {
    source: S,
    shares: Vec<Option<Vec<S::Split>>>,
    /// The positions a restore resumed splits at, by split id: where each
    /// split's position stands until it reports another.
    resumed: std::collections::HashMap<SplitId, <S::Split as SourceSplit>::Position>,
    _t: PhantomData<fn() -> T>,
}

impl<T, S: Source<T>> SourceFactory<T, S> {
    pub(crate) fn new(source: S) -> Self {
        SourceFactory {
            source,
            shares: Vec::new(),
            resumed: std::collections::HashMap::new(),
            _t: PhantomData,
        }
    }
}

impl<T: crate::Data, S: Source<T>> ErasedSource for SourceFactory<T, S> {
    fn max_parallelism(&self) -> Option<usize> {
        self.source.max_parallelism()
    }

    fn plan(
        &mut self,
        ctx: &PlanContext,
        checkpoints: bool,
        restored: Option<(&BTreeMap<String, serde_json::Value>, usize)>,
    ) -> Result<Vec<Vec<SplitId>>> {
        let p = ctx.parallelism;
        if checkpoints && !S::Split::RESUMABLE {
            return Err(Error::Config(format!(
                "node '{}': this source cannot resume from a checkpoint (its splits are not \
                 resumable), so it cannot run in a job with checkpoints",
                ctx.node
            )));
        }
        let mut resumed = std::collections::HashMap::new();
        let shares = guard_plan(&ctx.node, || {
            // Restored at another parallelism, the source plans the splits
            // the checkpoint has positions in (those of the parallelism it
            // was taken at) and deals them to this parallelism's instances.
            let planned_at = match restored {
                Some((_, was)) if was != p && was > 0 => PlanContext {
                    parallelism: was,
                    ..ctx.clone()
                },
                _ => ctx.clone(),
            };
            let mut splits = self.source.plan(&planned_at)?;
            if let Some((positions, _)) = restored {
                // Every recorded position must find its split, or input
                // would be read twice.
                let planned: std::collections::HashSet<SplitId> =
                    splits.iter().map(SourceSplit::id).collect();
                if let Some(lost) = positions
                    .keys()
                    .find(|id| !planned.contains(&SplitId::new(id)))
                {
                    return Err(Error::Config(format!(
                        "node '{}': the checkpoint has a position in split {lost}, which the \
                         source no longer has (was its input changed?)",
                        ctx.node
                    )));
                }
                for split in &mut splits {
                    let id = split.id();
                    if let Some(value) = positions.get(id.as_str()) {
                        let position = serde_json::from_value(value.clone()).map_err(|e| {
                            Error::Config(format!(
                                "node '{}': the checkpoint's position of split {id} does not fit \
                                 this source: {e}",
                                ctx.node
                            ))
                        })?;
                        resumed.insert(id, Clone::clone(&position));
                        split.resume(position);
                    }
                }
            }
            Ok(self.source.assign(splits, p))
        })?;
        if shares.len() != p {
            return Err(Error::Internal(format!(
                "source '{}' assigned its splits to {} instances, not {p}",
                ctx.node,
                shares.len()
            )));
        }
        let ids = shares
            .iter()
            .map(|share| share.iter().map(SourceSplit::id).collect())
            .collect();
        self.shares = shares.into_iter().map(Some).collect();
        self.resumed = resumed;
        Ok(ids)
    }

    fn start(
        &mut self,
        ctx: TaskContext,
        push: Erased,
        trigger: Option<SourceTrigger>,
    ) -> Result<TaskFuture> {
        let push = downcast::<BoxPush<T>>(push, "a source")?;
        let splits = self
            .shares
            .get_mut(ctx.instance)
            .and_then(Option::take)
            .ok_or_else(|| {
                Error::Internal(format!("source instance {} opened twice", ctx.instance))
            })?;
        let checkpoints = match (trigger, ctx.acker.clone()) {
            (Some(trigger), Some(acker)) => Some(SourceCheckpoints {
                trigger,
                acker,
                positions: Box::new(Positions::<S::Split> {
                    ids: splits.iter().map(SourceSplit::id).collect(),
                    // A split that reports nothing (done, or slow) keeps
                    // the position it resumed at, not its start.
                    positions: splits
                        .iter()
                        .map(|s| {
                            self.resumed
                                .get(&s.id())
                                .cloned()
                                .unwrap_or_else(|| s.start())
                        })
                        .collect(),
                    taken: std::collections::VecDeque::new(),
                }),
                handed: 0,
            }),
            _ => None,
        };
        let stream = guard_open(&ctx.node, || self.source.open(&ctx, splits))?;
        Ok(Box::pin(task::run_source(ctx, stream, push, checkpoints)))
    }
}

/// An operator node, type-erased.
pub(crate) trait ErasedOperator: Send {
    /// Makes one instance feeding `push`, and the side outputs `sides`
    /// (tag name, pusher), restored from `restored` when the job restores
    /// state for it, and returns its input pusher.
    fn instantiate(
        &mut self,
        ctx: TaskContext,
        push: Erased,
        sides: Vec<(Arc<str>, Box<dyn SidePush>)>,
        restored: Option<RestoredState>,
    ) -> Result<Erased>;
}

pub(crate) struct OperatorFactory<In, Out, O>(pub(crate) O, pub(crate) PhantomData<fn(In) -> Out>);

impl<In: crate::Data, Out: crate::Data, O: Operator<In, Out>> ErasedOperator
    for OperatorFactory<In, Out, O>
{
    fn instantiate(
        &mut self,
        ctx: TaskContext,
        push: Erased,
        sides: Vec<(Arc<str>, Box<dyn SidePush>)>,
        restored: Option<RestoredState>,
    ) -> Result<Erased> {
        let next = downcast::<BoxPush<Out>>(push, "an operator")?;
        let (names, sides): (Vec<_>, Vec<_>) = sides.into_iter().unzip();
        let op = guard_open(&ctx.node, || {
            let mut op = self.0.clone();
            op.open(&ctx)?;
            if let Some(state) = &restored {
                op.restore(state).map_err(|e| match e {
                    Error::State(why) => Error::Config(format!(
                        "node '{}': its state in the checkpoint does not fit the operator \
                         (was its type changed?): {why}",
                        ctx.node
                    )),
                    e => e,
                })?;
            }
            Ok(op)
        })?;
        let node: BoxPush<In> = Box::new(OperatorNode {
            name: ctx.node.clone(),
            op,
            out: Collector::with_sides(names),
            next,
            sides,
            metrics: ctx.metrics.clone(),
            last_watermark: crate::record::EventTime::MIN,
            instance: ctx.instance,
            acker: ctx.acker.clone(),
            _in: PhantomData,
        });
        Ok(Box::new(node))
    }
}

/// A sink node, type-erased.
pub(crate) trait ErasedSink: Send {
    fn max_parallelism(&self) -> Option<usize>;
    /// Plans the sink.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()>;
    /// Opens one instance and returns its input pusher.
    fn instantiate(&mut self, ctx: TaskContext) -> Result<Erased>;
    /// Tells the sink the job ended without error.
    fn finish(&mut self, node: &str, outcome: JobOutcome) -> Result<()>;
    /// Tells the sink checkpoint `id` is complete.
    fn commit(&mut self, node: &str, id: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()>;
    /// Tells the sink the job restores from checkpoint `id`.
    fn restore(&mut self, node: &str, id: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()>;
}

pub(crate) struct SinkFactory<T, S>(pub(crate) S, pub(crate) PhantomData<fn(T)>);

impl<T: crate::Data, S: Sink<T>> ErasedSink for SinkFactory<T, S> {
    fn max_parallelism(&self) -> Option<usize> {
        self.0.max_parallelism()
    }

    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        guard_plan(&ctx.node, || self.0.plan(ctx))
    }

    fn instantiate(&mut self, ctx: TaskContext) -> Result<Erased> {
        let writer = guard_open(&ctx.node, || self.0.open(&ctx))?;
        let node: BoxPush<T> = Box::new(SinkNode {
            name: ctx.node.clone(),
            writer,
            metrics: ctx.metrics.clone(),
            instance: ctx.instance,
            acker: ctx.acker.clone(),
            _t: PhantomData,
        });
        Ok(Box::new(node))
    }

    fn finish(&mut self, node: &str, outcome: JobOutcome) -> Result<()> {
        guard_open(node, || self.0.finish(outcome))
    }

    fn commit(&mut self, node: &str, id: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        guard_open(node, || self.0.commit(id, pre_committed))
    }

    fn restore(&mut self, node: &str, id: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        guard_open(node, || self.0.restore(id, pre_committed))
    }
}
