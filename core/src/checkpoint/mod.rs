//! Checkpoints: a job's consistent snapshot, taken while it runs, from
//! which a job that died resumes with nothing lost and nothing doubled.
//!
//! # How a checkpoint is taken
//! Every [interval](CheckpointConfig::interval) the job's coordinator asks
//! each source instance for checkpoint `n`. The instance records its
//! position in each of its splits and sends barrier `n` downstream, behind
//! the records it has emitted. A task with several upstream instances
//! aligns the barriers: once one input has delivered barrier `n`, what it
//! sends next waits until every input has delivered it. Each operator
//! snapshots its state when the barrier passes it, and each sink
//! pre-commits what it has written (a Parquet sink finishes its file). When
//! every node instance has reported, the checkpoint's state files are
//! written, then its manifest, atomically; then the sinks publish what
//! they pre-committed for it.
//!
//! # Layout
//! ```text
//! <dir>/chk-000042/_manifest.json   # what the checkpoint holds, written last
//! <dir>/chk-000042/<node>/<instance> # an operator's or sink's state
//! ```
//! The newest [`retain`](CheckpointConfig::retain) complete checkpoints
//! are kept.
//!
//! # The end of the input
//! A source instance that has read all its input sends the end downstream
//! (event-time windows fire) and stays, taking the checkpoints that follow,
//! so checkpoints go on while other instances still read. Once every
//! instance has read its input, a final checkpoint starts at once: its
//! barriers follow the end, so it holds everything the end made the sinks
//! write. When it is committed the tasks close and the job completes. A
//! job restored from a final checkpoint runs nothing: its sinks publish
//! what it holds and finish, as after any completed run. So a crash at any
//! point, even while the job is finishing, loses and doubles nothing.
//!
//! # Stopping
//! A job shut down gracefully (its shutdown token cancelled: Ctrl-C,
//! SIGTERM) stops reading, and its sources send a stop instead of the end:
//! nothing fires (no end-of-input watermark, no `on_end`). Then a stop
//! checkpoint is taken, as the final one is, holding every window still
//! open and where each source stopped; the job ends once it is committed,
//! and a restore from it resumes exactly there, reading nothing twice.
//!
//! # Restore
//! A job built with a checkpoint directory starts from its newest complete
//! checkpoint (see [`Restore`]): sources resume at their positions,
//! operators get their state, sinks publish what the checkpoint had them
//! pre-commit and drop what was written after it. A folder without a
//! manifest, or whose manifest or state files are damaged, is skipped
//! with a warning naming it, and the checkpoint before it is used.
//!
//! # Rescaling
//! A checkpoint restores at any parallelism. Operators checkpoint their
//! keyed state by key group ([`Snapshot`](crate::state::Snapshot)); on
//! restore each key group goes to the instance that the hash exchange
//! routes its keys to at the new parallelism, and every instance gets the
//! instance state of every old instance to merge (a watermark: the
//! lowest). A source plans the splits the checkpoint has positions in (as
//! at the old parallelism) and deals them to the new instances.
//!
//! # Limits
//! - Only sources whose splits can resume ([`SourceSplit::RESUMABLE`]: files,
//!   the Kafka source, the workload generator) may run in a checkpointed
//!   job.
//!
//! [`SourceSplit::RESUMABLE`]: crate::SourceSplit::RESUMABLE

pub(crate) mod coordinator;
pub mod failpoint;
pub(crate) mod manifest;
pub(crate) mod restore;
pub(crate) mod storage;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStore;

use crate::message::CheckpointId;

/// The interval between checkpoints unless set.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);

/// How many complete checkpoints are kept unless set.
pub const DEFAULT_RETAIN: usize = 3;

/// The file in a local checkpoint directory that a job holds locked
/// (`flock`) while it runs, so that no second job writes there. The OS
/// frees it when the process dies. In a process that drops a running job,
/// it is freed once the job's tasks have ended and a checkpoint it was
/// writing has finished, shortly after the drop: a job built on the
/// directory before then is refused as a second writer.
pub const LOCK_FILE: &str = ".brook-checkpoints.lock";

/// Whether a running job, in this process or another, holds the local
/// checkpoint directory `dir` ([`LOCK_FILE`]). A directory without a lock
/// file (no job has used it) is not in use.
///
/// # Errors
/// [`Error::Io`](crate::Error::Io) naming the lock file when it cannot be
/// opened or probed.
pub fn in_use(dir: &Path) -> crate::Result<bool> {
    let path = dir.join(LOCK_FILE);
    let io = |e| crate::Error::io(format_args!("probing {}", path.display()), e);
    let file = match std::fs::OpenOptions::new().write(true).open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(io(e)),
    };
    // A lock taken here is let go when `file` is dropped.
    match file.try_lock() {
        Ok(()) => Ok(false),
        Err(std::fs::TryLockError::WouldBlock) => Ok(true),
        Err(std::fs::TryLockError::Error(e)) => Err(io(e)),
    }
}

/// Where a job starts when its checkpoint directory has checkpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Restore {
    /// From the newest complete checkpoint, if there is one (the default).
    #[default]
    Latest,
    /// From checkpoint `n`, which must be complete.
    Checkpoint(CheckpointId),
    /// From the beginning: the checkpoints the directory holds are
    /// deleted when the job is built.
    Fresh,
}

/// How a job checkpoints: where, how often, how many to keep, and where
/// to start.
///
/// ```
/// use std::time::Duration;
/// use brook_core::CheckpointConfig;
///
/// let checkpoints = CheckpointConfig::new("/var/lib/brook/logs-job")
///     .interval(Duration::from_secs(1))
///     .retain(5);
/// # let _ = checkpoints;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointConfig {
    location: Location,
    interval: Duration,
    retain: usize,
    restore: Restore,
}

/// Where checkpoints are kept.
#[derive(Debug, Clone)]
pub(crate) enum Location {
    /// A local directory.
    Dir(PathBuf),
    /// A prefix of an object store.
    Store(StoreLocation),
}

/// A prefix of an object store, and how to name it in messages.
#[derive(Debug, Clone)]
pub(crate) struct StoreLocation {
    pub(crate) store: Arc<dyn ObjectStore>,
    pub(crate) prefix: object_store::path::Path,
    pub(crate) url: String,
}

impl PartialEq for Location {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Location::Dir(a), Location::Dir(b)) => a == b,
            (Location::Store(a), Location::Store(b)) => {
                Arc::ptr_eq(&a.store, &b.store) && a.prefix == b.prefix
            }
            _ => false,
        }
    }
}

impl Eq for Location {}

impl CheckpointConfig {
    /// Checkpoints in the local directory `dir` (created if missing), every
    /// [`DEFAULT_INTERVAL`], keeping [`DEFAULT_RETAIN`], restoring the
    /// newest.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::at(Location::Dir(dir.into()))
    }

    /// Checkpoints under `prefix` of an object store (S3 and compatible
    /// stores, or `object_store`'s in-memory store for tests). Each `put`
    /// of an object store is atomic, so the manifest written last makes a
    /// checkpoint complete, as in a directory. Unlike a directory, a
    /// prefix is not locked against a second job: give each job its own.
    pub fn object_store(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        let url = format!("{store}/{}", prefix.trim_matches('/'));
        Self::at(Location::Store(StoreLocation {
            store,
            prefix: object_store::path::Path::from(prefix.trim_matches('/')),
            url,
        }))
    }

    /// Checkpoints at `location`: a local path, or a URL of an object
    /// store: `s3://bucket/prefix` (with the `s3` feature; credentials and
    /// endpoint from the `AWS_*` environment variables, as the AWS tools
    /// read them) or `memory:///prefix` (in this process only, for tests).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for a URL whose scheme this
    /// build does not support.
    pub fn from_location(location: &str) -> crate::Result<Self> {
        if !location.contains("://") {
            return Ok(Self::new(location));
        }
        let url = url::Url::parse(location).map_err(|e| {
            crate::Error::Config(format!("checkpoints: '{location}' is not a URL: {e}"))
        })?;
        let (store, prefix) = parse_store_url(&url).map_err(|e| {
            crate::Error::Config(format!(
                "checkpoints: cannot store checkpoints at '{location}': {e}"
            ))
        })?;
        Ok(Self::at(Location::Store(StoreLocation {
            store: Arc::from(store),
            prefix,
            url: location.to_string(),
        })))
    }

    fn at(location: Location) -> Self {
        CheckpointConfig {
            location,
            interval: DEFAULT_INTERVAL,
            retain: DEFAULT_RETAIN,
            restore: Restore::Latest,
        }
    }

    /// The time between the start of one checkpoint and the next (at
    /// least 1 ms); a checkpoint that takes longer delays the next.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How many complete checkpoints to keep (at least 1).
    pub fn retain(mut self, n: usize) -> Self {
        self.retain = n.max(1);
        self
    }

    /// Where to start: see [`Restore`].
    pub fn restore(mut self, restore: Restore) -> Self {
        self.restore = restore;
        self
    }

    /// The checkpoint directory, when checkpoints are kept in one.
    pub fn dir(&self) -> Option<&Path> {
        match &self.location {
            Location::Dir(dir) => Some(dir),
            Location::Store(_) => None,
        }
    }

    /// Where checkpoints are kept, as a path or URL.
    pub fn location(&self) -> String {
        match &self.location {
            Location::Dir(dir) => dir.display().to_string(),
            Location::Store(s) => s.url.clone(),
        }
    }

    pub(crate) fn place(&self) -> &Location {
        &self.location
    }

    /// The interval between checkpoints.
    pub fn checkpoint_interval(&self) -> Duration {
        self.interval
    }

    /// How many complete checkpoints are kept.
    pub fn retained(&self) -> usize {
        self.retain
    }

    /// Where the job starts.
    pub fn restore_mode(&self) -> Restore {
        self.restore
    }
}

/// The store and prefix of an object-store URL this build supports.
fn parse_store_url(
    url: &url::Url,
) -> std::result::Result<(Box<dyn ObjectStore>, object_store::path::Path), String> {
    match url.scheme() {
        "memory" => {
            let prefix = object_store::path::Path::from(url.path().trim_matches('/'));
            Ok((Box::new(object_store::memory::InMemory::new()), prefix))
        }
        #[cfg(feature = "s3")]
        "s3" | "s3a" => object_store::parse_url_opts(
            url,
            std::env::vars().filter(|(k, _)| k.starts_with("AWS_")),
        )
        .map_err(|e| e.to_string()),
        #[cfg(not(feature = "s3"))]
        "s3" | "s3a" => Err("S3 needs Brook built with the `s3` feature".into()),
        other => Err(format!(
            "the scheme '{other}' is not supported (use a path, s3:// or memory://)"
        )),
    }
}
