//! `assign_timestamps`: event times from the records, and watermarks.
//!
//! Every extracted time is checked before it may move the watermark
//! ([`WatermarkGenerator::try_observe`]): `i64::MIN` (Brook's "no event
//! time" marker) and `i64::MAX` (the end-of-input watermark) are never
//! accepted, and with [`Watermarks::with_max_ahead`] neither is a time
//! further ahead than the bound. A refused record is a bad record: counted in
//! the node's `rejected` counter, reported by a warning (the first one, with
//! its time and why, and again once they are many), and dropped, or sent to
//! a side output when the stream was made with
//! `assign_timestamps_with_rejected`.

use std::sync::Arc;
use std::time::Duration;

use brook_core::metrics::NodeMetrics;
use brook_core::state::{RestoredState, Snapshot};
use brook_core::time::{IdleTracker, ProcessingTimer, Refusal, WatermarkGenerator};
use brook_core::{
    Batch, Collector, EventTime, Operator, OperatorContext, OutputTag, Record, Result, Watermarks,
};

use crate::alarm::{Alarm, Loud};

/// Sets each record's event time from its value and generates watermarks
/// with a [`Watermarks`] strategy, one generator per parallel instance.
///
/// Upstream watermarks are replaced by the generated ones, except the final
/// one at end of input, which passes. With an idle timeout, an instance that
/// gets no records for that long marks itself idle, so it does not hold
/// back the watermark downstream.
///
/// A record whose extracted time the generator refuses (`i64::MIN`,
/// `i64::MAX`, or past the strategy's [`Watermarks::with_max_ahead`] bound)
/// does not move the watermark: it is counted in the node's `rejected`
/// counter and dropped. The node warns once with the first such record's
/// time and why it was refused, and once more, with its counts, if they
/// reach 1 % of its input. To keep such records, use
/// [`StreamExt::assign_timestamps_with_rejected`](crate::StreamExt::assign_timestamps_with_rejected).
#[derive(Clone)]
pub struct AssignTimestamps<F> {
    extract: F,
    strategy: Watermarks,
    interval_ms: i64,
    generator: WatermarkGenerator,
    emitted: EventTime,
    last_emit_ms: i64,
    idle: Option<IdleTracker>,
    timer: ProcessingTimer,
    metrics: Option<Arc<NodeMetrics>>,
    node: Arc<str>,
    parallelism: usize,
    /// Shared by the node's instances (clones of one prototype).
    alarm: Arc<Alarm>,
    /// The side output refused records go to, if asked for.
    rejected: Option<&'static str>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl<F> AssignTimestamps<F> {
    /// Event times from `extract`, watermarks by `strategy`.
    pub fn new(extract: F, strategy: Watermarks) -> Self {
        AssignTimestamps {
            extract,
            strategy,
            interval_ms: millis(strategy.emit_interval()),
            generator: strategy.generator(),
            emitted: EventTime::MIN,
            last_emit_ms: i64::MIN,
            idle: None,
            timer: ProcessingTimer::default(),
            metrics: None,
            node: Arc::from("assign_timestamps"),
            parallelism: 1,
            alarm: Arc::default(),
            rejected: None,
        }
    }

    /// Emits watermarks at most once per `interval` of processing time
    /// (zero: after every batch that advances it), overriding the
    /// strategy's [`Watermarks::with_emit_interval`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval_ms = millis(interval);
        self
    }

    fn emit_due<O>(&mut self, now: i64, out: &mut Collector<O>) {
        let wm = self.generator.current();
        if wm <= self.emitted {
            return;
        }
        if now.saturating_sub(self.last_emit_ms) >= self.interval_ms {
            self.emitted = wm;
            self.last_emit_ms = now;
            out.emit_watermark(wm);
        } else {
            self.timer
                .wake_at(self.last_emit_ms.saturating_add(self.interval_ms));
        }
    }

    fn open_instance(&mut self, ctx: &OperatorContext) {
        self.timer = ctx.processing_timer().clone();
        self.metrics = Some(ctx.metrics_handle());
        self.node = Arc::from(ctx.node_name());
        self.parallelism = ctx.parallelism();
        if let Some(timeout) = self.strategy.idle_timeout() {
            let idle = IdleTracker::new(timeout, self.timer.now_ms());
            self.timer.wake_at(idle.deadline());
            self.idle = Some(idle);
        }
    }

    /// After a batch: the idle tracker, then the watermark if due.
    fn after_batch<O>(&mut self, now: i64, out: &mut Collector<O>) {
        if let Some(idle) = &mut self.idle {
            idle.active(now);
            self.timer.wake_at(idle.deadline());
        }
        self.emit_due(now, out);
    }

    fn tick<O>(&mut self, now_ms: i64, out: &mut Collector<O>) {
        self.emit_due(now_ms, out);
        if let Some(idle) = &mut self.idle {
            if idle.check(now_ms) {
                out.mark_idle();
            } else if !idle.is_idle() {
                self.timer.wake_at(idle.deadline());
            }
        }
    }

    /// Counts and reports refused records: `first` is the first refusal of
    /// the batch.
    fn report(&self, seen: usize, refused: u64, first: Option<(EventTime, Refusal)>) {
        if refused > 0 {
            if let Some(m) = &self.metrics {
                m.add_rejected(refused);
            }
            if let Some((timestamp, why)) = first
                && self.alarm.first()
            {
                tracing::warn!(
                    node = %self.node,
                    timestamp,
                    watermark = self.generator.current(),
                    "node '{}': a record was rejected: {why}. It does not move the watermark; \
                     it is counted in the node's `rejected` counter and goes to the rejected \
                     output if one is used (reported once per node).",
                    self.node,
                );
            }
        }
        if let Some(loud) = self.alarm.count(seen as u64, refused) {
            self.warn_loud(loud, "so far ");
        }
    }

    fn warn_loud(&self, loud: Loud, when: &str) {
        tracing::warn!(
            node = %self.node,
            rejected = loud.bad,
            records = loud.seen,
            "node '{}': {} of {} records ({:.2} %) {when}had an event time that was refused \
             (none, i64::MAX, or too far ahead of the watermark); they are not in event-time \
             results. Check the timestamp extractor and the data.",
            self.node,
            loud.bad,
            loud.seen,
            loud.percent(),
        );
    }

    fn end(&mut self) {
        if let Some(loud) = self.alarm.end(self.parallelism) {
            self.warn_loud(loud, "");
        }
    }
}

impl<F> AssignTimestamps<F> {
    /// Sends the records whose time is refused to the side output named
    /// `name` instead of dropping them (still counting them).
    pub fn rejected_to<T>(mut self, tag: OutputTag<T>) -> Self {
        self.rejected = Some(tag.name());
        self
    }

    /// Sets the event times of `batch`, keeps the accepted records in it
    /// and hands each refused one to `reject`, in order.
    fn stamp<T>(&mut self, batch: Batch<T>, now: i64, mut reject: impl FnMut(Record<T>)) -> Batch<T>
    where
        F: FnMut(&T) -> EventTime,
    {
        let mut records = batch.into_records();
        let seen = records.len();
        let mut first = None;
        let mut refused = 0u64;
        let (extract, generator) = (&mut self.extract, &mut self.generator);
        let refusals = records.extract_if(.., |r| {
            r.timestamp = extract(&r.value);
            match generator.try_observe(r.timestamp, now) {
                Ok(()) => false,
                Err(why) => {
                    first.get_or_insert((r.timestamp, why));
                    true
                }
            }
        });
        for r in refusals {
            refused += 1;
            reject(r);
        }
        self.report(seen, refused, first);
        Batch::from(records)
    }
}

impl<T, F> Operator<T, T> for AssignTimestamps<F>
where
    T: Send + 'static,
    F: FnMut(&T) -> EventTime + Clone + Send + 'static,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.open_instance(ctx);
        Ok(())
    }

    fn process(&mut self, batch: Batch<T>, out: &mut Collector<T>) -> Result<()> {
        // The task's clock: the system's, or one a test drives.
        let now = self.timer.now_ms();
        let batch = match self.rejected {
            Some(name) => {
                let tag = OutputTag::<T>::new(name);
                let mut refused = Vec::new();
                let batch = self.stamp(batch, now, |r| refused.push(r));
                for r in refused {
                    out.emit_side(&tag, r.timestamp, r.value);
                }
                batch
            }
            None => self.stamp(batch, now, drop),
        };
        out.emit_batch(batch);
        self.after_batch(now, out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<T>) -> Result<()> {
        if watermark == EventTime::MAX {
            out.emit_watermark(watermark);
        }
        Ok(())
    }

    /// Instance state: the generator and the watermark emitted.
    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Snapshot::new()
            .instance(&(&self.generator, self.emitted))
            .map(Some)
    }

    /// At another parallelism the splits were dealt anew, so no old
    /// instance's generator is this one's: each takes the one that had
    /// emitted the lowest watermark, which holds time back the most and so
    /// never makes a record late that was not.
    fn restore(&mut self, restored: &RestoredState) -> Result<()> {
        let states = restored.instances::<(WatermarkGenerator, EventTime)>()?;
        if let Some((generator, emitted)) = states.into_iter().min_by_key(|(_, e)| *e) {
            (self.generator, self.emitted) = (generator, emitted);
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: i64, out: &mut Collector<T>) -> Result<()> {
        self.tick(now_ms, out);
        Ok(())
    }

    fn on_end(&mut self, _out: &mut Collector<T>) -> Result<()> {
        self.end();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_log::Warnings;
    use brook_core::TaskContext;
    use brook_core::time::now_ms;

    /// 2100-01-01T00:00:00Z.
    const YEAR_2100: EventTime = 4_102_444_800_000;

    fn times<T>(batch: Batch<T>) -> Vec<EventTime> {
        batch.into_iter().map(|r| r.timestamp).collect()
    }

    fn stamped(
        op: &mut AssignTimestamps<fn(&i64) -> i64>,
        values: &[i64],
    ) -> (Vec<i64>, Option<i64>) {
        let mut out = Collector::default();
        let batch: Batch<i64> = values.iter().copied().map(Record::untimed).collect();
        op.process(batch, &mut out).expect("process");
        (times(out.take()), out.take_watermark())
    }

    fn opened(strategy: Watermarks, ctx: &TaskContext) -> AssignTimestamps<fn(&i64) -> i64> {
        let mut op = AssignTimestamps::new((|v: &i64| *v) as fn(&i64) -> i64, strategy)
            .with_interval(Duration::ZERO);
        Operator::<i64, i64>::open(&mut op, ctx).expect("open");
        op
    }

    #[test]
    fn an_event_from_2100_is_rejected_and_does_not_move_the_watermark() {
        let ctx = TaskContext::standalone("logs.timestamps", 0, 1);
        let strategy =
            Watermarks::bounded(Duration::from_secs(2)).with_max_ahead(Duration::from_secs(3600));
        let mut op = opened(strategy, &ctx);
        let now = now_ms();
        let warnings = Warnings::default();
        let (got, wm) =
            warnings.capture(|| stamped(&mut op, &[now - 9_000, YEAR_2100, now - 8_000]));
        assert_eq!(
            got,
            [now - 9_000, now - 8_000],
            "the 2100 event is not passed on"
        );
        assert_eq!(
            wm,
            Some(now - 8_000 - 2_000 - 1),
            "nor does it move the watermark"
        );
        assert_eq!(ctx.metrics().counters().rejected, 1);
        let (got, _) = stamped(&mut op, &[now - 7_000]);
        assert_eq!(got, [now - 7_000], "later events are on time");
        let lines = warnings.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains(&YEAR_2100.to_string()),
            "names the time: {lines:?}"
        );
        assert!(
            lines[0].contains("logs.timestamps"),
            "names the node: {lines:?}"
        );
    }

    #[test]
    fn the_first_event_is_measured_against_the_wall_clock() {
        let ctx = TaskContext::standalone("ts", 0, 1);
        let strategy =
            Watermarks::bounded(Duration::from_secs(2)).with_max_ahead(Duration::from_secs(3600));
        let mut op = opened(strategy, &ctx);
        let now = now_ms();
        // The future event comes first, before any watermark.
        let (got, wm) = stamped(&mut op, &[YEAR_2100, 1_000, now - 5_000]);
        assert_eq!(
            got,
            [1_000, now - 5_000],
            "an early time does not wedge the instance"
        );
        assert_eq!(wm, Some(now - 5_000 - 2_001));
        assert_eq!(ctx.metrics().counters().rejected, 1);
    }

    #[test]
    fn without_a_bound_a_future_event_moves_the_watermark_as_before() {
        let ctx = TaskContext::standalone("ts", 0, 1);
        let mut op = opened(Watermarks::bounded(Duration::from_secs(2)), &ctx);
        let (got, wm) = stamped(&mut op, &[1_000, YEAR_2100]);
        assert_eq!(got, [1_000, YEAR_2100]);
        assert_eq!(wm, Some(YEAR_2100 - 2_001));
        assert_eq!(ctx.metrics().counters().rejected, 0);
    }

    #[test]
    fn extracted_min_and_max_are_rejected_not_read_as_no_time() {
        let ctx = TaskContext::standalone("ts", 0, 1);
        let mut op = opened(Watermarks::monotonic(), &ctx);
        let warnings = Warnings::default();
        let (got, wm) =
            warnings.capture(|| stamped(&mut op, &[5, EventTime::MIN, EventTime::MAX, 7]));
        assert_eq!(got, [5, 7], "neither reserved time is passed on");
        assert_eq!(wm, Some(6), "i64::MAX did not move the watermark");
        assert_eq!(ctx.metrics().counters().rejected, 2);
        let lines = warnings.lines();
        assert!(
            lines.iter().any(|l| l.contains("no event time")),
            "says what i64::MIN means: {lines:?}"
        );
        // The extremes that are times are accepted.
        let (got, _) = stamped(&mut op, &[brook_core::MAX_EVENT_TIME]);
        assert_eq!(got, [brook_core::MAX_EVENT_TIME]);
    }

    #[test]
    fn rejected_records_go_to_the_side_output_and_the_alarm_is_per_node() {
        const BAD: OutputTag<i64> = OutputTag::new("bad-times");
        let strategy = Watermarks::monotonic().with_max_ahead(Duration::from_secs(60));
        let proto = AssignTimestamps::new((|v: &i64| *v) as fn(&i64) -> i64, strategy)
            .with_interval(Duration::ZERO)
            .rejected_to(BAD);
        let now = now_ms();
        let warnings = Warnings::default();
        warnings.capture(|| {
            // Two instances of one node: clones of one prototype.
            for i in 0..2 {
                let ctx = TaskContext::standalone("src.timestamps", i, 2);
                let mut op = proto.clone();
                op.open(&ctx).expect("open");
                let mut out = Collector::with_side_outputs([BAD.name()]);
                let batch: Batch<i64> = [now, YEAR_2100 + i as i64, now + 1]
                    .into_iter()
                    .map(Record::untimed)
                    .collect();
                op.process(batch, &mut out).expect("process");
                let on_time: Vec<EventTime> = out.take().into_iter().map(|r| r.timestamp).collect();
                assert_eq!(on_time, [now, now + 1]);
                let refused: Vec<(EventTime, i64)> = out
                    .take_side(&BAD)
                    .into_iter()
                    .map(|r| (r.timestamp, r.value))
                    .collect();
                let year_2100 = YEAR_2100 + i as i64;
                assert_eq!(refused, [(year_2100, year_2100)]);
                op.on_end(&mut out).expect("end");
                assert_eq!(ctx.metrics().counters().rejected, 1);
            }
        });
        let lines = warnings.lines();
        let first: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("was rejected"))
            .collect();
        assert_eq!(
            first.len(),
            1,
            "the first rejection, once per node: {lines:?}"
        );
        let loud: Vec<_> = lines
            .iter()
            .filter(|l| l.contains("1 of 3") || l.contains("2 of 6"))
            .collect();
        assert_eq!(
            loud.len(),
            1,
            "a large share, once per node, with counts: {lines:?}"
        );
        assert!(loud[0].contains("'src.timestamps'"), "{lines:?}");
    }

    #[test]
    fn sets_times_and_emits_a_bounded_watermark() {
        let mut op =
            AssignTimestamps::new(|v: &i64| *v, Watermarks::bounded(Duration::from_millis(10)))
                .with_interval(Duration::ZERO);
        op.open(&TaskContext::standalone("ts", 0, 1)).expect("open");
        let mut out = Collector::default();
        let batch: Batch<i64> = [100, 90, 120].into_iter().map(Record::untimed).collect();
        op.process(batch, &mut out).expect("process");
        let times: Vec<_> = out.take().into_iter().map(|r| r.timestamp).collect();
        assert_eq!(times, [100, 90, 120]);
        assert_eq!(out.take_watermark(), Some(120 - 10 - 1));
        // Upstream watermarks are replaced, except the final one.
        op.on_watermark(1_000, &mut out).expect("wm");
        assert_eq!(out.take_watermark(), None);
        op.on_watermark(EventTime::MAX, &mut out).expect("wm");
        assert_eq!(out.take_watermark(), Some(EventTime::MAX));
    }

    #[test]
    fn holds_watermarks_to_the_interval_and_marks_idle() {
        let strategy = Watermarks::monotonic().with_idle_timeout(Duration::from_millis(50));
        let mut op =
            AssignTimestamps::new(|v: &i64| *v, strategy).with_interval(Duration::from_secs(3600));
        op.open(&TaskContext::standalone("ts", 0, 1)).expect("open");
        let mut out = Collector::default();
        op.process(vec![Record::untimed(5)].into(), &mut out)
            .expect("process");
        assert_eq!(
            out.take_watermark(),
            Some(4),
            "the first watermark goes at once"
        );
        op.process(vec![Record::untimed(9)].into(), &mut out)
            .expect("process");
        assert_eq!(
            out.take_watermark(),
            None,
            "the next waits for the interval"
        );
        let later = now_ms() + 3_600_001;
        op.on_processing_time(later, &mut out).expect("tick");
        assert_eq!(out.take_watermark(), Some(8));
        assert!(out.take_idle(), "idle after the timeout");
    }
}
