//! (b) With a slow sink, the records in flight stay bounded and the source
//! is held back.

use std::time::Duration;

use brook::prelude::*;

use crate::support::{SlowSink, block_on};

#[test]
fn a_slow_sink_holds_the_source_back() {
    let cfg = JobConfig {
        parallelism: 1,
        batch_size: 64,
        channel_capacity: 2,
        chaining: true,
    };
    let flow = Dataflow::with_config("backpressure", cfg);
    flow.source("endless", MemorySource::from_iterator(0u64..))
        .map("double", |v| v * 2)
        .disable_chaining()
        .sink(
            "slow",
            SlowSink {
                delay: Duration::from_millis(5),
            },
        )
        .disable_chaining();
    let job = flow.build().expect("plan");
    assert_eq!(job.task_count(), 3, "{}", job.describe());
    let metrics = job.metrics();
    let token = CancellationToken::new();
    block_on(async {
        let running = job.start(token.clone()).expect("start");
        let mut max_in_flight = 0;
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(25)).await;
            let snap = metrics.snapshot();
            let produced = snap.node("endless").expect("source").total.records_out;
            let consumed = snap.node("slow").expect("sink").total.records_in;
            max_in_flight = max_in_flight.max(produced.saturating_sub(consumed));
            assert!(snap.node("slow").expect("sink").total.queue_len <= 2);
        }
        // Two channels of 2 batches, one buffered and one in hand per task:
        // (2 * 2 + 2 + 3) batches of 64 records.
        assert!(max_in_flight <= 9 * 64, "{max_in_flight} records in flight");
        let snap = metrics.snapshot();
        let produced = snap.node("endless").expect("source").total.records_out;
        // Unchecked, the source would have produced millions by now.
        assert!(
            produced < 50_000,
            "source was not held back: {produced} records"
        );
        assert!(snap.node("endless").expect("source").total.blocked > Duration::ZERO);
        token.cancel();
        running.wait().await
    })
    .expect("graceful shutdown");
    let snap = metrics.snapshot();
    // After shutdown everything produced was drained into the sink.
    assert_eq!(
        snap.node("endless").expect("source").total.records_out,
        snap.node("slow").expect("sink").total.records_in
    );
}
