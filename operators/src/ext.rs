//! [`StreamExt`]: the closure operators as methods on streams.

use std::hash::Hash;
use std::time::Duration;

use brook_core::{BoxError, Data, EventTime, KeyedStream, OutputTag, Stream, Watermarks};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{AssignTimestamps, Dedup, Failed, Filter, FlatMap, Inspect, Map, TryMap, TryMapRouted};

/// The closure operators as methods on [`Stream`] and on [`KeyedStream`]
/// (where they run partitioned by key).
///
/// Each instance of a node gets its own clone of the closure, so a closure
/// may keep per-instance state in what it captures.
pub trait StreamExt<T: Data> {
    /// The stream the operators are added to.
    fn as_stream(&self) -> &Stream<T>;

    /// One output per input.
    fn map<U: Data, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> U + Clone + Send + 'static,
    {
        self.as_stream().process(name, Map(f))
    }

    /// One output per input, or an error that fails the job naming this node.
    fn try_map<U: Data, E: Into<BoxError>, F>(&self, name: impl Into<String>, f: F) -> Stream<U>
    where
        F: FnMut(T) -> std::result::Result<U, E> + Clone + Send + 'static,
    {
        self.as_stream().process(name, TryMap(f))
    }

    /// The inputs the predicate accepts.
    fn filter<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + 'static,
    {
        self.as_stream().process(name, Filter(f))
    }

    /// Any number of outputs per input.
    fn flat_map<U: Data, I: IntoIterator<Item = U>, F>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<U>
    where
        F: FnMut(T) -> I + Clone + Send + 'static,
    {
        self.as_stream().process(name, FlatMap(f))
    }

    /// Sees every input and passes it on unchanged.
    fn inspect<F>(&self, name: impl Into<String>, f: F) -> Stream<T>
    where
        F: FnMut(&T) + Clone + Send + 'static,
    {
        self.as_stream().process(name, Inspect(f))
    }

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
        F: FnMut(&T) -> EventTime + Clone + Send + 'static,
    {
        let name = format!("{}.timestamps", self.as_stream().node_name());
        self.as_stream()
            .process(name, AssignTimestamps::new(extract, strategy))
    }

    /// As [`StreamExt::assign_timestamps`], and the records whose time was
    /// refused go to the side output `rejected` of the timestamps node
    /// instead of being dropped (still counted as `rejected`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::{OutputTag, Stream, Watermarks};
    /// use brook_operators::StreamExt;
    ///
    /// const BAD_TIMES: OutputTag<(i64, String)> = OutputTag::new("bad-times");
    /// # fn build(events: Stream<(i64, String)>) {
    /// let strategy = Watermarks::bounded(Duration::from_secs(2))
    ///     .with_max_ahead(Duration::from_secs(3600));
    /// let on_time = events.assign_timestamps_with_rejected(|(ts, _)| *ts, strategy, BAD_TIMES);
    /// let bad_times: Stream<(i64, String)> = on_time.side_output(&BAD_TIMES);
    /// # let _ = bad_times;
    /// # }
    /// ```
    fn assign_timestamps_with_rejected<F>(
        &self,
        extract: F,
        strategy: Watermarks,
        rejected: OutputTag<T>,
    ) -> Stream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + 'static,
    {
        let name = format!("{}.timestamps", self.as_stream().node_name());
        self.as_stream().process(
            name,
            AssignTimestamps::new(extract, strategy).rejected_to(rejected),
        )
    }

    /// A fallible map whose failures do not fail the job: each value `f`
    /// refuses goes, with its error, to the side output `errors` of the
    /// node (a [`Failed`]), counted as dead-lettered. Get them with
    /// [`Stream::side_output`]. `f` borrows the value, so that a refused
    /// one can be passed on whole.
    ///
    /// ```
    /// use brook_core::{OutputTag, Stream};
    /// use brook_operators::{Failed, StreamExt};
    ///
    /// const UNPARSED: OutputTag<Failed<String>> = OutputTag::new("unparsed");
    /// # fn build(lines: Stream<String>) {
    /// let numbers: Stream<u64> = lines.try_map_with_errors("parse", |l: &String| l.parse::<u64>(), UNPARSED);
    /// let unparsed: Stream<Failed<String>> = numbers.side_output(&UNPARSED);
    /// # let _ = unparsed;
    /// # }
    /// ```
    fn try_map_with_errors<U: Data, E: Into<BoxError>, F>(
        &self,
        name: impl Into<String>,
        f: F,
        errors: OutputTag<Failed<T>>,
    ) -> Stream<U>
    where
        F: FnMut(&T) -> Result<U, E> + Clone + Send + 'static,
    {
        self.as_stream().process(name, TryMapRouted::new(f, errors))
    }

    /// Drops records whose `id` was already seen within `horizon` of event
    /// time. Keys the stream by the id first, so every record of an id meets
    /// in one instance. See [`Dedup`], also for processing time.
    fn dedup<Id, F>(&self, name: impl Into<String>, id: F, horizon: Duration) -> Stream<T>
    where
        Id: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Fn(&T) -> Id + Clone + Send + Sync + 'static,
    {
        self.as_stream()
            .key_by(id.clone())
            .process(name, Dedup::new(id, horizon))
    }
}

impl<T: Data> StreamExt<T> for Stream<T> {
    fn as_stream(&self) -> &Stream<T> {
        self
    }
}

/// On a keyed stream, each operator runs partitioned by key: all records of
/// a key reach the same instance.
impl<T: Data, K> StreamExt<T> for KeyedStream<T, K> {
    fn as_stream(&self) -> &Stream<T> {
        self.stream()
    }
}
