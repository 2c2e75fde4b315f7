//! [`Stream`] and [`KeyedStream`]: handles to a node's output while building.

use std::cell::RefCell;
use std::hash::Hash;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::dataflow::graph::{Edge, Graph, Logic, NodeId, SideOutput};
use crate::operator::{Operator, OutputTag};
use crate::partition::hash_key;
use crate::runtime::erased::{OperatorFactory, Partitioning, Port, SinkFactory};
use crate::runtime::exit::KeyHashFn;
use crate::sink::Sink;

/// The output of a node, to build on.
///
/// A stream can feed any number of consumers (fan-out): every consumer sees
/// every record. Methods take `&self` and return a new handle.
/// Operators such as `map` and `filter` come from `brook-operators`' extension
/// traits; this type has the structural ones.
pub struct Stream<T> {
    pub(crate) graph: Rc<RefCell<Graph>>,
    pub(crate) node: NodeId,
    /// Which output of the node: 0 the main one, `k` side output `k - 1`.
    pub(crate) port: usize,
    pub(crate) partitioning: Partitioning,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            port: self.port,
            partitioning: self.partitioning.clone(),
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("node", &self.graph.borrow().name(self.node))
            .field("partitioning", &self.partitioning)
            .finish()
    }
}

impl<T: crate::Data> Stream<T> {
    pub(crate) fn new(graph: Rc<RefCell<Graph>>, node: NodeId) -> Self {
        Stream {
            graph,
            node,
            port: 0,
            partitioning: Partitioning::Default,
            _t: PhantomData,
        }
    }

    fn with_partitioning(&self, partitioning: Partitioning) -> Self {
        Stream {
            partitioning,
            ..self.clone()
        }
    }

    fn edge(&self) -> Edge {
        Edge {
            from: self.node,
            port: self.port,
            partitioning: self.partitioning.clone(),
        }
    }

    /// The name of the node this stream comes from.
    pub fn node_name(&self) -> String {
        self.graph.borrow().name(self.node).to_string()
    }

    /// Sets the parallelism of the node this stream comes from: at least 1
    /// and at most [`MAX_PARALLELISM`](crate::MAX_PARALLELISM), or `build()`
    /// refuses it.
    pub fn parallelism(self, parallelism: usize) -> Self {
        self.graph
            .borrow_mut()
            .update(self.node, |n| n.parallelism = Some(parallelism));
        self
    }

    /// Keeps the node this stream comes from out of its upstream's chain:
    /// it gets its own task, fed through a channel.
    pub fn disable_chaining(self) -> Self {
        self.graph
            .borrow_mut()
            .update(self.node, |n| n.chaining = false);
        self
    }

    /// The records the node this stream comes from emits to its side output
    /// `tag` (see [`OutputTag`]), as a stream of their own: with their event
    /// times, and the node's watermarks. Asking twice gives the same
    /// stream's output again (fan-out); a tag no stream is made of has no
    /// consumer, and the node drops (and counts) what it emits to it.
    ///
    /// Misuse is reported by `build()` as [`Error::Plan`](crate::Error::Plan):
    /// a side output of a source or of another side output, or a name used
    /// for two record types.
    pub fn side_output<S: crate::Data>(&self, tag: &OutputTag<S>) -> Stream<S> {
        let mut graph = self.graph.borrow_mut();
        let port = match graph.nodes.get_mut(self.node) {
            None => {
                graph
                    .errors
                    .push("a stream was used after build()".to_string());
                0
            }
            Some(node) if self.port != 0 || !matches!(node.logic, Logic::Operator(_)) => {
                let msg = format!(
                    "side output '{}' of '{}': only an operator's main output has side outputs",
                    tag.name(),
                    node.name
                );
                graph.errors.push(msg);
                0
            }
            Some(node) => {
                let type_id = std::any::TypeId::of::<S>();
                match node.sides.iter().position(|s| &*s.name == tag.name()) {
                    Some(i) if node.sides[i].type_id == type_id => i + 1,
                    Some(_) => {
                        let msg = format!(
                            "side output '{}' of '{}' is asked for with two record types",
                            tag.name(),
                            node.name
                        );
                        graph.errors.push(msg);
                        0
                    }
                    None => {
                        node.sides.push(SideOutput {
                            name: Arc::from(tag.name()),
                            type_id,
                            port: Port::<S>::boxed(),
                        });
                        node.sides.len()
                    }
                }
            }
        };
        drop(graph);
        Stream {
            graph: self.graph.clone(),
            node: self.node,
            port,
            partitioning: Partitioning::Default,
            _t: PhantomData,
        }
    }

    /// The next consumer gets batches round-robin over its instances.
    pub fn rebalance(&self) -> Self {
        self.with_partitioning(Partitioning::Rebalance)
    }

    /// The next consumer's instances each get every record.
    pub fn broadcast(&self) -> Self {
        self.with_partitioning(Partitioning::Broadcast)
    }

    /// Instance i feeds instance i of the next consumer, which must have the
    /// same parallelism.
    pub fn forward(&self) -> Self {
        self.with_partitioning(Partitioning::Forward)
    }

    /// Partitions the stream by key: all records with the same key go to the
    /// same instance of the next consumer.
    pub fn key_by<K, F>(&self, key: F) -> KeyedStream<T, K>
    where
        K: Hash + Send + 'static,
        F: Fn(&T) -> K + Send + Sync + 'static,
    {
        // The hash function calls the concrete `F`: one dynamic call per
        // record, not two.
        let key = Arc::new(key);
        let k = key.clone();
        let hash: KeyHashFn<T> = Arc::new(move |v: &T| hash_key(&k(v)));
        KeyedStream {
            stream: self.with_partitioning(Partitioning::Hash(Arc::new(hash))),
            key,
        }
    }

    /// Adds a node running `op` on this stream: the general form of every
    /// per-batch operator.
    pub fn process<U: crate::Data, O: Operator<T, U>>(
        &self,
        name: impl Into<String>,
        op: O,
    ) -> Stream<U> {
        let node = self.graph.borrow_mut().add_node(
            name.into(),
            vec![self.edge()],
            Some(Port::<T>::boxed()),
            Some(Port::<U>::boxed()),
            Logic::Operator(Box::new(OperatorFactory(op, PhantomData))),
        );
        Stream::new(self.graph.clone(), node)
    }

    /// Adds a node running `op` as [`process`](Self::process) does, at the
    /// parallelism of this stream's node unless set otherwise, so that it
    /// is fed forward (chained where chaining is on): each of its
    /// instances sees what one instance before it emitted, in order, and
    /// the watermarks that followed. For work that belongs with the node
    /// before it, such as a pre-aggregation ahead of a key exchange.
    pub fn process_forward<U: crate::Data, O: Operator<T, U>>(
        &self,
        name: impl Into<String>,
        op: O,
    ) -> Stream<U> {
        let out = self.process(name, op);
        self.graph
            .borrow_mut()
            .update(out.node, |n| n.follows_input = true);
        out
    }

    /// Merges this stream with others of the same type into one node.
    pub fn union(&self, name: impl Into<String>, others: &[&Stream<T>]) -> Stream<T> {
        self.union_process(name, others, Identity)
    }

    /// Merges this stream with others of the same type into one node that
    /// runs `op`: [`union`](Self::union) and [`process`](Self::process) in
    /// one. Each input keeps its own partitioning, so inputs keyed by
    /// functions that agree on the key reach the same instance with the
    /// same key: how two-input operators (joins) are built. The node's
    /// input watermark is the minimum over its inputs, and it aligns their
    /// checkpoint barriers.
    pub fn union_process<U: crate::Data, O: Operator<T, U>>(
        &self,
        name: impl Into<String>,
        others: &[&Stream<T>],
        op: O,
    ) -> Stream<U> {
        let name = name.into();
        let mut inputs = vec![self.edge()];
        for o in others {
            if !Rc::ptr_eq(&o.graph, &self.graph) {
                self.graph
                    .borrow_mut()
                    .errors
                    .push(format!("union '{name}' takes a stream of another dataflow"));
                continue;
            }
            inputs.push(o.edge());
        }
        let node = self.graph.borrow_mut().add_node(
            name,
            inputs,
            Some(Port::<T>::boxed()),
            Some(Port::<U>::boxed()),
            Logic::Operator(Box::new(OperatorFactory(op, PhantomData))),
        );
        Stream::new(self.graph.clone(), node)
    }

    /// Ends this stream in a sink node.
    pub fn sink<S: Sink<T>>(&self, name: impl Into<String>, sink: S) -> SinkHandle {
        let node = self.graph.borrow_mut().add_node(
            name.into(),
            vec![self.edge()],
            Some(Port::<T>::boxed()),
            None,
            Logic::Sink(Box::new(SinkFactory(sink, PhantomData))),
        );
        SinkHandle {
            graph: self.graph.clone(),
            node,
        }
    }
}

/// A sink node, to set its parallelism.
pub struct SinkHandle {
    graph: Rc<RefCell<Graph>>,
    node: NodeId,
}

impl SinkHandle {
    /// Sets the sink's parallelism: at least 1 and at most
    /// [`MAX_PARALLELISM`](crate::MAX_PARALLELISM), or `build()` refuses it.
    pub fn parallelism(self, parallelism: usize) -> Self {
        self.graph
            .borrow_mut()
            .update(self.node, |n| n.parallelism = Some(parallelism));
        self
    }

    /// Keeps the sink out of its upstream's chain.
    pub fn disable_chaining(self) -> Self {
        self.graph
            .borrow_mut()
            .update(self.node, |n| n.chaining = false);
        self
    }
}

/// Passes records through; the logic of `union`.
#[derive(Clone, Copy)]
struct Identity;

impl<T: Send + 'static> Operator<T, T> for Identity {
    fn process(
        &mut self,
        batch: crate::Batch<T>,
        out: &mut crate::Collector<T>,
    ) -> crate::Result<()> {
        out.emit_batch(batch);
        Ok(())
    }
}

/// A shared key function: what [`KeyedStream::key_selector`] returns.
pub type KeySelector<T, K> = Arc<dyn Fn(&T) -> K + Send + Sync>;

/// A stream partitioned by key: every operator applied to it runs with all
/// records of a key on the same instance. Keyed operators (windows,
/// `keyed_process`, `dedup`) take it; [`KeyedStream::stream`] gives the
/// partitioned stream for any other operator, and [`KeyedStream::process`]
/// and [`KeyedStream::sink`] add one directly.
pub struct KeyedStream<T, K> {
    stream: Stream<T>,
    key: KeySelector<T, K>,
}

impl<T, K> Clone for KeyedStream<T, K> {
    fn clone(&self) -> Self {
        KeyedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
        }
    }
}

impl<T, K> KeyedStream<T, K> {
    /// The key selector, for keyed operators.
    pub fn key_selector(&self) -> KeySelector<T, K> {
        self.key.clone()
    }

    /// The stream, partitioned by key for the next node.
    pub fn stream(&self) -> &Stream<T> {
        &self.stream
    }

    /// The stream before it was keyed: its next node is fed as it would
    /// be without `key_by` (chained where it can be). For operators that
    /// transform records before the exchange, as joins tag each input's
    /// records with their side.
    pub fn unkeyed(&self) -> Stream<T> {
        Stream {
            partitioning: Partitioning::Default,
            ..self.stream.clone()
        }
    }
}

impl<T: crate::Data, K> KeyedStream<T, K> {
    /// Adds a node running `op` on the keyed stream: all records of a key
    /// reach the same instance.
    pub fn process<U: crate::Data, O: Operator<T, U>>(
        &self,
        name: impl Into<String>,
        op: O,
    ) -> Stream<U> {
        self.stream.process(name, op)
    }

    /// Ends the keyed stream in a sink node: all records of a key reach the
    /// same sink instance.
    pub fn sink<S: Sink<T>>(&self, name: impl Into<String>, sink: S) -> SinkHandle {
        self.stream.sink(name, sink)
    }

    /// The name of the node the stream comes from.
    pub fn node_name(&self) -> String {
        self.stream.node_name()
    }
}
