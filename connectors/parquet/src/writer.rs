//! [`ParquetSinkWriter`]: one instance of a [`ParquetSink`](super::ParquetSink),
//! keeping one open file per partition and rolling them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brook_core::{Batch, CheckpointId, Error, EventTime, ProcessingTimer, Result, SinkWriter};
use serde::Serialize;

use crate::part::{FileFormat, Finish, PartFile, PartPaths};
use crate::partition::Partitioner;

/// When a file is closed and the next one started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rolling {
    /// Rows per file, at most.
    pub(crate) max_rows: u64,
    /// Estimated bytes per file, at most.
    pub(crate) max_bytes: u64,
    /// How long a file stays open at most.
    pub(crate) rollover: Option<Duration>,
    /// How long a file stays open without a new row.
    pub(crate) inactivity: Option<Duration>,
}

impl Rolling {
    /// Whether the file is as large as a file may be.
    fn full(&self, part: &PartFile) -> bool {
        part.rows >= self.max_rows || part.bytes >= self.max_bytes
    }

    /// When the file is to be closed by age or inactivity, if ever.
    fn deadline(&self, part: &PartFile) -> Option<Instant> {
        let by_age = self.rollover.and_then(|d| part.opened.checked_add(d));
        let idle = self.inactivity.and_then(|d| part.last_row.checked_add(d));
        match (by_age, idle) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What every instance of a sink shares, made at its first open.
pub(crate) struct Shared<T> {
    pub(crate) dir: PathBuf,
    pub(crate) format: Arc<FileFormat>,
    pub(crate) partitioner: Partitioner<T>,
    pub(crate) rolling: Rolling,
    /// Rows a file buffers before they are encoded and written.
    pub(crate) buffer_rows: usize,
    /// Unique to the run: in every file name, so runs never collide.
    pub(crate) run: String,
    /// The job's name, for the commit record.
    pub(crate) job: String,
    /// Whether the run replaces the directory's earlier output when the job
    /// succeeds: finished files then stay hidden, staged, until
    /// [`Sink::finish`](brook_core::Sink::finish).
    pub(crate) replace: bool,
    /// The final paths of the files finished and staged so far: with
    /// replacement or checkpoints, every file the run finished stays
    /// hidden until it is published.
    pub(crate) staged: std::sync::Mutex<Vec<PathBuf>>,
    /// With checkpoints: the files staged by completed checkpoints (kept
    /// when the job is stopped, for the run that restores), and for a
    /// replacing run restored from a checkpoint, the files that
    /// checkpoint had staged (carried into every later checkpoint).
    pub(crate) checkpointed: std::sync::Mutex<Checkpointed>,
}

/// What completed checkpoints hold of a sink's output.
#[derive(Debug, Default)]
pub(crate) struct Checkpointed {
    /// Files staged for (or published by) completed checkpoints.
    pub(crate) files: std::collections::HashSet<PathBuf>,
    /// A replacing run's files from before the restore.
    pub(crate) carried: Vec<PathBuf>,
}

impl<T> Shared<T> {
    /// Locks what completed checkpoints hold.
    pub(crate) fn checkpointed(&self) -> std::sync::MutexGuard<'_, Checkpointed> {
        self.checkpointed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Locks the staged files.
    pub(crate) fn staged(&self) -> std::sync::MutexGuard<'_, Vec<PathBuf>> {
        self.staged
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Whether a writer can go on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Open,
    /// A call failed or was cancelled: its files may be in any state.
    Failed,
    Closed,
}

/// One instance of a [`ParquetSink`](super::ParquetSink): buffers the values
/// of each partition and writes them to that partition's open file,
/// closing and publishing files as they roll and at
/// [`close`](SinkWriter::close).
pub struct ParquetSinkWriter<T> {
    shared: Arc<Shared<T>>,
    instance: usize,
    /// The number of the next file this instance starts.
    seq: u64,
    /// The open file of each partition, by relative directory.
    files: HashMap<String, PartFile>,
    /// The relative directory of the value at hand.
    key: String,
    /// No open file is due to roll by time before this.
    next_check: Option<Instant>,
    /// The task's timer; its clock tells the time files are opened, get
    /// rows and roll at.
    timer: ProcessingTimer,
    state: State,
    /// Whether the job takes checkpoints: files are then staged, and
    /// published when a checkpoint that holds them completes.
    checkpointing: bool,
    /// With checkpoints: the files staged since the last checkpoint
    /// (for a replacing run, since the run started).
    pending: Vec<PathBuf>,
}

impl<T> ParquetSinkWriter<T> {
    pub(crate) fn new(
        shared: Arc<Shared<T>>,
        instance: usize,
        timer: ProcessingTimer,
        checkpointing: bool,
    ) -> Self {
        ParquetSinkWriter {
            shared,
            instance,
            seq: 0,
            files: HashMap::new(),
            key: String::new(),
            next_check: None,
            timer,
            state: State::Open,
            checkpointing,
            pending: Vec::new(),
        }
    }

    /// Fails if an earlier call failed or was cancelled, or the writer is
    /// closed.
    fn usable(&self) -> Result<()> {
        let what = match self.state {
            State::Open => return Ok(()),
            State::Failed => "an earlier write failed or was cancelled",
            State::Closed => "it is already closed",
        };
        Err(Error::Internal(format!(
            "cannot write to the parquet sink in {}: {what}",
            self.shared.dir.display()
        )))
    }

    /// Starts the file of the partition `self.key`.
    fn start_file(&mut self, now: Instant) -> Result<()> {
        let shared = &*self.shared;
        let name = format!(
            "part-{}-{}-{:05}.parquet",
            shared.run, self.instance, self.seq
        );
        self.seq += 1;
        let dir = if self.key.is_empty() {
            shared.dir.clone()
        } else {
            shared.dir.join(&self.key)
        };
        let part = PartFile::new(PartPaths::new(dir, &name), &shared.format, now)?;
        if let Some(at) = shared.rolling.deadline(&part) {
            self.next_check = Some(self.next_check.map_or(at, |t| t.min(at)));
        }
        self.files.insert(self.key.clone(), part);
        Ok(())
    }

    /// Publishes every file due to roll by age or inactivity at `now`.
    async fn roll_due(&mut self, now: Instant) -> Result<()> {
        if self.next_check.is_none_or(|t| now < t) {
            return Ok(());
        }
        let rolling = self.shared.rolling;
        let mut due: Vec<String> = self
            .files
            .iter()
            .filter(|(_, part)| rolling.deadline(part).is_some_and(|t| t <= now))
            .map(|(key, _)| key.clone())
            .collect();
        due.sort();
        for key in due {
            if let Some(part) = self.files.remove(&key) {
                finish_file(&self.shared, self.checkpointing, &mut self.pending, part).await?;
            }
        }
        self.next_check = self
            .files
            .values()
            .filter_map(|p| rolling.deadline(p))
            .min();
        Ok(())
    }

    /// Asks the task to wake (and so flush this writer) when the next file
    /// is due to roll by time, so that an idle job still publishes on time.
    fn arm_timer(&self, now: Instant) {
        if let Some(at) = self.next_check {
            let wait = at.saturating_duration_since(now);
            // Rounded up, so that the wake-up does not come just before.
            let ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
            self.timer
                .wake_at(self.timer.now_ms().saturating_add(ms).saturating_add(1));
        }
    }

    /// Rolls what is due by time, as an idle input or a watermark allows.
    async fn tick(&mut self) -> Result<()> {
        self.usable()?;
        self.state = State::Failed;
        let now = self.timer.clock().now();
        self.roll_due(now).await?;
        self.arm_timer(now);
        self.state = State::Open;
        Ok(())
    }
}

/// Finishes a file: publishes it, or, for a replacing run or with
/// checkpoints, stages it (complete and synced under its hidden name) for
/// a later commit.
async fn finish_file<T>(
    shared: &Shared<T>,
    checkpointing: bool,
    pending: &mut Vec<PathBuf>,
    part: PartFile,
) -> Result<()> {
    let rows = part.rows;
    let finish = match (checkpointing, shared.replace) {
        (true, _) => Finish::StageDurably,
        (false, true) => Finish::Stage,
        (false, false) => Finish::Publish,
    };
    let stage = finish != Finish::Publish;
    let path = part.commit(&shared.format, finish).await?;
    if stage {
        tracing::debug!(path = %path.display(), rows, "Parquet file staged.");
        shared.staged().push(path.clone());
        if checkpointing {
            pending.push(path);
        }
    } else {
        tracing::debug!(path = %path.display(), rows, "Parquet file published.");
    }
    Ok(())
}

impl<T> SinkWriter<T> for ParquetSinkWriter<T>
where
    T: Serialize + Send + 'static,
{
    /// Buffers the batch's values in their partitions' files; writes a
    /// file's buffer when it is full and rolls a file when it reaches its
    /// size or age, waiting for the writes (backpressure).
    ///
    /// # Errors
    /// [`Error::BadRecord`] naming the file and row for a value the schema
    /// cannot hold; [`Error::Io`] naming the path for a failed write.
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        self.usable()?;
        self.state = State::Failed;
        let now = self.timer.clock().now();
        // By value: a borrowing iterator would hold `&T` across the await.
        for record in batch {
            self.key.clear();
            self.shared.partitioner.path(&record.value, &mut self.key);
            if !self.files.contains_key(self.key.as_str()) {
                self.start_file(now)?;
            }
            let shared = &*self.shared;
            let Some(part) = self.files.get_mut(self.key.as_str()) else {
                return Err(Error::Internal("a started file is missing".into()));
            };
            part.push(&record.value, now)?;
            if part.buffered() >= shared.buffer_rows {
                part.write_buffered(&shared.format).await?;
            }
            if shared.rolling.full(part)
                && let Some(part) = self.files.remove(self.key.as_str())
            {
                finish_file(shared, self.checkpointing, &mut self.pending, part).await?;
            }
        }
        self.roll_due(now).await?;
        self.arm_timer(now);
        self.state = State::Open;
        Ok(())
    }

    /// Publishes the files due to roll by time.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn on_watermark(&mut self, _watermark: EventTime) -> Result<()> {
        self.tick().await
    }

    /// Publishes the files due to roll by time: called when the input is
    /// idle, and when the task wakes for the next such file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn flush(&mut self) -> Result<()> {
        self.tick().await
    }

    /// Publishes every open file, in every partition. Every file is tried;
    /// the first failure is returned.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn close(&mut self) -> Result<()> {
        if self.state == State::Closed {
            return Ok(());
        }
        self.usable()?;
        self.state = State::Failed;
        let mut parts: Vec<(String, PartFile)> = self.files.drain().collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        let mut first_error = None;
        for (_, part) in parts {
            let r = finish_file(&self.shared, self.checkpointing, &mut self.pending, part).await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "Parquet file not published.");
                first_error.get_or_insert(e);
            }
        }
        self.next_check = None;
        match first_error {
            Some(e) => Err(e),
            None => {
                self.state = State::Closed;
                Ok(())
            }
        }
    }

    /// Finishes every open file, staged, and returns the files to publish
    /// when the checkpoint completes: those staged since the last one, or
    /// for a replacing run every file it staged (the first instance adds
    /// those carried from before a restore), since a replacing run
    /// publishes only when it ends.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn checkpoint(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        self.usable()?;
        self.state = State::Failed;
        let mut parts: Vec<(String, PartFile)> = self.files.drain().collect();
        parts.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, part) in parts {
            finish_file(&self.shared, true, &mut self.pending, part).await?;
        }
        self.next_check = None;
        let mut files: Vec<PathBuf> = if self.shared.replace {
            self.pending.clone()
        } else {
            std::mem::take(&mut self.pending)
        };
        if self.shared.replace && self.instance == 0 {
            files.extend(self.shared.checkpointed().carried.iter().cloned());
        }
        self.state = State::Open;
        brook_connectors::output::PreCommit::encode(&self.shared.dir, &files)
    }
}
