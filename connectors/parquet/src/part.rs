//! [`PartFile`]: one Parquet file being written, from its first buffered
//! row to its rename.

use std::fs::{File, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use brook_core::{Error, Result};
use parquet::arrow::ArrowWriter;
use parquet::errors::ParquetError;
use parquet::file::properties::WriterProperties;
use serde::Serialize;
use serde_arrow::ArrayBuilder;

use brook_connectors::output::in_progress_path;
use brook_connectors::publish::{blocking, create_dir, publish, sync_dir, sync_file};

/// What blocking-pool failures call this sink.
const SINK: &str = "a parquet sink";

/// What every file of a writer shares.
pub(crate) struct FileFormat {
    pub(crate) schema: SchemaRef,
    pub(crate) properties: WriterProperties,
}

/// The paths of one part file.
#[derive(Debug)]
pub(crate) struct PartPaths {
    dir: PathBuf,
    /// `.part-<run>-<i>-<seq>.parquet.inprogress`, while it is written.
    in_progress: PathBuf,
    /// `part-<run>-<i>-<seq>.parquet`, once it is complete.
    done: PathBuf,
}

/// What [`PartFile::commit`] does with a finished file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// Renames it to its final name and syncs its directory, so that the
    /// rename survives a crash.
    Publish,
    /// Leaves it under its hidden in-progress name, complete, for the
    /// commit at the end of a replacing run (which syncs the directory
    /// once the files are renamed).
    Stage,
    /// Stages it and syncs its directory: a checkpoint is to list it by
    /// its hidden name, and a restore from that checkpoint finds it.
    StageDurably,
}

impl PartPaths {
    /// The paths of the part file `name` in `dir`.
    pub(crate) fn new(dir: PathBuf, name: &str) -> Self {
        PartPaths {
            in_progress: in_progress_path(&dir.join(name)),
            done: dir.join(name),
            dir,
        }
    }

    /// Creates the directory and the in-progress file, and starts a Parquet
    /// writer on it.
    fn create(&self, format: &FileFormat) -> Result<ArrowWriter<File>> {
        create_dir(&self.dir)?;
        // The name is new to this run: never truncate someone else's file.
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&self.in_progress)
            .map_err(|e| Error::io(format_args!("creating {}", self.in_progress.display()), e))?;
        let properties = format.properties.clone();
        ArrowWriter::try_new(file, format.schema.clone(), Some(properties))
            .map_err(|e| self.failed("writing", e))
    }

    /// A Parquet failure on the in-progress file, as an I/O error naming it.
    fn failed(&self, doing: &str, e: ParquetError) -> Error {
        let source = match e {
            ParquetError::External(e) => match e.downcast::<io::Error>() {
                Ok(e) => *e,
                Err(e) => io::Error::other(e),
            },
            e => io::Error::other(e),
        };
        Error::io(
            format_args!("{doing} {}", self.in_progress.display()),
            source,
        )
    }
}

/// One Parquet file of a writer: rows buffered on the task, written in
/// record batches on tokio's blocking pool, published by [`commit`].
///
/// [`commit`]: PartFile::commit
pub(crate) struct PartFile {
    paths: Arc<PartPaths>,
    builder: ArrayBuilder,
    /// Rows in `builder`, not yet given to the Parquet writer.
    buffered: usize,
    /// The Parquet writer, once the file exists; `None` before, and while
    /// it is lent to a blocking call (the sink writer then stays failed if
    /// the call fails or is cancelled).
    writer: Option<ArrowWriter<File>>,
    /// Rows in the file, buffered ones included.
    pub(crate) rows: u64,
    /// The file's estimated size after the last write: bytes written plus
    /// the encoded size of the row group in progress.
    pub(crate) bytes: u64,
    /// When the first row came.
    pub(crate) opened: Instant,
    /// When the last row came.
    pub(crate) last_row: Instant,
}

impl PartFile {
    /// A part file with no rows yet; nothing is created until its first
    /// write.
    pub(crate) fn new(paths: PartPaths, format: &FileFormat, now: Instant) -> Result<Self> {
        let builder = ArrayBuilder::from_arrow(format.schema.fields())
            .map_err(|e| Error::Internal(format!("a checked schema was refused: {e}")))?;
        Ok(PartFile {
            paths: Arc::new(paths),
            builder,
            buffered: 0,
            writer: None,
            rows: 0,
            bytes: 0,
            opened: now,
            last_row: now,
        })
    }

    /// Rows waiting to be written.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    /// Buffers one value.
    ///
    /// # Errors
    /// [`Error::BadRecord`] naming the file and the row, for a value the
    /// schema cannot hold; the buffer may then hold part of it.
    pub(crate) fn push<T: Serialize>(&mut self, value: &T, now: Instant) -> Result<()> {
        self.builder.push(value).map_err(|e| Error::BadRecord {
            location: format!("{} row {}", self.paths.done.display(), self.rows + 1),
            reason: e.to_string(),
        })?;
        self.buffered += 1;
        self.rows += 1;
        self.last_row = now;
        Ok(())
    }

    /// The buffered rows as a record batch, emptying the buffer.
    fn take_batch(&mut self) -> Result<Option<RecordBatch>> {
        if self.buffered == 0 {
            return Ok(None);
        }
        self.buffered = 0;
        self.builder
            .to_record_batch()
            .map(Some)
            .map_err(|e| Error::BadRecord {
                location: self.paths.done.display().to_string(),
                reason: e.to_string(),
            })
    }

    /// Writes the buffered rows to the file on the blocking pool, creating
    /// it first if needed, and updates the size estimate.
    ///
    /// # Errors
    /// [`Error::Io`] naming the in-progress path.
    pub(crate) async fn write_buffered(&mut self, format: &Arc<FileFormat>) -> Result<()> {
        let Some(batch) = self.take_batch()? else {
            return Ok(());
        };
        let writer = self.writer.take();
        let (paths, format) = (self.paths.clone(), format.clone());
        let writer = blocking(SINK, move || {
            let mut writer = match writer {
                Some(writer) => writer,
                None => paths.create(&format)?,
            };
            writer
                .write(&batch)
                .map_err(|e| paths.failed("writing", e))?;
            Ok(writer)
        })
        .await?;
        let size = writer.bytes_written() + writer.in_progress_size();
        self.bytes = u64::try_from(size).unwrap_or(u64::MAX);
        self.writer = Some(writer);
        Ok(())
    }

    /// Finishes the file: writes the buffered rows and the footer and syncs
    /// it, then publishes or stages it as `finish` says. Returns the final
    /// path.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path; the in-progress file then stays.
    pub(crate) async fn commit(
        mut self,
        format: &Arc<FileFormat>,
        finish: Finish,
    ) -> Result<PathBuf> {
        let batch = self.take_batch()?;
        let writer = self.writer.take();
        let (paths, format) = (self.paths.clone(), format.clone());
        blocking(SINK, move || {
            let mut writer = match writer {
                Some(writer) => writer,
                None => paths.create(&format)?,
            };
            if let Some(batch) = batch {
                writer
                    .write(&batch)
                    .map_err(|e| paths.failed("writing", e))?;
            }
            let file = writer
                .into_inner()
                .map_err(|e| paths.failed("finishing", e))?;
            match finish {
                Finish::Publish => publish(file, &paths.in_progress, &paths.done, &paths.dir)?,
                Finish::Stage => sync_file(file, &paths.in_progress)?,
                Finish::StageDurably => {
                    sync_file(file, &paths.in_progress)?;
                    sync_dir(&paths.dir)?;
                }
            }
            Ok(paths.done.clone())
        })
        .await
    }
}
