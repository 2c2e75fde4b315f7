//! Per-key state cells: a value, a list and a map.

use std::hash::Hash;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// One value per key, as Flink's `ValueState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueState<T> {
    value: Option<T>,
}

impl<T> Default for ValueState<T> {
    fn default() -> Self {
        ValueState { value: None }
    }
}

impl<T> ValueState<T> {
    /// The value, if one was set.
    pub fn value(&self) -> Option<&T> {
        self.value.as_ref()
    }

    /// The value for changing in place, if one was set.
    pub fn value_mut(&mut self) -> Option<&mut T> {
        self.value.as_mut()
    }

    /// The value, set to `init()` first if there is none.
    pub fn get_or_insert_with(&mut self, init: impl FnOnce() -> T) -> &mut T {
        self.value.get_or_insert_with(init)
    }

    /// Sets the value.
    pub fn update(&mut self, value: T) {
        self.value = Some(value);
    }

    /// Takes the value out, leaving none.
    pub fn take(&mut self) -> Option<T> {
        self.value.take()
    }

    /// Removes the value.
    pub fn clear(&mut self) {
        self.value = None;
    }

    /// Whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.value.is_none()
    }
}

/// A list of values per key, as Flink's `ListState`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListState<T> {
    items: Vec<T>,
}

impl<T> Default for ListState<T> {
    fn default() -> Self {
        ListState { items: Vec::new() }
    }
}

impl<T> ListState<T> {
    /// Appends a value.
    pub fn add(&mut self, value: T) {
        self.items.push(value);
    }

    /// The values, in the order they were added.
    pub fn get(&self) -> &[T] {
        &self.items
    }

    /// Replaces every value.
    pub fn update(&mut self, items: Vec<T>) {
        self.items = items;
    }

    /// Keeps the values `keep` says yes to.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) {
        self.items.retain(keep);
    }

    /// Takes every value out.
    pub fn take(&mut self) -> Vec<T> {
        std::mem::take(&mut self.items)
    }

    /// Removes every value.
    pub fn clear(&mut self) {
        self.items.clear();
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// A map per key, as Flink's `MapState`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize + Eq + Hash, V: Serialize",
    deserialize = "K: Deserialize<'de> + Eq + Hash, V: Deserialize<'de>"
))]
pub struct MapState<K, V> {
    entries: FxHashMap<K, V>,
}

impl<K, V> Default for MapState<K, V> {
    fn default() -> Self {
        MapState {
            entries: FxHashMap::default(),
        }
    }
}

impl<K: Eq + Hash, V> MapState<K, V> {
    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.entries.get(key)
    }

    /// The value under `key`, for changing in place.
    pub fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.entries.get_mut(key)
    }

    /// Puts a value under `key`, returning the one it replaces.
    pub fn put(&mut self, key: K, value: V) -> Option<V> {
        self.entries.insert(key, value)
    }

    /// The value under `key`, inserted with `init()` if there is none.
    pub fn entry_or_insert_with(&mut self, key: K, init: impl FnOnce() -> V) -> &mut V {
        self.entries.entry(key).or_insert_with(init)
    }

    /// Removes the value under `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        self.entries.remove(key)
    }

    /// Whether `key` has a value.
    pub fn contains(&self, key: &K) -> bool {
        self.entries.contains_key(key)
    }

    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.entries.iter()
    }

    /// Removes every entry.
    pub fn clear(&mut self) {
        self.entries.clear();
    }

    /// The number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the map is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Cells = (
        ValueState<u32>,
        ListState<String>,
        MapState<(String, u8), f64>,
    );

    #[test]
    fn state_cells_round_trip_through_encode() {
        let mut v = ValueState::default();
        v.update(3u32);
        let mut l = ListState::default();
        l.add("a".to_string());
        l.add("b".to_string());
        let mut m = MapState::default();
        m.put(("k".to_string(), 1u8), 2.5f64);
        let bytes = crate::state::encode(&(&v, &l, &m)).expect("encodes");
        let (v2, l2, m2): Cells = crate::state::decode(&bytes).expect("decodes");
        assert_eq!(v2, v);
        assert_eq!(l2, l);
        assert_eq!(m2.get(&("k".to_string(), 1)), Some(&2.5));
        assert!(crate::state::decode::<ValueState<String>>(&[9, 9]).is_err());
    }
}
