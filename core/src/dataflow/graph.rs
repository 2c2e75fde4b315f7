//! The logical graph the builder records.

use crate::metrics::NodeKind;
use crate::runtime::erased::{
    ErasedOperator, ErasedSink, ErasedSource, InputPort, OutputPort, Partitioning,
};

/// The index of a node in the graph; nodes are added in topological order.
pub(crate) type NodeId = usize;

/// An input edge of a node.
pub(crate) struct Edge {
    pub(crate) from: NodeId,
    /// Which output of `from`: 0 the main one, `k` its side output `k - 1`.
    pub(crate) port: usize,
    pub(crate) partitioning: Partitioning,
}

/// A side output of a node: its tag's name, its record type (to refuse a
/// second tag of the same name and another type) and its port.
pub(crate) struct SideOutput {
    pub(crate) name: std::sync::Arc<str>,
    pub(crate) type_id: std::any::TypeId,
    pub(crate) port: Box<dyn OutputPort>,
}

/// What a node runs.
pub(crate) enum Logic {
    Source(Box<dyn ErasedSource>),
    Operator(Box<dyn ErasedOperator>),
    Sink(Box<dyn ErasedSink>),
}

/// One node of the logical graph.
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) parallelism: Option<usize>,
    /// Without a parallelism of its own, the node takes its first input's
    /// (see `Stream::process_forward`).
    pub(crate) follows_input: bool,
    pub(crate) chaining: bool,
    pub(crate) inputs: Vec<Edge>,
    pub(crate) input: Option<Box<dyn InputPort>>,
    pub(crate) output: Option<Box<dyn OutputPort>>,
    /// Side outputs that streams were made of, in the order they were.
    pub(crate) sides: Vec<SideOutput>,
    pub(crate) logic: Logic,
}

impl Node {
    pub(crate) fn kind(&self) -> NodeKind {
        match self.logic {
            Logic::Source(_) => NodeKind::Source,
            Logic::Operator(_) => NodeKind::Operator,
            Logic::Sink(_) => NodeKind::Sink,
        }
    }

    pub(crate) fn max_parallelism(&self) -> Option<usize> {
        match &self.logic {
            Logic::Source(s) => s.max_parallelism(),
            Logic::Sink(s) => s.max_parallelism(),
            Logic::Operator(_) => None,
        }
    }
}

/// The graph under construction, shared by the `Dataflow` and its streams.
#[derive(Default)]
pub(crate) struct Graph {
    pub(crate) nodes: Vec<Node>,
    /// Misuse seen while building, reported by `build()`.
    pub(crate) errors: Vec<String>,
    /// Set by `build()`: the streams of a built dataflow can't grow it.
    pub(crate) built: bool,
}

impl Graph {
    /// Adds a node with default settings.
    pub(crate) fn add_node(
        &mut self,
        name: String,
        inputs: Vec<Edge>,
        input: Option<Box<dyn InputPort>>,
        output: Option<Box<dyn OutputPort>>,
        logic: Logic,
    ) -> NodeId {
        self.add(Node {
            name,
            parallelism: None,
            follows_input: false,
            chaining: true,
            inputs,
            input,
            output,
            sides: Vec::new(),
            logic,
        })
    }

    /// Changes a node's settings; a stream kept past `build()` has no node
    /// left to change, which is recorded as misuse.
    pub(crate) fn update(&mut self, id: NodeId, f: impl FnOnce(&mut Node)) {
        match self.nodes.get_mut(id) {
            Some(node) => f(node),
            None => self
                .errors
                .push("a stream was used after build()".to_string()),
        }
    }

    /// The output port `port` of node `id`: the main one (0) or a side one.
    pub(crate) fn output_port(&self, id: NodeId, port: usize) -> Option<&dyn OutputPort> {
        let node = self.nodes.get(id)?;
        match port {
            0 => node.output.as_deref(),
            k => node.sides.get(k - 1).map(|s| &*s.port),
        }
    }

    /// The name of a node, or "" for a stream kept past `build()`.
    pub(crate) fn name(&self, id: NodeId) -> &str {
        self.nodes.get(id).map_or("", |n| n.name.as_str())
    }

    fn add(&mut self, node: Node) -> NodeId {
        if self.built {
            self.errors
                .push(format!("node '{}' added after build()", node.name));
        }
        self.nodes.push(node);
        self.nodes.len() - 1
    }
}
