//! # brook-operators
//!
//! Brook's operators, one per file, and the extension traits that put them
//! on streams as methods:
//! - [`StreamExt`]: `map`, `try_map` (or `try_map_with_errors`, which
//!   sends the records it refuses to a side output as [`Failed`]),
//!   `filter`, `flat_map`, `inspect`, `assign_timestamps` (event times and
//!   watermarks; `assign_timestamps_with_rejected` sends the records whose
//!   time was refused to a side output) and `dedup`;
//! - [`KeyedWindowExt`] on keyed streams: event-time [`window`]s with
//!   incremental aggregates or window functions;
//! - [`KeyedProcessExt`] on keyed streams: [`keyed`] process functions with
//!   per-key state and timers;
//! - [`JoinExt`] on keyed streams: [`join`]s of two streams (window,
//!   interval, updating and stream–table joins, and any two-input keyed
//!   logic).
//!
//! Which to use: a closure operator for stateless per-record work; a window
//! for aggregates over time; a keyed process function for per-key logic
//! with state and timers; an [`Operator`](brook_core::Operator) through
//! `Stream::process` for anything else that works batch by batch.

mod alarm;
mod assign_timestamps;
mod dedup;
mod ext;
mod filter;
mod flat_map;
mod inspect;
pub mod join;
pub mod keyed;
mod keyed_map;
mod map;
#[cfg(test)]
mod test_log;
mod try_map;
pub mod window;

pub use assign_timestamps::AssignTimestamps;
pub use dedup::Dedup;
pub use ext::StreamExt;
pub use filter::Filter;
pub use flat_map::FlatMap;
pub use inspect::Inspect;
pub use join::JoinExt;
pub use keyed::KeyedProcessExt;
pub use map::Map;
pub use try_map::{Failed, TryMap, TryMapRouted};
pub use window::KeyedWindowExt;
