//! The Nexmark benchmark: an online auction's events (persons, auctions,
//! bids), a deterministic source of them, the standard queries as Brook
//! pipelines, and an oracle that computes the same queries with DataFusion
//! SQL over the events written as Parquet.
//!
//! # Events and their source
//! [`Event`] is a [`Person`], an [`Auction`] or a [`Bid`] with Nexmark's
//! standard fields (times in epoch milliseconds, ids and prices `i64`).
//! [`NexmarkSource`] makes them: event `i` is a pure function of the
//! [`NexmarkConfig`] and `i`, from a fixed base time, so a position is an
//! index; chunks of indexes are dealt round-robin to parallel instances as
//! [`LogGenerator`](crate::LogGenerator) deals them, and the record's
//! event time is the event's `date_time`.
//!
//! # The generator: our own, after nexmark-rs
//! The `nexmark` crate 0.2 (risingwavelabs) makes 3.3 to 3.7 M events/s
//! on one core in release builds (measured with its `EventGenerator` on
//! this project's shared 2-core machine, all kinds mixed, 2 M events): it
//! formats every string, generates a random `extra`
//! of about 100 bytes per event, and seeds a fresh `SmallRng` per event.
//! Its base time defaults to the wall clock and its event times go
//! through `f32`, which loses milliseconds after some millions of events.
//! A generator that slow would bound every query below the issue's goal of
//! 3 M events/s per core, so this module has its own (`generate.rs`),
//! ported from the crate (and from Beam's Nexmark, which the crate ports;
//! both Apache-2.0): the same proportions (1 person, 3 auctions, 46 bids
//! per 50 events), id assignment, hot sellers, bidders and auctions, auction
//! lengths, categories, log-uniform prices, hot and random channels and
//! URLs, the same name, city and state tables (Beam's capitalized ones),
//! and a fixed event rate; but a SplitMix64 stream per event, integer
//! times, empty `extra`, and text borrowed from static tables ([`Text`] is a
//! `Cow<'static, str>`), so a bid allocates nothing. It makes about
//! 20 M events/s on one core (20.6 M measured with `nexmark --query raw
//! --events 10000000`, release build, same machine), and a job that only
//! sources them into a counting sink about 19 M (`--query gen`).
//!
//! # Queries
//! [`Query`] names the queries Brook runs as pipelines ([`queries`]: q0,
//! q1, q2, q5, q7); [`Query::build`] puts one on a stream of events and
//! hands its typed rows to a [`QueryOutput`], which attaches the sink.
//! Each row type is a [`QueryRow`]: it converts to a normalized [`Row`] of
//! [`Value`]s, in the column order of the query's SQL.
//!
//! The windowed queries assign timestamps right after the source, with
//! [`watermarks`]: event times never decrease within an instance, so no
//! event is ever late, at any parallelism (see [`NexmarkSource`]).
//!
//! # The oracle
//! [`oracle::write_parquet`] writes events as `person`, `auction` and
//! `bid` Parquet files; [`oracle::answer`] runs a query's standard SQL
//! (adapted to DataFusion: [`oracle`] says how) over them and returns its
//! rows normalized and sorted; [`compare`] checks Brook's rows against
//! them, with a readable diff ([`Mismatch`]). The SQL of all eight queries
//! (q0–q5, q7, q8) is there, also of those Brook does not run yet.
//!
//! # Examples
//! q2 on 20,000 events, checked against the oracle:
//! ```
//! use brook_connectors::CollectSink;
//! use brook_core::prelude::*;
//! use brook_operators::StreamExt;
//! use brook_workload::nexmark::{self, NexmarkSource, Query, QueryOutput, QueryRow, Row};
//!
//! struct Collect(brook_connectors::Collected<Row>);
//! impl QueryOutput for Collect {
//!     fn attach<R: QueryRow>(&mut self, rows: &Stream<R>) {
//!         let sink = CollectSink::new();
//!         self.0 = sink.handle();
//!         rows.map("rows", |r: R| r.to_row()).sink("collect", sink);
//!     }
//! }
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let source = NexmarkSource::new(20_000).events_per_second(500);
//! let flow = Dataflow::new("q2");
//! let mut out = Collect(CollectSink::new().handle());
//! Query::Q2.build(&flow.source("nexmark", source.clone()), &mut out);
//! flow.build()?.run(CancellationToken::new()).await?;
//!
//! let dir = tempfile::tempdir()?;
//! let events: Vec<_> = source.iter().collect();
//! nexmark::oracle::write_parquet(&events, dir.path())?;
//! let want = nexmark::oracle::answer(dir.path(), Query::Q2.sql()).await?;
//! let got = nexmark::sort_rows(out.0.values());
//! assert!(!want.is_empty());
//! nexmark::compare(&want, &got)?;
//! # Ok::<(), Box<dyn std::error::Error>>(()) }).unwrap();
//! ```

mod config;
mod event;
mod generate;
pub mod joins;
pub mod oracle;
pub mod queries;
mod query;
mod source;
#[cfg(test)]
mod tests;
mod value;

pub use config::{DEFAULT_BASE_TIME_MS, NexmarkConfig};
pub use event::{Auction, Bid, Event, Person, Text};
pub use joins::{Q3Row, Q4Row, Q8Row, q3, q4, q8};
pub use queries::{Q1Row, Q2Row, Q5Row, Q7Row, q0, q1, q2, q5, q7};
pub use query::{Query, QueryOutput};
pub use source::{
    DEFAULT_CHUNK_EVENTS, MAX_OUT_OF_ORDERNESS, NexmarkEvents, NexmarkSource, watermarks,
};
pub use value::{Mismatch, QueryRow, Row, Value, compare, latest, sort_rows};
