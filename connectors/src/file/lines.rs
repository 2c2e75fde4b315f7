//! Line numbers for readers that start mid-file.
//!
//! A reader whose range starts at byte 0 knows its line numbers; one that
//! starts mid-file learns them only when a bad line needs one, by counting
//! the `\n` before its offset. Each file keeps the points already known
//! (the end of every range whose count was known, every count made), so a
//! count starts from the nearest known point at or before the offset, not
//! from the file's start, and a reader's next range of the same file, which
//! starts where its last one stopped, needs no count at all.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use brook_core::{Error, Result};

use super::plan::FileEntry;
use super::reader::CHUNK_SIZE;

/// The points of one file where the number of `\n` before is known:
/// offset → newlines before it. Shared by every reader of the file.
#[derive(Debug, Default)]
pub(crate) struct LineIndex {
    points: Mutex<BTreeMap<u64, u64>>,
    /// Bytes read to count lines, for tests.
    #[cfg(test)]
    pub(crate) counted: std::sync::atomic::AtomicU64,
}

impl LineIndex {
    /// Records that `newlines` `\n` come before byte `offset`.
    pub(crate) fn insert(&self, offset: u64, newlines: u64) {
        let mut points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        points.insert(offset, newlines);
    }

    /// The known point nearest at or before `offset`; the file's start when
    /// none is.
    fn nearest(&self, offset: u64) -> (u64, u64) {
        let points = self.points.lock().unwrap_or_else(PoisonError::into_inner);
        points
            .range(..=offset)
            .next_back()
            .map_or((0, 0), |(&at, &n)| (at, n))
    }
}

/// The number of `\n` in the first `offset` bytes of `file`, counted from
/// the nearest known point and remembered. Blocking.
///
/// # Errors
/// [`Error::Io`] when the file cannot be read.
pub(crate) fn newlines_before(file: &FileEntry, offset: u64) -> Result<u64> {
    let (from, known) = file.lines.nearest(offset);
    if from == offset {
        return Ok(known);
    }
    let counted = count_newlines(&file.path, from, offset)?;
    #[cfg(test)]
    file.lines
        .counted
        .fetch_add(offset - from, std::sync::atomic::Ordering::Relaxed);
    let total = known + counted;
    file.lines.insert(offset, total);
    Ok(total)
}

/// The number of `\n` in bytes `[from, to)` of the file at `path`.
fn count_newlines(path: &Path, from: u64, to: u64) -> Result<u64> {
    let io = |e| Error::io(format!("reading {}", path.display()), e);
    let mut file = std::fs::File::open(path).map_err(io)?;
    file.seek(SeekFrom::Start(from)).map_err(io)?;
    let mut file = file.take(to.saturating_sub(from));
    let mut buf = vec![0; CHUNK_SIZE];
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use super::*;

    #[test]
    fn counts_start_at_the_nearest_known_point() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.txt");
        std::fs::write(&path, "a\nb\nc\nd\ne\nf\n").expect("write");
        let file = FileEntry::new(path, 12);
        assert_eq!(newlines_before(&file, 4).expect("count"), 2);
        assert_eq!(file.lines.counted.load(Relaxed), 4);
        // From the point at 4, not from 0: a wrong point shows through.
        file.lines.insert(4, 100);
        assert_eq!(newlines_before(&file, 8).expect("count"), 102);
        assert_eq!(file.lines.counted.load(Relaxed), 8);
        // Known exactly: nothing is read.
        assert_eq!(newlines_before(&file, 8).expect("count"), 102);
        assert_eq!(file.lines.counted.load(Relaxed), 8);
    }
}
