//! The runtime: tasks on tokio joined by bounded channels.
//!
//! One task runs per (fused chain, parallel instance). Inside a task, nodes
//! call each other directly; between tasks, batches and control messages
//! travel in order through bounded channels, so a slow consumer makes its
//! producers wait, back to the sources (backpressure), and memory stays
//! bounded whatever the input rate.

pub(crate) mod erased;
pub(crate) mod exit;
pub(crate) mod job;
pub(crate) mod node;
pub(crate) mod plan;
pub(crate) mod push;
pub(crate) mod running;
pub(crate) mod task;

pub use job::Job;
pub use running::RunningJob;
