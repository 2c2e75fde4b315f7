//! `dedup`: drops records whose id was already seen within a time horizon.

use std::hash::Hash;
use std::sync::Arc;
use std::time::Duration;

use rustc_hash::FxHashMap;
use serde::Serialize;
use serde::de::DeserializeOwned;

use brook_core::metrics::NodeMetrics;
use brook_core::state::{KeyGroups, RestoredState, Snapshot, TimerQueue};
use brook_core::time::ProcessingTimer;
use brook_core::{
    Batch, Collector, Data, Error, EventTime, NO_TIMESTAMP, Operator, OperatorContext, Result,
};

use crate::keyed::TimeDomain;

/// Drops every record whose id was already seen within `horizon`: the first
/// record of an id passes, and the id is remembered until `horizon` after
/// that record's time. Memory holds only the ids seen within the horizon
/// (plus the watermark's lag, in event time).
///
/// Runs on a stream keyed by the id (use [`StreamExt::dedup`], which keys
/// it), so all records of an id meet in one instance. Dropped duplicates are
/// counted in the node's `dropped` counter.
///
/// In event time (the default), an id expires when the watermark passes
/// its first time plus the horizon, so the result does not depend on
/// processing speed; records need event times. In processing time, it
/// expires by the task's clock
/// ([`TaskContext::clock`](brook_core::TaskContext::clock), the wall clock
/// unless a test set another).
///
/// [`StreamExt::dedup`]: crate::StreamExt::dedup
pub struct Dedup<T, Id> {
    id: Arc<dyn Fn(&T) -> Id + Send + Sync>,
    horizon_ms: i64,
    domain: TimeDomain,
    state: DedupState<Id>,
    clock: ProcessingTimer,
    metrics: Option<Arc<NodeMetrics>>,
}

/// A dedup operator's state: the ids it remembers and when each expires.
/// It checkpoints the ids with their expiry, by key group (the ids are
/// the stream's keys).
#[derive(Clone)]
struct DedupState<Id> {
    seen: FxHashMap<Id, i64>,
    expiry: TimerQueue<Id>,
}

impl<T, Id: Clone> Clone for Dedup<T, Id> {
    fn clone(&self) -> Self {
        Dedup {
            id: self.id.clone(),
            horizon_ms: self.horizon_ms,
            domain: self.domain,
            state: self.state.clone(),
            clock: self.clock.clone(),
            metrics: self.metrics.clone(),
        }
    }
}

impl<T, Id> Dedup<T, Id> {
    /// Drops records whose `id` was seen within `horizon` of event time.
    pub fn new(id: impl Fn(&T) -> Id + Send + Sync + 'static, horizon: Duration) -> Self {
        Dedup {
            id: Arc::new(id),
            horizon_ms: i64::try_from(horizon.as_millis()).unwrap_or(i64::MAX),
            domain: TimeDomain::EventTime,
            state: DedupState {
                seen: FxHashMap::default(),
                expiry: TimerQueue::default(),
            },
            clock: ProcessingTimer::default(),
            metrics: None,
        }
    }

    /// Measures the horizon in processing time (the task's clock, the wall
    /// clock in a job) instead of in event time.
    pub fn in_processing_time(mut self) -> Self {
        self.domain = TimeDomain::ProcessingTime;
        self
    }
}

impl<T, Id: Hash + Eq + Clone> Dedup<T, Id> {
    /// Forgets the ids whose horizon ended at or before `now`.
    fn expire(&mut self, now: i64) {
        while let Some((at, id)) = self.state.expiry.pop_due(now) {
            if self.state.seen.get(&id) == Some(&at) {
                self.state.seen.remove(&id);
            }
        }
    }

    /// The number of ids remembered.
    pub fn remembered(&self) -> usize {
        self.state.seen.len()
    }
}

impl<T, Id> Operator<T, T> for Dedup<T, Id>
where
    T: Data,
    Id: Hash + Eq + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        if self.horizon_ms <= 0 {
            return Err(Error::Config("dedup horizon must be at least 1 ms".into()));
        }
        self.clock = ctx.processing_timer().clone();
        self.metrics = Some(ctx.metrics_handle());
        Ok(())
    }

    fn process(&mut self, mut batch: Batch<T>, out: &mut Collector<T>) -> Result<()> {
        let now = match self.domain {
            TimeDomain::ProcessingTime => self.clock.now_ms(),
            TimeDomain::EventTime => EventTime::MIN,
        };
        let before = batch.len();
        let mut error = None;
        batch.records_mut().retain(|r| {
            let time = match self.domain {
                TimeDomain::ProcessingTime => now,
                TimeDomain::EventTime if r.timestamp == NO_TIMESTAMP => {
                    error.get_or_insert_with(|| {
                        Error::Config(
                            "dedup in event time got a record without an event time: call \
                             assign_timestamps upstream or use Dedup::in_processing_time"
                                .into(),
                        )
                    });
                    return false;
                }
                TimeDomain::EventTime => r.timestamp,
            };
            let id = (self.id)(&r.value);
            if self.state.seen.contains_key(&id) {
                return false;
            }
            let expires = time.saturating_add(self.horizon_ms);
            self.state.expiry.set(expires, id.clone());
            self.state.seen.insert(id, expires);
            true
        });
        if let Some(e) = error {
            return Err(e);
        }
        if let Some(m) = &self.metrics {
            m.add_dropped((before - batch.len()) as u64);
        }
        if self.domain == TimeDomain::ProcessingTime
            && let Some(t) = self.state.expiry.next_time()
        {
            self.clock.wake_at(t);
        }
        out.emit_batch(batch);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<T>) -> Result<()> {
        if self.domain == TimeDomain::EventTime {
            self.expire(watermark);
        }
        out.emit_watermark(watermark);
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: i64, _out: &mut Collector<T>) -> Result<()> {
        if self.domain == TimeDomain::ProcessingTime {
            self.expire(now_ms);
            if let Some(t) = self.state.expiry.next_time() {
                self.clock.wake_at(t);
            }
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        let mut groups: KeyGroups<Vec<(&Id, i64)>> = KeyGroups::default();
        for (id, &expires) in &self.state.seen {
            groups.of(id).push((id, expires));
        }
        Snapshot::new().keyed(groups).map(Some)
    }

    fn restore(&mut self, restored: &RestoredState) -> Result<()> {
        let mut seen = FxHashMap::default();
        let mut expiry = TimerQueue::default();
        for group in restored.keyed::<Vec<(Id, i64)>>()? {
            for (id, expires) in group {
                expiry.set(expires, id.clone());
                seen.insert(id, expires);
            }
        }
        self.state = DedupState { seen, expiry };
        // The restored ids expire on time even if no record comes.
        if self.domain == TimeDomain::ProcessingTime
            && let Some(t) = self.state.expiry.next_time()
        {
            self.clock.wake_at(t);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::time::ManualClock;
    use brook_core::{Record, TaskContext};

    fn ids(out: &mut Collector<(u32, i64)>) -> Vec<u32> {
        out.take().into_iter().map(|r| r.value.0).collect()
    }

    #[test]
    fn drops_repeats_within_the_horizon_and_forgets_after_it() {
        let ctx = TaskContext::standalone("dedup", 0, 1);
        let mut op = Dedup::new(|v: &(u32, i64)| v.0, Duration::from_millis(100));
        op.open(&ctx).expect("open");
        let mut out = Collector::default();
        let batch = |evs: &[(u32, i64)]| -> Batch<(u32, i64)> {
            evs.iter().map(|&(id, t)| Record::new(t, (id, t))).collect()
        };
        op.process(
            batch(&[(1, 0), (2, 10), (1, 50), (3, 60), (2, 90)]),
            &mut out,
        )
        .expect("process");
        assert_eq!(ids(&mut out), [1, 2, 3]);
        assert_eq!(ctx.metrics().counters().dropped, 2);
        op.on_watermark(99, &mut out).expect("wm");
        assert_eq!(op.remembered(), 3, "id 1 expires at 0 + 100, not before");
        op.on_watermark(100, &mut out).expect("wm");
        assert_eq!(op.remembered(), 2, "id 1 forgotten; 2 and 3 remain");
        op.process(batch(&[(1, 120), (2, 105)]), &mut out)
            .expect("process");
        assert_eq!(ids(&mut out), [1], "1 passes again, 2 is still remembered");
        op.on_watermark(EventTime::MAX, &mut out).expect("wm");
        assert_eq!(op.remembered(), 0, "memory is bounded by the horizon");
    }

    #[test]
    fn in_processing_time_ids_expire_when_the_task_clock_passes_the_horizon() {
        let manual = ManualClock::new(10_000);
        let ctx = TaskContext::standalone("dedup", 0, 1).with_clock(manual.clock());
        let timer = ctx.processing_timer();
        let mut op =
            Dedup::new(|v: &(u32, i64)| v.0, Duration::from_millis(100)).in_processing_time();
        op.open(&ctx).expect("open");
        let mut out = Collector::default();
        // Records without event times: processing time needs none.
        let untimed = |ids: &[u32]| -> Batch<(u32, i64)> {
            ids.iter().map(|&id| Record::untimed((id, 0))).collect()
        };
        // What the task does when it wakes.
        let tick = |op: &mut Dedup<(u32, i64), u32>, out: &mut Collector<(u32, i64)>| {
            let now = timer.take_due()?;
            op.on_processing_time(now, out).expect("tick");
            Some(now)
        };
        op.process(untimed(&[1, 2, 1]), &mut out).expect("process");
        assert_eq!(ids(&mut out), [1, 2]);
        assert_eq!(timer.requested(), Some(10_100), "wake when 1 and 2 expire");
        manual.advance(Duration::from_millis(60));
        op.process(untimed(&[3, 2]), &mut out).expect("process");
        assert_eq!(ids(&mut out), [3], "2 is still remembered at 10_060");
        manual.advance(Duration::from_millis(39));
        assert_eq!(tick(&mut op, &mut out), None, "nothing expires at 10_099");
        assert_eq!(op.remembered(), 3);
        manual.advance(Duration::from_millis(1));
        assert_eq!(tick(&mut op, &mut out), Some(10_100));
        assert_eq!(op.remembered(), 1, "1 and 2 forgotten at 10_100; 3 remains");
        assert_eq!(timer.requested(), Some(10_160), "wake again when 3 expires");
        op.process(untimed(&[1, 2, 3]), &mut out).expect("process");
        assert_eq!(ids(&mut out), [1, 2], "1 and 2 pass again, 3 does not");
        assert_eq!(ctx.metrics().counters().dropped, 3);
    }

    #[test]
    fn restored_ids_ask_the_task_to_wake_when_they_expire() {
        let manual = ManualClock::new(10_000);
        let ctx = TaskContext::standalone("dedup", 0, 1).with_clock(manual.clock());
        let mut op =
            Dedup::new(|v: &(u32, i64)| v.0, Duration::from_millis(100)).in_processing_time();
        op.open(&ctx).expect("open");
        let mut out = Collector::default();
        op.process(vec![Record::untimed((1, 0))].into(), &mut out)
            .expect("process");
        let bytes = op.snapshot().expect("snapshot").expect("stateful");
        // A new instance, as after a restart: no record comes, yet 1 must
        // expire on time.
        let fresh = TaskContext::standalone("dedup", 0, 1).with_clock(manual.clock());
        let mut back =
            Dedup::new(|v: &(u32, i64)| v.0, Duration::from_millis(100)).in_processing_time();
        back.open(&fresh).expect("open");
        assert_eq!(fresh.processing_timer().requested(), None);
        back.restore(&bytes.into()).expect("restore");
        assert_eq!(fresh.processing_timer().requested(), Some(10_100));
    }

    #[test]
    fn state_survives_a_snapshot_and_event_time_is_required() {
        let ctx = TaskContext::standalone("dedup", 0, 1);
        let mut op = Dedup::new(|v: &(u32, i64)| v.0, Duration::from_secs(1));
        op.open(&ctx).expect("open");
        let mut out = Collector::default();
        op.process(vec![Record::new(5, (7, 5))].into(), &mut out)
            .expect("process");
        let bytes = op.snapshot().expect("snapshot").expect("stateful");
        let mut back = Dedup::new(|v: &(u32, i64)| v.0, Duration::from_secs(1));
        back.open(&ctx).expect("open");
        back.restore(&bytes.into()).expect("restore");
        out.take();
        back.process(vec![Record::new(6, (7, 6))].into(), &mut out)
            .expect("process");
        assert!(out.is_empty(), "7 was seen before the snapshot");
        let err = back
            .process(vec![Record::untimed((8, 0))].into(), &mut out)
            .expect_err("no event time");
        assert!(err.to_string().contains("in_processing_time"), "{err}");
    }
}
