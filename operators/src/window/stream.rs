//! The builder side of windows: `key_by(..).window(..).aggregate(..)`.

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use brook_core::{Data, KeyedStream, OutputTag, Stream};

use super::aggregate::AggregateFunction;
use super::assigner::WindowAssigner;
use super::local::{MergePartials, Partial, PreAggregate};
use super::logic::{Aggregate, Process, ProcessWindowFunction, WindowResult};
use super::operator::{WindowKey, WindowOperator};

/// Windows on keyed streams.
pub trait KeyedWindowExt<T: Data, K: WindowKey> {
    /// Groups each key's records into event-time windows.
    ///
    /// Records need event times (from the source or `assign_timestamps`)
    /// and watermarks: a window fires once the watermark passes its end.
    fn window<W: WindowAssigner>(&self, assigner: W) -> WindowedStream<T, K, W>;
}

impl<T: Data, K: WindowKey> KeyedWindowExt<T, K> for KeyedStream<T, K> {
    fn window<W: WindowAssigner>(&self, assigner: W) -> WindowedStream<T, K, W> {
        WindowedStream {
            stream: self.clone(),
            assigner,
            lateness: Duration::ZERO,
            late: None,
        }
    }
}

/// A keyed stream grouped into windows, waiting for what to compute.
pub struct WindowedStream<T, K, W> {
    stream: KeyedStream<T, K>,
    assigner: W,
    lateness: Duration,
    late: Option<OutputTag<T>>,
}

impl<T: Data, K: WindowKey, W: WindowAssigner> WindowedStream<T, K, W> {
    /// Keeps each window's state for `lateness` after it fired: a record
    /// that arrives in that time updates the window, which fires again with
    /// the new result. Records later than that are late.
    /// The default is zero: each window fires exactly once.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    /// Sends the late records (past their windows' allowed lateness) to the
    /// side output `tag` of the window node, as Flink's
    /// `sideOutputLateData`: get them with
    /// [`Stream::side_output`](brook_core::Stream::side_output) on the
    /// window's results. Late records are counted in the node's `late`
    /// counter either way; without this they go no further.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::{Dataflow, OutputTag, Stream};
    /// use brook_operators::window::{Count, KeyedWindowExt, Tumbling};
    ///
    /// const LATE: OutputTag<(String, i64)> = OutputTag::new("late");
    /// # fn build(events: Stream<(String, i64)>) {
    /// let counts = events
    ///     .key_by(|e| e.0.clone())
    ///     .window(Tumbling::of(Duration::from_secs(10)))
    ///     .side_output_late_data(LATE)
    ///     .aggregate("counts", Count);
    /// let late: Stream<(String, i64)> = counts.side_output(&LATE);
    /// # }
    /// ```
    pub fn side_output_late_data(mut self, tag: OutputTag<T>) -> Self {
        self.late = Some(tag);
        self
    }

    /// Folds each window with an incremental aggregate; emits one
    /// [`WindowResult`] (key, window, result) per key and window, with the
    /// window's last millisecond as its event time. The returned stream is
    /// the window node's: its parallelism, chaining and side outputs are
    /// the window's.
    ///
    /// Tumbling windows without allowed lateness or a late side output
    /// aggregate in two phases: a node `<name>.local`, at the parallelism
    /// of the node before and chained to it, folds the records into one
    /// partial accumulator per key and window (with
    /// [`AggregateFunction::merge`]) and sends them on ahead of each
    /// watermark, checkpoint barrier and the end of input; only the
    /// partials cross the key exchange to the window node, which merges
    /// them. The results are the same; the window node's `records_in`
    /// counts partials, and its `late` counter still counts records.
    pub fn aggregate<A: AggregateFunction<T>>(
        self,
        name: impl Into<String>,
        agg: A,
    ) -> Stream<WindowResult<K, A::Output>> {
        let name = name.into();
        if self.assigner.is_single() && self.lateness.is_zero() && self.late.is_none() {
            let local = PreAggregate::new(
                self.stream.key_selector(),
                self.assigner.clone(),
                agg.clone(),
            );
            let partials = self
                .stream
                .unkeyed()
                .process_forward(format!("{name}.local"), local)
                .key_by(|p: &Partial<K, A::Acc>| p.key.clone());
            let op = WindowOperator::new(
                partials.key_selector(),
                self.assigner,
                0,
                MergePartials::new(agg),
                None,
            );
            return partials.process(name, op);
        }
        self.build(name, Aggregate(agg))
    }

    /// Keeps each window's records and calls `f` on all of them when it
    /// fires (Flink's `ProcessWindowFunction`). Holds every record until its
    /// window fires; prefer [`WindowedStream::aggregate`] when an
    /// incremental aggregate can do.
    pub fn process<O: Data, F>(self, name: impl Into<String>, f: F) -> Stream<O>
    where
        T: Serialize + DeserializeOwned,
        F: ProcessWindowFunction<K, T, O>,
    {
        self.build(name.into(), Process { f, buf: Vec::new() })
    }

    fn build<L: super::logic::WindowLogic<K, T>>(self, name: String, logic: L) -> Stream<L::Out> {
        let lateness = i64::try_from(self.lateness.as_millis()).unwrap_or(i64::MAX);
        let key = self.stream.key_selector();
        let op = WindowOperator::new(key, self.assigner, lateness, logic, self.late);
        self.stream.process(name, op)
    }
}
