//! Job-wide settings.

/// The default number of records in a batch.
pub const DEFAULT_BATCH_SIZE: usize = 1024;

/// The default capacity of a task's input channel, in batches.
pub const DEFAULT_CHANNEL_CAPACITY: usize = 8;

/// The most parallel instances a node may have: [`Dataflow::build`]
/// refuses a default parallelism ([`JobConfig::parallelism`]) or a node's
/// own parallelism above it with [`Error::Plan`].
///
/// Why a limit, and why 1024: what a job costs grows with the square of
/// the parallelism on every edge that is not forward (a key exchange, a
/// rebalance), since each of `p` upstream instances keeps a buffer, a
/// channel sender and a watermark slot for each of `p` downstream ones, and
/// every watermark goes to all of them. A 200,000-event windowed job on two
/// cores took 0.13 GiB and 0.6 s at 512, 0.28 GiB and 3 s at 1024, 1 GiB
/// and 78 s at 4000, and passed 5.6 GiB in 20 s at 10,000. Keyed state is spread in
/// [`KEY_GROUPS`](crate::partition::KEY_GROUPS) (4096) key groups, so an
/// instance beyond the 4096th could never own a key: 4096 would be the
/// absolute ceiling, and 1024 leaves every keyed instance at least four key
/// groups. A host rarely has more than a few hundred cores; parallelism
/// beyond them buys nothing here.
///
/// [`Dataflow::build`]: crate::Dataflow::build
/// [`Error::Plan`]: crate::Error::Plan
pub const MAX_PARALLELISM: usize = 1024;

/// Settings for a whole dataflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobConfig {
    /// Parallelism of nodes that set none; default: the number of cores.
    /// At most [`MAX_PARALLELISM`].
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
