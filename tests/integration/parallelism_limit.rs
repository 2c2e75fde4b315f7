//! Extreme parallelism (issue 16, item 8): `build()` refuses a default or a
//! node parallelism above `MAX_PARALLELISM` with a plan error that says the
//! limit, instead of a job that takes gigabytes and minutes.

use brook::core::{Error, MAX_PARALLELISM};
use brook::prelude::*;

use crate::support::{block_on, config};

fn plan_error(flow: Dataflow) -> String {
    match flow.build() {
        Err(Error::Plan(msg)) => msg,
        Err(e) => panic!("expected a plan error, got {e}"),
        Ok(job) => panic!("expected a plan error, got a plan:\n{}", job.describe()),
    }
}

/// source → key_by → map → sink: a key exchange, whose cost grows with the
/// square of the parallelism.
fn keyed(flow: &Dataflow) {
    flow.source("src", MemorySource::new((0..1_000u64).collect()))
        .key_by(|v: &u64| *v % 7)
        .map("m", |v| v + 1)
        .sink("out", CollectSink::new());
}

#[test]
fn a_default_parallelism_above_the_limit_is_refused_at_build() {
    for p in [MAX_PARALLELISM + 1, 4_000, 10_000] {
        let flow = Dataflow::with_config("huge", config(p));
        keyed(&flow);
        let msg = plan_error(flow);
        assert!(
            msg.contains(&format!("default parallelism is {p}")),
            "{msg}"
        );
        assert!(msg.contains(&format!("at most {MAX_PARALLELISM}")), "{msg}");
    }
}

#[test]
fn a_node_parallelism_above_the_limit_is_refused_at_build() {
    let flow = Dataflow::with_config("huge-node", config(2));
    flow.source("src", MemorySource::new((0..10u64).collect()))
        .map("wide", |v| v)
        .parallelism(10_000)
        .sink("out", CollectSink::new());
    let msg = plan_error(flow);
    assert!(msg.contains("node 'wide' has parallelism 10000"), "{msg}");
    assert!(msg.contains(&format!("at most {MAX_PARALLELISM}")), "{msg}");

    let flow = Dataflow::with_config("huge-sink", config(2));
    flow.source("src", MemorySource::new((0..10u64).collect()))
        .sink("out", CollectSink::new())
        .parallelism(MAX_PARALLELISM + 1);
    assert!(plan_error(flow).contains("node 'out' has parallelism"));
}

#[test]
fn the_limit_itself_is_accepted() {
    // Running it is left to the benches: at 1024 even a small keyed job
    // takes seconds in a debug build.
    let flow = Dataflow::with_config("at-the-limit", config(MAX_PARALLELISM));
    keyed(&flow);
    let job = flow.build().expect("MAX_PARALLELISM is allowed");
    let plan = job.describe();
    assert!(plan.contains(&format!("x{MAX_PARALLELISM}")), "{plan}");
}

#[test]
fn a_wide_keyed_job_under_the_limit_runs() {
    let flow = Dataflow::with_config("wide", config(64));
    let sink = CollectSink::new();
    let got = sink.handle();
    flow.source("src", MemorySource::new((0..2_000u64).collect()))
        .key_by(|v: &u64| *v % 97)
        .map("m", |v| v + 1)
        .sink("out", sink);
    block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("job");
    let mut values = got.values();
    values.sort_unstable();
    assert_eq!(values, (1..=2_000u64).collect::<Vec<_>>());
}
