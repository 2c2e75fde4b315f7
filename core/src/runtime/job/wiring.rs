//! How [`Job::start`](super::Job::start) wires one instance of a task:
//! its chain of nodes, with their contexts, restored state and side
//! outputs, and the exits that carry each output to other tasks.

use std::sync::Arc;

use super::Job;
use crate::context::TaskContext;
use crate::dataflow::graph::{Logic, NodeId};
use crate::error::{Error, Result};
use crate::runtime::erased::{Erased, Partitioning, TaskFuture};
use crate::runtime::push::Feeder;
use crate::time::ProcessingTimer;

impl Job {
    /// Builds the chain of task `t`, instance `instance`, and its driving loop.
    pub(super) fn task(
        &mut self,
        t: usize,
        instance: usize,
        senders: &[Vec<Erased>],
        receivers: &mut [Vec<Option<Erased>>],
    ) -> Result<TaskFuture> {
        let head = self.plan.heads[t];
        // Every node of this task instance shares one processing-time timer.
        self.timer = ProcessingTimer::default();
        let ctx = self.context(head, instance);
        if let Logic::Source(_) = self.graph.nodes[head].logic {
            let out = self.outputs(head, 0, instance, senders)?;
            let out = out.ok_or_else(|| Error::Internal("a source without outputs".into()))?;
            let trigger = self.checkpoints.as_ref().and_then(|ck| {
                let first = ck.slots.get(&head)?;
                Some(ck.triggers.slot(first + instance))
            });
            let Logic::Source(source) = &mut self.graph.nodes[head].logic else {
                unreachable!()
            };
            return source.start(ctx, out, trigger);
        }
        let push = self.build_push(head, instance, senders)?;
        let rx = receivers[t][instance]
            .take()
            .ok_or_else(|| Error::Internal("receiver taken twice".into()))?;
        let port = self.graph.nodes[head]
            .input
            .as_ref()
            .ok_or_else(|| Error::Internal("head without input".into()))?;
        port.run(
            rx,
            self.plan.senders(&self.graph, head),
            self.metrics[head][instance].clone(),
            self.timer.clone(),
            push,
            self.checkpoints.is_some(),
        )
    }

    fn context(&self, node: NodeId, instance: usize) -> TaskContext {
        TaskContext {
            job: self.name.clone(),
            node: Arc::from(self.graph.nodes[node].name.as_str()),
            instance,
            parallelism: self.plan.parallelism[node],
            batch_size: self.config.batch_size,
            shutdown: self.shutdown.clone(),
            metrics: self.metrics[node][instance].clone(),
            timer: self.timer.clone(),
            acker: self.checkpoints.as_ref().map(|ck| ck.acker.clone()),
            completed: match (&self.checkpoints, &self.graph.nodes[node].logic) {
                (Some(_), Logic::Source(_)) => Some(Arc::default()),
                _ => None,
            },
        }
    }

    /// The pusher that takes output `port` of `node` (0 the main one, `k`
    /// side output `k - 1`): its chained consumers and exits to other
    /// tasks, behind a tee when there are several.
    fn outputs(
        &mut self,
        node: NodeId,
        port: usize,
        instance: usize,
        senders: &[Vec<Erased>],
    ) -> Result<Option<Erased>> {
        let mut outs = Vec::new();
        for (consumer, edge) in self.plan.consumers[node].clone() {
            if self.graph.nodes[consumer].inputs[edge].port != port {
                continue;
            }
            if self.plan.chained[consumer] {
                outs.push(self.build_push(consumer, instance, senders)?);
                continue;
            }
            let t = self.plan.task_of[consumer];
            let input = self.graph.nodes[consumer]
                .input
                .as_ref()
                .ok_or_else(|| Error::Internal("no input".into()))?;
            let part = &self.plan.partitioning[consumer][edge];
            let which: Vec<usize> = match part {
                Partitioning::Forward => vec![instance],
                _ => (0..self.plan.parallelism[consumer]).collect(),
            };
            let targets = which
                .into_iter()
                .map(|i| {
                    Ok((
                        input.clone_sender(&senders[t][i])?,
                        self.metrics[consumer][i].clone(),
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let from = self
                .plan
                .sender_index(&self.graph, consumer, edge, instance);
            let output = self
                .graph
                .output_port(node, port)
                .ok_or_else(|| Error::Internal("no output".into()))?;
            let exit = output.exit(
                part,
                targets,
                self.config.batch_size,
                from as u32,
                self.feeder(node, instance),
            )?;
            outs.push(exit);
        }
        match outs.len() {
            0 => Ok(None),
            1 => Ok(outs.pop()),
            _ => {
                let output = self
                    .graph
                    .output_port(node, port)
                    .ok_or_else(|| Error::Internal("no output".into()))?;
                output.tee(outs, self.feeder(node, instance)).map(Some)
            }
        }
    }

    fn feeder(&self, node: NodeId, instance: usize) -> Feeder {
        Feeder {
            node: Arc::from(self.graph.nodes[node].name.as_str()),
            metrics: self.metrics[node][instance].clone(),
        }
    }

    /// The input pusher of `node` (an operator or sink) with its outputs.
    fn build_push(
        &mut self,
        node: NodeId,
        instance: usize,
        senders: &[Vec<Erased>],
    ) -> Result<Erased> {
        let out = self.outputs(node, 0, instance, senders)?;
        // The side outputs with a consumer, by tag name.
        let mut sides = Vec::new();
        for k in 0..self.graph.nodes[node].sides.len() {
            if let Some(push) = self.outputs(node, k + 1, instance, senders)? {
                let side = &self.graph.nodes[node].sides[k];
                sides.push((side.name.clone(), side.port.side(push)?));
            }
        }
        let ctx = self.context(node, instance);
        let restored = self
            .checkpoints
            .as_mut()
            .and_then(|ck| ck.states.get_mut(&node))
            .and_then(|states| states.get_mut(instance))
            .and_then(Option::take);
        match (&mut self.graph.nodes[node].logic, out) {
            (Logic::Operator(op), Some(out)) => op.instantiate(ctx, out, sides, restored),
            (Logic::Sink(sink), None) => sink.instantiate(ctx),
            _ => Err(Error::Internal(format!(
                "node {node} is misplaced in a chain"
            ))),
        }
    }
}
