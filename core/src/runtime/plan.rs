//! Planning: from the logical graph to tasks.
//!
//! Every node gets a parallelism (its own, else the job's default, capped
//! by what a source or sink supports). Every edge gets a partitioning
//! (`Default` becomes forward at equal parallelism and rebalance otherwise).
//! A node is chained into its input's task when it has exactly one input,
//! over a forward edge, at the same parallelism, and chaining is on.

use std::collections::HashSet;

use crate::dataflow::graph::{Graph, NodeId};
use crate::dataflow::{JobConfig, MAX_PARALLELISM};
use crate::error::{Error, Result};
use crate::metrics::NodeKind;
use crate::runtime::erased::Partitioning;

/// The physical plan.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) parallelism: Vec<usize>,
    /// The resolved partitioning of each input edge of each node.
    pub(crate) partitioning: Vec<Vec<Partitioning>>,
    /// Whether each node runs in its input's task.
    pub(crate) chained: Vec<bool>,
    /// The task each node runs in.
    pub(crate) task_of: Vec<usize>,
    /// The head node of each task.
    pub(crate) heads: Vec<NodeId>,
    /// Per node: (consumer, index of the consumer's input edge).
    pub(crate) consumers: Vec<Vec<(NodeId, usize)>>,
}

fn plan_err(msg: impl Into<String>) -> Error {
    Error::Plan(msg.into())
}

impl Plan {
    pub(crate) fn new(config: &JobConfig, graph: &Graph) -> Result<Plan> {
        if let Some(e) = graph.errors.first() {
            return Err(plan_err(e.clone()));
        }
        if config.parallelism == 0 {
            return Err(plan_err(
                "the default parallelism is 0; it must be at least 1",
            ));
        }
        if config.parallelism > MAX_PARALLELISM {
            return Err(plan_err(format!(
                "the default parallelism is {}; Brook runs at most {MAX_PARALLELISM} \
                 instances of a node (MAX_PARALLELISM), since the cost of a key \
                 exchange grows with the square of the parallelism",
                config.parallelism
            )));
        }
        if config.batch_size == 0 || config.channel_capacity == 0 {
            return Err(Error::Config(
                "batch size and channel capacity must be at least 1".into(),
            ));
        }
        let nodes = &graph.nodes;
        if !nodes.iter().any(|n| n.kind() == NodeKind::Source) {
            return Err(plan_err("the dataflow has no source"));
        }
        let mut names = HashSet::new();
        for n in nodes {
            if !names.insert(n.name.as_str()) {
                return Err(plan_err(format!(
                    "the name '{}' is used by two nodes; names must be unique",
                    n.name
                )));
            }
        }

        let mut parallelism = Vec::with_capacity(nodes.len());
        for n in nodes {
            let max = n.max_parallelism();
            let p = match (n.parallelism, max) {
                (Some(0), _) => {
                    return Err(plan_err(format!("node '{}' has parallelism 0", n.name)));
                }
                (Some(p), _) if p > MAX_PARALLELISM => {
                    return Err(plan_err(format!(
                        "node '{}' has parallelism {p}; Brook runs at most \
                         {MAX_PARALLELISM} instances of a node (MAX_PARALLELISM)",
                        n.name
                    )));
                }
                (Some(p), Some(m)) if p > m => {
                    return Err(plan_err(format!(
                        "node '{}' has parallelism {p} but supports at most {m}",
                        n.name
                    )));
                }
                (Some(p), _) => p,
                // Nodes come after their inputs: the input's is known.
                (None, _) if n.follows_input && !n.inputs.is_empty() => {
                    parallelism[n.inputs[0].from]
                }
                (None, Some(m)) => config.parallelism.min(m.max(1)),
                (None, None) => config.parallelism,
            };
            parallelism.push(p);
        }

        let mut consumers = vec![Vec::new(); nodes.len()];
        let mut partitioning = Vec::with_capacity(nodes.len());
        for (id, n) in nodes.iter().enumerate() {
            let mut parts = Vec::with_capacity(n.inputs.len());
            for (i, e) in n.inputs.iter().enumerate() {
                consumers[e.from].push((id, i));
                let (pu, pd) = (parallelism[e.from], parallelism[id]);
                parts.push(match &e.partitioning {
                    Partitioning::Default if pu == pd => Partitioning::Forward,
                    Partitioning::Default => Partitioning::Rebalance,
                    Partitioning::Forward if pu != pd => {
                        return Err(plan_err(format!(
                            "forward edge from '{}' (parallelism {pu}) to '{}' (parallelism {pd}): \
                             forward needs equal parallelism",
                            nodes[e.from].name, n.name
                        )));
                    }
                    p => p.clone(),
                });
            }
            partitioning.push(parts);
        }
        for (id, n) in nodes.iter().enumerate() {
            // The main output must be consumed; side outputs need not be.
            let main_used = consumers[id]
                .iter()
                .any(|&(c, e): &(NodeId, usize)| nodes[c].inputs[e].port == 0);
            if n.kind() != NodeKind::Sink && !main_used {
                return Err(plan_err(format!(
                    "the output of '{}' is never consumed; end every stream in a sink",
                    n.name
                )));
            }
        }

        let mut chained = vec![false; nodes.len()];
        let mut task_of = vec![0; nodes.len()];
        let mut heads = Vec::new();
        for (id, n) in nodes.iter().enumerate() {
            let chain = config.chaining
                && n.chaining
                && n.inputs.len() == 1
                && matches!(partitioning[id][0], Partitioning::Forward)
                && parallelism[n.inputs[0].from] == parallelism[id];
            if chain {
                chained[id] = true;
                task_of[id] = task_of[n.inputs[0].from];
            } else {
                task_of[id] = heads.len();
                heads.push(id);
            }
        }
        Ok(Plan {
            parallelism,
            partitioning,
            chained,
            task_of,
            heads,
            consumers,
        })
    }

    /// The number of upstream instances that feed one instance of `node`
    /// along input edge `edge`: one over a forward edge, all of them else.
    fn edge_senders(&self, graph: &Graph, node: NodeId, edge: usize) -> usize {
        match self.partitioning[node][edge] {
            Partitioning::Forward => 1,
            _ => self.parallelism[graph.nodes[node].inputs[edge].from],
        }
    }

    /// The number of senders feeding each instance of `head`.
    pub(crate) fn senders(&self, graph: &Graph, head: NodeId) -> usize {
        (0..graph.nodes[head].inputs.len())
            .map(|e| self.edge_senders(graph, head, e))
            .sum()
    }

    /// The sender index, at each instance of `node`, of upstream instance
    /// `instance` along input edge `edge`.
    pub(crate) fn sender_index(
        &self,
        graph: &Graph,
        node: NodeId,
        edge: usize,
        instance: usize,
    ) -> usize {
        let offset: usize = (0..edge).map(|e| self.edge_senders(graph, node, e)).sum();
        match self.partitioning[node][edge] {
            Partitioning::Forward => offset,
            _ => offset + instance,
        }
    }
}
