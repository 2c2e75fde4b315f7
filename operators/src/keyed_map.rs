//! Per-key maps on the hot path: look a key up without cloning it, and
//! clone it only when it is new.

use std::hash::Hash;

use rustc_hash::FxHashMap;

/// The value under `key`, inserted with `Default` (and a clone of the key)
/// if missing.
pub(crate) fn get_or_default<'m, K, V>(map: &'m mut FxHashMap<K, V>, key: &K) -> &'m mut V
where
    K: Hash + Eq + Clone,
    V: Default,
{
    if !map.contains_key(key) {
        map.insert(key.clone(), V::default());
    }
    map.get_mut(key)
        .expect("the key is in the map: it was there or was just inserted")
}
