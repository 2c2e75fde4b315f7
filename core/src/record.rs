//! Records, batches and event time.
//!
//! A [`Record`] is one typed value with its event time. Records travel
//! between tasks in [`Batch`]es, never one by one.

/// Event time: milliseconds since the Unix epoch.
pub type EventTime = i64;

/// The event time of a record that has none yet (sources that do not know
/// the time of their records give this; `assign_timestamps` replaces it).
///
/// `i64::MIN` is reserved for this marker: it is never a record's real event
/// time. `assign_timestamps` refuses an extracted `i64::MIN` as a bad record
/// instead of passing it on, where it would read as "no event time".
pub const NO_TIMESTAMP: EventTime = i64::MIN;

/// The earliest event time a record can carry: one after [`NO_TIMESTAMP`].
pub const MIN_EVENT_TIME: EventTime = i64::MIN + 1;

/// The latest event time a record can carry. `i64::MAX` is the watermark
/// that ends the input (every window fires at it), and a window holding a
/// record needs an exclusive end after it, so a record at `i64::MAX` could
/// never be on time. `assign_timestamps` refuses it as a bad record.
pub const MAX_EVENT_TIME: EventTime = i64::MAX - 1;

/// Whether `t` is an event time a record can carry: within
/// [`MIN_EVENT_TIME`]`..=`[`MAX_EVENT_TIME`], so neither [`NO_TIMESTAMP`] nor
/// the end-of-input watermark `i64::MAX`.
///
/// ```
/// use brook_core::record::{is_event_time, NO_TIMESTAMP};
/// assert!(is_event_time(1_700_000_000_000));
/// assert!(!is_event_time(NO_TIMESTAMP));
/// assert!(!is_event_time(i64::MAX));
/// ```
#[inline]
pub const fn is_event_time(t: EventTime) -> bool {
    t >= MIN_EVENT_TIME && t <= MAX_EVENT_TIME
}

/// Anything that can flow through a stream: owned, clonable (for fan-out)
/// and sendable between tasks.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// One value with its event time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Record<T> {
    /// Event time in milliseconds since the epoch (see [`is_event_time`]),
    /// or [`NO_TIMESTAMP`].
    pub timestamp: EventTime,
    /// The user's value.
    pub value: T,
}

impl<T> Record<T> {
    /// A record with the given event time.
    pub fn new(timestamp: EventTime, value: T) -> Self {
        Record { timestamp, value }
    }

    /// A record without event time.
    pub fn untimed(value: T) -> Self {
        Record {
            timestamp: NO_TIMESTAMP,
            value,
        }
    }
}

/// A batch of records: the unit that moves between tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch<T> {
    records: Vec<Record<T>>,
}

impl<T> Default for Batch<T> {
    fn default() -> Self {
        Batch {
            records: Vec::new(),
        }
    }
}

impl<T> Batch<T> {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty batch with room for `n` records.
    pub fn with_capacity(n: usize) -> Self {
        Batch {
            records: Vec::with_capacity(n),
        }
    }

    /// Appends a value with its event time.
    pub fn push(&mut self, timestamp: EventTime, value: T) {
        self.records.push(Record { timestamp, value });
    }

    /// Appends a record.
    pub fn push_record(&mut self, record: Record<T>) {
        self.records.push(record);
    }

    /// The number of records.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the batch holds no record.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// The records, in order.
    pub fn records(&self) -> &[Record<T>] {
        &self.records
    }

    /// The records, mutably.
    pub fn records_mut(&mut self) -> &mut Vec<Record<T>> {
        &mut self.records
    }

    /// The records, by value.
    pub fn into_records(self) -> Vec<Record<T>> {
        self.records
    }

    /// The values, by reference.
    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.records.iter().map(|r| &r.value)
    }

    /// Keeps the records whose value passes `f`, in order.
    pub fn retain(&mut self, mut f: impl FnMut(&T) -> bool) {
        self.records.retain(|r| f(&r.value));
    }

    /// Applies `f` to every value, keeping event times.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Batch<U> {
        Batch {
            records: self
                .records
                .into_iter()
                .map(|r| Record {
                    timestamp: r.timestamp,
                    value: f(r.value),
                })
                .collect(),
        }
    }

    /// Moves every record of `other` to the end of this batch.
    pub fn append(&mut self, other: &mut Batch<T>) {
        self.records.append(&mut other.records);
    }
}

impl<T> From<Vec<Record<T>>> for Batch<T> {
    fn from(records: Vec<Record<T>>) -> Self {
        Batch { records }
    }
}

impl<T> FromIterator<Record<T>> for Batch<T> {
    fn from_iter<I: IntoIterator<Item = Record<T>>>(iter: I) -> Self {
        Batch {
            records: iter.into_iter().collect(),
        }
    }
}

impl<T> IntoIterator for Batch<T> {
    type Item = Record<T>;
    type IntoIter = std::vec::IntoIter<Record<T>>;
    fn into_iter(self) -> Self::IntoIter {
        self.records.into_iter()
    }
}

impl<T> Extend<Record<T>> for Batch<T> {
    fn extend<I: IntoIterator<Item = Record<T>>>(&mut self, iter: I) {
        self.records.extend(iter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_keeps_timestamps_and_retain_keeps_order() {
        let mut b: Batch<i32> = (0..5).map(|i| Record::new(i as i64 * 10, i)).collect();
        b.retain(|v| v % 2 == 0);
        let m = b.map(|v| v * 3);
        let got: Vec<_> = m.into_iter().map(|r| (r.timestamp, r.value)).collect();
        assert_eq!(got, vec![(0, 0), (20, 6), (40, 12)]);
    }
}
