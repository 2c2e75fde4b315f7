//! How keys map to parallel instances.
//!
//! A key is hashed with a fixed hash (the same in every process and every
//! run, so state in checkpoints lands where it is looked for), mapped to one
//! of [`KEY_GROUPS`] key groups, and key groups are spread over instances in
//! contiguous ranges, as Flink does. Rescaling later moves whole key groups.

use std::hash::{Hash, Hasher};

/// The number of key groups: the most parallel instances a keyed node can have.
pub const KEY_GROUPS: u32 = 4096;

/// A fixed, fast hash of a key.
pub fn hash_key<K: Hash + ?Sized>(key: &K) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    key.hash(&mut h);
    mix(h.finish())
}

/// The key group of a key hash.
pub fn key_group(hash: u64) -> u32 {
    (hash % KEY_GROUPS as u64) as u32
}

/// The instance, out of `parallelism`, that owns a key group.
pub fn instance_for_key_group(group: u32, parallelism: usize) -> usize {
    (group as usize * parallelism) / KEY_GROUPS as usize
}

/// The instance, out of `parallelism`, that owns a key hash.
pub fn instance_for_hash(hash: u64, parallelism: usize) -> usize {
    instance_for_key_group(key_group(hash), parallelism)
}

/// The splitmix64 finaliser: spreads every input bit over every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instances_cover_every_key_group_in_order() {
        for p in [1, 2, 3, 4, 7] {
            let owners: Vec<usize> = (0..KEY_GROUPS)
                .map(|g| instance_for_key_group(g, p))
                .collect();
            assert!(owners.windows(2).all(|w| w[0] <= w[1]));
            assert_eq!(owners[0], 0);
            assert_eq!(*owners.last().unwrap_or(&0), p - 1);
        }
    }

    #[test]
    fn keys_spread_evenly() {
        let p = 4;
        let mut counts = [0usize; 4];
        for i in 0..40_000u32 {
            counts[instance_for_hash(hash_key(&format!("svc-{i}")), p)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (8_000..12_000).contains(&c)),
            "{counts:?}"
        );
    }
}
