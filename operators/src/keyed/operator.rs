//! The keyed process operator and its builder method.

use std::sync::Arc;

use brook_core::KeySelector;
use brook_core::metrics::NodeMetrics;

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use brook_core::state::{KeyGroups, RestoredState, Snapshot, TimerQueue};
use brook_core::time::ProcessingTimer;
use brook_core::{
    Batch, Collector, Data, EventTime, KeyedStream, NO_TIMESTAMP, Operator, OperatorContext,
    Result, Stream,
};

use super::context::{KeyedContext, TimeDomain, Timer};
use crate::window::WindowKey;

/// Per-record logic with per-key state and timers, as Flink's
/// `KeyedProcessFunction`. Runs on a keyed stream: every call is for one
/// key, and sees only that key's state.
///
/// The state is one value of [`Self::State`] per key: a struct of
/// [`ValueState`](brook_core::state::ValueState),
/// [`ListState`](brook_core::state::ListState) and
/// [`MapState`](brook_core::state::MapState) fields, or any
/// `serde`-serializable type. It is created with `Default` when a key first
/// uses it, and freed by [`KeyedContext::clear_state`].
pub trait KeyedProcessFunction<K, In, Out>: Clone + Send + 'static {
    /// The state kept per key.
    type State: Default + Clone + Send + Serialize + DeserializeOwned + 'static;

    /// Handles one record.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn process_element(
        &mut self,
        value: In,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()>;

    /// A timer of this key fired. Event-time timers fire in time order as
    /// the watermark passes them, before the watermark goes downstream;
    /// output emitted here carries the timer's time as event time.
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn on_timer(
        &mut self,
        _timer: Timer,
        _ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        Ok(())
    }
}

/// A keyed process operator's state. It checkpoints each key's value and
/// timers by key group, and the watermark.
#[derive(Clone)]
struct KeyedState<K, S> {
    values: FxHashMap<K, S>,
    event_timers: TimerQueue<K>,
    processing_timers: TimerQueue<K>,
    watermark: EventTime,
}

/// Runs a [`KeyedProcessFunction`].
pub(crate) struct KeyedProcess<K, In, F: KeyedProcessFunction<K, In, Out>, Out> {
    key: KeySelector<In, K>,
    f: F,
    state: KeyedState<K, F::State>,
    clock: ProcessingTimer,
    metrics: Arc<NodeMetrics>,
}

impl<K: WindowKey, In, Out, F: KeyedProcessFunction<K, In, Out>> Clone
    for KeyedProcess<K, In, F, Out>
{
    fn clone(&self) -> Self {
        KeyedProcess {
            key: self.key.clone(),
            f: self.f.clone(),
            state: self.state.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<K: WindowKey, In, Out, F: KeyedProcessFunction<K, In, Out>> KeyedProcess<K, In, F, Out> {
    pub(crate) fn new(key: KeySelector<In, K>, f: F) -> Self {
        KeyedProcess {
            key,
            f,
            state: KeyedState {
                values: FxHashMap::default(),
                event_timers: TimerQueue::default(),
                processing_timers: TimerQueue::default(),
                watermark: EventTime::MIN,
            },
            clock: ProcessingTimer::default(),
            metrics: Arc::default(),
        }
    }

    /// Calls `on_timer` for `key`.
    fn fire(&mut self, key: &K, timer: Timer, out: &mut Collector<Out>) -> Result<()> {
        let timestamp = match timer.domain {
            TimeDomain::EventTime => timer.time,
            TimeDomain::ProcessingTime => NO_TIMESTAMP,
        };
        let mut ctx = KeyedContext {
            key,
            states: &mut self.state.values,
            event_timers: &mut self.state.event_timers,
            processing_timers: &mut self.state.processing_timers,
            clock: &self.clock,
            metrics: &self.metrics,
            timestamp,
            watermark: self.state.watermark,
            out,
        };
        self.f.on_timer(timer, &mut ctx)
    }

    /// The number of keys with state.
    #[cfg(test)]
    pub(crate) fn keys_with_state(&self) -> usize {
        self.state.values.len()
    }
}

impl<K, In, Out, F> Operator<In, Out> for KeyedProcess<K, In, F, Out>
where
    K: WindowKey,
    In: Data,
    Out: Data,
    F: KeyedProcessFunction<K, In, Out>,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.clock = ctx.processing_timer().clone();
        self.metrics = ctx.metrics_handle();
        if let Some(t) = self.state.processing_timers.next_time() {
            self.clock.wake_at(t);
        }
        Ok(())
    }

    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()> {
        for record in batch {
            let key = (self.key)(&record.value);
            let mut ctx = KeyedContext {
                key: &key,
                states: &mut self.state.values,
                event_timers: &mut self.state.event_timers,
                processing_timers: &mut self.state.processing_timers,
                clock: &self.clock,
                metrics: &self.metrics,
                timestamp: record.timestamp,
                watermark: self.state.watermark,
                out,
            };
            self.f.process_element(record.value, &mut ctx)?;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<Out>) -> Result<()> {
        self.state.watermark = watermark;
        while let Some((time, key)) = self.state.event_timers.pop_due(watermark) {
            let timer = Timer {
                time,
                domain: TimeDomain::EventTime,
            };
            self.fire(&key, timer, out)?;
        }
        out.emit_watermark(watermark);
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: i64, out: &mut Collector<Out>) -> Result<()> {
        while let Some((time, key)) = self.state.processing_timers.pop_due(now_ms) {
            let timer = Timer {
                time,
                domain: TimeDomain::ProcessingTime,
            };
            self.fire(&key, timer, out)?;
        }
        if let Some(t) = self.state.processing_timers.next_time() {
            self.clock.wake_at(t);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        type Part<'a, K, S> = (Vec<(&'a K, &'a S)>, Vec<(i64, &'a K)>, Vec<(i64, &'a K)>);
        let mut groups: KeyGroups<Part<'_, K, F::State>> = KeyGroups::default();
        for (key, value) in &self.state.values {
            groups.of(key).0.push((key, value));
        }
        for (time, key) in self.state.event_timers.iter() {
            groups.of(key).1.push((time, key));
        }
        for (time, key) in self.state.processing_timers.iter() {
            groups.of(key).2.push((time, key));
        }
        Snapshot::new()
            .keyed(groups)?
            .instance(&self.state.watermark)
            .map(Some)
    }

    fn restore(&mut self, restored: &RestoredState) -> Result<()> {
        type Part<K, S> = (Vec<(K, S)>, Vec<(i64, K)>, Vec<(i64, K)>);
        let mut state = KeyedState {
            values: FxHashMap::default(),
            event_timers: TimerQueue::default(),
            processing_timers: TimerQueue::default(),
            watermark: self.state.watermark,
        };
        // The same at every instance at the barrier; the lowest at another
        // parallelism.
        if let Some(w) = restored.instances::<EventTime>()?.into_iter().min() {
            state.watermark = w;
        }
        for (values, event, processing) in restored.keyed::<Part<K, F::State>>()? {
            state.values.extend(values);
            for (time, key) in event {
                state.event_timers.set(time, key);
            }
            for (time, key) in processing {
                state.processing_timers.set(time, key);
            }
        }
        self.state = state;
        if let Some(t) = self.state.processing_timers.next_time() {
            self.clock.wake_at(t);
        }
        Ok(())
    }
}

/// Keyed process functions on keyed streams.
pub trait KeyedProcessExt<T: Data, K: WindowKey> {
    /// Runs `f` on every record, with the record's key's state and timers.
    fn keyed_process<Out: Data, F: KeyedProcessFunction<K, T, Out>>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<Out>;
}

impl<T: Data, K: WindowKey> KeyedProcessExt<T, K> for KeyedStream<T, K> {
    fn keyed_process<Out: Data, F: KeyedProcessFunction<K, T, Out>>(
        &self,
        name: impl Into<String>,
        f: F,
    ) -> Stream<Out> {
        self.process(name, KeyedProcess::new(self.key_selector(), f))
    }
}
