//! What a keyed process function sees of its key, state, time and output.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use brook_core::metrics::NodeMetrics;
use brook_core::state::TimerQueue;
use brook_core::time::ProcessingTimer;
use brook_core::{Collector, EventTime, OutputTag};

use crate::keyed_map::get_or_default;

/// Which clock a timer follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeDomain {
    /// Event time: fires when the watermark reaches it.
    EventTime,
    /// Processing time (wall clock): fires when the clock reaches it.
    ProcessingTime,
}

/// A timer that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timer {
    /// The time it was set for, in milliseconds since the epoch.
    pub time: i64,
    /// The clock it followed.
    pub domain: TimeDomain,
}

/// The context of one call of a keyed process function: the current key,
/// its state, timers, the current times, and the output.
pub struct KeyedContext<'a, K, S, Out> {
    pub(crate) key: &'a K,
    pub(crate) states: &'a mut FxHashMap<K, S>,
    pub(crate) event_timers: &'a mut TimerQueue<K>,
    pub(crate) processing_timers: &'a mut TimerQueue<K>,
    pub(crate) clock: &'a ProcessingTimer,
    pub(crate) metrics: &'a NodeMetrics,
    pub(crate) timestamp: EventTime,
    pub(crate) watermark: EventTime,
    pub(crate) out: &'a mut Collector<Out>,
}

impl<K: Hash + Eq + Clone, S: Default, Out> KeyedContext<'_, K, S, Out> {
    /// The key of the record or timer being handled.
    pub fn key(&self) -> &K {
        self.key
    }

    /// This key's state, created with `Default` on first use.
    pub fn state(&mut self) -> &mut S {
        get_or_default(self.states, self.key)
    }

    /// The key and its state (created with `Default` on first use) at
    /// once: for logic that needs the key while it changes the state,
    /// without cloning the key.
    pub fn key_and_state(&mut self) -> (&K, &mut S) {
        let key = self.key;
        (key, get_or_default(self.states, key))
    }

    /// This key's state if it has any: unlike [`state`](Self::state), does
    /// not create it. A timer that outlived a [`clear_state`](Self::clear_state)
    /// finds `None` here.
    pub fn existing_state(&mut self) -> Option<&mut S> {
        self.states.get_mut(self.key)
    }

    /// Whether this key has state.
    pub fn has_state(&self) -> bool {
        self.states.contains_key(self.key)
    }

    /// Removes all of this key's state, freeing its memory. Timers stay
    /// set: delete them, or check [`existing_state`](Self::existing_state)
    /// when they fire.
    pub fn clear_state(&mut self) {
        self.states.remove(self.key);
    }

    /// The event time of the record being handled, or the time of the
    /// event-time timer that fired.
    pub fn timestamp(&self) -> EventTime {
        self.timestamp
    }

    /// The current input watermark.
    pub fn current_watermark(&self) -> EventTime {
        self.watermark
    }

    /// Processing time: the task's clock
    /// ([`TaskContext::clock`](brook_core::TaskContext::clock), the wall
    /// clock unless a test set another), in milliseconds since the epoch.
    pub fn current_processing_time(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Calls `on_timer` for this key once the watermark reaches `time`. One
    /// timer per key and time: setting it again changes nothing.
    pub fn register_event_time_timer(&mut self, time: EventTime) {
        self.event_timers.set(time, self.key.clone());
    }

    /// Removes this key's event-time timer at `time`.
    pub fn delete_event_time_timer(&mut self, time: EventTime) {
        self.event_timers.delete(time, self.key);
    }

    /// Calls `on_timer` for this key once processing time
    /// ([`current_processing_time`](Self::current_processing_time)) reaches
    /// `time`.
    /// As in Flink, processing-time timers still pending at end of input do
    /// not fire.
    pub fn register_processing_time_timer(&mut self, time: i64) {
        if self.processing_timers.set(time, self.key.clone()) {
            self.clock.wake_at(time);
        }
    }

    /// Removes this key's processing-time timer at `time`.
    pub fn delete_processing_time_timer(&mut self, time: i64) {
        self.processing_timers.delete(time, self.key);
    }

    /// The node's counters, to count what the function drops or routes
    /// (`add_dropped`, `add_late`, ...).
    pub fn metrics(&self) -> &NodeMetrics {
        self.metrics
    }

    /// Emits a value with the current [`timestamp`](Self::timestamp).
    pub fn emit(&mut self, value: Out) {
        self.out.emit(self.timestamp, value);
    }

    /// Emits a value with the given event time.
    pub fn emit_at(&mut self, timestamp: EventTime, value: Out) {
        self.out.emit(timestamp, value);
    }

    /// Emits a value with the current [`timestamp`](Self::timestamp) to
    /// the side output `tag` (see [`OutputTag`]). Returns whether it went
    /// anywhere: `false` when no stream was made of the tag and the value
    /// was dropped (count it, so it is never silently lost).
    pub fn emit_side<V: Send + 'static>(&mut self, tag: &OutputTag<V>, value: V) -> bool {
        self.out.emit_side(tag, self.timestamp, value)
    }
}
