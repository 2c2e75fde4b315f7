//! The async side of a file source: turns the chunks a reader sends into
//! batches of records, applying the bad-line policy.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use brook_core::{Batch, BoxedBatchStream, Error, NO_TIMESTAMP, Result, TaskContext};
use futures::StreamExt;
use memchr::memchr;
use tokio::sync::mpsc::{Receiver, error::TryRecvError};

use super::format::LineFormat;
use super::plan::FileEntry;
use super::policy::{DeadLetter, ErasedWriter};
use super::reader::{BufferPool, Msg};

/// What the stream does with a bad line.
pub(crate) enum Mode {
    Fail,
    Drop,
    DeadLetter(Box<dyn ErasedWriter>),
}

/// A file (or a range of one) being parsed.
struct Slot<P> {
    file: Arc<FileEntry>,
    parser: P,
    /// The number of lines in the file before the current chunk, once known.
    lines_before: Option<u64>,
}

/// The chunk being parsed.
struct Cursor {
    slot: usize,
    offset: u64,
    data: Vec<u8>,
    /// Where the next line starts in `data`.
    pos: usize,
    /// Lines of `data` already consumed, blank ones included.
    lines: u64,
}

/// Why parsing a chunk stopped.
enum Step {
    /// The batch is full.
    Full,
    /// Enough dead letters to write.
    DeadFull,
    /// A bad line needs its line number, which needs the lines before the
    /// chunk counted.
    NeedLines,
    /// The chunk is parsed.
    ChunkDone,
    Failed(Error),
}

/// Parses what a reader sends into batches.
pub(crate) struct LineStream<T, F: LineFormat<T>> {
    format: Arc<F>,
    ctx: TaskContext,
    mode: Mode,
    batch_size: usize,
    /// The reader, started on the blocking pool when first polled.
    reader: Option<Box<dyn FnOnce() + Send>>,
    rx: Receiver<Result<Msg>>,
    pool: BufferPool,
    slots: Vec<Option<Slot<F::Parser>>>,
    chunk: Option<Cursor>,
    dead: Batch<DeadLetter>,
    /// Whether dead letters were written since the last flush.
    unflushed: bool,
    /// An error to yield after the batch that preceded it.
    failed: Option<Error>,
    done: bool,
}

impl<T: Send + 'static, F: LineFormat<T>> LineStream<T, F> {
    pub(crate) fn new(
        format: Arc<F>,
        ctx: TaskContext,
        mode: Mode,
        reader: Box<dyn FnOnce() + Send>,
        rx: Receiver<Result<Msg>>,
        pool: BufferPool,
    ) -> Self {
        LineStream {
            format,
            batch_size: ctx.batch_size().max(1),
            ctx,
            mode,
            reader: Some(reader),
            rx,
            pool,
            slots: Vec::new(),
            chunk: None,
            dead: Batch::new(),
            unflushed: false,
            failed: None,
            done: false,
        }
    }

    /// The stream of batches. Dropping it drops the channel's receiver,
    /// which stops the reader.
    pub(crate) fn into_stream(self) -> BoxedBatchStream<T> {
        futures::stream::unfold(self, |mut s| async move {
            match s.next_batch().await {
                Ok(Some(batch)) => Some((Ok(batch), s)),
                Ok(None) => None,
                Err(e) => {
                    s.done = true;
                    Some((Err(e), s))
                }
            }
        })
        .boxed()
    }

    /// The next batch, or `None` at the end of the input.
    async fn next_batch(&mut self) -> Result<Option<Batch<T>>> {
        if let Some(reader) = self.reader.take() {
            // Detached: the reader ends by itself when the receiver is gone.
            drop(tokio::task::spawn_blocking(reader));
        }
        if self.done {
            return Ok(None);
        }
        if let Some(e) = self.failed.take() {
            return Err(e);
        }
        let mut batch = Batch::with_capacity(self.batch_size);
        loop {
            let step = match self.chunk.take() {
                Some(mut cur) => {
                    let step = self.parse(&mut cur, &mut batch);
                    self.chunk_done_or_keep(cur, &step);
                    step
                }
                None => Step::ChunkDone,
            };
            let failed = match step {
                Step::Full => break,
                Step::DeadFull => {
                    self.write_dead().await?;
                    continue;
                }
                Step::NeedLines => match self.count_lines().await {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Step::Failed(e) => e,
                Step::ChunkDone => match self.next_message(batch.is_empty()).await {
                    Ok(true) => continue,
                    Ok(false) if batch.is_empty() => {
                        self.finish().await?;
                        self.done = true;
                        return Ok(None);
                    }
                    Ok(false) => break,
                    Err(e) => e,
                },
            };
            if batch.is_empty() {
                return Err(failed);
            }
            self.failed = Some(failed);
            break;
        }
        self.write_dead().await?;
        Ok(Some(batch))
    }

    /// Keeps a chunk that is not parsed yet, or recycles its buffer.
    fn chunk_done_or_keep(&mut self, cur: Cursor, step: &Step) {
        if !matches!(step, Step::ChunkDone) {
            self.chunk = Some(cur);
            return;
        }
        if let Some(Some(slot)) = self.slots.get_mut(cur.slot) {
            slot.lines_before = slot.lines_before.map(|n| n + cur.lines);
        }
        self.pool.give(cur.data);
    }

    /// Takes the reader's next message; waits for one only when `wait`.
    /// Returns false at the end of the input, or when not waiting and none
    /// is ready.
    async fn next_message(&mut self, wait: bool) -> Result<bool> {
        let msg = match self.rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => return Ok(false),
            Err(TryRecvError::Empty) if !wait => return Ok(false),
            Err(TryRecvError::Empty) => {
                // Idle: let the dead-letter sink catch up before waiting.
                self.write_dead().await?;
                self.flush_dead().await?;
                match self.rx.recv().await {
                    Some(msg) => msg,
                    None => return Ok(false),
                }
            }
        };
        match msg? {
            Msg::Start {
                slot,
                file,
                header,
                lines_before,
            } => {
                let parser =
                    self.format
                        .parser(header.as_deref())
                        .map_err(|e| Error::BadRecord {
                            location: format!("{}:1", file.path.display()),
                            reason: format!("bad header: {e}"),
                        })?;
                if self.slots.len() <= slot {
                    self.slots.resize_with(slot + 1, || None);
                }
                self.slots[slot] = Some(Slot {
                    file,
                    parser,
                    lines_before,
                });
            }
            Msg::Chunk { slot, offset, data } => {
                self.chunk = Some(Cursor {
                    slot,
                    offset,
                    data,
                    pos: 0,
                    lines: 0,
                });
            }
        }
        Ok(true)
    }

    /// Parses lines of `cur` into `batch` until one of them is full, the
    /// chunk ends, or a bad line needs attention.
    fn parse(&mut self, cur: &mut Cursor, batch: &mut Batch<T>) -> Step {
        let Some(Some(slot)) = self.slots.get_mut(cur.slot) else {
            return Step::Failed(Error::Internal("a chunk of a file never started".into()));
        };
        let mut dropped = 0;
        let step = loop {
            if batch.len() >= self.batch_size {
                break Step::Full;
            }
            if self.dead.len() >= self.batch_size {
                break Step::DeadFull;
            }
            let Some(rest) = cur.data.get(cur.pos..).filter(|r| !r.is_empty()) else {
                break Step::ChunkDone;
            };
            let (len, next) = match memchr(b'\n', rest) {
                Some(i) => (i, cur.pos + i + 1),
                None => (rest.len(), cur.data.len()),
            };
            let mut line = &rest[..len];
            if let [head @ .., b'\r'] = line {
                line = head;
            }
            if !line.iter().all(u8::is_ascii_whitespace) {
                match self.format.parse(&mut slot.parser, line) {
                    Ok(value) => batch.push(NO_TIMESTAMP, value),
                    Err(e) => {
                        let needs_line = match self.mode {
                            Mode::Drop => !slot.file.warned.load(Relaxed),
                            Mode::Fail | Mode::DeadLetter(_) => true,
                        };
                        if needs_line && slot.lines_before.is_none() {
                            break Step::NeedLines;
                        }
                        let number = slot.lines_before.unwrap_or(0) + cur.lines + 1;
                        let path = &slot.file.path;
                        match self.mode {
                            Mode::Fail => {
                                break Step::Failed(Error::BadRecord {
                                    location: format!("{}:{number}", path.display()),
                                    reason: e.to_string(),
                                });
                            }
                            Mode::Drop => {
                                dropped += 1;
                                if !slot.file.warned.swap(true, Relaxed) {
                                    tracing::warn!(
                                        file = %path.display(),
                                        line = number,
                                        reason = %e,
                                        "Dropped a bad line; later ones in this file are dropped without a warning."
                                    );
                                }
                            }
                            Mode::DeadLetter(_) => self.dead.push(
                                NO_TIMESTAMP,
                                DeadLetter {
                                    source: path.display().to_string(),
                                    line: number,
                                    offset: cur.offset + cur.pos as u64,
                                    raw: String::from_utf8_lossy(line).into_owned(),
                                    reason: e.to_string(),
                                },
                            ),
                        }
                    }
                }
            }
            cur.pos = next;
            cur.lines += 1;
        };
        if dropped > 0 {
            self.ctx.metrics().add_dropped(dropped);
        }
        step
    }

    /// Counts the lines before the current chunk, reading the file from its
    /// start on a blocking thread.
    async fn count_lines(&mut self) -> Result<()> {
        let Some(cur) = &self.chunk else {
            return Ok(());
        };
        let Some(Some(slot)) = self.slots.get_mut(cur.slot) else {
            return Ok(());
        };
        let (path, offset) = (slot.file.path.clone(), cur.offset);
        let counted = tokio::task::spawn_blocking(move || count_newlines(path, offset))
            .await
            .map_err(|e| Error::Internal(format!("counting lines: {e}")))??;
        slot.lines_before = Some(counted);
        Ok(())
    }

    /// Writes the dead letters gathered so far.
    async fn write_dead(&mut self) -> Result<()> {
        let Mode::DeadLetter(writer) = &mut self.mode else {
            return Ok(());
        };
        if self.dead.is_empty() {
            return Ok(());
        }
        let dead = std::mem::take(&mut self.dead);
        let n = dead.len() as u64;
        writer.write(dead).await?;
        self.ctx.metrics().add_dead_lettered(n);
        self.unflushed = true;
        Ok(())
    }

    /// Flushes the dead-letter sink if anything was written since the last
    /// flush.
    async fn flush_dead(&mut self) -> Result<()> {
        if let Mode::DeadLetter(writer) = &mut self.mode
            && self.unflushed
        {
            writer.flush().await?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// At the end of the input: writes, flushes and closes the dead-letter
    /// sink.
    async fn finish(&mut self) -> Result<()> {
        self.write_dead().await?;
        self.flush_dead().await?;
        if let Mode::DeadLetter(writer) = &mut self.mode {
            writer.close().await?;
        }
        Ok(())
    }
}

/// The number of `\n` in the first `offset` bytes of a file.
fn count_newlines(path: PathBuf, offset: u64) -> Result<u64> {
    use std::io::Read;
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let mut file = std::fs::File::open(&path).map_err(io)?.take(offset);
    let mut buf = vec![0; super::reader::CHUNK_SIZE];
    let mut count = 0;
    loop {
        let n = match file.read(&mut buf) {
            Ok(0) => return Ok(count),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        count += memchr::memchr_iter(b'\n', &buf[..n]).count() as u64;
    }
}
