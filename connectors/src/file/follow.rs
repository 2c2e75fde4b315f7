//! Follow mode: tails growing files like `tail -F`, on a blocking thread.
//!
//! Each file is read to its end, then polled for more. A last line without
//! its `\n` is held until the `\n` arrives. A file that shrinks was
//! truncated: reading starts over from its beginning. A file whose path now
//! names another file was rotated (Unix only): the rest of the old file is
//! read, then the new file from its beginning. A line that grows past the
//! maximum line length is reported as soon as it does, then skipped through
//! its `\n`.

use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;
use std::time::Duration;

use brook_core::time::Clock;
use memchr::{memchr, memrchr};

use super::plan::{FileEntry, Split};
use super::reader::{
    BufferPool, Msg, ReadOptions, Stop, Tx, fill, finish, header_too_long, io_error, send,
    send_lines, send_long_line, strip_cr,
};

/// Tails `files` until the stream is dropped, waiting `poll` on `clock`
/// (the task's: the system's, or one a test drives) whenever a round over
/// the files found nothing new: after the stream is dropped, the reader
/// stops at the end of its next round, within one `poll` of `clock`.
pub(crate) fn follow_files_on(
    files: Vec<Split>,
    opts: ReadOptions,
    poll: Duration,
    clock: &Clock,
    tx: Tx,
    pool: BufferPool,
) {
    let mut tails: Vec<Tail> = files
        .into_iter()
        .enumerate()
        .map(|(slot, split)| Tail {
            slot,
            entry: split.file,
            opts,
            file: None,
            buf: Vec::new(),
            offset: 0,
            started: false,
            skipping: false,
        })
        .collect();
    let r = (|| loop {
        let mut progress = false;
        for tail in &mut tails {
            progress |= tail.poll(&tx, &pool)?;
        }
        if tx.is_closed() {
            return Err(Stop::Closed);
        }
        if !progress {
            clock.sleep_blocking(poll);
        }
    })();
    finish(&tx, r);
}

/// One followed file.
struct Tail {
    slot: usize,
    entry: Arc<FileEntry>,
    opts: ReadOptions,
    file: Option<File>,
    /// Read but not yet sent: the start of an unfinished line.
    buf: Vec<u8>,
    /// The offset of `buf[0]`.
    offset: u64,
    /// Whether `Msg::Start` was sent for the current file.
    started: bool,
    /// Whether a too-long line is being skipped: `buf` is dropped up to the
    /// next `\n`.
    skipping: bool,
}

impl Tail {
    /// Reads what is new; returns whether anything was.
    fn poll(&mut self, tx: &Tx, pool: &BufferPool) -> Result<bool, Stop> {
        let Some(file) = &mut self.file else {
            return self.open();
        };
        let len = file
            .metadata()
            .map_err(io_error("reading metadata of", &self.entry))?
            .len();
        let read_to = self.offset + self.buf.len() as u64;
        if len < read_to {
            tracing::warn!(
                file = %self.entry.path.display(),
                offset = read_to,
                size = len,
                "Followed file shrank; reading it again from the start."
            );
            file.seek(SeekFrom::Start(0))
                .map_err(io_error("seeking in", &self.entry))?;
            self.restart();
            return Ok(true);
        }
        if len == read_to {
            return self.check_rotation(tx, pool);
        }
        let chunk = self.opts.chunk;
        let want = usize::try_from(len - read_to).map_or(chunk, |n| n.min(chunk));
        let n = fill(file, &mut self.buf, want).map_err(io_error("reading", &self.entry))?;
        if n == 0 {
            return Ok(false);
        }
        if self.skipping && !self.skip() {
            return Ok(true);
        }
        if !self.started && !self.start(tx)? {
            return Ok(true);
        }
        // Whole lines go; an unfinished one waits for its `\n`.
        let new = self.buf.len().saturating_sub(n);
        let cut = memrchr(b'\n', &self.buf[new..]).map_or(0, |i| new + i + 1);
        send_lines(tx, pool, self.slot, &mut self.offset, &mut self.buf, cut)?;
        if self.buf.len() > self.opts.max_line {
            // An unfinished line already too long: report it, skip it.
            send_long_line(tx, self.slot, self.offset, &self.buf, &self.opts)?;
            self.skipping = true;
            self.skip();
        }
        Ok(true)
    }

    /// Drops `buf` through its first `\n`, which ends the line being
    /// skipped; returns whether the line ended.
    fn skip(&mut self) -> bool {
        match memchr(b'\n', &self.buf) {
            Some(i) => {
                self.buf.drain(..=i);
                self.offset += i as u64 + 1;
                self.skipping = false;
                true
            }
            None => {
                self.offset += self.buf.len() as u64;
                // Frees what the long line made the buffer grow to.
                self.buf = Vec::new();
                false
            }
        }
    }

    /// Opens the file if it exists (again); returns whether it was opened.
    fn open(&mut self) -> Result<bool, Stop> {
        match File::open(&self.entry.path) {
            Ok(file) => {
                self.file = Some(file);
                self.restart();
                Ok(true)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_error("opening", &self.entry)(e)),
        }
    }

    /// Starts the file over from its beginning.
    fn restart(&mut self) {
        self.buf.clear();
        self.offset = 0;
        self.started = false;
        self.skipping = false;
    }

    /// Sends `Msg::Start`, once the header is complete when there is one;
    /// returns whether it was sent.
    ///
    /// # Errors
    /// A header longer than the maximum line length fails the reader.
    fn start(&mut self, tx: &Tx) -> Result<bool, Stop> {
        let (header, lines_before) = if self.opts.has_header {
            let newline = memchr(b'\n', &self.buf);
            if newline.unwrap_or(self.buf.len()) > self.opts.max_line {
                return Err(Stop::Failed(header_too_long(
                    &self.entry,
                    self.opts.max_line,
                )));
            }
            let Some(i) = newline else {
                return Ok(false);
            };
            let mut header: Vec<u8> = self.buf.drain(..=i).collect();
            header.pop();
            self.offset += i as u64 + 1;
            (Some(strip_cr(header)), Some(1))
        } else {
            (None, Some(0))
        };
        self.started = true;
        let start = Msg::Start {
            slot: self.slot,
            file: self.entry.clone(),
            header,
            lines_before,
        };
        send(tx, start).map(|()| true)
    }

    /// At the end of the file: if its path now names another file, sends the
    /// unfinished last line and switches to the new file.
    fn check_rotation(&mut self, tx: &Tx, pool: &BufferPool) -> Result<bool, Stop> {
        if !self.rotated() {
            return Ok(false);
        }
        tracing::info!(file = %self.entry.path.display(), "Followed file was replaced; reading the new one.");
        if self.started {
            let cut = self.buf.len();
            send_lines(tx, pool, self.slot, &mut self.offset, &mut self.buf, cut)?;
        }
        self.file = None;
        self.open()
    }

    #[cfg(unix)]
    fn rotated(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let (Some(file), Ok(now)) = (&self.file, std::fs::metadata(&self.entry.path)) else {
            return false;
        };
        file.metadata()
            .is_ok_and(|open| (open.dev(), open.ino()) != (now.dev(), now.ino()))
    }

    #[cfg(not(unix))]
    fn rotated(&self) -> bool {
        false
    }
}
