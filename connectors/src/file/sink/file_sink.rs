//! [`FileSink`]: the sink that [`JsonLinesSink`] and [`CsvSink`] are.

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use brook_core::{CheckpointId, JobOutcome, PlanContext, Result, Sink, SinkContext};

use super::writer::{CHUNK_SIZE, FileSinkWriter, PartFile, Rolling};
use crate::codec::{Csv, Encoder, Json};
use crate::output::{self, OutputLock};
use crate::publish::check_dir;

/// A sink writing JSON lines: one JSON value per line, one
/// `part-<instance>.jsonl` file per parallel instance.
///
/// ```no_run
/// use brook_connectors::file::JsonLinesSink;
///
/// #[derive(serde::Serialize)]
/// struct Hit { path: String, status: u16 }
///
/// let sink = JsonLinesSink::<Hit>::new("out/hits");
/// ```
pub type JsonLinesSink<T> = FileSink<T, Json>;

/// A sink writing CSV rows of flat records (see [`Csv`]), by default
/// with a header row, one `part-<instance>.csv` file per parallel instance.
///
/// ```no_run
/// use brook_connectors::file::CsvSink;
///
/// #[derive(serde::Serialize)]
/// struct Trip { city: String, km: f64 }
///
/// let sink = CsvSink::<Trip>::new("out/trips").delimiter(b';');
/// ```
pub type CsvSink<T> = FileSink<T, Csv>;

/// A sink that writes each parallel instance's values to its own part file
/// in a directory, encoded by an [`Encoder`] (a [codec](crate::codec)).
///
/// # Files
/// Instance `i` writes `part-<i>.<ext>` (`part-0.csv`, `part-2.jsonl`) in
/// the directory, which is created if missing. An instance that gets no
/// records writes no file. The sink never empties the directory: part
/// files of an earlier run that this run does not replace stay, so give
/// each run and each sink a directory of its own.
///
/// # Rename on close
/// While it writes, an instance's file is hidden as
/// `.part-<i>.<ext>.inprogress`. At end of input the instance syncs it and
/// renames it to its final name, replacing a file of that name, then syncs
/// the directory: a file under a final name is always complete. Readers
/// (Brook's file sources among them) skip names starting with `.` or `_`.
/// Output appears only at end of input.
///
/// # With checkpoints
/// Exactly once: each checkpoint stages every instance's file and
/// publishes it when the checkpoint completes; files are then named
/// `part-<i>-<run>-<seq>.<ext>`, and a restore publishes what its
/// checkpoint staged and removes the in-progress files no checkpoint holds.
///
/// # After a crash
/// Without checkpoints, a job that crashes, fails or is dropped before its
/// sinks close leaves
/// their hidden in-progress files, possibly partial and never renamed. The
/// next run of the same instance into the same directory truncates and
/// reuses the name.
///
/// # I/O
/// Records are encoded on the task into a chunk of about 1 MiB; each full
/// chunk is written on tokio's blocking pool and awaited (backpressure).
pub struct FileSink<T, E> {
    dir: PathBuf,
    encoder: Arc<E>,
    /// How many encoded bytes an instance holds before it writes them;
    /// changed only by tests.
    chunk_size: usize,
    /// The directory's lock, held from planning until the sink is dropped.
    lock: Option<OutputLock>,
    /// With checkpoints (known at planning): this run's id, in its file
    /// names.
    run: Option<String>,
    /// Files the writers staged at close, published when the job completes.
    staged: Arc<Mutex<Vec<PathBuf>>>,
    /// Files the restored checkpoint pre-committed, published at planning.
    restored: Vec<PathBuf>,
    _t: PhantomData<fn(T)>,
}

impl<T> FileSink<T, Json> {
    /// A JSON-lines sink writing part files into `dir`, which is created
    /// if missing.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_codec(dir, Json)
    }
}

impl<T> FileSink<T, Csv> {
    /// A CSV sink writing part files into `dir`, which is created if
    /// missing; comma separated, with a header row.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self::with_codec(dir, Csv::new())
    }

    /// Whether each part file starts with a header row of field names
    /// (default: true).
    pub fn header(mut self, yes: bool) -> Self {
        self.encoder = Arc::new(self.encoder.has_headers(yes));
        self
    }

    /// The field delimiter (default: `b','`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.encoder = Arc::new(self.encoder.delimiter(delimiter));
        self
    }
}

impl<T, E> FileSink<T, E> {
    /// A sink writing part files into `dir`, which is created if missing,
    /// with any encoder.
    pub fn with_codec(dir: impl Into<PathBuf>, encoder: E) -> Self {
        FileSink {
            dir: dir.into(),
            encoder: Arc::new(encoder),
            chunk_size: CHUNK_SIZE,
            lock: None,
            run: None,
            staged: Arc::default(),
            restored: Vec::new(),
            _t: PhantomData,
        }
    }

    /// The directory the part files go to.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// How many encoded bytes an instance holds before it writes them, for
    /// tests that want files on disk before the end.
    #[cfg(test)]
    pub(crate) fn chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }
}

impl<T, E> Sink<T> for FileSink<T, E>
where
    T: Send + 'static,
    E: Encoder<T>,
{
    type Writer = FileSinkWriter<T, E>;

    /// Locks the directory (creating it) against a second writer and
    /// removes the in-progress files that crashed runs left.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) for a directory that
    /// is a file or that another job is writing; [`Error::Io`](brook_core::Error::Io)
    /// naming it when it cannot be created or cleaned.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        if self.lock.is_none() {
            self.lock = Some(OutputLock::acquire(&self.dir, ctx.job_name())?);
            output::remove_abandoned_except(&self.dir, &self.restored)?;
            output::publish_staged(&self.dir, &std::mem::take(&mut self.restored))?;
        }
        if ctx.checkpoints_enabled() && self.run.is_none() {
            self.run = Some(output::run_id());
        }
        Ok(())
    }

    /// Publishes the files the writers staged for a checkpoint that
    /// completed.
    ///
    /// # Errors
    /// [`Error::Io`](brook_core::Error::Io) naming the path;
    /// [`Error::State`](brook_core::Error::State) for a pre-commit that
    /// does not parse.
    fn commit(&mut self, _checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        output::publish_staged(
            &self.dir,
            &output::PreCommit::files(&self.dir, pre_committed)?,
        )
    }

    /// Notes the files the restored checkpoint staged: they survive the
    /// clean-up of in-progress files at planning, and are published then
    /// (a file already published counts as done).
    ///
    /// # Errors
    /// [`Error::State`](brook_core::Error::State) for a pre-commit that
    /// does not parse.
    fn restore(&mut self, _checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        self.restored = output::PreCommit::files(&self.dir, pre_committed)?;
        Ok(())
    }

    /// With checkpoints: publishes the files staged at close (written
    /// after the last checkpoint; after a final checkpoint there are none)
    /// when the job completed, removes them when it was stopped (a restore
    /// writes them again).
    ///
    /// # Errors
    /// [`Error::Io`](brook_core::Error::Io) naming the path.
    fn finish(&mut self, outcome: JobOutcome) -> Result<()> {
        let staged = std::mem::take(
            &mut *self
                .staged
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        match outcome {
            JobOutcome::Completed => output::publish_staged(&self.dir, &staged),
            JobOutcome::Stopped => output::discard(&staged),
        }
    }

    /// Opens instance `i`, which writes `part-<i>.<extension>`.
    ///
    /// # Errors
    /// [`Error::Io`](brook_core::Error::Io) naming the directory when it is a file or cannot be
    /// looked at.
    fn open(&mut self, ctx: &SinkContext) -> Result<FileSinkWriter<T, E>> {
        check_dir(&self.dir)?;
        if ctx.checkpoints_enabled() {
            let run = self.run.get_or_insert_with(output::run_id).clone();
            return Ok(FileSinkWriter::rolling(
                self.encoder.clone(),
                Rolling {
                    dir: self.dir.clone(),
                    instance: ctx.instance(),
                    run,
                    extension: self.encoder.extension().to_string(),
                    chunk_size: self.chunk_size,
                    seq: 0,
                    staged: self.staged.clone(),
                },
            ));
        }
        let name = format!("part-{}.{}", ctx.instance(), self.encoder.extension());
        let part = PartFile::new(&self.dir, &name, self.chunk_size);
        Ok(FileSinkWriter::new(self.encoder.clone(), part))
    }
}
