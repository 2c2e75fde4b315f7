//! [`StreamExt`]: the closure operators as methods on streams.

use std::hash::Hash;
use std::time::Duration;

use brook_core::{BoxError, Data, EventTime, Stream, Watermarks};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::assign_timestamps::SplitTimestamps;
use crate::{AssignTimestamps, Dedup, Filter, FlatMap, Inspect, Map, TimestampedStream, TryMap};

/// The closure operators as methods on [`Stream`] (and, through deref, on
/// `KeyedStream`, where they run partitioned by key).
///
/// Each instance of a node gets its own clone of the closure, so a closure
/// may keep per-instance state in what it captures.
pub trait StreamExt<T: Data> {
    /// One output per input.
    fn map<U: Data, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> U + Clone + Send + 'static;

    /// One output per input, or an error that fails the job naming this node.
    fn try_map<U: Data, E: Into<BoxError>, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> std::result::Result<U, E> + Clone + Send + 'static;

    /// The inputs the predicate accepts.
    fn filter<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + 'static;

    /// Any number of outputs per input.
    fn flat_map<U: Data, I: IntoIterator<Item = U>, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<U>
    where
        F: FnMut(T) -> I + Clone + Send + 'static;

    /// Sees every input and passes it on unchanged.
    fn inspect<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) + Clone + Send + 'static;

    /// Sets each record's event time to `extract(&value)` (milliseconds
    /// since the epoch) and generates watermarks by `strategy`, in a node
    /// named `<upstream>.timestamps` chained to this stream, so each source
    /// instance makes its own. See [`AssignTimestamps`].
    ///
    /// A record whose time is refused (`i64::MIN`, `i64::MAX`, or past the
    /// strategy's [`Watermarks::with_max_ahead`] bound) is counted in the
    /// node's `rejected` counter and dropped; to keep those records, use
    /// [`StreamExt::assign_timestamps_with_rejected`].
    fn assign_timestamps<F>(&self, extract: F, strategy: Watermarks) -> Stream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + 'static;

    /// As [`StreamExt::assign_timestamps`], and the records whose time was
    /// refused go to [`TimestampedStream::rejected`] instead of being
    /// dropped. The result derefs to the stream of accepted records.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::{Stream, Watermarks};
    /// use brook_operators::StreamExt;
    /// # fn build(events: Stream<(i64, String)>) {
    /// let strategy = Watermarks::bounded(Duration::from_secs(2))
    ///     .with_max_ahead(Duration::from_secs(3600));
    /// let timed = events.assign_timestamps_with_rejected(|(ts, _)| *ts, strategy);
    /// let on_time: Stream<(i64, String)> = timed.stream();
    /// let bad_times: Stream<(i64, String)> = timed.rejected();
    /// # let _ = (on_time, bad_times);
    /// # }
    /// ```
    fn assign_timestamps_with_rejected<F>(
        &self,
        extract: F,
        strategy: Watermarks,
    ) -> TimestampedStream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + 'static;

    /// Drops records whose `id` was already seen within `horizon` of event
    /// time. Keys the stream by the id first, so every record of an id meets
    /// in one instance. See [`Dedup`], also for processing time.
    fn dedup<Id, F>(&self, name: impl Into<String>, id: F, horizon: Duration) -> Stream<T>
    where
        Id: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Fn(&T) -> Id + Clone + Send + Sync + 'static;
}

impl<T: Data> StreamExt<T> for Stream<T> {
    fn map<U: Data, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> U + Clone + Send + 'static,
    {
        self.process(name, Map(f))
    }

    fn try_map<U: Data, E: Into<BoxError>, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> std::result::Result<U, E> + Clone + Send + 'static,
    {
        self.process(name, TryMap(f))
    }

    fn filter<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + 'static,
    {
        self.process(name, Filter(f))
    }

    fn flat_map<U: Data, I: IntoIterator<Item = U>, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<U>
    where
        F: FnMut(T) -> I + Clone + Send + 'static,
    {
        self.process(name, FlatMap(f))
    }

    fn inspect<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) + Clone + Send + 'static,
    {
        self.process(name, Inspect(f))
    }

    fn assign_timestamps<F>(&self, extract: F, strategy: Watermarks) -> Stream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + 'static,
    {
        let name = format!("{}.timestamps", self.node_name());
        self.process(name, AssignTimestamps::new(extract, strategy))
    }

    fn assign_timestamps_with_rejected<F>(
        &self,
        extract: F,
        strategy: Watermarks,
    ) -> TimestampedStream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + 'static,
    {
        let name = format!("{}.timestamps", self.node_name());
        let op = SplitTimestamps(AssignTimestamps::new(extract, strategy));
        TimestampedStream::new(self.process(name.clone(), op), name)
    }

    fn dedup<Id, F>(&self, name: impl Into<String>, id: F, horizon: Duration) -> Stream<T>
    where
        Id: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Fn(&T) -> Id + Clone + Send + Sync + 'static,
    {
        self.key_by(id.clone())
            .process(name, Dedup::new(id, horizon))
    }
}
