//! What the admin server shows: each node's rates over the last sampling
//! interval, read as a queue (arrival rate λ, service rate μ, utilisation
//! ρ = λ/μ, queue length), and the bottleneck advice.

use std::time::Duration;

use brook_core::metrics::{Counters, MetricsSnapshot, NodeKind};
use serde::Serialize;

/// The utilisation the advice aims a bottleneck at.
pub const TARGET_RHO: f64 = 0.7;

/// A job as the admin server shows it.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// The job's name.
    pub job: String,
    /// `running`, then `completed`, `stopped` or `failed`.
    pub state: String,
    /// Seconds since the job was built.
    pub elapsed_s: f64,
    /// The seconds the rates are measured over.
    pub interval_s: f64,
    /// Every node, in the order the builder added them.
    pub nodes: Vec<NodeStatus>,
    /// The graph's edges.
    pub edges: Vec<EdgeStatus>,
    /// Checkpoints so far.
    pub checkpoints: CheckpointStatus,
    /// The busiest task's busiest node and what would relieve it.
    pub advice: Option<Advice>,
}

/// One node: its totals and each instance's rates.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// The node's name.
    pub name: String,
    /// `source`, `operator` or `sink`.
    pub kind: &'static str,
    /// The task (fused chain) it runs in.
    pub task: usize,
    /// Its parallel instances.
    pub parallelism: usize,
    /// Records per second into the node (a source: out of it), summed.
    pub lambda: f64,
    /// The mean utilisation of its instances: the share of the interval
    /// they spent in the node's code.
    pub rho: f64,
    /// Messages waiting in its input channels, summed (chain heads).
    pub queue_len: u64,
    /// The mean share of the interval its instances were blocked on a
    /// full downstream channel (backpressure).
    pub blocked: f64,
    /// The lowest watermark of its instances, if every one has one.
    pub watermark: Option<i64>,
    /// How far that watermark is behind the wall clock, in milliseconds.
    pub watermark_lag_ms: Option<i64>,
    /// Records received, emitted, late, dropped, dead-lettered and refused
    /// for their event time since the start, summed.
    pub totals: Totals,
    /// A source's backlog per split: records not yet read (a Kafka
    /// partition's consumer lag), as the source last reported it.
    pub backlog: Vec<SplitBacklog>,
    /// Each instance.
    pub instances: Vec<InstanceStatus>,
}

/// A source split's backlog.
#[derive(Debug, Clone, Serialize)]
pub struct SplitBacklog {
    /// The split (a Kafka partition: `topic/partition`).
    pub split: String,
    /// Records not yet read.
    pub records: i64,
}

/// One instance of a node over the interval.
#[derive(Debug, Clone, Serialize)]
pub struct InstanceStatus {
    /// Its index.
    pub instance: usize,
    /// λ: records per second in (a source: out).
    pub lambda: f64,
    /// μ: records per busy second, when it was busy at all.
    pub mu: Option<f64>,
    /// ρ: the share of the interval spent in the node's code (λ/μ).
    pub rho: f64,
    /// Messages waiting in its input channel (chain heads).
    pub queue_len: u64,
    /// The share of the interval blocked on backpressure.
    pub blocked: f64,
    /// Its newest watermark.
    pub watermark: Option<i64>,
    /// Records in, out and the rest since the start.
    pub totals: Totals,
}

/// Counts since the start.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Totals {
    /// Records received.
    pub records_in: u64,
    /// Records emitted.
    pub records_out: u64,
    /// Records past their windows' allowed lateness.
    pub late: u64,
    /// Records dropped by a policy.
    pub dropped: u64,
    /// Records sent to a dead-letter sink.
    pub dead_lettered: u64,
    /// Records refused for their event time.
    pub rejected: u64,
}

impl From<&Counters> for Totals {
    fn from(c: &Counters) -> Self {
        Totals {
            records_in: c.records_in,
            records_out: c.records_out,
            late: c.late,
            dropped: c.dropped,
            dead_lettered: c.dead_lettered,
            rejected: c.rejected,
        }
    }
}

/// An edge of the graph.
#[derive(Debug, Clone, Serialize)]
pub struct EdgeStatus {
    /// Where records come from.
    pub from: String,
    /// The side output they leave by, if any.
    pub side: Option<String>,
    /// Where they go.
    pub to: String,
    /// `chained`, `forward`, `rebalance`, `broadcast` or `hash`.
    pub partitioning: String,
}

/// The job's checkpoints.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointStatus {
    /// How many completed.
    pub completed: u64,
    /// How many failed.
    pub failed: u64,
    /// The newest one's number.
    pub last_id: Option<u64>,
    /// How long it took, in milliseconds.
    pub last_duration_ms: f64,
    /// Its size in bytes.
    pub last_bytes: u64,
    /// The longest any took, in milliseconds.
    pub max_duration_ms: f64,
    /// The newest ones, oldest first.
    pub history: Vec<CheckpointEntry>,
}

/// One completed checkpoint.
#[derive(Debug, Clone, Serialize)]
pub struct CheckpointEntry {
    /// Its number.
    pub id: u64,
    /// When it completed, in milliseconds since the epoch.
    pub completed_ms: i64,
    /// How long it took, in milliseconds.
    pub duration_ms: f64,
    /// Its state's size in bytes.
    pub bytes: u64,
}

/// The bottleneck: the busiest task, by the summed utilisation of its
/// chained nodes, and in it the busiest node.
#[derive(Debug, Clone, Serialize)]
pub struct Advice {
    /// The busiest node of the busiest task.
    pub node: String,
    /// The task's utilisation (its nodes' ρ added: they share a thread).
    pub rho: f64,
    /// The task's parallelism now.
    pub parallelism: usize,
    /// The parallelism that would bring it under [`TARGET_RHO`].
    pub suggested_parallelism: usize,
    /// The advice in words.
    pub message: String,
}

/// Computes a job's status from two snapshots `interval` apart (the
/// first `None`: rates since the start).
pub fn status(
    prev: Option<&MetricsSnapshot>,
    now: &MetricsSnapshot,
    state: &str,
    now_ms: i64,
) -> JobStatus {
    let interval = prev.map_or(now.elapsed, |p| now.elapsed.saturating_sub(p.elapsed));
    let secs = interval.as_secs_f64().max(1e-9);
    let nodes: Vec<NodeStatus> = now
        .nodes
        .iter()
        .map(|n| {
            let before = prev.and_then(|p| p.node(&n.name));
            let instances: Vec<InstanceStatus> = n
                .instances
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let zero = Counters::default();
                    let b = before.and_then(|b| b.instances.get(i)).unwrap_or(&zero);
                    instance(i, n.kind, b, c, secs)
                })
                .collect();
            let count = instances.len().max(1) as f64;
            let watermark = (n.total.watermark != i64::MIN && n.total.watermark != i64::MAX)
                .then_some(n.total.watermark);
            NodeStatus {
                name: n.name.clone(),
                kind: n.kind.name(),
                task: n.task,
                parallelism: n.parallelism,
                lambda: instances.iter().map(|i| i.lambda).sum(),
                rho: instances.iter().map(|i| i.rho).sum::<f64>() / count,
                queue_len: n.total.queue_len,
                blocked: instances.iter().map(|i| i.blocked).sum::<f64>() / count,
                watermark,
                watermark_lag_ms: watermark.map(|w| now_ms.saturating_sub(w)),
                totals: Totals::from(&n.total),
                backlog: n
                    .backlog
                    .iter()
                    .map(|(split, records)| SplitBacklog {
                        split: split.clone(),
                        records: *records,
                    })
                    .collect(),
                instances,
            }
        })
        .collect();
    let advice = advice(&nodes);
    let c = &now.checkpoints;
    JobStatus {
        job: now.job.clone(),
        state: state.to_string(),
        elapsed_s: now.elapsed.as_secs_f64(),
        interval_s: secs,
        edges: now
            .edges
            .iter()
            .map(|e| EdgeStatus {
                from: e.from.clone(),
                side: e.side.clone(),
                to: e.to.clone(),
                partitioning: e.partitioning.clone(),
            })
            .collect(),
        nodes,
        checkpoints: CheckpointStatus {
            completed: c.completed,
            failed: c.failed,
            last_id: c.last_id,
            last_duration_ms: ms(c.last_duration),
            last_bytes: c.last_bytes,
            max_duration_ms: ms(c.max_duration),
            history: c
                .history
                .iter()
                .map(|h| CheckpointEntry {
                    id: h.id,
                    completed_ms: h.completed_ms,
                    duration_ms: ms(h.duration),
                    bytes: h.bytes,
                })
                .collect(),
        },
        advice,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One instance's rates between two readings of its counters.
fn instance(i: usize, kind: NodeKind, b: &Counters, c: &Counters, secs: f64) -> InstanceStatus {
    let records = match kind {
        NodeKind::Source => c.records_out.saturating_sub(b.records_out),
        _ => c.records_in.saturating_sub(b.records_in),
    } as f64;
    let busy = c.busy.saturating_sub(b.busy).as_secs_f64();
    let blocked = c.blocked.saturating_sub(b.blocked).as_secs_f64();
    InstanceStatus {
        instance: i,
        lambda: records / secs,
        mu: (busy > 0.0).then(|| records / busy),
        rho: (busy / secs).min(1.0),
        queue_len: c.queue_len,
        blocked: (blocked / secs).min(1.0),
        watermark: (c.watermark != i64::MIN).then_some(c.watermark),
        totals: Totals::from(c),
    }
}

/// The busiest task (its nodes' ρ added) and its busiest node, with the
/// parallelism that would bring the task under [`TARGET_RHO`].
pub fn advice(nodes: &[NodeStatus]) -> Option<Advice> {
    let mut tasks: Vec<(usize, f64, usize)> = Vec::new();
    for n in nodes {
        match tasks.iter_mut().find(|t| t.0 == n.task) {
            Some(t) => t.1 += n.rho,
            None => tasks.push((n.task, n.rho, n.parallelism)),
        }
    }
    let &(task, rho, parallelism) = tasks.iter().max_by(|a, b| a.1.total_cmp(&b.1))?;
    let node = nodes
        .iter()
        .filter(|n| n.task == task)
        .max_by(|a, b| a.rho.total_cmp(&b.rho))?;
    if rho <= 0.0 {
        return None;
    }
    let needed = (parallelism as f64 * rho / TARGET_RHO).ceil() as usize;
    let suggested = needed.max(parallelism);
    let message = if suggested > parallelism {
        format!(
            "node '{}' is the bottleneck: its task is busy {:.0}% of the time at parallelism \
             {parallelism}; parallelism {suggested} would bring it near {:.0}%",
            node.name,
            rho * 100.0,
            rho * parallelism as f64 / suggested as f64 * 100.0
        )
    } else {
        format!(
            "the busiest node is '{}', its task busy {:.0}% of the time at parallelism \
             {parallelism}: under {:.0}%, no change needed",
            node.name,
            rho * 100.0,
            TARGET_RHO * 100.0
        )
    };
    Some(Advice {
        node: node.name.clone(),
        rho,
        parallelism,
        suggested_parallelism: suggested,
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, task: usize, parallelism: usize, rho: f64) -> NodeStatus {
        NodeStatus {
            name: name.into(),
            kind: "operator",
            task,
            parallelism,
            lambda: 0.0,
            rho,
            queue_len: 0,
            blocked: 0.0,
            watermark: None,
            watermark_lag_ms: None,
            totals: Totals::from(&Counters::default()),
            backlog: Vec::new(),
            instances: Vec::new(),
        }
    }

    #[test]
    fn the_advice_names_the_busiest_tasks_busiest_node_and_a_parallelism_under_the_target() {
        // Task 0 (source and parse, chained) is busier than task 1 as a
        // whole, though task 1's node is the busiest node alone.
        let nodes = [
            node("logs", 0, 2, 0.5),
            node("parse", 0, 2, 0.45),
            node("window", 1, 2, 0.6),
        ];
        let a = advice(&nodes).expect("advice");
        assert_eq!(a.node, "logs");
        assert!((a.rho - 0.95).abs() < 1e-9);
        assert_eq!(a.suggested_parallelism, 3, "2 * 0.95 / 0.7 = 2.7");
        assert!(a.message.contains("parallelism 3"), "{}", a.message);
        let calm = [node("a", 0, 4, 0.2)];
        assert_eq!(advice(&calm).expect("advice").suggested_parallelism, 4);
    }
}
