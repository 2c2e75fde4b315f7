//! The generator's randomness: a counter-based SplitMix64, so that every
//! draw is a pure function of (seed, event index, draw slot) and any event
//! can be made without making the ones before it.

/// SplitMix64's increment (the golden ratio in 64 bits).
const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

/// SplitMix64's output function (Stafford's "mix13"): a bijection of `u64`
/// that spreads every input bit over every output bit.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A uniform `f64` in `[0, 1)` from the top 53 bits of `x`.
pub(crate) fn unit(x: u64) -> f64 {
    (x >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// The draws of one event: draw `j` of event `i` is output `i * SLOTS + j`
/// of a SplitMix64 stream keyed by the seed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EventDraws {
    base: u64,
}

impl EventDraws {
    /// Draw slots per event; an event uses at most this many.
    pub(crate) const SLOTS: u64 = 8;

    /// The draws of event `index` under `key` (see [`key_of`]).
    pub(crate) fn new(key: u64, index: u64) -> Self {
        EventDraws {
            base: key.wrapping_add(index.wrapping_mul(Self::SLOTS).wrapping_mul(GAMMA)),
        }
    }

    /// Draw `slot` (in `0..SLOTS`) as a uniform `f64` in `[0, 1)`.
    pub(crate) fn unit(&self, slot: u64) -> f64 {
        debug_assert!(slot < Self::SLOTS);
        unit(mix64(
            self.base.wrapping_add((slot + 1).wrapping_mul(GAMMA)),
        ))
    }
}

/// The stream key of a seed: the seed mixed, so that nearby seeds give
/// unrelated streams.
pub(crate) fn key_of(seed: u64) -> u64 {
    mix64(seed ^ 0x6c6f_6773_2d67_656e) // "logs-gen"
}

/// A plain sequential SplitMix64, for the message pool.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64(u64);

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    /// The next uniform `f64` in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(GAMMA);
        unit(mix64(self.0))
    }

    /// A uniform index in `0..n`, as `floor(unit * n)` (gen_logs.py's way).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((self.unit() * n as f64) as usize).min(n.saturating_sub(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_splitmix_outputs() {
        // The reference SplitMix64 seeded with 1234567 (Vigna's splitmix64.c).
        let mut z = 1234567u64;
        let mut next = || {
            z = z.wrapping_add(GAMMA);
            mix64(z)
        };
        assert_eq!(next(), 6457827717110365317);
        assert_eq!(next(), 3203168211198807973);
    }

    #[test]
    fn units_are_in_range() {
        assert_eq!(unit(0), 0.0);
        assert!(unit(u64::MAX) < 1.0);
        let d = EventDraws::new(key_of(1), 42);
        for s in 0..EventDraws::SLOTS {
            assert!((0.0..1.0).contains(&d.unit(s)));
        }
    }
}
