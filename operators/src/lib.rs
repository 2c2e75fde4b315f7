//! # brook-operators
//!
//! Brook's operators, one per file, and [`StreamExt`], which puts them on
//! streams as methods: `map`, `try_map`, `filter`, `flat_map`, `inspect`.
//!
//! Which to use: a closure operator for stateless per-record work; an
//! [`Operator`](brook_core::Operator) through `Stream::process` when the
//! logic keeps state across batches or acts on watermarks and end of input.

mod assign_timestamps;
mod dedup;
mod ext;
mod filter;
mod flat_map;
mod inspect;
pub mod keyed;
mod map;
mod try_map;
pub mod window;

pub use assign_timestamps::{AssignTimestamps, DEFAULT_WATERMARK_INTERVAL};
pub use dedup::Dedup;
pub use ext::StreamExt;
pub use filter::Filter;
pub use flat_map::FlatMap;
pub use inspect::Inspect;
pub use keyed::KeyedProcessExt;
pub use map::Map;
pub use try_map::TryMap;
pub use window::KeyedWindowExt;
