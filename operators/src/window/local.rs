//! Two-phase window aggregation: each batch is folded into one partial
//! accumulator per key and window before the key exchange, and the window
//! node merges the partials. What crosses the exchange (hashing, moving
//! records between threads, freeing them on another thread) then scales
//! with the keys in a batch, not with the records: Flink SQL's local-global
//! aggregation, and the map-side combine of batch engines.
//!
//! Used by [`WindowedStream::aggregate`](super::WindowedStream::aggregate)
//! where the result cannot differ from a one-phase aggregate: windows that
//! hold each record in one window ([`WindowAssigner::is_single`]), no
//! allowed lateness (a late record within it fires the window again, once
//! per record), and no late side output (which needs the records).

use brook_core::record::{EventTime, NO_TIMESTAMP};
use brook_core::{Batch, Collector, Data, Error, KeySelector, Operator, OperatorContext, Result};
use rustc_hash::FxHashMap;
use std::marker::PhantomData;

use super::aggregate::AggregateFunction;
use super::assigner::{Window, WindowAssigner};
use super::logic::{Aggregate, WindowLogic, WindowResult};
use super::operator::WindowKey;

/// Part of one window's aggregate for one key: what one instance read of
/// it between two watermarks. Its event time is the window's last millisecond,
/// or `i64::MAX` for records no window can hold (late wherever they go).
#[derive(Debug, Clone)]
pub(crate) struct Partial<K, A> {
    pub(crate) key: K,
    pub(crate) acc: A,
    /// The records folded into `acc`, for the window node's counts.
    pub(crate) records: u64,
}

/// The first phase: folds records into partials, one per key and window,
/// and emits them when a watermark, a checkpoint barrier or the end of
/// input comes, ahead of it. So a window gets every record before the
/// watermark that fires it, and nothing is held across a barrier: the
/// partials are in the window node's state by the time it snapshots, and
/// this node has none to checkpoint.
pub(crate) struct PreAggregate<K, T, W, A: AggregateFunction<T>> {
    key: KeySelector<T, K>,
    assigner: W,
    agg: A,
    /// The partials since the last flush, by (key, window end), with their
    /// windows.
    groups: FxHashMap<(K, EventTime), (Window, A::Acc, u64)>,
}

impl<K, T, W: Clone, A: AggregateFunction<T>> Clone for PreAggregate<K, T, W, A> {
    fn clone(&self) -> Self {
        PreAggregate {
            key: self.key.clone(),
            assigner: self.assigner.clone(),
            agg: self.agg.clone(),
            groups: FxHashMap::default(),
        }
    }
}

impl<K, T, W, A: AggregateFunction<T>> PreAggregate<K, T, W, A> {
    pub(crate) fn new(key: KeySelector<T, K>, assigner: W, agg: A) -> Self {
        PreAggregate {
            key,
            assigner,
            agg,
            groups: FxHashMap::default(),
        }
    }
}

/// The window of a partial that no window can hold.
const NO_WINDOW: Window = Window {
    start: EventTime::MAX,
    end: EventTime::MAX,
};

impl<K, T, W, A> Operator<T, Partial<K, A::Acc>> for PreAggregate<K, T, W, A>
where
    K: WindowKey,
    T: Data,
    W: WindowAssigner,
    A: AggregateFunction<T>,
{
    fn open(&mut self, _ctx: &OperatorContext) -> Result<()> {
        self.assigner.validate()
    }

    fn process(&mut self, batch: Batch<T>, _out: &mut Collector<Partial<K, A::Acc>>) -> Result<()> {
        for record in batch.records() {
            let ts = record.timestamp;
            if ts == NO_TIMESTAMP {
                return Err(Error::Config(
                    "a record without an event time reached an event-time window: \
                     call assign_timestamps upstream or use a source that sets event times"
                        .into(),
                ));
            }
            let mut window = NO_WINDOW;
            if ts != EventTime::MAX {
                self.assigner.assign(ts, |w| window = w);
            }
            let key = (self.key)(&record.value);
            let (_, acc, n) = self
                .groups
                .entry((key, window.end))
                .or_insert_with(|| (window, self.agg.create_accumulator(), 0));
            if window != NO_WINDOW {
                self.agg.add(acc, &record.value);
            }
            *n += 1;
        }
        Ok(())
    }

    fn on_watermark(
        &mut self,
        watermark: EventTime,
        out: &mut Collector<Partial<K, A::Acc>>,
    ) -> Result<()> {
        self.flush(out);
        out.emit_watermark(watermark);
        Ok(())
    }

    fn on_barrier(&mut self, out: &mut Collector<Partial<K, A::Acc>>) -> Result<()> {
        self.flush(out);
        Ok(())
    }

    fn on_end(&mut self, out: &mut Collector<Partial<K, A::Acc>>) -> Result<()> {
        self.flush(out);
        Ok(())
    }
}

impl<K, T, W, A: AggregateFunction<T>> PreAggregate<K, T, W, A> {
    /// Emits the partials held, ahead of the watermark, barrier or end
    /// that follows them.
    fn flush(&mut self, out: &mut Collector<Partial<K, A::Acc>>) {
        for ((key, _), (window, acc, records)) in self.groups.drain() {
            let ts = if window == NO_WINDOW {
                EventTime::MAX
            } else {
                window.max_timestamp()
            };
            out.emit(ts, Partial { key, acc, records });
        }
    }
}

/// The second phase: the window node merges the partials of each key and
/// window, and emits what the one-phase aggregate ([`Aggregate`]) would.
pub(crate) struct MergePartials<A, T>(Aggregate<A>, PhantomData<fn(&T)>);

impl<A, T> MergePartials<A, T> {
    pub(crate) fn new(agg: A) -> Self {
        MergePartials(Aggregate(agg), PhantomData)
    }
}

impl<A: Clone, T> Clone for MergePartials<A, T> {
    fn clone(&self) -> Self {
        MergePartials(self.0.clone(), PhantomData)
    }
}

impl<K, T, A> WindowLogic<K, Partial<K, A::Acc>> for MergePartials<A, T>
where
    K: Data,
    T: 'static,
    A: AggregateFunction<T>,
{
    type Acc = A::Acc;
    type Out = WindowResult<K, A::Output>;

    fn create(&self) -> A::Acc {
        self.0.0.create_accumulator()
    }

    fn add(&self, acc: &mut A::Acc, value: &Partial<K, A::Acc>) {
        self.0.0.merge(acc, value.acc.clone());
    }

    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.0.0.merge(acc, other);
    }

    fn records(&self, value: &Partial<K, A::Acc>) -> u64 {
        value.records
    }

    fn emit(
        &mut self,
        key: &K,
        window: Window,
        acc: &A::Acc,
        out: &mut Collector<Self::Out>,
    ) -> Result<()> {
        WindowLogic::<K, T>::emit(&mut self.0, key, window, acc, out)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use brook_core::{Record, TaskContext};
    use proptest::prelude::*;

    use super::*;
    use crate::window::logic::Aggregate;
    use crate::window::operator::WindowOperator;
    use crate::window::{Count, Sum, Tumbling};

    type Ev = (u8, i64);
    type Agg = (Count, Sum<fn(&Ev) -> i64>);
    /// (key, window start) → (count, sum)
    type Results = BTreeMap<(u8, i64), (u64, i64)>;

    fn agg() -> Agg {
        (Count, Sum::of((|e: &Ev| e.1) as fn(&Ev) -> i64))
    }

    fn key() -> KeySelector<Ev, u8> {
        Arc::new(|e: &Ev| e.0)
    }

    fn collect(results: &mut Results, out: &mut Collector<WindowResult<u8, (u64, i64)>>) {
        for r in out.take() {
            let w = r.value;
            assert!(
                results.insert((w.key, w.window.start), w.value).is_none(),
                "window fired twice"
            );
        }
    }

    /// Feeds both forms the same batches and watermarks (a watermark
    /// after every `wm_every` batches, a barrier after every `barrier_every`),
    /// and returns their results.
    fn both(
        events: &[Ev],
        batch: usize,
        wm_every: usize,
        barrier_every: usize,
    ) -> (Results, Results) {
        let ctx = TaskContext::standalone("w", 0, 1);
        let tumbling = Tumbling::of(std::time::Duration::from_millis(50));
        let mut one = WindowOperator::new(key(), tumbling, 0, Aggregate(agg()), None);
        let mut pre = PreAggregate::new(key(), tumbling, agg());
        let partial_key: KeySelector<Partial<u8, <Agg as AggregateFunction<Ev>>::Acc>, u8> =
            Arc::new(|p| p.key);
        let mut two =
            WindowOperator::new(partial_key, tumbling, 0, MergePartials::new(agg()), None);
        Operator::open(&mut one, &ctx).expect("open");
        Operator::open(&mut pre, &ctx).expect("open");
        Operator::open(&mut two, &ctx).expect("open");
        let (mut got_one, mut got_two) = (Results::new(), Results::new());
        let (mut out, mut mid, mut out2) = (
            Collector::default(),
            Collector::default(),
            Collector::default(),
        );
        // Partials go on in order, then what the pre-aggregation emitted
        // after them (its watermark) reaches the window node.
        let pass = |mid: &mut Collector<_>,
                    two: &mut WindowOperator<_, _, _, _>,
                    out2: &mut Collector<_>| {
            let partials: Batch<_> = mid.take();
            two.process(partials, out2).expect("merge");
            if let Some(wm) = mid.take_watermark() {
                two.on_watermark(wm, out2).expect("watermark");
            }
        };
        let mut max = EventTime::MIN;
        for (i, chunk) in events.chunks(batch.max(1)).enumerate() {
            let b: Batch<Ev> = chunk.iter().map(|&(k, t)| Record::new(t, (k, t))).collect();
            max = chunk.iter().map(|e| e.1).fold(max, i64::max);
            one.process(b.clone(), &mut out).expect("process");
            pre.process(b, &mut mid).expect("pre-aggregate");
            pass(&mut mid, &mut two, &mut out2);
            if i % barrier_every.max(1) == 0 {
                pre.on_barrier(&mut mid).expect("barrier");
                pass(&mut mid, &mut two, &mut out2);
            }
            if i % wm_every.max(1) == 0 {
                one.on_watermark(max - 20, &mut out).expect("watermark");
                pre.on_watermark(max - 20, &mut mid).expect("watermark");
                pass(&mut mid, &mut two, &mut out2);
            }
            collect(&mut got_one, &mut out);
            collect(&mut got_two, &mut out2);
        }
        one.on_watermark(EventTime::MAX, &mut out).expect("end");
        pre.on_end(&mut mid).expect("end");
        pre.on_watermark(EventTime::MAX, &mut mid).expect("end");
        pass(&mut mid, &mut two, &mut out2);
        collect(&mut got_one, &mut out);
        collect(&mut got_two, &mut out2);
        (got_one, got_two)
    }

    proptest! {
        #[test]
        fn two_phases_give_the_one_phase_results(
            events in prop::collection::vec((0u8..4, 0i64..400), 0..300),
            batch in 1usize..40,
            wm_every in 1usize..5,
            barrier_every in 1usize..7,
        ) {
            // Disordered, and late past the 20 ms bound now and then.
            let (one, two) = both(&events, batch, wm_every, barrier_every);
            prop_assert_eq!(one, two);
        }
    }
}
