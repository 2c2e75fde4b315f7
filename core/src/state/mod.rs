//! Keyed state and timers for stateful operators, and the encoding of
//! operator state for checkpoints.
//!
//! A keyed operator keeps one state value per key. The building blocks here
//! mirror Flink's: [`ValueState`], [`ListState`] and [`MapState`] hold a
//! key's data, and [`TimerQueue`] holds per-key timers in time order. All of
//! them are `serde`-serializable. An operator checkpoints a [`Snapshot`]: its
//! keyed state by key group (so that a checkpoint restores at another
//! parallelism) and its instance state, each encoded with [`encode`]; it
//! gets them back as a [`RestoredState`].

mod snapshot;
mod timers;
mod values;

pub use snapshot::{KeyGroups, RestoredState, Snapshot, redistribute};
pub use timers::TimerQueue;
pub use values::{ListState, MapState, ValueState};

use crate::error::{Error, Result};

/// Encodes operator state for a checkpoint (a compact binary form).
///
/// # Errors
/// A value whose `Serialize` implementation fails.
pub fn encode<S: serde::Serialize + ?Sized>(state: &S) -> Result<Vec<u8>> {
    postcard::to_stdvec(state).map_err(|e| Error::State(format!("encoding state: {e}")))
}

/// Decodes state made by [`encode`].
///
/// # Errors
/// Bytes that are not an encoding of `S`.
pub fn decode<S: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<S> {
    postcard::from_bytes(bytes).map_err(|e| Error::State(format!("decoding state: {e}")))
}
