//! An operator instance's state in a checkpoint, split so that a
//! checkpoint restores at another parallelism: see [`Snapshot`].

use std::collections::BTreeMap;
use std::hash::Hash;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::partition::{hash_key, instance_for_key_group, key_group};
use crate::state::{decode, encode};

/// What an operator instance checkpoints.
///
/// State comes in two parts, as in Flink:
/// - **keyed state**, one part per [key group](crate::partition): the
///   state of the keys whose hash falls in that group. On restore each key
///   group goes to the instance that owns it at the job's parallelism, the
///   one the hash exchange routes those keys to, whatever the parallelism
///   the checkpoint was taken at;
/// - **instance state**, one part per instance (a watermark, a generator's
///   progress). At the same parallelism each instance gets its own back; at
///   another, every instance gets every old instance's part and merges them
///   (see [`RestoredState::instances`]).
///
/// ```
/// use brook_core::state::{KeyGroups, Snapshot};
/// use std::collections::HashMap;
///
/// let counts: HashMap<String, u64> = [("a".into(), 1), ("b".into(), 2)].into();
/// let mut groups: KeyGroups<Vec<(&String, u64)>> = KeyGroups::default();
/// for (key, count) in &counts {
///     groups.of(key).push((key, *count));
/// }
/// let snapshot = Snapshot::new().keyed(groups)?.instance(&42_i64)?;
/// # let _ = snapshot;
/// # Ok::<(), brook_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    instance: Option<Vec<u8>>,
    /// Encoded state per key group, in group order, each group once.
    key_groups: Vec<(u32, Vec<u8>)>,
}

impl Snapshot {
    /// An empty snapshot.
    pub fn new() -> Self {
        Snapshot::default()
    }

    /// Sets the instance state.
    ///
    /// # Errors
    /// A value whose `Serialize` implementation fails.
    pub fn instance<S: Serialize + ?Sized>(mut self, state: &S) -> Result<Self> {
        self.instance = Some(encode(state)?);
        Ok(self)
    }

    /// Adds keyed state, by key group (replacing what a group had).
    ///
    /// # Errors
    /// A value whose `Serialize` implementation fails.
    pub fn keyed<S: Serialize>(mut self, groups: KeyGroups<S>) -> Result<Self> {
        let mut parts: BTreeMap<u32, Vec<u8>> = self.key_groups.drain(..).collect();
        for (group, state) in groups.0 {
            parts.insert(group, encode(&state)?);
        }
        self.key_groups = parts.into_iter().collect();
        Ok(self)
    }

    /// Encodes the snapshot as a checkpoint's state file.
    pub(crate) fn to_bytes(&self) -> Result<Vec<u8>> {
        encode(self)
    }

    /// Decodes a state file.
    pub(crate) fn from_bytes(bytes: &[u8]) -> Result<Snapshot> {
        decode(bytes)
    }
}

/// Keyed state gathered by key group, for [`Snapshot::keyed`]: `of(key)`
/// is the state of the group that `key` belongs to, created empty.
#[derive(Debug, Clone)]
pub struct KeyGroups<S>(BTreeMap<u32, S>);

impl<S> Default for KeyGroups<S> {
    fn default() -> Self {
        KeyGroups(BTreeMap::new())
    }
}

impl<S: Default> KeyGroups<S> {
    /// The state of the key group of `key` (by the hash the exchange
    /// routes it with, [`hash_key`]).
    pub fn of<K: Hash + ?Sized>(&mut self, key: &K) -> &mut S {
        self.0.entry(key_group(hash_key(key))).or_default()
    }
}

/// The state an operator instance restores: its key groups and instance
/// state (see [`Snapshot`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoredState {
    instances: Vec<Vec<u8>>,
    key_groups: Vec<(u32, Vec<u8>)>,
    rescaled: bool,
}

impl RestoredState {
    /// Whether the checkpoint was taken at another parallelism.
    pub fn is_rescaled(&self) -> bool {
        self.rescaled
    }

    /// The instance states to restore from: at the same parallelism, this
    /// instance's own (none if it had none); at another parallelism, every
    /// old instance's, in instance order, for the operator to merge.
    ///
    /// # Errors
    /// State that is not an encoding of `S` (the operator's type changed).
    pub fn instances<S: DeserializeOwned>(&self) -> Result<Vec<S>> {
        self.instances.iter().map(|b| decode(b)).collect()
    }

    /// The keyed state of every key group this instance owns, one entry
    /// per group that had state, in group order.
    ///
    /// # Errors
    /// State that is not an encoding of `S` (the operator's type changed).
    pub fn keyed<S: DeserializeOwned>(&self) -> Result<Vec<S>> {
        self.key_groups.iter().map(|(_, b)| decode(b)).collect()
    }

    /// Whether there is nothing to restore.
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty() && self.key_groups.is_empty()
    }
}

/// A snapshot restored at the same parallelism, to the instance that took
/// it (for an operator's own tests; a job restores through
/// [`redistribute`]).
impl From<Snapshot> for RestoredState {
    fn from(s: Snapshot) -> Self {
        RestoredState {
            instances: s.instance.into_iter().collect(),
            key_groups: s.key_groups,
            rescaled: false,
        }
    }
}

/// Gives each of `parallelism` instances its state from the snapshots of
/// a checkpoint taken at `snapshots.len()` instances (`None`: an instance
/// without state), as a job restoring from a checkpoint does; an
/// operator's tests use it to check a restore at another parallelism.
///
/// # Errors
/// A key group that two old instances both hold (a snapshot that is not
/// keyed by the exchange's hash).
pub fn redistribute(
    snapshots: Vec<Option<Snapshot>>,
    parallelism: usize,
) -> Result<Vec<RestoredState>> {
    if snapshots.len() == parallelism {
        return Ok(snapshots
            .into_iter()
            .map(|s| RestoredState::from(s.unwrap_or_default()))
            .collect());
    }
    let mut out = vec![
        RestoredState {
            rescaled: true,
            ..RestoredState::default()
        };
        parallelism
    ];
    let mut groups = BTreeMap::new();
    for s in snapshots.into_iter().flatten() {
        if let Some(bytes) = s.instance {
            for r in &mut out {
                r.instances.push(bytes.clone());
            }
        }
        for (group, bytes) in s.key_groups {
            if groups.insert(group, bytes).is_some() {
                return Err(Error::State(format!(
                    "key group {group} is held by two instances"
                )));
            }
        }
    }
    for (group, bytes) in groups {
        out[instance_for_key_group(group, parallelism)]
            .key_groups
            .push((group, bytes));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::partition::instance_for_hash;

    /// Snapshots of a count per key at `p` instances, each key where the
    /// exchange routes it.
    fn counts_at(p: usize, keys: u64) -> Vec<Option<Snapshot>> {
        (0..p)
            .map(|i| {
                let mut groups: KeyGroups<Vec<(u64, u64)>> = KeyGroups::default();
                for k in (0..keys).filter(|k| instance_for_hash(hash_key(k), p) == i) {
                    groups.of(&k).push((k, k * 10));
                }
                Some(
                    Snapshot::new()
                        .keyed(groups)
                        .and_then(|s| s.instance(&(i as u64)))
                        .expect("encodes"),
                )
            })
            .collect()
    }

    #[test]
    fn each_key_lands_where_the_exchange_routes_it_at_any_parallelism() {
        for (from, to) in [(3, 2), (2, 3), (1, 4), (4, 1), (3, 3)] {
            let restored = redistribute(counts_at(from, 1000), to).expect("redistributes");
            let mut seen = 0;
            for (i, r) in restored.iter().enumerate() {
                assert_eq!(r.is_rescaled(), from != to);
                for group in r.keyed::<Vec<(u64, u64)>>().expect("decodes") {
                    for (k, v) in group {
                        assert_eq!(instance_for_hash(hash_key(&k), to), i, "key {k}");
                        assert_eq!(v, k * 10);
                        seen += 1;
                    }
                }
                let instances: Vec<u64> = r.instances().expect("decodes");
                if from == to {
                    assert_eq!(instances, vec![i as u64]);
                } else {
                    assert_eq!(instances, (0..from as u64).collect::<Vec<_>>());
                }
            }
            assert_eq!(seen, 1000, "{from} -> {to}");
        }
    }

    #[test]
    fn a_snapshot_round_trips_through_its_file() {
        let s = counts_at(1, 10).remove(0).expect("state");
        let back = Snapshot::from_bytes(&s.to_bytes().expect("encodes")).expect("decodes");
        assert_eq!(back, s);
    }

    #[test]
    fn a_key_group_held_twice_is_refused() {
        let one = counts_at(1, 10).remove(0);
        let err = redistribute(vec![one.clone(), one], 1).expect_err("refused");
        assert!(err.to_string().contains("held by two instances"), "{err}");
        let err = redistribute(
            counts_at(1, 10)
                .into_iter()
                .chain(counts_at(1, 10))
                .collect(),
            3,
        )
        .expect_err("refused");
        assert!(err.to_string().contains("key group"), "{err}");
    }
}
