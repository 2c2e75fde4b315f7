//! The Nexmark benchmark: an online auction's events (persons, auctions,
//! bids), a deterministic source of them, the standard queries as Brook
//! pipelines, and an oracle that computes the same queries with DataFusion
//! SQL over the events written as Parquet.
//!
//! Docs to come.

mod config;
mod event;
mod generate;
pub mod oracle;
pub mod queries;
mod query;
mod source;
#[cfg(test)]
mod tests;
mod value;

pub use config::{DEFAULT_BASE_TIME_MS, NexmarkConfig};
pub use event::{Auction, Bid, Event, Person, Text};
pub use queries::{Q1Row, Q2Row, Q5Row, Q7Row, q0, q1, q2, q5, q7};
pub use query::{Query, QueryOutput};
pub use source::{
    DEFAULT_CHUNK_EVENTS, MAX_OUT_OF_ORDERNESS, NexmarkEvents, NexmarkSource, watermarks,
};
pub use value::{Mismatch, QueryRow, Row, Value, compare, sort_rows};
