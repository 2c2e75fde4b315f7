//! The files (or ranges of files) a stream is reading, by the slot their
//! reader gave them: only those started and not yet ended, so the state a
//! stream holds does not grow with the number of files it has read.

use std::sync::Arc;

use super::plan::FileEntry;

/// A file (or a range of one) being parsed.
pub(crate) struct Slot<P> {
    pub(crate) file: Arc<FileEntry>,
    pub(crate) parser: P,
    /// The number of `\n` in the file before the current chunk, once known.
    pub(crate) lines_before: Option<u64>,
}

/// The open slots, sorted by number. A reader of ranges has at most one
/// open; a follower has one per followed file.
pub(crate) struct Slots<P>(Vec<(usize, Slot<P>)>);

impl<P> Slots<P> {
    pub(crate) fn new() -> Self {
        Slots(Vec::new())
    }

    /// How many are open.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn get_mut(&mut self, n: usize) -> Option<&mut Slot<P>> {
        let i = self.0.binary_search_by_key(&n, |(k, _)| *k).ok()?;
        Some(&mut self.0[i].1)
    }

    /// Opens slot `n`, or starts it over.
    pub(crate) fn insert(&mut self, n: usize, slot: Slot<P>) {
        match self.0.binary_search_by_key(&n, |(k, _)| *k) {
            Ok(i) => self.0[i].1 = slot,
            Err(i) => self.0.insert(i, (n, slot)),
        }
    }

    /// Ends slot `n`, returning it.
    pub(crate) fn remove(&mut self, n: usize) -> Option<Slot<P>> {
        let i = self.0.binary_search_by_key(&n, |(k, _)| *k).ok()?;
        let (_, slot) = self.0.remove(i);
        if self.0.is_empty() {
            // Frees what a follower's many files made it hold.
            self.0 = Vec::new();
        }
        Some(slot)
    }

    /// The open slot with the highest number.
    pub(crate) fn last(&self) -> Option<&Slot<P>> {
        self.0.last().map(|(_, slot)| slot)
    }
}
