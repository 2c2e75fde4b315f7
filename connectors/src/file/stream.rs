//! The async side of a file source: turns what a reader sends into batches
//! of records, applying the bad-line policy.
//!
//! The stream keeps state only for the files (or ranges) a reader has
//! started and not yet ended, so memory does not grow with the number of
//! files. It yields to the runtime between units of work that make no
//! records (blank or bad lines), so one poll never runs through a file.

use std::sync::Arc;

use brook_core::{Batch, BoxedSourceStream, Error, NO_TIMESTAMP, Result, SourceEvent, TaskContext};
use futures::StreamExt;
use memchr::memchr;
use tokio::sync::mpsc::{Receiver, error::TryRecvError};
use tokio::task::JoinHandle;
use tokio::task::coop::consume_budget;

use super::bad_line::{At, BadLines, Mode, Problem};
use super::lines::newlines_before;
use super::plan::FileEntry;
use super::reader::{BufferPool, Msg};
use super::slots::{Slot, Slots};
use crate::codec::Decoder;

/// Lines that make no record looked at per unit of the task's cooperative
/// budget.
const LINES_PER_UNIT: usize = 256;

/// The chunk being parsed.
struct Cursor {
    slot: usize,
    offset: u64,
    data: Chunk,
    /// Where the next line starts in `data`.
    pos: usize,
    /// Lines of `data` already consumed, blank ones included.
    lines: u64,
    /// Lines longer than this are too long: the maximum line length, or 0
    /// when `data` is the first bytes of one too-long line.
    limit: usize,
}

/// A chunk's bytes: checked for UTF-8 as a whole when the decoder reads
/// text, so that its lines need no check of their own.
enum Chunk {
    /// All UTF-8 (a chunk ends at a line's end, or at the end of a file).
    Text(String),
    /// Not checked, or not all UTF-8: each line is decoded from its bytes.
    Bytes(Vec<u8>),
}

impl Chunk {
    /// `data` as text when `text` is asked for and it is all UTF-8.
    fn new(data: Vec<u8>, text: bool) -> Self {
        if !text {
            return Chunk::Bytes(data);
        }
        match String::from_utf8(data) {
            Ok(text) => Chunk::Text(text),
            Err(e) => Chunk::Bytes(e.into_bytes()),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Chunk::Text(text) => text.as_bytes(),
            Chunk::Bytes(bytes) => bytes,
        }
    }

    /// The text from `start` to `end`, when the chunk is text.
    fn text(&self, start: usize, end: usize) -> Option<&str> {
        match self {
            Chunk::Text(text) => text.get(start..end),
            Chunk::Bytes(_) => None,
        }
    }

    fn into_vec(self) -> Vec<u8> {
        match self {
            Chunk::Text(text) => text.into_bytes(),
            Chunk::Bytes(bytes) => bytes,
        }
    }
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
    /// Enough lines that made no record for one unit of budget.
    Budget,
    /// The chunk is parsed.
    ChunkDone,
    Failed(Error),
}

/// Parses what a reader sends into batches.
pub(crate) struct LineStream<T, F: Decoder<T>> {
    format: Arc<F>,
    ctx: TaskContext,
    bad: BadLines,
    batch_size: usize,
    max_line: usize,
    /// The reader, started on the blocking pool when first polled.
    reader: Option<Box<dyn FnOnce() + Send>>,
    /// The running reader, to learn why it stopped if it stops early.
    handle: Option<JoinHandle<()>>,
    rx: Receiver<Result<Msg>>,
    pool: BufferPool,
    /// The files started and not yet ended, by slot.
    slots: Slots<F::State>,
    /// The file started last, to name if the reader stops early.
    last_file: Option<Arc<FileEntry>>,
    chunk: Option<Cursor>,
    /// An error to yield after the batch that preceded it.
    failed: Option<Error>,
    /// Whether the reader said it is done.
    read_all: bool,
    done: bool,
    /// Each slot whose position moved since the last batch went out, with
    /// the offset of its next unread line.
    moved: Vec<(usize, u64)>,
}

impl<T: Send + 'static, F: Decoder<T>> LineStream<T, F> {
    pub(crate) fn new(
        format: Arc<F>,
        ctx: TaskContext,
        mode: Mode,
        max_line: usize,
        reader: Box<dyn FnOnce() + Send>,
        rx: Receiver<Result<Msg>>,
        pool: BufferPool,
    ) -> Self {
        LineStream {
            format,
            batch_size: ctx.batch_size().max(1),
            ctx,
            bad: BadLines::new(mode, max_line),
            max_line,
            reader: Some(reader),
            handle: None,
            rx,
            pool,
            slots: Slots::new(),
            last_file: None,
            chunk: None,
            failed: None,
            read_all: false,
            done: false,
            moved: Vec::new(),
        }
    }

    /// The stream of batches, each with the positions of the ranges
    /// (slots) it read from: the offset of each one's next unread line. Dropping it drops the channel's receiver, which stops the
    /// reader.
    pub(crate) fn into_stream(self) -> BoxedSourceStream<T> {
        futures::stream::unfold(self, |mut s| async move {
            match s.next_batch().await {
                Ok(Some(batch)) => {
                    let event = SourceEvent::batch_at(batch, s.moved.drain(..));
                    Some((Ok(event), s))
                }
                Ok(None) => None,
                Err(e) => {
                    s.done = true;
                    Some((Err(e), s))
                }
            }
        })
        .boxed()
    }

    /// The number of files (or ranges) whose state the stream holds.
    #[cfg(test)]
    pub(crate) fn live_slots(&self) -> usize {
        self.slots.len()
    }

    /// The next batch, or `None` at the end of the input.
    pub(crate) async fn next_batch(&mut self) -> Result<Option<Batch<T>>> {
        if let Some(reader) = self.reader.take() {
            // Ends by itself when the receiver is gone.
            self.handle = Some(tokio::task::spawn_blocking(reader));
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
                Step::Budget => {
                    consume_budget().await;
                    continue;
                }
                Step::DeadFull => {
                    self.bad.write(&self.ctx).await?;
                    consume_budget().await;
                    continue;
                }
                Step::NeedLines => match self.count_lines().await {
                    Ok(()) => continue,
                    Err(e) => e,
                },
                Step::Failed(e) => e,
                Step::ChunkDone => {
                    // Chunks of lines that make no records must not keep
                    // the task from yielding.
                    consume_budget().await;
                    match self.next_message(batch.is_empty()).await {
                        Ok(true) => continue,
                        Ok(false) if batch.is_empty() => {
                            self.bad.finish(&self.ctx).await?;
                            self.done = true;
                            return Ok(None);
                        }
                        Ok(false) => break,
                        Err(e) => e,
                    }
                }
            };
            if batch.is_empty() {
                self.bad.salvage(&self.ctx).await;
                return Err(failed);
            }
            self.failed = Some(failed);
            break;
        }
        self.bad.write(&self.ctx).await?;
        Ok(Some(batch))
    }

    /// Keeps a chunk that is not parsed yet, or recycles its buffer; notes
    /// how far its slot has been read either way.
    fn chunk_done_or_keep(&mut self, cur: Cursor, step: &Step) {
        // Past a too-long line (whose rest the reader skips) the next line
        // start is the next chunk's offset: noted when that chunk is read.
        if cur.limit > 0 {
            let at = cur.offset + cur.pos as u64;
            match self.moved.iter_mut().find(|(slot, _)| *slot == cur.slot) {
                Some(moved) => moved.1 = at,
                None => self.moved.push((cur.slot, at)),
            }
        }
        if !matches!(step, Step::ChunkDone) {
            self.chunk = Some(cur);
            return;
        }
        if let Some(slot) = self.slots.get_mut(cur.slot) {
            slot.lines_before = slot.lines_before.map(|n| n + cur.lines);
        }
        // A too-long line's first bytes are too few to pool: dropped.
        self.pool.give(cur.data.into_vec());
    }

    /// Takes the reader's next message; waits for one only when `wait`.
    /// Returns false at the end of the input, or when not waiting and none
    /// is ready.
    ///
    /// # Errors
    /// What the reader sent; [`Error::Internal`] naming the file when the
    /// reader stopped without saying it was done.
    async fn next_message(&mut self, wait: bool) -> Result<bool> {
        if self.read_all {
            return Ok(false);
        }
        let msg = match self.rx.try_recv() {
            Ok(msg) => msg,
            Err(TryRecvError::Disconnected) => return Err(self.reader_lost().await),
            Err(TryRecvError::Empty) if !wait => return Ok(false),
            Err(TryRecvError::Empty) => {
                // Idle: let the dead-letter sink catch up before waiting.
                self.bad.write(&self.ctx).await?;
                self.bad.flush().await?;
                match self.rx.recv().await {
                    Some(msg) => msg,
                    None => return Err(self.reader_lost().await),
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
                        .start(header.as_deref())
                        .map_err(|e| Error::BadRecord {
                            location: format!("{}:1", file.path.display()),
                            reason: format!("bad header: {e}"),
                        })?;
                self.last_file = Some(file.clone());
                let slot_state = Slot {
                    file,
                    parser,
                    lines_before,
                };
                self.slots.insert(slot, slot_state);
            }
            Msg::Chunk { slot, offset, data } => {
                let data = Chunk::new(data, self.format.is_text());
                self.chunk = Some(Cursor::new(slot, offset, data, self.max_line));
            }
            // Its first bytes, never empty, hold no `\n`: with a limit of 0
            // they are one too-long line.
            Msg::LongLine {
                slot,
                offset,
                prefix,
            } => self.chunk = Some(Cursor::new(slot, offset, Chunk::Bytes(prefix), 0)),
            Msg::End { slot, next } => {
                // The next range of this file, here or in another instance,
                // starts at `next`: its line numbers need no count.
                if let Some(ended) = self.slots.remove(slot)
                    && let (Some(lines), Some(next)) = (ended.lines_before, next)
                {
                    ended.file.lines.insert(next, lines);
                }
            }
            Msg::Done => {
                self.read_all = true;
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Why the reader stopped without saying it was done, naming the file.
    async fn reader_lost(&mut self) -> Error {
        let why = match self.handle.take() {
            // Its sender is gone, so the reader has ended or is ending.
            Some(handle) => match handle.await {
                Ok(()) => "it ended early".to_string(),
                Err(e) if e.is_panic() => {
                    let panic = e.into_panic();
                    let text = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "a panic".into());
                    format!("it panicked: {text}")
                }
                Err(e) => e.to_string(),
            },
            None => "it is gone".into(),
        };
        let open = self.slots.last().map(|s| &s.file);
        let place = match (open, &self.last_file) {
            (Some(file), _) => format!("while reading {}", file.path.display()),
            (None, Some(file)) => format!("after reading {}", file.path.display()),
            (None, None) => "before reading any file".into(),
        };
        Error::Internal(format!("the file reader stopped {place}: {why}"))
    }

    /// Parses lines of `cur` into `batch` until one of them is full, the
    /// chunk ends, a bad line needs attention, or a unit of budget is used.
    fn parse(&mut self, cur: &mut Cursor, batch: &mut Batch<T>) -> Step {
        let Some(slot) = self.slots.get_mut(cur.slot) else {
            return Step::Failed(Error::Internal("a chunk of a file never started".into()));
        };
        let (mut dropped, limit) = (0, cur.limit);
        // Spent only on lines that make no record: a batch bounds the
        // others.
        let mut budget = LINES_PER_UNIT;
        let data = cur.data.bytes();
        let step = loop {
            if batch.len() >= self.batch_size {
                break Step::Full;
            }
            if self.bad.pending() >= self.batch_size {
                break Step::DeadFull;
            }
            let Some(rest) = data.get(cur.pos..).filter(|r| !r.is_empty()) else {
                break Step::ChunkDone;
            };
            let (len, next) = match memchr(b'\n', rest) {
                Some(i) => (i, cur.pos + i + 1),
                None => (rest.len(), data.len()),
            };
            let raw = &rest[..len];
            let problem = if len > limit {
                Some(Problem::TooLong)
            } else {
                let line = match raw {
                    [head @ .., b'\r'] => head,
                    line => line,
                };
                if line.iter().all(u8::is_ascii_whitespace) {
                    None
                } else {
                    // The line ends before a `\r`, a `\n` or the chunk's
                    // end: in a text chunk, on a char boundary.
                    let decoded = match cur.data.text(cur.pos, cur.pos + line.len()) {
                        Some(text) => self.format.decode_text(&mut slot.parser, text),
                        None => self.format.decode(&mut slot.parser, line),
                    };
                    match decoded {
                        Ok(value) => {
                            batch.push(NO_TIMESTAMP, value);
                            cur.pos = next;
                            cur.lines += 1;
                            continue;
                        }
                        Err(e) => Some(Problem::Parse(e)),
                    }
                }
            };
            if let Some(problem) = problem {
                match bad_line(&mut self.bad, slot, cur, raw, &problem) {
                    Ok(was_dropped) => dropped += u64::from(was_dropped),
                    Err(step) => break step,
                }
            }
            cur.pos = next;
            cur.lines += 1;
            budget -= 1;
            if budget == 0 {
                break Step::Budget;
            }
        };
        if dropped > 0 {
            self.ctx.metrics().add_dropped(dropped);
        }
        step
    }

    /// Counts the lines before the current chunk on a blocking thread, from
    /// the nearest point of the file already known.
    async fn count_lines(&mut self) -> Result<()> {
        let Some(cur) = &self.chunk else {
            return Ok(());
        };
        let Some(slot) = self.slots.get_mut(cur.slot) else {
            return Ok(());
        };
        let (file, offset) = (slot.file.clone(), cur.offset);
        let counted = tokio::task::spawn_blocking(move || newlines_before(&file, offset))
            .await
            .map_err(|e| Error::Internal(format!("counting lines: {e}")))??;
        slot.lines_before = Some(counted);
        Ok(())
    }
}

/// Applies the policy to a bad line of `cur`, kept out of the parse loop;
/// returns whether it was dropped, or why parsing must stop.
#[cold]
#[inline(never)]
fn bad_line<P>(
    bad: &mut BadLines,
    slot: &Slot<P>,
    cur: &Cursor,
    raw: &[u8],
    problem: &Problem,
) -> Result<bool, Step> {
    if bad.needs_line() && slot.lines_before.is_none() {
        return Err(Step::NeedLines);
    }
    let at = At {
        file: &slot.file,
        line: slot.lines_before.map(|n| n + cur.lines + 1),
        offset: cur.offset + cur.pos as u64,
    };
    bad.handle(at, raw, problem).map_err(Step::Failed)
}

impl Cursor {
    fn new(slot: usize, offset: u64, data: Chunk, limit: usize) -> Self {
        Cursor {
            slot,
            offset,
            data,
            pos: 0,
            lines: 0,
            limit,
        }
    }
}
