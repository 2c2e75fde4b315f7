//! Planning sources and sinks: [`PlanContext`], splits ([`SourceSplit`],
//! [`SplitId`]) and how a job ends for its sinks ([`JobOutcome`]).
//!
//! # Lifecycle
//! A source or sink is used in three steps, as Flink's split enumerator
//! and readers are:
//!
//! 1. **Plan, once**, when [`Dataflow::build`](crate::Dataflow::build)
//!    runs, after every node's parallelism is known:
//!    [`Source::plan`](crate::Source::plan) validates the configuration and
//!    cuts the input into splits (file byte ranges, Kafka partitions,
//!    generator ranges); [`Source::assign`](crate::Source::assign) gives
//!    each parallel instance its share. [`Sink::plan`](crate::Sink::plan)
//!    validates and claims the sink's output. Every configuration error
//!    surfaces here, from `build()`, naming the node.
//! 2. **Open, per instance**, when the job starts:
//!    [`Source::open`](crate::Source::open) gets the instance's splits;
//!    [`Sink::open`](crate::Sink::open) makes the instance's writer.
//! 3. **Finish, once**, for sinks, after every task of the job ended
//!    without error: [`Sink::finish`](crate::Sink::finish) makes the run's
//!    output final (for example by publishing what a replacing run
//!    wrote). It is not called when the job fails.
//!
//! # Splits and positions
//! A split is the unit of a source's input whose reading position a
//! checkpoint records: it has an [`id`](SourceSplit::id) that stays the
//! same for the same input across runs, and a
//! [`Position`](SourceSplit::Position) type saying how far a reader of it
//! has got (a byte offset, a Kafka offset, a generator index).

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

/// The stable identity of a split: the same input gives the same id in
/// every run (`logs.jsonl@0+1048576`, `orders/3`, `events[0..4096)`).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SplitId(Arc<str>);

impl SplitId {
    /// An id from its text.
    pub fn new(id: impl AsRef<str>) -> Self {
        SplitId(Arc::from(id.as_ref()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SplitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

/// A piece of a source's input, read by one parallel instance.
pub trait SourceSplit: Clone + fmt::Debug + Send + Sync + 'static {
    /// How far a reader of this split has got, as a checkpoint records it.
    type Position: Clone + fmt::Debug + PartialEq + Send + Sync + Serialize + DeserializeOwned;

    /// The split's stable id.
    fn id(&self) -> SplitId;

    /// Where a reader starts when no checkpoint says otherwise.
    fn start(&self) -> Self::Position;

    /// Whether a reader can start this split at a position a checkpoint
    /// recorded ([`SourceSplit::resume`]). A job with checkpoints refuses
    /// sources whose splits cannot.
    const RESUMABLE: bool = false;

    /// Makes a reader of this split start at `position`, the last
    /// position a reader of it reported (see
    /// [`SourceEvent::Position`](crate::SourceEvent::Position)) before a
    /// checkpoint. Called, when a job restores, between
    /// [`Source::plan`](crate::Source::plan) and
    /// [`Source::assign`](crate::Source::assign). The default does
    /// nothing: it is only called when [`SourceSplit::RESUMABLE`] is true.
    fn resume(&mut self, position: Self::Position) {
        let _ = position;
    }
}

/// The split of a source that cuts its input by instance itself: instance
/// `index` of `count`. Its position is the number of records that instance
/// has emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InstanceSplit {
    /// The instance's index, in `0..count`.
    pub index: usize,
    /// The number of instances.
    pub count: usize,
}

impl InstanceSplit {
    /// One split per instance of the node being planned.
    pub fn per_instance(ctx: &PlanContext) -> Vec<InstanceSplit> {
        let count = ctx.parallelism();
        (0..count)
            .map(|index| InstanceSplit { index, count })
            .collect()
    }
}

impl SourceSplit for InstanceSplit {
    type Position = u64;

    fn id(&self) -> SplitId {
        SplitId::new(format!("instance-{}-of-{}", self.index, self.count))
    }

    fn start(&self) -> u64 {
        0
    }
}

/// Deals `splits` out to `parallelism` instances in turn: split `i` goes
/// to instance `i % parallelism`. Shares are disjoint, cover every split
/// and differ in size by at most one.
pub fn round_robin<S>(splits: Vec<S>, parallelism: usize) -> Vec<Vec<S>> {
    let p = parallelism.max(1);
    let mut shares: Vec<Vec<S>> = (0..p).map(|_| Vec::new()).collect();
    for (i, split) in splits.into_iter().enumerate() {
        shares[i % p].push(split);
    }
    shares
}

/// What a source or sink knows when it is planned, once per node.
#[derive(Debug, Clone)]
pub struct PlanContext {
    pub(crate) job: Arc<str>,
    pub(crate) node: Arc<str>,
    pub(crate) parallelism: usize,
    /// Whether the job takes checkpoints.
    pub(crate) checkpoints: bool,
}

impl PlanContext {
    /// Whether the job takes checkpoints: a source that cannot resume in
    /// the way it is configured should refuse to plan.
    pub fn checkpoints_enabled(&self) -> bool {
        self.checkpoints
    }

    /// A context for planning a source or sink outside a job (tests).
    pub fn standalone(node: &str, parallelism: usize) -> Self {
        PlanContext {
            checkpoints: false,
            job: Arc::from("standalone"),
            node: Arc::from(node),
            parallelism,
        }
    }

    /// The job's name.
    pub fn job_name(&self) -> &str {
        &self.job
    }

    /// The node's name, as given to the builder.
    pub fn node_name(&self) -> &str {
        &self.node
    }

    /// The number of parallel instances the node will run.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }
}

/// How a job ended without error, as its sinks are told in
/// [`Sink::finish`](crate::Sink::finish).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobOutcome {
    /// Every source reached the end of its input and everything drained.
    Completed,
    /// The job was asked to stop (its shutdown token was cancelled, for
    /// example on Ctrl-C) and drained what had been read: the output is
    /// whole for what was read, but not for the input.
    Stopped,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_robin_is_disjoint_covering_and_balanced() {
        for n in 0..20usize {
            for p in 1..6 {
                let shares = round_robin((0..n).collect(), p);
                assert_eq!(shares.len(), p);
                let mut all: Vec<usize> = shares.iter().flatten().copied().collect();
                all.sort_unstable();
                assert_eq!(all, (0..n).collect::<Vec<_>>());
                let sizes: Vec<usize> = shares.iter().map(Vec::len).collect();
                assert!(sizes.iter().max().unwrap_or(&0) - sizes.iter().min().unwrap_or(&0) <= 1);
            }
        }
    }

    #[test]
    fn instance_splits_have_stable_distinct_ids() {
        let ctx = PlanContext::standalone("src", 3);
        let ids: Vec<String> = InstanceSplit::per_instance(&ctx)
            .iter()
            .map(|s| s.id().to_string())
            .collect();
        assert_eq!(
            ids,
            ["instance-0-of-3", "instance-1-of-3", "instance-2-of-3"]
        );
    }
}
