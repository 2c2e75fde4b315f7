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

/// How much a reader reads at once.
pub(crate) const CHUNK_SIZE: usize = 1 << 20;
/// How much a reader reads at once past the end of its range, to finish its
/// last line.
const LOOKAHEAD: usize = 64 << 10;
/// Chunks in flight between a reader and its stream.
pub(crate) const CHANNEL_CAPACITY: usize = 2;
/// Buffers kept for reuse.
const POOL_SIZE: usize = 4;

/// What a reader sends its stream.
#[derive(Debug)]
pub(crate) enum Msg {
    /// A file, or a range of one, starts; later chunks name it by `slot`.
    /// Sent again for the same slot when a followed file starts over.
    Start {
        slot: usize,
        file: Arc<FileEntry>,
        /// The file's first line, when the format has a header.
        header: Option<Vec<u8>>,
        /// The number of lines before the first chunk, when known without
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
#[derive(Debug, Clone, Default)]
pub(crate) struct BufferPool(Arc<Mutex<Vec<Vec<u8>>>>);

impl BufferPool {
    /// An empty buffer, reused when one is free.
    pub(crate) fn take(&self) -> Vec<u8> {
        let reused = self.0.lock().unwrap_or_else(PoisonError::into_inner).pop();
        reused.unwrap_or_else(|| Vec::with_capacity(CHUNK_SIZE + LOOKAHEAD))
    }

    /// Gives a buffer back for reuse.
    pub(crate) fn give(&self, mut buf: Vec<u8>) {
        buf.clear();
        let mut pool = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if pool.len() < POOL_SIZE && buf.capacity() <= 2 * (CHUNK_SIZE + LOOKAHEAD) {
            pool.push(buf);
        }
    }
}

/// Sends a message; fails when the stream is gone.
pub(crate) fn send(tx: &Tx, msg: Msg) -> Result<(), Stop> {
    tx.blocking_send(Ok(msg)).map_err(|_| Stop::Closed)
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
    let start = buf.len();
    buf.resize(start + want, 0);
    let mut filled = start;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                buf.truncate(filled);
                return Err(e);
            }
        }
    }
    buf.truncate(filled);
    Ok(filled - start)
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
    send(tx, chunk)
}

/// Reads the ranges of one instance in order. Runs on a blocking thread
/// until done, or until the stream is dropped.
pub(crate) fn read_splits(splits: Vec<Split>, has_header: bool, tx: Tx, pool: BufferPool) {
    let r = splits
        .iter()
        .enumerate()
        .try_for_each(|(slot, split)| read_split(slot, split, has_header, &tx, &pool));
    finish(&tx, r);
}

/// Reads the lines that start in one range.
fn read_split(
    slot: usize,
    split: &Split,
    has_header: bool,
    tx: &Tx,
    pool: &BufferPool,
) -> Result<(), Stop> {
    let entry = &split.file;
    let mut file = File::open(&entry.path).map_err(io_error("opening", entry))?;
    let (mut header, mut first, mut lines_before) = (None, split.start, None);
    if has_header {
        let (line, end) = read_first_line(&mut file, entry)?;
        if split.start == 0 {
            // The header is not a record: the first line is the next one.
            first = end;
            lines_before = Some(u64::from(line.is_some()));
        }
        header = line;
    } else if split.start == 0 {
        lines_before = Some(0);
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

    let mut buf = pool.take();
    // The offset of `buf[0]`, always the start of a line once skipping ends.
    let mut offset;
    if split.start > 0 {
        offset = split.start - 1;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_error("seeking in", entry))?;
        // Skip through the first `\n`: the line before it is the previous
        // range's. Stop early once no line can start in this range.
        loop {
            if offset >= split.end {
                return Ok(());
            }
            let n = fill(&mut file, &mut buf, LOOKAHEAD).map_err(io_error("reading", entry))?;
            if let Some(i) = memchr(b'\n', &buf) {
                buf.drain(..=i);
                offset += i as u64 + 1;
                break;
            }
            if n == 0 {
                return Ok(());
            }
            offset += buf.len() as u64;
            buf.clear();
        }
    } else {
        offset = first;
        file.seek(SeekFrom::Start(offset))
            .map_err(io_error("seeking in", entry))?;
    }

    // `buf` holds no `\n` before `scanned`; the last owned line is the one
    // holding byte `end - 1`.
    let mut scanned = 0;
    while offset < split.end {
        let read_to = offset + buf.len() as u64;
        let want = if read_to < split.end {
            let left = usize::try_from(split.end - read_to).unwrap_or(usize::MAX);
            CHUNK_SIZE.min(left.saturating_add(LOOKAHEAD))
        } else {
            LOOKAHEAD
        };
        let n = fill(&mut file, &mut buf, want).map_err(io_error("reading", entry))?;
        let eof = n < want;
        let last = usize::try_from(split.end - 1 - offset).unwrap_or(usize::MAX);
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
        send_lines(tx, pool, slot, &mut offset, &mut buf, cut)?;
        if done {
            break;
        }
        scanned = buf.len();
    }
    pool.give(buf);
    Ok(())
}

/// Reads a file's first line, without its line terminator, and the offset
/// of the line after it. `None` for an empty file.
pub(crate) fn read_first_line(
    file: &mut File,
    entry: &FileEntry,
) -> Result<(Option<Vec<u8>>, u64), Stop> {
    file.seek(SeekFrom::Start(0))
        .map_err(io_error("seeking in", entry))?;
    let mut line = Vec::new();
    loop {
        let from = line.len();
        let n = fill(file, &mut line, LOOKAHEAD).map_err(io_error("reading", entry))?;
        if let Some(i) = memchr(b'\n', &line[from..]) {
            line.truncate(from + i);
            let end = line.len() as u64 + 1;
            return Ok((Some(strip_cr(line)), end));
        }
        if n == 0 {
            let end = line.len() as u64;
            return Ok(((!line.is_empty()).then(|| strip_cr(line)), end));
        }
    }
}

fn strip_cr(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    line
}
