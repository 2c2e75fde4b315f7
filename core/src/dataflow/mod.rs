//! The builder: [`Dataflow`], [`Stream`] and [`KeyedStream`].

mod builder;
mod config;
pub(crate) mod graph;
mod stream;

pub use builder::Dataflow;
pub use config::{DEFAULT_BATCH_SIZE, DEFAULT_CHANNEL_CAPACITY, JobConfig, MAX_PARALLELISM};
pub use stream::{KeySelector, KeyedStream, SinkHandle, Stream};
