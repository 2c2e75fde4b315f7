//! [`FileSinkWriter`]: one instance of a [`FileSink`](super::FileSink),
//! encoding on the task and writing its part file on tokio's blocking pool.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use brook_core::{Batch, CheckpointId, Error, Result, SinkWriter};

use crate::codec::Encoder;
use crate::output::PreCommit;
use crate::publish::{blocking, create_dir, publish, sync_dir, sync_file};

/// How many encoded bytes an instance holds before it writes them: 1 MiB.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;

/// One instance of a [`FileSink`](super::FileSink): encodes values into an
/// in-memory chunk and writes each full chunk to its hidden in-progress
/// file; [`close`](SinkWriter::close) writes the rest, syncs the file and
/// renames it to its final name. In a job with checkpoints each checkpoint
/// finishes the file instead (staged: synced, still hidden) for the sink
/// to publish when the checkpoint completes, and the next records go to a
/// new file.
pub struct FileSinkWriter<T, E: Encoder<T>> {
    encoder: Arc<E>,
    /// The encoder's state for the file, made with the first value.
    state: Option<E::State>,
    /// Values encoded into the current file so far.
    records: u64,
    part: PartFile,
    /// With checkpoints: how the next files are named, and where files
    /// staged at close go.
    rolling: Option<Rolling>,
    _t: PhantomData<fn(T)>,
}

/// How a writer of a job with checkpoints names its files:
/// `part-<instance>-<run>-<seq>.<ext>`, new to every run and checkpoint.
pub(crate) struct Rolling {
    pub(crate) dir: PathBuf,
    pub(crate) instance: usize,
    pub(crate) run: String,
    pub(crate) extension: String,
    pub(crate) chunk_size: usize,
    pub(crate) seq: u64,
    /// Files staged at close (written after the last checkpoint), which
    /// the sink publishes when the job completes or removes when it was
    /// stopped.
    pub(crate) staged: Arc<Mutex<Vec<PathBuf>>>,
}

impl Rolling {
    /// The next file of the instance.
    pub(crate) fn next_part(&mut self) -> PartFile {
        let name = format!(
            "part-{}-{}-{:05}.{}",
            self.instance, self.run, self.seq, self.extension
        );
        self.seq += 1;
        PartFile::new(&self.dir, &name, self.chunk_size)
    }
}

impl<T, E: Encoder<T>> FileSinkWriter<T, E> {
    pub(crate) fn new(encoder: Arc<E>, part: PartFile) -> Self {
        FileSinkWriter {
            encoder,
            state: None,
            records: 0,
            part,
            rolling: None,
            _t: PhantomData,
        }
    }

    /// A writer of a job with checkpoints, starting its first file.
    pub(crate) fn rolling(encoder: Arc<E>, mut rolling: Rolling) -> Self {
        let part = rolling.next_part();
        FileSinkWriter {
            rolling: Some(rolling),
            ..Self::new(encoder, part)
        }
    }
}

impl<T, E> SinkWriter<T> for FileSinkWriter<T, E>
where
    T: Send + 'static,
    E: Encoder<T>,
{
    /// Encodes the batch; writes the chunk whenever it is full, waiting for
    /// the write (backpressure).
    ///
    /// # Errors
    /// [`Error::BadRecord`] naming the file and record for a value the
    /// format cannot hold; [`Error::Io`] naming the path for a failed write.
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        self.part.usable()?;
        let encoder = &*self.encoder;
        let state = self.state.get_or_insert_with(|| encoder.start());
        // By value: a borrowing iterator would hold `&T` across the await.
        for record in batch {
            let mark = self.part.chunk.len();
            if let Err(e) = encoder.encode(state, &record.value, &mut self.part.chunk) {
                self.part.chunk.truncate(mark);
                self.part.file = FileState::Broken;
                return Err(Error::BadRecord {
                    location: format!(
                        "{} record {}",
                        self.part.paths.done.display(),
                        self.records + 1
                    ),
                    reason: e.to_string(),
                });
            }
            self.records += 1;
            if self.part.chunk.len() >= self.part.chunk_size {
                self.part.write_chunk().await?;
            }
        }
        Ok(())
    }

    /// Publishes the part file: writes what is left, syncs the file,
    /// renames it to its final name and syncs the directory. An instance
    /// that got no values writes no file.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn close(&mut self) -> Result<()> {
        if matches!(self.part.file, FileState::Done) {
            return Ok(());
        }
        if self.records == 0 {
            self.part.usable()?;
            self.part.file = FileState::Done;
            return Ok(());
        }
        match &self.rolling {
            // With checkpoints, what followed the last one is staged: the
            // sink publishes it if the job completes.
            Some(rolling) => {
                let done = self.part.stage().await?;
                rolling
                    .staged
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(done);
                Ok(())
            }
            None => self.part.commit().await,
        }
    }

    /// With checkpoints: finishes the current file, staged (synced under
    /// its hidden name), pre-commits it for the sink to publish when
    /// checkpoint `checkpoint` completes, and starts a new file for what
    /// follows. Without: nothing to do (the file is published at close).
    ///
    /// # Errors
    /// [`Error::Io`] naming the path.
    async fn checkpoint(&mut self, _checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        let Some(rolling) = &mut self.rolling else {
            return Ok(None);
        };
        if self.records == 0 {
            return Ok(None);
        }
        let done = self.part.stage().await?;
        self.part = rolling.next_part();
        self.state = None;
        self.records = 0;
        PreCommit::encode(&rolling.dir, &[done])
    }
}

/// The paths of one part file.
#[derive(Debug)]
struct PartPaths {
    dir: PathBuf,
    /// `.part-<i>.<ext>.inprogress`, while it is written.
    in_progress: PathBuf,
    /// `part-<i>.<ext>`, once it is complete.
    done: PathBuf,
}

impl PartPaths {
    /// Creates the directory and the in-progress file, truncating one that
    /// a crashed run left behind.
    fn create(&self) -> Result<File> {
        create_dir(&self.dir)?;
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&self.in_progress)
            .map_err(|e| Error::io(format_args!("creating {}", self.in_progress.display()), e))
    }

    fn write(&self, file: &mut File, bytes: &[u8]) -> Result<()> {
        file.write_all(bytes)
            .map_err(|e| Error::io(format_args!("writing {}", self.in_progress.display()), e))
    }
}

/// Where the part file is.
enum FileState {
    /// Not created yet: nothing was written.
    Unopened,
    /// Created, holding every chunk written so far.
    Open(File),
    /// Lent to a blocking call that failed or was cancelled, or given up
    /// after a value failed to encode (the encoder's state may hold part of
    /// it): no more writes.
    Broken,
    /// Renamed to its final name, or never needed.
    Done,
}

/// The file handling of a writer, whatever the format: the chunk being
/// filled and the file it goes to.
pub(crate) struct PartFile {
    paths: Arc<PartPaths>,
    file: FileState,
    chunk: Vec<u8>,
    chunk_size: usize,
}

impl PartFile {
    /// The part file `name` in `dir`; nothing is created yet.
    pub(crate) fn new(dir: &Path, name: &str, chunk_size: usize) -> Self {
        PartFile {
            paths: Arc::new(PartPaths {
                dir: dir.to_path_buf(),
                in_progress: dir.join(format!(".{name}.inprogress")),
                done: dir.join(name),
            }),
            file: FileState::Unopened,
            chunk: Vec::new(),
            chunk_size,
        }
    }

    /// Fails if an earlier write failed, was cancelled, or the file is
    /// already published.
    fn usable(&self) -> Result<()> {
        let what = match self.file {
            FileState::Unopened | FileState::Open(_) => return Ok(()),
            FileState::Broken => "an earlier write failed or was cancelled",
            FileState::Done => "it is already closed",
        };
        Err(Error::Internal(format!(
            "cannot write {}: {what}",
            self.paths.in_progress.display()
        )))
    }

    /// Takes the file for a blocking call; it stays `Broken` unless the
    /// call gives it back.
    fn take_file(&mut self) -> Result<Option<File>> {
        self.usable()?;
        Ok(match std::mem::replace(&mut self.file, FileState::Broken) {
            FileState::Open(file) => Some(file),
            _ => None,
        })
    }

    /// Writes the chunk to the in-progress file, creating it first if
    /// needed, and keeps the emptied chunk for reuse.
    async fn write_chunk(&mut self) -> Result<()> {
        let file = self.take_file()?;
        let chunk = std::mem::take(&mut self.chunk);
        let paths = self.paths.clone();
        let (file, mut chunk) = blocking("a file sink", move || {
            let mut file = match file {
                Some(file) => file,
                None => paths.create()?,
            };
            paths.write(&mut file, &chunk)?;
            Ok((file, chunk))
        })
        .await?;
        chunk.clear();
        self.chunk = chunk;
        self.file = FileState::Open(file);
        Ok(())
    }

    /// Writes the rest and syncs the file under its hidden name (and its
    /// directory, so the name survives a crash), for a checkpoint to
    /// publish; returns its final path.
    async fn stage(&mut self) -> Result<PathBuf> {
        self.finish(false).await?;
        Ok(self.paths.done.clone())
    }

    /// Writes the rest, syncs the file, renames it to its final name
    /// (replacing a file of that name) and syncs the directory so that the
    /// rename survives a crash.
    async fn commit(&mut self) -> Result<()> {
        self.finish(true).await
    }

    /// Writes the rest and syncs the file; then renames it to its final
    /// name if `publish_it`, else syncs its directory and leaves it hidden.
    async fn finish(&mut self, publish_it: bool) -> Result<()> {
        let file = self.take_file()?;
        let chunk = std::mem::take(&mut self.chunk);
        let paths = self.paths.clone();
        blocking("a file sink", move || {
            let mut file = match file {
                Some(file) => file,
                None => paths.create()?,
            };
            if !chunk.is_empty() {
                paths.write(&mut file, &chunk)?;
            }
            if publish_it {
                publish(file, &paths.in_progress, &paths.done, &paths.dir)
            } else {
                sync_file(file, &paths.in_progress)?;
                sync_dir(&paths.dir)
            }
        })
        .await?;
        self.file = FileState::Done;
        Ok(())
    }
}
