//! In-memory connectors, for tests and examples.

mod sink;
mod source;

pub use sink::{CollectSink, CollectWriter, Collected};
pub use source::{MemorySource, MemorySplit};
