//! # Brook
//!
//! A stream processing framework: typed dataflows over files, Kafka and
//! Parquet, run as one process that uses every core.
//!
//! ```
//! use brook::prelude::*;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let flow = Dataflow::new("squares");
//! let out = CollectSink::new();
//! let squares = out.handle();
//! flow.source("numbers", MemorySource::new((1..=10u64).collect()))
//!     .map("square", |n| n * n)
//!     .filter("odd", |n| n % 2 == 1)
//!     .sink("collect", out);
//! flow.build()?.run(CancellationToken::new()).await?;
//! let mut got = squares.values();
//! got.sort();
//! assert_eq!(got, vec![1, 9, 25, 49, 81]);
//! # Ok::<(), brook::Error>(()) }).unwrap();
//! ```

#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

#[cfg(feature = "admin")]
pub mod admin;
#[cfg(feature = "cli")]
pub mod job;
mod run;
#[cfg(feature = "sql")]
pub mod sql;

pub use brook_connectors as connectors;
pub use brook_connectors::codec;
pub use brook_core as core;
pub use brook_core::{Error, Result};
#[cfg(feature = "kafka")]
pub use brook_kafka as kafka;
pub use brook_operators as operators;
#[cfg(feature = "parquet")]
pub use brook_parquet as parquet;
pub use run::{RunOutcome, run_until_ctrl_c, run_until_signal};

/// Everything a pipeline author needs, in one import.
pub mod prelude {
    pub use brook_connectors::file::*;
    pub use brook_connectors::{CollectSink, Collected, MemorySource, StdoutSink};
    pub use brook_core::prelude::*;
    pub use brook_core::state::{ListState, MapState, ValueState};
    pub use brook_operators::join::{Interval, JoinExt, JoinInput};
    pub use brook_operators::keyed::{
        KeyedContext, KeyedProcessExt, KeyedProcessFunction, TimeDomain, Timer,
    };
    pub use brook_operators::window::{
        AggregateExt, AggregateFunction, Avg, Count, KeyedWindowExt, Max, Min, Session, Sliding,
        Sum, Tumbling, Window, WindowResult,
    };
    pub use brook_operators::{Dedup, StreamExt};
    #[cfg(feature = "parquet")]
    pub use brook_parquet::ParquetSink;
}
