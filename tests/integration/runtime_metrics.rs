//! Per-node counters, read after and while a job runs.

use brook::prelude::*;

use crate::support::{block_on, config};

#[test]
fn counters_add_up_per_node() {
    let flow = Dataflow::with_config("metrics", config(2));
    let out = CollectSink::new();
    flow.source("numbers", MemorySource::new((0..1000i64).collect()))
        .filter("even", |v| v % 2 == 0)
        .key_by(|v| *v % 7)
        .map("square", |v| v * v)
        .sink("out", out);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("run");
    let snap = metrics.snapshot();
    let node = |n: &str| snap.node(n).expect("node").total;
    assert_eq!(node("numbers").records_out, 1000);
    assert_eq!(node("even").records_in, 1000);
    assert_eq!(node("even").records_out, 500);
    assert_eq!(node("square").records_in, 500);
    assert_eq!(node("out").records_in, 500);
    assert_eq!(snap.node("square").expect("node").parallelism, 2);
    assert_eq!(snap.node("square").expect("node").instances.len(), 2);
    assert!(node("even").batches_in >= 1000 / 16);
    assert_eq!(node("square").queue_len, 0, "queues drain by the end");
    assert_eq!(
        snap.node("even").expect("n").task,
        snap.node("numbers").expect("n").task
    );
}

#[test]
fn graceful_shutdown_drains_an_endless_source() {
    let flow = Dataflow::with_config("shutdown", config(2));
    let out = CollectSink::new();
    let h = out.handle();
    flow.source("endless", MemorySource::from_iterator(0u64..))
        .map("m", |v| v)
        .sink("out", out);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    let watched = metrics.clone();
    let token = CancellationToken::new();
    let stopper = token.clone();
    block_on(async move {
        let running = job.start(token).expect("start");
        // Stopped once the source has produced, however busy the machine.
        while watched
            .snapshot()
            .node("endless")
            .expect("n")
            .total
            .records_out
            == 0
        {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        stopper.cancel();
        running.wait().await
    })
    .expect("ends cleanly");
    let produced = metrics
        .snapshot()
        .node("endless")
        .expect("n")
        .total
        .records_out;
    assert!(produced > 0);
    assert_eq!(
        h.len() as u64,
        produced,
        "everything produced reached the sink"
    );
    let mut v = h.values();
    v.sort();
    assert!(
        v.iter().enumerate().all(|(i, x)| *x == i as u64),
        "a prefix of the input, once each"
    );
}
