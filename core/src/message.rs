//! What travels in a channel between tasks: data and control, in one order.

use crate::record::{Batch, EventTime};

/// The number of a checkpoint.
pub type CheckpointId = u64;

/// One message in a channel between two tasks. Control messages are never
/// overtaken by data sent after them, nor overtake data sent before them.
#[derive(Debug, Clone, PartialEq)]
pub enum Message<T> {
    /// A batch of records.
    Batch(Batch<T>),
    /// No record with an event time at or below this will follow.
    Watermark(EventTime),
    /// The sender is idle: don't wait for its watermark until it sends a
    /// batch or a watermark again.
    Idle,
    /// A checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(CheckpointId),
    /// The sender has no more input.
    End,
    /// The job is stopping with a checkpoint: the sender sends nothing
    /// more but checkpoint barriers, and nothing fires (no end-of-input
    /// watermark, no `on_end`), so a restore resumes where it stopped.
    Stop,
}

/// A message tagged with the index of the sender it came from, so a task
/// with several upstream senders can track each one (watermarks, ends).
#[derive(Debug)]
pub(crate) struct Envelope<T> {
    pub(crate) from: u32,
    pub(crate) msg: Message<T>,
}
