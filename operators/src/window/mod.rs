//! Event-time windows on keyed streams.
//!
//! ```
//! use std::time::Duration;
//! use brook_operators::window::{Count, Max, KeyedWindowExt, Tumbling};
//! # use brook_core::prelude::*;
//! # fn build(requests: Stream<(String, u64)>) {
//! let per_minute = requests
//!     .key_by(|(user, _)| user.clone())
//!     .window(Tumbling::of(Duration::from_secs(60)))
//!     .aggregate("per-minute", (Count, Max::of(|(_, bytes): &(String, u64)| *bytes)));
//! # }
//! ```
//!
//! - **Assigners**: [`Tumbling`], [`Sliding`] (hopping) and [`Session`]
//!   windows, by event time.
//! - **Computation**: [`WindowedStream::aggregate`] folds records into an
//!   [`AggregateFunction`] as they arrive (built-ins [`Count`], [`Sum`],
//!   [`Min`], [`Max`], [`Avg`]; tuples compute several in one pass;
//!   [`AggregateExt::filter`] and [`AggregateExt::map_result`] adapt them);
//!   [`WindowedStream::process`] keeps the records for a
//!   [`ProcessWindowFunction`].
//! - **Firing**: a window `[start, end)` fires once the watermark reaches
//!   `end - 1`; results carry the key and window and have `end - 1` as event
//!   time. End of input fires every window.
//! - **Lateness**: with [`WindowedStream::allowed_lateness`], a window's
//!   state stays that much longer and a late record updates it and fires
//!   it again. A record later than that is counted in the node's `late`
//!   counter and, with [`WindowedStream::side_output_late_data`], goes to
//!   that side output of the window node; it is never dropped silently. When late records reach 1 % of the node's input
//!   (at least 100 of them while input flows, or 10,000 whatever their
//!   share), the node warns once, naming itself and the counts.
//! - **Range**: window bounds are computed without overflow. Near the ends
//!   of the `i64` range a window is cut at `i64::MIN` or `i64::MAX` (still
//!   `start < end`, still holding its records); a record at `i64::MAX`, the
//!   end-of-input watermark, fits no window and is late.
//! - **State**: panes, accumulators and timers are `serde`-serializable and
//!   snapshot through [`Operator::snapshot`](brook_core::Operator::snapshot).
//! - **Nodes**: a window named `stats` is one node, `stats`: `aggregate`
//!   and `process` return its stream, so its parallelism and chaining are
//!   set on it, and its late records are its side output (with
//!   [`WindowedStream::side_output_late_data`]).

mod aggregate;
mod assigner;
mod local;
mod logic;
mod operator;
mod stream;
#[cfg(test)]
mod tests;

pub use aggregate::{
    AggregateExt, AggregateFunction, Avg, Count, Filtered, MapResult, Max, Min, Sum, Summable,
};
pub use assigner::{Session, Sliding, Tumbling, Window, WindowAssigner};
pub use logic::{ProcessWindowFunction, WindowResult};
pub use operator::WindowKey;
pub use stream::{KeyedWindowExt, WindowedStream};
