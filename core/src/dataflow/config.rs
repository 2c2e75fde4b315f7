//! Job-wide settings.

/// The default number of records in a batch.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// The default capacity of a task's input channel, in batches.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 8;

/// Settings for a whole dataflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// Parallelism of nodes that set none; default: the number of cores.
    pub parallelism: usize,
    /// The most records a batch holds between tasks.
    pub batch_size: usize,
    /// The capacity of each task's input channel, in batches: with the batch
    /// size, this bounds the records in flight between two tasks.
    pub channel_capacity: usize,
    /// Whether forward edges at equal parallelism are fused into one task.
    pub chaining: bool,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            parallelism: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            batch_size: DEFAULT_BATCH_SIZE,
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            chaining: true,
        }
    }
}
