//! `assign_timestamps`: event times from the records, and watermarks.

use std::time::Duration;

use brook_core::state;
use brook_core::time::{IdleTracker, ProcessingTimer, WatermarkGenerator, now_ms};
use brook_core::{Batch, Collector, EventTime, Operator, OperatorContext, Result, Watermarks};

/// Sets each record's event time from its value and generates watermarks
/// with a [`Watermarks`] strategy, one generator per parallel instance.
///
/// Upstream watermarks are replaced by the generated ones, except the final
/// one at end of input, which passes. With an idle timeout, an instance that
/// gets no records for that long marks itself idle, so it does not hold
/// back the watermark downstream.
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
}

impl<F> AssignTimestamps<F> {
    /// Event times from `extract`, watermarks by `strategy`.
    pub fn new(extract: F, strategy: Watermarks) -> Self {
        AssignTimestamps {
            extract,
            strategy,
            interval_ms: strategy.emit_interval().as_millis() as i64,
            generator: strategy.generator(),
            emitted: EventTime::MIN,
            last_emit_ms: i64::MIN,
            idle: None,
            timer: ProcessingTimer::default(),
        }
    }

    /// Emits watermarks at most once per `interval` of processing time
    /// (zero: after every batch that advances it), overriding the
    /// strategy's [`Watermarks::with_emit_interval`].
    pub fn with_interval(mut self, interval: Duration) -> Self {
        self.interval_ms = interval.as_millis() as i64;
        self
    }

    fn emit_due<T>(&mut self, now: i64, out: &mut Collector<T>) {
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
}

impl<T, F> Operator<T, T> for AssignTimestamps<F>
where
    T: Send + 'static,
    F: FnMut(&T) -> EventTime + Clone + Send + 'static,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.timer = ctx.processing_timer().clone();
        if let Some(timeout) = self.strategy.idle_timeout() {
            let idle = IdleTracker::new(timeout, now_ms());
            self.timer.wake_at(idle.deadline());
            self.idle = Some(idle);
        }
        Ok(())
    }

    fn process(&mut self, mut batch: Batch<T>, out: &mut Collector<T>) -> Result<()> {
        for r in batch.records_mut() {
            r.timestamp = (self.extract)(&r.value);
            self.generator.observe(r.timestamp);
        }
        out.emit_batch(batch);
        let now = now_ms();
        if let Some(idle) = &mut self.idle {
            idle.active(now);
            self.timer.wake_at(idle.deadline());
        }
        self.emit_due(now, out);
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Collector<T>) -> Result<()> {
        if watermark == EventTime::MAX {
            out.emit_watermark(watermark);
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Vec<u8>>> {
        state::encode(&(&self.generator, self.emitted)).map(Some)
    }

    fn restore(&mut self, snapshot: &[u8]) -> Result<()> {
        (self.generator, self.emitted) = state::decode(snapshot)?;
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: i64, out: &mut Collector<T>) -> Result<()> {
        self.emit_due(now_ms, out);
        if let Some(idle) = &mut self.idle {
            if idle.check(now_ms) {
                out.mark_idle();
            } else if !idle.is_idle() {
                self.timer.wake_at(idle.deadline());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::{Record, TaskContext};

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
