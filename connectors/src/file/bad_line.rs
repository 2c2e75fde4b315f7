//! What a stream does with a line it cannot use: the bad-line policy
//! applied to one line, and the dead letters gathered for the sink.

use std::sync::atomic::Ordering::Relaxed;

use brook_core::{Batch, BoxError, Error, NO_TIMESTAMP, Result, TaskContext};

use super::plan::FileEntry;
use super::reader::LONG_LINE_PREFIX;
use crate::bad_record::{DeadLetter, DeadLetterWriter};

/// What the stream does with a bad line.
pub(crate) enum Mode {
    Fail,
    Drop,
    DeadLetter(Box<dyn DeadLetterWriter>),
}

/// Why a line is bad.
pub(crate) enum Problem {
    /// The format could not parse it.
    Parse(BoxError),
    /// It is longer than the maximum line length; only its first bytes are
    /// at hand.
    TooLong,
}

/// Where a bad line is.
pub(crate) struct At<'a> {
    pub(crate) file: &'a FileEntry,
    /// The 1-based line number, when known; always known unless the mode
    /// is [`Mode::Drop`].
    pub(crate) line: Option<u64>,
    /// The offset of the line's start.
    pub(crate) offset: u64,
}

/// The bad-line policy of one stream, with the dead letters not yet
/// written.
pub(crate) struct BadLines {
    mode: Mode,
    max_line: usize,
    dead: Batch<DeadLetter>,
    /// Whether dead letters were written since the last flush.
    unflushed: bool,
}

impl BadLines {
    pub(crate) fn new(mode: Mode, max_line: usize) -> Self {
        BadLines {
            mode,
            max_line,
            dead: Batch::new(),
            unflushed: false,
        }
    }

    /// Whether handling a bad line needs its line number.
    pub(crate) fn needs_line(&self) -> bool {
        !matches!(self.mode, Mode::Drop)
    }

    /// The number of dead letters not yet written.
    pub(crate) fn pending(&self) -> usize {
        self.dead.len()
    }

    /// Applies the policy to one bad line, `raw` without its terminator
    /// (for a too-long line, at least its first bytes). Returns whether the
    /// line was dropped.
    ///
    /// # Errors
    /// Under [`Mode::Fail`], [`Error::BadRecord`] naming `path:line`.
    pub(crate) fn handle(&mut self, at: At<'_>, raw: &[u8], problem: &Problem) -> Result<bool> {
        let path = at.file.path.display();
        let max = self.max_line;
        match &mut self.mode {
            Mode::Fail => Err(Error::BadRecord {
                location: format!("{path}:{}", at.line.unwrap_or(0)),
                reason: match problem {
                    Problem::Parse(e) => e.to_string(),
                    Problem::TooLong => too_long(max),
                },
            }),
            Mode::Drop => {
                if !at.file.warned.swap(true, Relaxed) {
                    let reason = match problem {
                        Problem::Parse(e) => e.to_string(),
                        Problem::TooLong => too_long(max),
                    };
                    // Not counted for the warning: the line when known,
                    // else the offset.
                    match at.line {
                        Some(line) => tracing::warn!(
                            file = %path,
                            line,
                            offset = at.offset,
                            reason,
                            "Dropped a bad line; later ones in this file are dropped without a warning."
                        ),
                        None => tracing::warn!(
                            file = %path,
                            offset = at.offset,
                            reason,
                            "Dropped a bad line; later ones in this file are dropped without a warning."
                        ),
                    }
                }
                Ok(true)
            }
            Mode::DeadLetter(_) => {
                let (raw, reason) = match problem {
                    Problem::Parse(e) => (String::from_utf8_lossy(raw).into_owned(), e.to_string()),
                    Problem::TooLong => {
                        let kept = &raw[..raw.len().min(max.min(LONG_LINE_PREFIX))];
                        let kept = &kept[..whole_chars(kept)];
                        let reason = format!(
                            "{}; truncated: raw holds its first {} bytes",
                            too_long(max),
                            kept.len()
                        );
                        (String::from_utf8_lossy(kept).into_owned(), reason)
                    }
                };
                let letter = DeadLetter {
                    source: path.to_string(),
                    line: at.line.unwrap_or(0),
                    offset: at.offset,
                    raw,
                    reason,
                    ..DeadLetter::default()
                };
                self.dead.push(NO_TIMESTAMP, letter);
                Ok(false)
            }
        }
    }

    /// Writes the dead letters gathered so far.
    pub(crate) async fn write(&mut self, ctx: &TaskContext) -> Result<()> {
        let Mode::DeadLetter(writer) = &mut self.mode else {
            return Ok(());
        };
        if self.dead.is_empty() {
            return Ok(());
        }
        let dead = std::mem::take(&mut self.dead);
        let n = dead.len() as u64;
        writer.write(dead).await?;
        ctx.metrics().add_dead_lettered(n);
        self.unflushed = true;
        Ok(())
    }

    /// Flushes the dead-letter sink if anything was written since the last
    /// flush.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        if let Mode::DeadLetter(writer) = &mut self.mode
            && self.unflushed
        {
            writer.flush().await?;
            self.unflushed = false;
        }
        Ok(())
    }

    /// When the stream fails: writes and flushes what it can, logging what
    /// it cannot, so that no dead letter is lost to the failure.
    pub(crate) async fn salvage(&mut self, ctx: &TaskContext) {
        let pending = self.dead.len();
        if let Err(e) = self.write(ctx).await {
            tracing::warn!(dead_letters = pending, error = %e, "Could not write dead letters after the source failed.");
            return;
        }
        if let Err(e) = self.flush().await {
            tracing::warn!(error = %e, "Could not flush dead letters after the source failed.");
        }
    }

    /// At the end of the input: writes, flushes and closes the dead-letter
    /// sink.
    pub(crate) async fn finish(&mut self, ctx: &TaskContext) -> Result<()> {
        self.write(ctx).await?;
        self.flush().await?;
        if let Mode::DeadLetter(writer) = &mut self.mode {
            writer.close().await?;
        }
        Ok(())
    }
}

/// Why a too-long line is bad.
fn too_long(max: usize) -> String {
    format!("the line exceeds the maximum line length of {max} bytes")
}

/// The length of `bytes` without a last UTF-8 character that a cut split
/// in two.
fn whole_chars(bytes: &[u8]) -> usize {
    let mut end = bytes.len();
    // Find the start of the last character: at most 3 continuation bytes.
    for back in 1..=bytes.len().min(4) {
        let b = bytes[bytes.len() - back];
        if b & 0xC0 != 0x80 {
            let width = match b {
                0xF8.. => 1, // never starts a character
                0xF0.. => 4,
                0xE0.. => 3,
                0xC0.. => 2,
                _ => 1,
            };
            if width > back {
                end = bytes.len() - back;
            }
            break;
        }
    }
    end
}

#[cfg(test)]
mod tests {
    use super::whole_chars;

    #[test]
    fn a_character_cut_in_two_is_left_out() {
        let bytes = "aé€😀".as_bytes();
        let ends: Vec<usize> = (0..=bytes.len())
            .map(|n| whole_chars(&bytes[..n]))
            .collect();
        assert_eq!(ends, [0, 1, 1, 3, 3, 3, 6, 6, 6, 6, 10]);
        // Invalid bytes are kept, to be replaced.
        assert_eq!(whole_chars(b"\xffx"), 2);
        assert_eq!(whole_chars(b"x\xff"), 2);
    }
}
