//! Per-node counters, readable while a job runs.
//!
//! Every parallel instance of every node owns a [`NodeMetrics`] of relaxed
//! atomics that it updates once per batch. [`JobMetrics::snapshot`] reads
//! them all from any thread; later the Prometheus endpoint, the web UI and
//! the bottleneck advice read the same snapshot.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// The counters of one parallel instance of one node.
#[derive(Debug)]
pub struct NodeMetrics {
    pub(crate) records_in: AtomicU64,
    pub(crate) records_out: AtomicU64,
    pub(crate) batches_in: AtomicU64,
    pub(crate) batches_out: AtomicU64,
    pub(crate) busy_ns: AtomicU64,
    pub(crate) blocked_ns: AtomicU64,
    pub(crate) queue_len: AtomicI64,
    pub(crate) dropped: AtomicU64,
    pub(crate) dead_lettered: AtomicU64,
    pub(crate) late: AtomicU64,
    pub(crate) rejected: AtomicU64,
    /// The newest watermark the instance received (a source: emitted);
    /// `i64::MIN` before the first.
    pub(crate) watermark: AtomicI64,
    /// A source's backlog per split: records not yet read (a Kafka
    /// partition's consumer lag), as the source last reported it.
    pub(crate) backlog: std::sync::Mutex<std::collections::BTreeMap<String, i64>>,
}

impl Default for NodeMetrics {
    fn default() -> Self {
        NodeMetrics {
            records_in: AtomicU64::new(0),
            records_out: AtomicU64::new(0),
            batches_in: AtomicU64::new(0),
            batches_out: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            blocked_ns: AtomicU64::new(0),
            queue_len: AtomicI64::new(0),
            dropped: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            late: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            watermark: AtomicI64::new(i64::MIN),
            backlog: std::sync::Mutex::default(),
        }
    }
}

impl NodeMetrics {
    /// Counts records a source or operator dropped by its policy.
    pub fn add_dropped(&self, n: u64) {
        self.dropped.fetch_add(n, Relaxed);
    }

    /// Counts records a source or operator sent to a dead-letter sink.
    pub fn add_dead_lettered(&self, n: u64) {
        self.dead_lettered.fetch_add(n, Relaxed);
    }

    /// Counts records that arrived too late for event-time processing
    /// (past a window's allowed lateness).
    pub fn add_late(&self, n: u64) {
        self.late.fetch_add(n, Relaxed);
    }

    /// Counts records refused for their event time (none, reserved, or
    /// further ahead than the watermark strategy allows), whether or not
    /// they go on to a rejected output.
    pub fn add_rejected(&self, n: u64) {
        self.rejected.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_in(&self, records: usize) {
        self.records_in.fetch_add(records as u64, Relaxed);
        self.batches_in.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_out(&self, records: usize) {
        self.records_out.fetch_add(records as u64, Relaxed);
        self.batches_out.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_busy(&self, d: Duration) {
        self.busy_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    pub(crate) fn add_blocked(&self, d: Duration) {
        self.blocked_ns.fetch_add(d.as_nanos() as u64, Relaxed);
    }

    /// Reports a source split's backlog: the records not yet read (for a
    /// Kafka partition, the high watermark less the next offset to read).
    pub fn set_backlog(&self, split: &str, records: i64) {
        let mut b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        match b.get_mut(split) {
            Some(v) => *v = records,
            None => {
                b.insert(split.to_string(), records);
            }
        }
    }

    /// Each split's backlog, as last reported, by split.
    pub fn backlog(&self) -> Vec<(String, i64)> {
        self.backlog
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub(crate) fn set_watermark(&self, wm: i64) {
        self.watermark.fetch_max(wm, Relaxed);
    }

    /// The counters' values now.
    pub fn counters(&self) -> Counters {
        Counters {
            records_in: self.records_in.load(Relaxed),
            records_out: self.records_out.load(Relaxed),
            batches_in: self.batches_in.load(Relaxed),
            batches_out: self.batches_out.load(Relaxed),
            busy: Duration::from_nanos(self.busy_ns.load(Relaxed)),
            blocked: Duration::from_nanos(self.blocked_ns.load(Relaxed)),
            queue_len: self.queue_len.load(Relaxed).max(0) as u64,
            dropped: self.dropped.load(Relaxed),
            dead_lettered: self.dead_lettered.load(Relaxed),
            late: self.late.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            watermark: self.watermark.load(Relaxed),
        }
    }
}

/// Counter values at one moment, for one instance or summed over a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counters {
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Batches received.
    pub batches_in: u64,
    /// Batches emitted.
    pub batches_out: u64,
    /// Time spent in the node's own code.
    pub busy: Duration,
    /// Time spent waiting for room in a full downstream channel.
    pub blocked: Duration,
    /// Messages (batches and control) waiting in the node's input channel
    /// (chain heads only).
    pub queue_len: u64,
    /// Records dropped by the node's policy.
    pub dropped: u64,
    /// Records sent to a dead-letter sink.
    pub dead_lettered: u64,
    /// Records that arrived past their windows' allowed lateness.
    pub late: u64,
    /// Records refused for their event time by `assign_timestamps`: none
    /// (`i64::MIN`), `i64::MAX`, or further ahead than
    /// [`Watermarks::with_max_ahead`](crate::Watermarks::with_max_ahead)
    /// allows. Counted whether or not they go to a rejected output.
    pub rejected: u64,
    /// The newest watermark received (a source: emitted), in milliseconds
    /// since the epoch; `i64::MIN` before the first. Summed over a node's
    /// instances: the lowest, the one that holds the node back.
    pub watermark: i64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters {
            records_in: 0,
            records_out: 0,
            batches_in: 0,
            batches_out: 0,
            busy: Duration::ZERO,
            blocked: Duration::ZERO,
            queue_len: 0,
            dropped: 0,
            dead_lettered: 0,
            late: 0,
            rejected: 0,
            watermark: i64::MAX,
        }
    }
}

impl Counters {
    fn add(&mut self, o: &Counters) {
        self.records_in += o.records_in;
        self.records_out += o.records_out;
        self.batches_in += o.batches_in;
        self.batches_out += o.batches_out;
        self.busy += o.busy;
        self.blocked += o.blocked;
        self.queue_len += o.queue_len;
        self.dropped += o.dropped;
        self.dead_lettered += o.dead_lettered;
        self.late += o.late;
        self.rejected += o.rejected;
        self.watermark = self.watermark.min(o.watermark);
    }
}

/// The kind of a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// Produces records.
    Source,
    /// Transforms records.
    Operator,
    /// Consumes records.
    Sink,
}

impl NodeKind {
    /// Its name in lower case: `source`, `operator`, `sink`.
    pub fn name(self) -> &'static str {
        match self {
            NodeKind::Source => "source",
            NodeKind::Operator => "operator",
            NodeKind::Sink => "sink",
        }
    }
}

/// An edge of a job's graph, as its metrics describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeInfo {
    /// The node the records come from.
    pub from: String,
    /// The side output they leave by, if not the main output.
    pub side: Option<String>,
    /// The node they go to.
    pub to: String,
    /// How they are spread over the consumer's instances: `forward`,
    /// `rebalance`, `broadcast`, `hash`; `chained` when both nodes run in
    /// one task.
    pub partitioning: String,
}

#[derive(Debug)]
pub(crate) struct NodeEntry {
    pub(crate) name: String,
    pub(crate) kind: NodeKind,
    pub(crate) task: usize,
    pub(crate) instances: Vec<Arc<NodeMetrics>>,
}

/// The metrics of a job: a cheap handle, clonable and readable from any
/// thread while the job runs.
#[derive(Debug, Clone)]
pub struct JobMetrics {
    pub(crate) job: Arc<str>,
    pub(crate) nodes: Arc<Vec<NodeEntry>>,
    pub(crate) edges: Arc<Vec<EdgeInfo>>,
    pub(crate) started: Instant,
    pub(crate) checkpoints: Arc<std::sync::Mutex<CheckpointStats>>,
}

/// The checkpoints a job completed, as its metrics show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckpointStats {
    /// How many completed.
    pub completed: u64,
    /// How many were started and did not complete (their state could not
    /// be written).
    pub failed: u64,
    /// The number of the last one completed.
    pub last_id: Option<u64>,
    /// How long the last one took, from trigger to manifest.
    pub last_duration: Duration,
    /// The size of the last one's state files, in bytes.
    pub last_bytes: u64,
    /// The size of the largest one's state files, in bytes.
    pub max_bytes: u64,
    /// The longest any took.
    pub max_duration: Duration,
    /// The time all of them took, added up.
    pub total_duration: Duration,
    /// The newest ones (at most [`CHECKPOINT_HISTORY`]), oldest first.
    pub history: Vec<CheckpointRecord>,
}

/// How many completed checkpoints [`CheckpointStats::history`] keeps.
pub const CHECKPOINT_HISTORY: usize = 20;

/// One completed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CheckpointRecord {
    /// Its number.
    pub id: u64,
    /// When it completed, in milliseconds since the epoch.
    pub completed_ms: i64,
    /// How long it took, from trigger to manifest.
    pub duration: Duration,
    /// The size of its state files, in bytes.
    pub bytes: u64,
}

impl JobMetrics {
    /// Notes a completed checkpoint.
    pub(crate) fn checkpoint_completed(&self, id: u64, duration: Duration, bytes: u64) {
        let mut c = self.checkpoints.lock().unwrap_or_else(|p| p.into_inner());
        c.completed += 1;
        c.last_id = Some(id);
        c.last_duration = duration;
        c.last_bytes = bytes;
        c.max_duration = c.max_duration.max(duration);
        c.max_bytes = c.max_bytes.max(bytes);
        if c.history.len() == CHECKPOINT_HISTORY {
            c.history.remove(0);
        }
        c.history.push(CheckpointRecord {
            id,
            completed_ms: crate::time::now_ms(),
            duration,
            bytes,
        });
        c.total_duration += duration;
    }

    /// Notes a checkpoint that failed.
    pub(crate) fn checkpoint_failed(&self) {
        self.checkpoints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .failed += 1;
    }
}

impl JobMetrics {
    /// Reads every counter now.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let nodes = self
            .nodes
            .iter()
            .map(|n| {
                let instances: Vec<Counters> = n.instances.iter().map(|m| m.counters()).collect();
                let mut total = Counters::default();
                instances.iter().for_each(|c| total.add(c));
                NodeSnapshot {
                    backlog: n.instances.iter().flat_map(|m| m.backlog()).collect(),
                    name: n.name.clone(),
                    kind: n.kind,
                    task: n.task,
                    parallelism: n.instances.len(),
                    total,
                    instances,
                }
            })
            .collect();
        MetricsSnapshot {
            job: self.job.to_string(),
            elapsed: self.started.elapsed(),
            nodes,
            edges: self.edges.as_ref().clone(),
            checkpoints: self
                .checkpoints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }
}

/// All counters of a job at one moment.
#[derive(Debug, Clone)]
pub struct MetricsSnapshot {
    /// The job's name.
    pub job: String,
    /// Time since the job was built.
    pub elapsed: Duration,
    /// One entry per node, in the order the builder added them.
    pub nodes: Vec<NodeSnapshot>,
    /// The graph's edges.
    pub edges: Vec<EdgeInfo>,
    /// The checkpoints completed so far.
    pub checkpoints: CheckpointStats,
}

impl MetricsSnapshot {
    /// The node with this name.
    pub fn node(&self, name: &str) -> Option<&NodeSnapshot> {
        self.nodes.iter().find(|n| n.name == name)
    }
}

/// One node's counters at one moment.
#[derive(Debug, Clone)]
pub struct NodeSnapshot {
    /// The node's name.
    pub name: String,
    /// What kind of node it is.
    pub kind: NodeKind,
    /// The index of the task (fused chain) the node runs in; nodes with the
    /// same index are chained together.
    pub task: usize,
    /// The number of parallel instances.
    pub parallelism: usize,
    /// Counters summed over the instances.
    pub total: Counters,
    /// Counters per instance.
    pub instances: Vec<Counters>,
    /// A source's backlog per split (records not yet read: a Kafka
    /// partition's consumer lag), by split.
    pub backlog: Vec<(String, i64)>,
}
