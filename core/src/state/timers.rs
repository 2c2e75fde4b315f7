//! Per-key timers, fired in time order.

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use rustc_hash::FxHashSet;
use serde::{Deserialize, Serialize};

/// Timers for many keys: at most one per (time, key), fired in time order
/// and, at equal times, in the order they were set.
///
/// Used for event time (fire up to the watermark) and processing time (fire
/// up to the wall clock) alike.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash",
    deserialize = "K: Deserialize<'de> + Eq + Hash + Clone"
))]
pub struct TimerQueue<K> {
    by_time: BTreeMap<i64, VecDeque<K>>,
    #[serde(skip)]
    set: FxHashSet<(i64, K)>,
}

impl<K> Default for TimerQueue<K> {
    fn default() -> Self {
        TimerQueue {
            by_time: BTreeMap::new(),
            set: FxHashSet::default(),
        }
    }
}

impl<K: Eq + Hash + Clone> TimerQueue<K> {
    /// Sets a timer for `key` at `time`; a timer already set for the same
    /// key and time stays the only one. Returns whether it was new.
    pub fn set(&mut self, time: i64, key: K) -> bool {
        self.reindex();
        if !self.set.insert((time, key.clone())) {
            return false;
        }
        self.by_time.entry(time).or_default().push_back(key);
        true
    }

    /// Removes the timer for `key` at `time`, if set.
    pub fn delete(&mut self, time: i64, key: &K) -> bool {
        self.reindex();
        if !self.set.remove(&(time, key.clone())) {
            return false;
        }
        if let Some(keys) = self.by_time.get_mut(&time) {
            keys.retain(|k| k != key);
            if keys.is_empty() {
                self.by_time.remove(&time);
            }
        }
        true
    }

    /// Takes the earliest timer at or before `up_to`, if any.
    pub fn pop_due(&mut self, up_to: i64) -> Option<(i64, K)> {
        self.reindex();
        let mut entry = self.by_time.first_entry()?;
        let time = *entry.key();
        if time > up_to {
            return None;
        }
        let keys = entry.get_mut();
        let Some(key) = keys.pop_front() else {
            entry.remove();
            return None;
        };
        if keys.is_empty() {
            entry.remove();
        }
        self.set.remove(&(time, key.clone()));
        Some((time, key))
    }

    /// The earliest timer's time.
    pub fn next_time(&self) -> Option<i64> {
        self.by_time.keys().next().copied()
    }

    /// Every timer, in the order they fire.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &K)> {
        self.by_time
            .iter()
            .flat_map(|(&t, keys)| keys.iter().map(move |k| (t, k)))
    }

    /// The number of timers set.
    pub fn len(&self) -> usize {
        self.by_time.values().map(VecDeque::len).sum()
    }

    /// Whether no timer is set.
    pub fn is_empty(&self) -> bool {
        self.by_time.is_empty()
    }

    /// Rebuilds the duplicate index after a restore (it is not encoded).
    fn reindex(&mut self) {
        if self.set.is_empty() && !self.by_time.is_empty() {
            for (&t, keys) in &self.by_time {
                for k in keys {
                    self.set.insert((t, k.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_time_order_once_each() {
        let mut q = TimerQueue::default();
        assert!(q.set(30, "c"));
        assert!(q.set(10, "a"));
        assert!(q.set(20, "b"));
        assert!(!q.set(10, "a"));
        assert!(q.set(10, "z"));
        assert!(q.delete(20, &"b"));
        let mut fired = Vec::new();
        while let Some(t) = q.pop_due(25) {
            fired.push(t);
        }
        assert_eq!(fired, vec![(10, "a"), (10, "z")]);
        assert_eq!(q.next_time(), Some(30));
        let bytes = crate::state::encode(&q).expect("encodes");
        let mut back: TimerQueue<String> = crate::state::decode(&bytes).expect("decodes");
        assert!(!back.set(30, "c".to_string()));
        assert_eq!(back.pop_due(i64::MAX), Some((30, "c".to_string())));
    }
}
