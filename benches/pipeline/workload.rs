//! The work both sides of the bench do: generate log events, summarise
//! each (map), keep the interesting ones (filter), fold them (sink).

use std::sync::{Arc, Mutex};

use brook::prelude::*;

const MESSAGES: [&str; 8] = [
    "GET /api/v1/orders/42 ok",
    "POST /api/v1/carts served from cache",
    "GET /api/v1/users timeout talking to db",
    "PUT /api/v1/items/7 validation failed",
    "DELETE /api/v1/sessions rate limited",
    "GET /api/v1/search slow upstream",
    "PATCH /api/v1/stock connection reset",
    "GET /api/v1/invoices upstream returned error",
];

/// A log event, as a source would produce it.
#[derive(Clone, Debug)]
pub(crate) struct LogEvent {
    pub(crate) service: u16,
    pub(crate) status: u16,
    pub(crate) latency_ms: f64,
    pub(crate) message: String,
}

/// What the map makes of an event.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    pub(crate) service: u16,
    pub(crate) is_5xx: bool,
    pub(crate) latency_ms: f64,
    pub(crate) words: u32,
}

/// The fold the sink computes.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Totals {
    pub(crate) count: u64,
    pub(crate) errors: u64,
    pub(crate) words: u64,
    pub(crate) service_sum: u64,
    pub(crate) latency: f64,
}

/// Event `i`, deterministic and cheap to make.
pub(crate) fn event(i: u64) -> LogEvent {
    let h = i.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    let status = match h >> 60 {
        0 => 500,
        1 => 404,
        _ => 200,
    };
    LogEvent {
        service: ((h >> 20) % 50) as u16,
        status,
        latency_ms: ((h >> 8) % 100_000) as f64 / 1000.0,
        message: MESSAGES[(h >> 40) as usize % MESSAGES.len()].to_string(),
    }
}

pub(crate) fn summarise(e: LogEvent) -> Summary {
    Summary {
        service: e.service,
        is_5xx: e.status >= 500,
        latency_ms: e.latency_ms,
        words: e.message.split_ascii_whitespace().count() as u32,
    }
}

pub(crate) fn interesting(s: &Summary) -> bool {
    s.is_5xx || s.latency_ms > 50.0
}

impl Totals {
    pub(crate) fn add(&mut self, s: &Summary) {
        self.count += 1;
        self.errors += s.is_5xx as u64;
        self.words += s.words as u64;
        self.service_sum += s.service as u64;
        self.latency += s.latency_ms;
    }
}

/// The hand-written baseline: the same work in one loop.
pub(crate) fn hand_loop(n: u64) -> Totals {
    let mut t = Totals::default();
    for i in 0..n {
        let s = summarise(event(i));
        if interesting(&s) {
            t.add(&s);
        }
    }
    t
}

/// A sink folding summaries into [`Totals`], published at close.
pub(crate) struct FoldSink(pub(crate) Arc<Mutex<Totals>>);
pub(crate) struct FoldWriter(Arc<Mutex<Totals>>, Totals);

impl Sink<Summary> for FoldSink {
    type Writer = FoldWriter;
    fn open(&mut self, _: &SinkContext) -> Result<FoldWriter> {
        Ok(FoldWriter(self.0.clone(), Totals::default()))
    }
}

impl SinkWriter<Summary> for FoldWriter {
    async fn write(&mut self, batch: Batch<Summary>) -> Result<()> {
        batch.values().for_each(|s| self.1.add(s));
        Ok(())
    }
    async fn close(&mut self) -> Result<()> {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        t.count += self.1.count;
        t.errors += self.1.errors;
        t.words += self.1.words;
        t.service_sum += self.1.service_sum;
        t.latency += self.1.latency;
        Ok(())
    }
}

/// source -> map -> filter -> sink at parallelism 1, chained or not.
pub(crate) fn dataflow(n: u64, chaining: bool, totals: Arc<Mutex<Totals>>) -> Job {
    let config = JobConfig {
        parallelism: 1,
        chaining,
        ..JobConfig::default()
    };
    let flow = Dataflow::with_config("bench", config);
    flow.source("events", MemorySource::from_iterator((0..n).map(event)))
        .map("summarise", summarise)
        .filter("interesting", interesting)
        .sink("fold", FoldSink(totals));
    flow.build().expect("valid dataflow")
}

/// The overhead floor: the same shape of pipeline over bare integers, where
/// the work per record is a few instructions and everything else is Brook.
pub(crate) fn trivial_loop(n: u64) -> u64 {
    (0..n)
        .map(|v| v.wrapping_mul(3) + 1)
        .filter(|v| v % 4 != 0)
        .fold(0, u64::wrapping_add)
}

/// A sink summing integers, published at close.
pub(crate) struct SumSink(pub(crate) Arc<Mutex<u64>>);
pub(crate) struct SumWriter(Arc<Mutex<u64>>, u64);

impl Sink<u64> for SumSink {
    type Writer = SumWriter;
    fn open(&mut self, _: &SinkContext) -> Result<SumWriter> {
        Ok(SumWriter(self.0.clone(), 0))
    }
}

impl SinkWriter<u64> for SumWriter {
    async fn write(&mut self, batch: Batch<u64>) -> Result<()> {
        self.1 = batch.values().fold(self.1, |a, v| a.wrapping_add(*v));
        Ok(())
    }
    async fn close(&mut self) -> Result<()> {
        let mut t = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *t = t.wrapping_add(self.1);
        Ok(())
    }
}

/// The trivial pipeline, chained at parallelism 1.
pub(crate) fn trivial_dataflow(n: u64, sum: Arc<Mutex<u64>>) -> Job {
    let config = JobConfig {
        parallelism: 1,
        ..JobConfig::default()
    };
    let flow = Dataflow::with_config("floor", config);
    flow.source("numbers", MemorySource::from_iterator(0..n))
        .map("times-3-plus-1", |v: u64| v.wrapping_mul(3) + 1)
        .filter("not-div-4", |v| v % 4 != 0)
        .sink("sum", SumSink(sum));
    flow.build().expect("valid dataflow")
}
