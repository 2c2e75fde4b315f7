//! The blocking side of a file source: reads byte ranges of files in large
//! chunks on a blocking thread and sends whole lines to the stream.
//!
//! A reader of the range `[start, end)` owns every line that starts in it:
//! when `start > 0` it skips the partial line before its first line start
//! (reading from `start - 1` through the first `\n`), and it reads past `end`
//! to finish the last line it owns. Every line thus has exactly one owner.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Error, Result};
use memchr::{memchr, memrchr};
use tokio::sync::mpsc;

use super::plan::{FileEntry, Split};

/// How much a reader reads at once, at low parallelism. Each chunk costs a
/// wake-up of the task that parses it: at 256 KiB, the logs-window job at
/// parallelism 1 spent 4-5 % more CPU than at 1 MiB.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// The least a reader reads at once, at high parallelism.
const MIN_CHUNK_SIZE: usize = 256 << 10;
/// What the instances of one source read at once, together, at 4 to 16
/// instances (below, each reads [`CHUNK_SIZE`]; above, [`MIN_CHUNK_SIZE`]).
/// An instance holds up to five buffers of a chunk: the one its stream
/// parses, two in the channel, the one the reader holds and the reader's
/// unfinished line. So its read buffers stay near 20 MiB (at 16 instances
/// of 1 MiB they were 68 MiB).
const SOURCE_CHUNK_BUDGET: usize = 4 << 20;
/// The most a reader reads at once when a user sets the chunk size.
pub(crate) const MAX_CHUNK_SIZE: usize = 64 << 20;

/// How much each instance of a source of `parallelism` instances reads at
/// once: [`SOURCE_CHUNK_BUDGET`] shared, within
/// [`MIN_CHUNK_SIZE`]..=[`CHUNK_SIZE`].
pub(crate) fn chunk_for(parallelism: usize) -> usize {
    (SOURCE_CHUNK_BUDGET / parallelism.max(1)).clamp(MIN_CHUNK_SIZE, CHUNK_SIZE)
}
/// How much a reader reads at once past the end of its range, to finish its
/// last line.
const LOOKAHEAD: usize = 64 << 10;
/// Chunks in flight between a reader and its stream.
pub(crate) const CHANNEL_CAPACITY: usize = 2;
/// Buffers kept for reuse.
const POOL_SIZE: usize = 4;

/// The first bytes of a too-long line that a reader keeps, at most.
pub(crate) const LONG_LINE_PREFIX: usize = 1 << 10;

/// What every reader of one source needs to know.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadOptions {
    /// Whether the first line of each file is a header.
    pub(crate) has_header: bool,
    /// The longest line, in bytes before its `\n`, that is buffered.
    pub(crate) max_line: usize,
    /// How much to read at once: [`chunk_for`] the source's parallelism,
    /// unless `FileSource::chunk_size` set it.
    pub(crate) chunk: usize,
}

impl ReadOptions {
    /// How much to read at once past the end of a range, or to skip the
    /// line before a range's first.
    fn lookahead(&self) -> usize {
        LOOKAHEAD.min(self.chunk)
    }

    /// How much of a too-long line is kept.
    pub(crate) fn prefix_len(&self) -> usize {
        self.max_line.min(LONG_LINE_PREFIX)
    }
}

/// What a reader sends its stream.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A file, or a range of one, starts; later messages name it by `slot`.
    /// Sent again for the same slot when a followed file starts over.
    Start {
        slot: usize,
        file: Arc<FileEntry>,
        /// The file's first line, when the format has a header.
        header: Option<Vec<u8>>,
        /// The number of `\n` before the first chunk, when known without
        /// reading the file from its start.
        lines_before: Option<u64>,
    },
    /// Whole lines of the file in `slot`, starting at byte `offset`; the last
    /// line lacks its `\n` only at the end of a file.
    Chunk {
        slot: usize,
        offset: u64,
        data: Vec<u8>,
    },
    /// A line starting at `offset` that is longer than the maximum line
    /// length: its first bytes. The reader skips the rest of it.
    LongLine {
        slot: usize,
        offset: u64,
        prefix: Vec<u8>,
    },
    /// The range in `slot` is read; no later message names the slot. `next`
    /// is where the line after its last one starts, when that last line
    /// ended in `\n`.
    End { slot: usize, next: Option<u64> },
    /// Every range is read: the reader ends normally. A reader that stops
    /// without sending this failed.
    Done,
}

/// The sending half of a reader's channel.
pub(crate) type Tx = mpsc::Sender<Result<Msg>>;

/// Why a reader stopped early.
pub(crate) enum Stop {
    /// The stream was dropped.
    Closed,
    /// Reading failed; the stream gets the error.
    Failed(Error),
}

/// Buffers the stream hands back to the reader once parsed, so that reading
/// does not allocate a fresh buffer per chunk.
#[derive(Debug, Clone)]
pub(crate) struct BufferPool {
    bufs: Arc<Mutex<Vec<Vec<u8>>>>,
    /// The chunk size the buffers are for.
    chunk: usize,
    /// How many times the reader found its channel full and waited for
    /// room: tests watch it to know that the reader is waiting.
    #[cfg(test)]
    pub(crate) waits: Arc<std::sync::atomic::AtomicUsize>,
}

impl BufferPool {
    /// A pool of buffers for chunks of `chunk` bytes.
    pub(crate) fn new(chunk: usize) -> Self {
        BufferPool {
            bufs: Arc::default(),
            chunk,
            #[cfg(test)]
            waits: Arc::default(),
        }
    }

    /// Notes that the reader found its channel full and waits for room.
    fn note_wait(&self) {
        #[cfg(test)]
        self.waits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// An empty buffer, reused when one is free.
    pub(crate) fn take(&self) -> Vec<u8> {
        let reused = self
            .bufs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        reused.unwrap_or_else(|| Vec::with_capacity(self.chunk + LOOKAHEAD))
    }

    /// Gives a buffer back for reuse. Buffers much smaller or larger than
    /// a chunk (a long line's prefix, a buffer a long line grew) are freed.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if !(self.chunk..=2 * (self.chunk + LOOKAHEAD)).contains(&cap) {
            return;
        }
        buf.clear();
        let mut pool = self.bufs.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_SIZE {
            pool.push(buf);
        }
    }
}

/// Sends a message; fails when the stream is gone.
pub(crate) fn send(tx: &Tx, msg: Msg) -> Result<(), Stop> {
    tx.blocking_send(Ok(msg)).map_err(|_| Stop::Closed)
}

/// Sends a chunk. When the channel is full, the reader waits until the
/// stream has taken everything in it, then sends the chunk it holds and
/// reads and sends the next without waiting: a wake-up per
/// [`CHANNEL_CAPACITY`] chunks. A reader that waited for one free slot was
/// woken once per chunk, and on a busy machine each wake-up takes a core
/// from a worker. The same chunks are in memory either way. The reader is
/// its channel's only sender, so the room it waited for is still there
/// when it sends.
fn send_chunk(tx: &Tx, pool: &BufferPool, chunk: Msg) -> Result<(), Stop> {
    if tx.capacity() > 0 {
        return send(tx, chunk);
    }
    pool.note_wait();
    // The permits go back to the channel at once; the send takes one.
    futures::executor::block_on(tx.reserve_many(tx.max_capacity()))
        .map(drop)
        .map_err(|_| Stop::Closed)?;
    send(tx, chunk)
}

/// Reports an unfinished line already longer than the limit, with its prefix.
pub(crate) fn send_long_line(
    tx: &Tx,
    slot: usize,
    offset: u64,
    buf: &[u8],
    opts: &ReadOptions,
) -> Result<(), Stop> {
    let prefix = buf[..opts.prefix_len().min(buf.len())].to_vec();
    send(
        tx,
        Msg::LongLine {
            slot,
            offset,
            prefix,
        },
    )
}

/// Ends a reader: passes an error on to the stream.
pub(crate) fn finish(tx: &Tx, r: Result<(), Stop>) {
    if let Err(Stop::Failed(e)) = r {
        // The stream may be gone already; then nobody needs the error.
        let _ = tx.blocking_send(Err(e));
    }
}

/// An I/O error naming what was done to which file.
pub(crate) fn io_error(what: &str, file: &FileEntry) -> impl FnOnce(std::io::Error) -> Stop {
    let context = format!("{what} {}", file.path.display());
    move |e| Stop::Failed(Error::io(context, e))
}

/// Appends up to `want` bytes of `file` to `buf`; returns how many were read,
/// fewer than `want` only at the end of the file.
pub(crate) fn fill(file: &mut File, buf: &mut Vec<u8>, want: usize) -> std::io::Result<usize> {
    // Reads into the vector's spare room without zeroing it first (a file
    // reads into uninitialised memory), retrying interrupted reads; on an
    // error, what was read stays in `buf`.
    buf.reserve(want);
    file.take(want as u64).read_to_end(buf)
}

/// Sends `buf[..cut]` as a chunk starting at `*offset` and keeps the rest
/// (an unfinished line) in `buf`, moving `*offset` past what was sent.
pub(crate) fn send_lines(
    tx: &Tx,
    pool: &BufferPool,
    slot: usize,
    offset: &mut u64,
    buf: &mut Vec<u8>,
    cut: usize,
) -> Result<(), Stop> {
    if cut == 0 {
        return Ok(());
    }
    let mut rest = pool.take();
    rest.extend_from_slice(&buf[cut..]);
    let mut data = std::mem::replace(buf, rest);
    data.truncate(cut);
    let chunk = Msg::Chunk {
        slot,
        offset: *offset,
        data,
    };
    *offset += cut as u64;
    send_chunk(tx, pool, chunk)
}

/// Reads the ranges of one instance in order. Runs on a blocking thread
/// until done, or until the stream is dropped.
pub(crate) fn read_splits(splits: Vec<Split>, opts: ReadOptions, tx: Tx, pool: BufferPool) {
    let r = splits
        .iter()
        .enumerate()
        .try_for_each(|(slot, split)| read_split(slot, split, opts, &tx, &pool))
        .and_then(|()| send(&tx, Msg::Done));
    finish(&tx, r);
}

/// Reads the lines that start in one range.
fn read_split(
    slot: usize,
    split: &Split,
    opts: ReadOptions,
    tx: &Tx,
    pool: &BufferPool,
) -> Result<(), Stop> {
    let entry = &split.file;
    let mut file = File::open(&entry.path).map_err(io_error("opening", entry))?;
    let (mut header, mut first, mut lines_before) = (None, split.start, None);
    if opts.has_header {
        let head = read_first_line(&mut file, entry, opts)?;
        if split.start == 0 && split.resume.is_none_or(|at| at < head.next) {
            // The header is not a record: the first line is the next one.
            first = head.next;
            lines_before = Some(head.newlines);
        }
        header = head.line;
    } else if split.start == 0 && split.resume.is_none_or(|at| at == 0) {
        lines_before = Some(0);
    }
    // Resumed past the header: at the line a checkpoint recorded, whose
    // line number is counted if a bad line needs it.
    if let Some(at) = split.resume
        && at > first
    {
        first = at;
        lines_before = None;
    }
    send(
        tx,
        Msg::Start {
            slot,
            file: entry.clone(),
            header,
            lines_before,
        },
    )?;
    let mut range = Range {
        slot,
        split,
        opts,
        file,
        buf: pool.take(),
        offset: first,
    };
    let next = range.read(tx, pool);
    pool.give(range.buf);
    send(tx, Msg::End { slot, next: next? })
}

/// The read of one range.
struct Range<'a> {
    slot: usize,
    split: &'a Split,
    opts: ReadOptions,
    file: File,
    /// Read but not yet sent.
    buf: Vec<u8>,
    /// The offset of `buf[0]`, always the start of a line once skipping
    /// the previous range's last line ends.
    offset: u64,
}

impl Range<'_> {
    /// Sends the range's lines; returns where the line after the last one
    /// starts when the last one ended in `\n`.
    fn read(&mut self, tx: &Tx, pool: &BufferPool) -> Result<Option<u64>, Stop> {
        let (split, entry) = (self.split, &*self.split.file);
        // A resumed range starts at a line start; else the line through
        // the first `\n` is the previous range's.
        let skip = split.start > 0 && self.offset == split.start;
        if skip {
            self.offset = split.start - 1;
        }
        self.file
            .seek(SeekFrom::Start(self.offset))
            .map_err(io_error("seeking in", entry))?;
        if skip && !self.skip_line(self.opts.lookahead())? {
            return Ok(None);
        }
        // `buf` holds no `\n` before `scanned`; the last owned line is the
        // one holding byte `end - 1`.
        let mut scanned = 0;
        loop {
            if self.offset >= split.end {
                return Ok(Some(self.offset));
            }
            let read_to = self.offset + self.buf.len() as u64;
            let (chunk, lookahead) = (self.opts.chunk, self.opts.lookahead());
            let want = if read_to < split.end {
                let left = usize::try_from(split.end - read_to).unwrap_or(usize::MAX);
                chunk.min(left.saturating_add(lookahead))
            } else {
                lookahead
            };
            let n =
                fill(&mut self.file, &mut self.buf, want).map_err(io_error("reading", entry))?;
            let eof = n < want;
            let buf = &self.buf;
            let last = usize::try_from(split.end - 1 - self.offset).unwrap_or(usize::MAX);
            let from = scanned.max(last);
            let end_of_range = if buf.len() > from {
                memchr(b'\n', &buf[from..]).map(|i| from + i + 1)
            } else {
                None
            };
            let (cut, done) = match end_of_range {
                Some(cut) => (cut, true),
                None if eof => (buf.len(), true),
                None => (
                    memrchr(b'\n', &buf[scanned..]).map_or(0, |i| scanned + i + 1),
                    false,
                ),
            };
            send_lines(tx, pool, self.slot, &mut self.offset, &mut self.buf, cut)?;
            if done {
                return Ok(end_of_range.map(|_| self.offset));
            }
            scanned = self.buf.len();
            if self.buf.len() > self.opts.max_line {
                // An unfinished line already too long: report it, skip it.
                send_long_line(tx, self.slot, self.offset, &self.buf, &self.opts)?;
                if !self.skip_line(self.opts.chunk)? {
                    return Ok(None);
                }
                scanned = 0;
            }
        }
    }

    /// Skips what `buf` holds and the file through its next `\n`, reading
    /// `step` bytes at a time, and keeps what follows in `buf`. Returns false
    /// at the end of the file, or once no line can start in the range.
    fn skip_line(&mut self, step: usize) -> Result<bool, Stop> {
        let entry = &*self.split.file;
        loop {
            self.offset += self.buf.len() as u64;
            self.buf.clear();
            if self.offset >= self.split.end {
                return Ok(false);
            }
            let n =
                fill(&mut self.file, &mut self.buf, step).map_err(io_error("reading", entry))?;
            if let Some(i) = memchr(b'\n', &self.buf) {
                self.buf.drain(..=i);
                self.offset += i as u64 + 1;
                return Ok(true);
            }
            if n < step {
                return Ok(false);
            }
        }
    }
}

/// A file's first line, as read for its header.
pub(crate) struct FirstLine {
    /// The line without its terminator; `None` for an empty file.
    pub(crate) line: Option<Vec<u8>>,
    /// The offset of the line after it.
    pub(crate) next: u64,
    /// 1 when the line ends in `\n`, else 0.
    pub(crate) newlines: u64,
}

/// Reads a file's first line, for its header.
///
/// # Errors
/// [`Error::BadRecord`] naming the file when the line is longer than
/// the maximum line length; [`Error::Io`] when reading fails.
pub(crate) fn read_first_line(
    file: &mut File,
    entry: &FileEntry,
    opts: ReadOptions,
) -> Result<FirstLine, Stop> {
    file.seek(SeekFrom::Start(0))
        .map_err(io_error("seeking in", entry))?;
    let (mut line, max_line) = (Vec::new(), opts.max_line);
    loop {
        let from = line.len();
        let n = fill(file, &mut line, opts.lookahead()).map_err(io_error("reading", entry))?;
        let newline = memchr(b'\n', &line[from..]).map(|i| from + i);
        if newline.unwrap_or(line.len()) > max_line {
            return Err(Stop::Failed(header_too_long(entry, max_line)));
        }
        if let Some(i) = newline {
            line.truncate(i);
            return Ok(FirstLine {
                line: Some(strip_cr(line)),
                next: i as u64 + 1,
                newlines: 1,
            });
        }
        if n == 0 {
            return Ok(FirstLine {
                next: line.len() as u64,
                line: (!line.is_empty()).then(|| strip_cr(line)),
                newlines: 0,
            });
        }
    }
}

/// The error for a header line longer than `max_line` bytes.
pub(crate) fn header_too_long(entry: &FileEntry, max_line: usize) -> Error {
    Error::BadRecord {
        location: format!("{}:1", entry.path.display()),
        reason: format!(
            "the header line exceeds the maximum line length of {max_line} bytes \
             (see FileSource::max_line_length)"
        ),
    }
}

/// A line without its trailing `\r`.
pub(crate) fn strip_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}
