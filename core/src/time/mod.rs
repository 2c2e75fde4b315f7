//! Time: event-time watermarks and processing-time wake-ups.
//!
//! Event time is the `i64` milliseconds since the epoch that every record
//! carries; `i64::MIN` is reserved for "no event time"
//! ([`NO_TIMESTAMP`](crate::NO_TIMESTAMP)) and `i64::MAX` for the end of
//! input, so a record's time lies in
//! [`MIN_EVENT_TIME`](crate::MIN_EVENT_TIME)`..=`[`MAX_EVENT_TIME`](crate::MAX_EVENT_TIME). A *watermark* `w` is a promise that no record with an event time
//! at or below `w` will follow, so windows ending at or before `w + 1` can
//! fire. Watermarks are generated per source instance (or per partition) by a
//! [`WatermarkGenerator`] made from a [`Watermarks`] strategy, flow through
//! the dataflow in order with the data, and every operator forwards the
//! minimum over its inputs. An input that has been *idle* for the strategy's
//! idle timeout stops holding that minimum back until it sends again. End of
//! input is the watermark [`EventTime::MAX`](crate::EventTime), so every
//! window fires.
//!
//! Processing time is the wall clock, in the same unit, read from a
//! [`Clock`]: every task context has one
//! ([`TaskContext::clock`](crate::TaskContext::clock)), the system clock
//! unless a test gives it a [`ManualClock`] or tokio's clock
//! ([`Clock::tokio`], which `tokio::time::pause` stops). Operators ask for a
//! call at a processing time through the [`ProcessingTimer`] of their
//! context, on the same clock; the task that runs them calls
//! [`Operator::on_processing_time`](crate::Operator::on_processing_time) once
//! that time has come. [`now_ms`] is the system clock itself.

mod clock;
mod timer;
mod watermarks;

pub use clock::{Clock, ClockGuard, ManualClock, now_ms};
pub use timer::ProcessingTimer;
pub use watermarks::{
    DEFAULT_WATERMARK_INTERVAL, IdleTracker, Refusal, WatermarkGenerator, Watermarks,
};
