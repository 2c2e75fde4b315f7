//! The window operator: panes per key and window, fired by the watermark.
//!
//! Fixed windows (tumbling, sliding) keep their panes by window: a map
//! from each open window to its keys' accumulators. All keys of a window
//! fire together when the watermark passes its last millisecond, and the
//! window is dropped when the watermark passes that plus the allowed
//! lateness, so a key costs one map entry (its key and accumulator) and
//! no timer. Sessions (merging windows) differ per key: their state is a
//! map from key to the key's open sessions and a timer queue of keys by
//! the time a session of theirs is due. Either way results leave in order
//! of window end. A record whose every window is past
//! its allowed lateness is late: it is counted and sent to the late output.
//! So is a record at `i64::MAX` (the end-of-input watermark), which no
//! window can hold. When late records are many (see [`crate::alarm`]), the
//! node says so once, with its counts.

use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Arc;

use brook_core::{KeySelector, OutputTag};

use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use brook_core::metrics::NodeMetrics;
use brook_core::state::{KeyGroups, RestoredState, Snapshot, TimerQueue};
use brook_core::{
    Batch, Collector, Data, Error, EventTime, NO_TIMESTAMP, Operator, OperatorContext, Result,
};

use super::assigner::{Window, WindowAssigner};
use super::logic::WindowLogic;
use crate::alarm::{Alarm, Loud};
use crate::keyed_map::get_or_default;

/// What a key of a window operator needs: hashable for the state map,
/// cloneable into results, serializable for checkpoints.
pub trait WindowKey:
    Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static
{
}
impl<K: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static> WindowKey for K {}

/// One window of one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pane<A> {
    window: Window,
    acc: A,
    fired: bool,
}

/// The panes of one fixed window: each key's accumulator. They fire
/// together.
#[derive(Debug, Clone)]
struct FixedPanes<K, A> {
    fired: bool,
    accs: FxHashMap<K, A>,
}

impl<K, A> Default for FixedPanes<K, A> {
    fn default() -> Self {
        FixedPanes {
            fired: false,
            accs: FxHashMap::default(),
        }
    }
}

/// A window operator's state; it checkpoints each key's panes (and a
/// session key's timers) by key group, and the watermark.
#[derive(Debug, Clone)]
struct WindowState<K, A> {
    /// Fixed windows by `(end, start)`.
    fixed: BTreeMap<(EventTime, EventTime), FixedPanes<K, A>>,
    /// Sessions, by key.
    panes: FxHashMap<K, Vec<Pane<A>>>,
    /// When a session of a key is due.
    timers: TimerQueue<K>,
    watermark: EventTime,
}

impl<K, A> WindowState<K, A> {
    fn new(watermark: EventTime) -> Self {
        WindowState {
            fixed: BTreeMap::new(),
            panes: FxHashMap::default(),
            timers: TimerQueue::default(),
            watermark,
        }
    }
}

/// Groups a keyed stream into event-time windows and runs `L` on each.
pub(crate) struct WindowOperator<K, T, W, L: WindowLogic<K, T>> {
    key: KeySelector<T, K>,
    assigner: W,
    lateness: i64,
    logic: L,
    state: WindowState<K, L::Acc>,
    metrics: Option<Arc<NodeMetrics>>,
    late_warned: bool,
    /// The windows of the record being added, reused.
    scratch: Vec<Window>,
    node: Arc<str>,
    parallelism: usize,
    /// Late records over all instances of the node (clones share it).
    alarm: Arc<Alarm>,
    /// Where late records go, if the user asked for them.
    late_tag: Option<OutputTag<T>>,
}

impl<K: WindowKey, T, W: WindowAssigner, L: WindowLogic<K, T>> Clone
    for WindowOperator<K, T, W, L>
{
    fn clone(&self) -> Self {
        WindowOperator {
            key: self.key.clone(),
            assigner: self.assigner.clone(),
            lateness: self.lateness,
            logic: self.logic.clone(),
            state: self.state.clone(),
            metrics: self.metrics.clone(),
            late_warned: self.late_warned,
            scratch: Vec::new(),
            node: self.node.clone(),
            parallelism: self.parallelism,
            alarm: self.alarm.clone(),
            late_tag: self.late_tag,
        }
    }
}

impl<K, T, W, L> WindowOperator<K, T, W, L>
where
    K: WindowKey,
    T: Data,
    W: WindowAssigner,
    L: WindowLogic<K, T>,
{
    pub(crate) fn new(
        key: KeySelector<T, K>,
        assigner: W,
        lateness: i64,
        logic: L,
        late_tag: Option<OutputTag<T>>,
    ) -> Self {
        WindowOperator {
            key,
            assigner,
            lateness,
            logic,
            state: WindowState::new(EventTime::MIN),
            metrics: None,
            late_warned: false,
            scratch: Vec::new(),
            node: Arc::from("window"),
            parallelism: 1,
            alarm: Arc::default(),
            late_tag,
        }
    }

    /// Says once per node that many records were late, with the counts.
    fn warn_loud(&self, loud: Loud, when: &str) {
        tracing::warn!(
            node = %self.node,
            late = loud.bad,
            records = loud.seen,
            "node '{}': {} of {} records ({:.2} %) {when}arrived after their windows closed \
             and are not in its results (they are in its `late` counter and late output). \
             An event time far ahead of the others may have moved the watermark (see \
             Watermarks::with_max_ahead), or the out-of-orderness bound is too small.",
            self.node,
            loud.bad,
            loud.seen,
            loud.percent(),
        );
    }

    /// Whether a window can take no more records.
    fn is_late(&self, window: &Window) -> bool {
        window.max_timestamp().saturating_add(self.lateness) <= self.state.watermark
    }

    /// A late record (or partial aggregate of `records` records).
    fn late(&mut self, timestamp: EventTime, value: T, records: u64, out: &mut Collector<L::Out>) {
        if let Some(m) = &self.metrics {
            m.add_late(records);
        }
        if timestamp == EventTime::MAX {
            if self.alarm.first() {
                tracing::warn!(
                    node = %self.node,
                    "node '{}': a record has the event time i64::MAX, the end-of-input \
                     watermark, which no window can hold; it goes to the late output and the \
                     node's `late` counter (reported once per node).",
                    self.node,
                );
            }
        } else if !self.late_warned {
            self.late_warned = true;
            tracing::warn!(
                timestamp,
                watermark = self.state.watermark,
                "A record arrived past its windows' allowed lateness; it goes to the late output and the node's `late` counter."
            );
        }
        if let Some(tag) = &self.late_tag {
            out.emit_side(tag, timestamp, value);
        }
    }

    /// Adds a record to a fixed (tumbling or sliding) assigner's windows;
    /// returns whether any took it.
    fn add_fixed(
        &mut self,
        key: K,
        timestamp: EventTime,
        value: &T,
        out: &mut Collector<L::Out>,
    ) -> Result<bool> {
        let mut windows = std::mem::take(&mut self.scratch);
        windows.clear();
        self.assigner.assign(timestamp, |w| windows.push(w));
        windows.retain(|w| !self.is_late(w));
        let taken = !windows.is_empty();
        let result = match windows.split_last() {
            Some((last, rest)) => rest
                .iter()
                .try_for_each(|w| self.add_to(*w, key.clone(), value, out))
                .and_then(|()| self.add_to(*last, key, value, out)),
            None => Ok(()),
        };
        self.scratch = windows;
        result.map(|()| taken)
    }

    /// Adds a record to `key`'s pane of the fixed window `window`.
    fn add_to(
        &mut self,
        window: Window,
        key: K,
        value: &T,
        out: &mut Collector<L::Out>,
    ) -> Result<()> {
        let logic = &mut self.logic;
        let panes = self
            .state
            .fixed
            .entry((window.end, window.start))
            .or_default();
        match panes.accs.entry(key) {
            Entry::Occupied(mut e) => {
                logic.add(e.get_mut(), value);
                if panes.fired {
                    // A late record within the allowed lateness: fire again.
                    logic.emit(e.key(), window, e.get(), out)?;
                }
            }
            Entry::Vacant(e) => {
                let key = panes.fired.then(|| e.key().clone());
                let acc = e.insert(logic.create());
                logic.add(acc, value);
                if let Some(key) = key {
                    logic.emit(&key, window, acc, out)?;
                }
            }
        }
        Ok(())
    }

    /// Fires the fixed windows the watermark has passed, in order of end,
    /// and drops those past their allowed lateness.
    fn fire_fixed(&mut self, out: &mut Collector<L::Out>) -> Result<()> {
        let wm = self.state.watermark;
        let lateness = self.lateness;
        // Past their allowed lateness (the first windows, by end): fired
        // if they had not been, and dropped as they fire, so their memory
        // goes as the results come.
        while let Some(first) = self.state.fixed.first_entry() {
            let (end, start) = *first.key();
            let window = Window::new(start, end);
            if window.max_timestamp().saturating_add(lateness) > wm {
                break;
            }
            let panes = first.remove();
            if !panes.fired {
                for (key, acc) in panes.accs {
                    self.logic.emit(&key, window, &acc, out)?;
                }
            }
        }
        // Due (their last millisecond, `end - 1`, is at or below the
        // watermark) and within their allowed lateness: fired once, kept
        // for late records.
        let due = (wm.saturating_add(1), EventTime::MAX);
        for (&(end, start), panes) in self.state.fixed.range_mut(..=due) {
            if !panes.fired {
                panes.fired = true;
                let window = Window::new(start, end);
                for (key, acc) in &panes.accs {
                    self.logic.emit(key, window, acc, out)?;
                }
            }
        }
        Ok(())
    }

    /// Adds a record to its key's sessions, merging every session the new
    /// one touches (a record can bridge two); returns whether the merged
    /// session took it.
    fn add_merging(
        &mut self,
        key: K,
        timestamp: EventTime,
        value: &T,
        out: &mut Collector<L::Out>,
    ) -> Result<bool> {
        let mut merged = Window::new(timestamp, timestamp);
        self.assigner.assign(timestamp, |w| merged = w);
        let empty = Vec::new();
        let existing = self.state.panes.get(&key).unwrap_or(&empty);
        // Sessions of a key never touch each other, but a grown window can
        // reach ones the record's own window did not.
        loop {
            let grown = existing
                .iter()
                .filter(|p| p.window.touches(&merged))
                .fold(merged, |m, p| m.cover(&p.window));
            if grown == merged {
                break;
            }
            merged = grown;
        }
        if self.is_late(&merged) {
            return Ok(false);
        }
        let panes = get_or_default(&mut self.state.panes, &key);
        let mut acc = self.logic.create();
        let mut i = 0;
        while i < panes.len() {
            if panes[i].window.touches(&merged) {
                let p = panes.swap_remove(i);
                self.logic.merge(&mut acc, p.acc);
            } else {
                i += 1;
            }
        }
        self.logic.add(&mut acc, value);
        // Past the watermark already (within the allowed lateness): fire
        // now. Otherwise the merged session fires when the watermark passes
        // its end, whether or not a session it absorbed had fired.
        let due = merged.max_timestamp() <= self.state.watermark;
        if due {
            self.logic.emit(&key, merged, &acc, out)?;
        }
        panes.push(Pane {
            window: merged,
            acc,
            fired: due,
        });
        schedule(&mut self.state.timers, &key, &merged, self.lateness);
        Ok(true)
    }

    /// Fires and drops the panes of `key` that the watermark has passed.
    fn fire(&mut self, key: &K, out: &mut Collector<L::Out>) -> Result<()> {
        let wm = self.state.watermark;
        let lateness = self.lateness;
        let Some(panes) = self.state.panes.get_mut(key) else {
            return Ok(());
        };
        panes.sort_unstable_by_key(|p| p.window.end);
        for pane in panes.iter_mut() {
            if !pane.fired && pane.window.max_timestamp() <= wm {
                pane.fired = true;
                self.logic.emit(key, pane.window, &pane.acc, out)?;
            }
        }
        panes.retain(|p| p.window.max_timestamp().saturating_add(lateness) > wm);
        if panes.is_empty() {
            self.state.panes.remove(key);
        }
        Ok(())
    }

    /// The number of timers set (sessions only: fixed windows need none).
    #[cfg(test)]
    pub(crate) fn timers(&self) -> usize {
        self.state.timers.len()
    }

    /// The number of open panes, over all keys.
    #[cfg(test)]
    pub(crate) fn open_panes(&self) -> usize {
        self.state.panes.values().map(Vec::len).sum::<usize>()
            + self
                .state
                .fixed
                .values()
                .map(|w| w.accs.len())
                .sum::<usize>()
    }
}

/// One key group's part of a window operator's checkpoint: fixed panes
/// `(end, start, fired, key, accumulator)`, sessions by key, and session
/// timers.
type Part<K, A, P> = (
    Vec<(EventTime, EventTime, bool, K, A)>,
    Vec<(K, P)>,
    Vec<(i64, K)>,
);

/// A key group's part, borrowed from the state, as it is encoded.
type PartOf<'a, K, A> = Part<&'a K, &'a A, &'a Vec<Pane<A>>>;

/// Sets the timers a new pane needs: firing, and dropping if later.
fn schedule<K: WindowKey>(timers: &mut TimerQueue<K>, key: &K, window: &Window, lateness: i64) {
    let fire = window.max_timestamp();
    timers.set(fire, key.clone());
    if lateness > 0 {
        timers.set(fire.saturating_add(lateness), key.clone());
    }
}

impl<K, T, W, L> Operator<T, L::Out> for WindowOperator<K, T, W, L>
where
    K: WindowKey,
    T: Data,
    W: WindowAssigner,
    L: WindowLogic<K, T>,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.assigner.validate()?;
        self.metrics = Some(ctx.metrics_handle());
        self.node = Arc::from(ctx.node_name());
        self.parallelism = ctx.parallelism();
        Ok(())
    }

    fn process(&mut self, batch: Batch<T>, out: &mut Collector<L::Out>) -> Result<()> {
        let (mut seen, mut late) = (0, 0);
        for record in batch {
            let ts = record.timestamp;
            let records = self.logic.records(&record.value);
            seen += records;
            if ts == NO_TIMESTAMP {
                return Err(Error::Config(
                    "a record without an event time reached an event-time window: \
                     call assign_timestamps upstream or use a source that sets event times"
                        .into(),
                ));
            }
            if ts == EventTime::MAX {
                // The end-of-input watermark: no window holds it.
                late += records;
                self.late(ts, record.value, records, out);
                continue;
            }
            let key = (self.key)(&record.value);
            let taken = if self.assigner.is_merging() {
                self.add_merging(key, ts, &record.value, out)?
            } else {
                self.add_fixed(key, ts, &record.value, out)?
            };
            if !taken {
                late += records;
                self.late(ts, record.value, records, out);
            }
        }
        if let Some(loud) = self.alarm.count(seen, late) {
            self.warn_loud(loud, "so far ");
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<L::Out>) -> Result<()> {
        self.state.watermark = watermark;
        self.fire_fixed(out)?;
        while let Some((_, key)) = self.state.timers.pop_due(watermark) {
            self.fire(&key, out)?;
        }
        out.emit_watermark(watermark);
        Ok(())
    }

    /// Keyed by key group: each key's fixed panes, sessions and session
    /// timers; the watermark is the instance's.
    fn snapshot(&self) -> Result<Option<Snapshot>> {
        let mut groups: KeyGroups<PartOf<'_, K, L::Acc>> = KeyGroups::default();
        for (&(end, start), panes) in &self.state.fixed {
            for (key, acc) in &panes.accs {
                groups.of(key).0.push((end, start, panes.fired, key, acc));
            }
        }
        for (key, panes) in &self.state.panes {
            groups.of(key).1.push((key, panes));
        }
        for (time, key) in self.state.timers.iter() {
            groups.of(key).2.push((time, key));
        }
        Snapshot::new()
            .keyed(groups)?
            .instance(&self.state.watermark)
            .map(Some)
    }

    fn restore(&mut self, restored: &RestoredState) -> Result<()> {
        let mut state = WindowState::new(self.state.watermark);
        // Every instance had the same watermark at the barrier (each is
        // the minimum over the same inputs); at another parallelism the
        // lowest is the safe one.
        if let Some(w) = restored.instances::<EventTime>()?.into_iter().min() {
            state.watermark = w;
        }
        for (fixed, panes, timers) in restored.keyed::<Part<K, L::Acc, Vec<Pane<L::Acc>>>>()? {
            for (end, start, fired, key, acc) in fixed {
                let window = state.fixed.entry((end, start)).or_default();
                window.fired |= fired;
                window.accs.insert(key, acc);
            }
            state.panes.extend(panes);
            for (time, key) in timers {
                state.timers.set(time, key);
            }
        }
        self.state = state;
        Ok(())
    }

    fn on_end(&mut self, _out: &mut Collector<L::Out>) -> Result<()> {
        if let Some(loud) = self.alarm.end(self.parallelism) {
            self.warn_loud(loud, "");
        }
        Ok(())
    }
}
