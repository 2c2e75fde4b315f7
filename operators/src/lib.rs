//! # brook-operators
//!
//! Brook's operators, one per file, and the extension traits that put them
//! on streams as methods:
//! - [`StreamExt`]: `map`, `try_map`, `filter`, `flat_map`, `inspect`,
//!   `assign_timestamps` (event times and watermarks; with
//!   `assign_timestamps_with_rejected`, a [`TimestampedStream`] that also
//!   gives the records whose time was refused) and `dedup`;
//! - [`KeyedWindowExt`] on keyed streams: event-time [`window`]s with
//!   incremental aggregates or window functions;
//! - [`KeyedProcessExt`] on keyed streams: [`keyed`] process functions with
//!   per-key state and timers.
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
pub mod keyed;
mod keyed_map;
mod map;
#[cfg(test)]
mod test_log;
mod try_map;
pub mod window;

pub use assign_timestamps::{AssignTimestamps, TimestampedStream};
pub use dedup::Dedup;
pub use ext::StreamExt;
pub use filter::Filter;
pub use flat_map::FlatMap;
pub use inspect::Inspect;
pub use keyed::KeyedProcessExt;
pub use map::Map;
pub use try_map::TryMap;
pub use window::KeyedWindowExt;
