//! The builder side of windows: `key_by(..).window(..).aggregate(..)`.

use std::cell::OnceCell;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use brook_core::{Batch, Collector, Data, KeyedStream, Operator, Result, Stream};

use super::aggregate::AggregateFunction;
use super::assigner::WindowAssigner;
use super::logic::{Aggregate, Process, ProcessWindowFunction, WindowOutput, WindowResult};
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
        }
    }
}

/// A keyed stream grouped into windows, waiting for what to compute.
pub struct WindowedStream<T, K, W> {
    stream: KeyedStream<T, K>,
    assigner: W,
    lateness: Duration,
}

impl<T: Data, K: WindowKey, W: WindowAssigner> WindowedStream<T, K, W> {
    /// Keeps each window's state for `lateness` after it fired: a record
    /// that arrives in that time updates the window, which fires again with
    /// the new result. Records later than that go to the late output.
    /// The default is zero: each window fires exactly once.
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness = lateness;
        self
    }

    /// Folds each window with an incremental aggregate; emits one
    /// [`WindowResult`] (key, window, result) per key and window, with the
    /// window's last millisecond as its event time.
    pub fn aggregate<A: AggregateFunction<T>>(
        self,
        name: impl Into<String>,
        agg: A,
    ) -> WindowedOutput<WindowResult<K, A::Output>, T> {
        self.build(name.into(), Aggregate(agg))
    }

    /// Keeps each window's records and calls `f` on all of them when it
    /// fires (Flink's `ProcessWindowFunction`). Holds every record until its
    /// window fires; prefer [`WindowedStream::aggregate`] when an
    /// incremental aggregate can do.
    pub fn process<O: Data, F>(self, name: impl Into<String>, f: F) -> WindowedOutput<O, T>
    where
        T: Serialize + DeserializeOwned,
        F: ProcessWindowFunction<K, T, O>,
    {
        self.build(name.into(), Process { f, buf: Vec::new() })
    }

    fn build<L: super::logic::WindowLogic<K, T>>(
        self,
        name: String,
        logic: L,
    ) -> WindowedOutput<L::Out, T> {
        let lateness = i64::try_from(self.lateness.as_millis()).unwrap_or(i64::MAX);
        let op = WindowOperator::new(self.stream.key_selector(), self.assigner, lateness, logic);
        let tagged: Stream<WindowOutput<L::Out, T>> = self.stream.process(name.clone(), op);
        let results = tagged.process(format!("{name}.results"), Select(result));
        WindowedOutput {
            results,
            tagged,
            name,
            late: Rc::new(OnceCell::new()),
        }
    }
}

/// The results of a window operator (it derefs to their [`Stream`]), and
/// its late output.
pub struct WindowedOutput<R, T> {
    results: Stream<R>,
    tagged: Stream<WindowOutput<R, T>>,
    name: String,
    late: Rc<OnceCell<Stream<T>>>,
}

impl<R: Data, T: Data> WindowedOutput<R, T> {
    /// The results as a plain stream.
    pub fn results(&self) -> Stream<R> {
        self.results.clone()
    }

    /// The records that arrived after their windows' allowed lateness, with
    /// their event times, as a stream to attach a sink to. They are counted
    /// in the window node's `late` counter whether or not this is used.
    pub fn late_records(&self) -> Stream<T> {
        self.late
            .get_or_init(|| {
                self.tagged
                    .process(format!("{}.late", self.name), Select(late))
            })
            .clone()
    }
}

impl<R, T> Deref for WindowedOutput<R, T> {
    type Target = Stream<R>;
    fn deref(&self) -> &Stream<R> {
        &self.results
    }
}

/// Keeps one side of a window operator's output: results or late records.
struct Select<R, T, X>(fn(WindowOutput<R, T>) -> Option<X>);

impl<R, T, X> Clone for Select<R, T, X> {
    fn clone(&self) -> Self {
        Select(self.0)
    }
}

impl<R: Data, T: Data, X: Data> Operator<WindowOutput<R, T>, X> for Select<R, T, X> {
    fn process(&mut self, batch: Batch<WindowOutput<R, T>>, out: &mut Collector<X>) -> Result<()> {
        for r in batch {
            if let Some(v) = (self.0)(r.value) {
                out.emit(r.timestamp, v);
            }
        }
        Ok(())
    }
}

fn result<R, T>(o: WindowOutput<R, T>) -> Option<R> {
    match o {
        WindowOutput::Result(r) => Some(r),
        WindowOutput::Late(_) => None,
    }
}

fn late<R, T>(o: WindowOutput<R, T>) -> Option<T> {
    match o {
        WindowOutput::Late(t) => Some(t),
        WindowOutput::Result(_) => None,
    }
}
