//! Joins of two keyed streams, by event time.
//!
//! Key both streams by the same key type, `connect` them, and pick a join:
//!
//! | join | a left and a right record join when | state held until |
//! |---|---|---|
//! | [`window_join`](ConnectedStreams::window_join) | they are in the same window (tumbling, sliding or session) | the window fires |
//! | [`interval_join`](ConnectedStreams::interval_join) | `left.ts + lower <= right.ts <= left.ts + upper` | the watermark passes the interval |
//! | [`join`](ConnectedStreams::join) | always (updating join), or within the time-to-live of each other | the time-to-live, or forever |
//! | [`join_table`](ConnectedStreams::join_table) | the right record is the latest version of the key at the left record's time (stream–table join) | a newer version is older than the watermark |
//!
//! ```
//! use std::time::Duration;
//! use brook_core::{Dataflow, Stream};
//! use brook_operators::join::{Interval, JoinExt};
//!
//! # fn build(clicks: Stream<(u64, i64)>, views: Stream<(u64, String)>) {
//! // A click joins the views of the same user up to 10 s before it.
//! let joined: Stream<(u64, String)> = clicks
//!     .key_by(|c| c.0)
//!     .connect(&views.key_by(|v| v.0))
//!     .interval_join(
//!         "clicks-after-views",
//!         Interval::new(Duration::from_secs(10), Duration::ZERO),
//!         |user, _click, view| (*user, view.1.clone()),
//!     );
//! # }
//! ```
//!
//! # How a join runs
//! Each input's records are tagged with their side ([`JoinInput`]) and
//! hash-partitioned by key, so all records of a key, from both inputs,
//! reach the same instance of one join node, at any parallelism. The node's
//! input watermark is the lower of its inputs' watermarks; its checkpoint
//! barriers are aligned across both. State is kept per key, checkpointed by
//! key group like every keyed operator's (so a job restores at another
//! parallelism), and freed by event-time timers as the watermark passes.
//!
//! # Late records
//! The window, interval and updating-with-TTL joins place records by their
//! event time: a record without one (`NO_TIMESTAMP`, no
//! `assign_timestamps` upstream) belongs to no window and no interval,
//! and counts as late. A record that arrives after the watermark has passed the time when it
//! could still join (its windows fired; its interval's partners are gone)
//! is late: it is counted in the node's `late` counter and, when asked for
//! with [`ConnectedStreams::side_output_late_data`], sent to a side output
//! as a [`JoinInput`]. It never joins, so the results do not depend on how
//! fast each input was read.
//!
//! # Any other two-input logic
//! [`ConnectedStreams::process`] runs a
//! [`keyed::KeyedProcessFunction`](crate::keyed::KeyedProcessFunction) on the
//! tagged records, with per-key state and timers: Flink's
//! `KeyedCoProcessFunction`.

mod interval;
mod table;
#[cfg(test)]
mod tests;
mod window;

use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use brook_core::{Data, KeySelector, KeyedStream, OutputTag, Stream};

use crate::StreamExt;
use crate::keyed::KeyedProcessFunction;
use crate::keyed::operator::KeyedProcess;
use crate::window::{Window, WindowAssigner, WindowKey};

pub use interval::Interval;

use interval::IntervalJoin;
use table::TableJoin;
use window::WindowJoin;

/// A record of one of a join's two inputs.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JoinInput<L, R> {
    /// A record of the left input (the stream `connect` was called on).
    Left(L),
    /// A record of the right input (`connect`'s argument).
    Right(R),
}

/// What join state holds of a record: serializable, for checkpoints.
pub trait JoinValue: Data + Serialize + DeserializeOwned {}
impl<T: Data + Serialize + DeserializeOwned> JoinValue for T {}

/// `connect` on keyed streams: the first step of every join.
pub trait JoinExt<L: Data, K: WindowKey> {
    /// Pairs this stream (the left input) with `right`, keyed by the same
    /// key type, to join them.
    fn connect<R: Data>(&self, right: &KeyedStream<R, K>) -> ConnectedStreams<L, R, K>;
}

impl<L: Data, K: WindowKey> JoinExt<L, K> for KeyedStream<L, K> {
    fn connect<R: Data>(&self, right: &KeyedStream<R, K>) -> ConnectedStreams<L, R, K> {
        ConnectedStreams {
            left: self.clone(),
            right: right.clone(),
            late: None,
        }
    }
}

/// Two keyed streams to join: from [`JoinExt::connect`].
pub struct ConnectedStreams<L, R, K> {
    left: KeyedStream<L, K>,
    right: KeyedStream<R, K>,
    late: Option<OutputTag<JoinInput<L, R>>>,
}

impl<L: Data, R: Data, K: WindowKey> ConnectedStreams<L, R, K> {
    /// Sends late records (see [the module docs](self)) to the side output
    /// `tag` of the join node; get them with
    /// [`Stream::side_output`](brook_core::Stream::side_output) on the
    /// join's results. They are counted in the node's `late` counter either
    /// way.
    pub fn side_output_late_data(mut self, tag: OutputTag<JoinInput<L, R>>) -> Self {
        self.late = Some(tag);
        self
    }

    /// Runs `f` on the records of both inputs, tagged with their side, with
    /// per-key state and timers: all records of a key, from either input,
    /// reach the same call's key. Flink's `KeyedCoProcessFunction`.
    pub fn process<Out: Data, F: KeyedProcessFunction<K, JoinInput<L, R>, Out>>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<Out> {
        let name = name.into();
        let kl = self.left.key_selector();
        let kr = self.right.key_selector();
        let key: KeySelector<JoinInput<L, R>, K> = Arc::new(move |e: &JoinInput<L, R>| match e {
            JoinInput::Left(l) => kl(l),
            JoinInput::Right(r) => kr(r),
        });
        let tag = |side: &str| format!("{name}.{side}");
        let (kl, kr) = (key.clone(), key.clone());
        let left = self
            .left
            .unkeyed()
            .map(tag("left"), JoinInput::Left)
            .key_by(move |e| kl(e));
        let right = self
            .right
            .unkeyed()
            .map(tag("right"), JoinInput::Right)
            .key_by(move |e| kr(e));
        left.stream()
            .union_process(name, &[right.stream()], KeyedProcess::new(key, f))
    }

    /// Joins the records of a key that fall in the same window: for every
    /// window of every key, `f` is called on each (left, right) pair once
    /// the watermark passes the window's end, and its results carry the
    /// window's last millisecond as event time. Flink's window join: an
    /// inner join, so a window with records on one side only emits
    /// nothing. With session windows, sessions merge across both inputs.
    ///
    /// State: every record of each open window, until it fires.
    pub fn window_join<W, Out, F>(&self, name: impl Into<String>, assigner: W, f: F) -> Stream<Out>
    where
        W: WindowAssigner,
        L: JoinValue,
        R: JoinValue,
        Out: Data,
        F: Fn(&K, &L, &R) -> Out + Clone + Send + 'static,
    {
        self.window_cogroup(name, assigner, move |k, _w, ls, rs, out| {
            for l in ls {
                for r in rs {
                    out.push(f(k, l, r));
                }
            }
        })
    }

    /// Calls `f` once per key and window that has records, with all the
    /// window's left and right records (either may be empty), when the
    /// watermark passes the window's end; `f` pushes its results, which
    /// carry the window's last millisecond as event time. Flink's
    /// `coGroup`: outer joins, semi joins ("keys present on both sides"),
    /// and aggregates over both inputs.
    pub fn window_cogroup<W, Out, F>(
        &self,
        name: impl Into<String>,
        assigner: W,
        f: F,
    ) -> Stream<Out>
    where
        W: WindowAssigner,
        L: JoinValue,
        R: JoinValue,
        Out: Data,
        F: FnMut(&K, Window, &[L], &[R], &mut Vec<Out>) + Clone + Send + 'static,
    {
        self.process(name, WindowJoin::new(assigner, f, self.late))
    }

    /// Joins a left record with the right records of its key whose event
    /// time lies in its [`Interval`]: `left.ts + lower <= right.ts <=
    /// left.ts + upper`. Each pair is emitted as soon as its second record
    /// arrives, with the later of the two event times. Flink's interval
    /// join.
    ///
    /// State: each record until the watermark passes the last time a
    /// partner could have (for a left record `ts + upper`, for a right one
    /// `ts - lower`).
    pub fn interval_join<Out, F>(
        &self,
        name: impl Into<String>,
        interval: Interval,
        f: F,
    ) -> Stream<Out>
    where
        L: JoinValue,
        R: JoinValue,
        Out: Data,
        F: Fn(&K, &L, &R) -> Out + Clone + Send + 'static,
    {
        self.process(name, IntervalJoin::bounded(interval, f, self.late))
    }

    /// The updating join, without windows (a SQL inner join of two
    /// insert-only streams): both inputs are kept as state, and each new
    /// record joins every record of its key already kept from the other
    /// input. Each pair is emitted once, when its second record arrives,
    /// with the later of the two event times.
    ///
    /// `ttl` bounds the state: with `Some(ttl)`, a record is kept until
    /// the watermark passes its event time plus `ttl`, and two records join
    /// only when less than `ttl` apart in event time. Time-to-live is in
    /// event time, not the wall clock (as Flink's `table.exec.state.ttl`
    /// is), so results do not depend on how fast the inputs were read.
    /// With `None`, state grows with the number of records: choose it only
    /// for inputs whose records per key stay few.
    pub fn join<Out, F>(&self, name: impl Into<String>, ttl: Option<Duration>, f: F) -> Stream<Out>
    where
        L: JoinValue,
        R: JoinValue,
        Out: Data,
        F: Fn(&K, &L, &R) -> Out + Clone + Send + 'static,
    {
        self.process(name, IntervalJoin::updating(ttl, f, self.late))
    }

    /// The stream–table join (enrichment), as Kafka Streams' KStream–KTable
    /// join: the right input is a table's changelog (a compacted topic, a
    /// file, another stream), and each left record joins the latest
    /// version of its key's row at the left record's event time. `f` gets
    /// that row, or `None` when the key has none yet, and returns the
    /// result to emit (`None` for nothing: an inner join returns `None`
    /// when it gets `None`). Results carry the left record's event time.
    ///
    /// Left records wait until the watermark reaches their event time, so
    /// that every table update up to that time has arrived: the result is
    /// the same whatever the order the inputs were read in (Flink's
    /// event-time temporal join). A right input without event times
    /// (`NO_TIMESTAMP`) is a table valid from the beginning of time; a left
    /// record without one joins the table as it stands when the record
    /// arrives (Kafka Streams' order), since it has no time to wait for.
    /// The table's watermark must advance for timed records to emit: a
    /// table that receives no more updates must end, or be marked idle.
    ///
    /// State: per key, the versions newer than the watermark and the latest
    /// older one, and the left records waiting for the watermark.
    pub fn join_table<Out, F>(&self, name: impl Into<String>, f: F) -> Stream<Out>
    where
        L: JoinValue,
        R: JoinValue,
        Out: Data,
        F: Fn(&K, &L, Option<&R>) -> Option<Out> + Clone + Send + 'static,
    {
        self.process(name, TableJoin::new(f, self.late))
    }
}

/// Counts a late record and sends it to the late output, if any.
fn late<K, S, L, R, Out>(
    ctx: &mut crate::keyed::KeyedContext<'_, K, S, Out>,
    tag: Option<&OutputTag<JoinInput<L, R>>>,
    value: JoinInput<L, R>,
) where
    K: std::hash::Hash + Eq + Clone,
    S: Default,
    L: Send + 'static,
    R: Send + 'static,
{
    ctx.metrics().add_late(1);
    if let Some(tag) = tag {
        ctx.emit_side(tag, value);
    }
}
