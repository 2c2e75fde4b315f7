//! Keyed process functions, as Flink's `KeyedProcessFunction`: per-key state
//! and timers in event time and processing time.
//!
//! ```
//! use brook_core::prelude::*;
//! use brook_core::state::ValueState;
//! use brook_operators::keyed::{KeyedContext, KeyedProcessExt, KeyedProcessFunction, Timer};
//!
//! /// Emits a key's running total once it has been quiet for 10 s of event time.
//! #[derive(Clone)]
//! struct QuietTotal;
//!
//! impl KeyedProcessFunction<String, (String, u64), (String, u64)> for QuietTotal {
//!     type State = (ValueState<u64>, ValueState<i64>);
//!
//!     fn process_element(
//!         &mut self,
//!         value: (String, u64),
//!         ctx: &mut KeyedContext<'_, String, Self::State, (String, u64)>,
//!     ) -> Result<()> {
//!         let due = ctx.timestamp() + 10_000;
//!         let (total, timer) = ctx.state();
//!         *total.get_or_insert_with(|| 0) += value.1;
//!         timer.update(due);
//!         ctx.register_event_time_timer(due);
//!         Ok(())
//!     }
//!
//!     fn on_timer(
//!         &mut self,
//!         timer: Timer,
//!         ctx: &mut KeyedContext<'_, String, Self::State, (String, u64)>,
//!     ) -> Result<()> {
//!         let (total, due) = ctx.state();
//!         if due.value() == Some(&timer.time) {
//!             let total = total.value().copied().unwrap_or(0);
//!             let key = ctx.key().clone();
//!             ctx.emit((key, total));
//!             ctx.clear_state();
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # fn build(s: Stream<(String, u64)>) {
//! s.key_by(|(k, _)| k.clone()).keyed_process("quiet-total", QuietTotal);
//! # }
//! ```

mod context;
pub(crate) mod operator;
#[cfg(test)]
mod tests;

pub use context::{KeyedContext, TimeDomain, Timer};
pub use operator::{KeyedProcessExt, KeyedProcessFunction};
