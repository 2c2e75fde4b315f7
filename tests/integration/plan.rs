//! `build()` validates once and returns `Error::Plan` for misuse; the plan
//! chains forward edges at equal parallelism.

use brook::core::Error;
use brook::prelude::*;

use crate::support::config;

fn plan_error(flow: Dataflow) -> String {
    match flow.build() {
        Err(Error::Plan(msg)) => msg,
        Err(e) => panic!("expected a plan error, got {e}"),
        Ok(job) => panic!("expected a plan error, got a plan:\n{}", job.describe()),
    }
}

fn numbers(flow: &Dataflow, name: &str) -> Stream<i64> {
    flow.source(name, MemorySource::new((0..10i64).collect()))
}

#[test]
fn an_unconsumed_stream_is_refused() {
    let flow = Dataflow::new("f");
    let s = numbers(&flow, "src");
    s.map("dangling", |v| v + 1);
    s.sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("'dangling' is never consumed"));
}

#[test]
fn a_name_used_twice_is_refused() {
    let flow = Dataflow::new("f");
    numbers(&flow, "same")
        .map("same", |v| v)
        .sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("'same' is used by two nodes"));
}

#[test]
fn parallelism_zero_is_refused() {
    let flow = Dataflow::new("f");
    numbers(&flow, "src")
        .map("m", |v| v)
        .parallelism(0)
        .sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("'m' has parallelism 0"));
    let mut flow = Dataflow::new("f");
    flow.set_parallelism(0);
    numbers(&flow, "src").sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("default parallelism is 0"));
}

#[test]
fn forward_between_different_parallelisms_is_refused() {
    let flow = Dataflow::with_config("f", config(2));
    numbers(&flow, "src")
        .forward()
        .map("m", |v| v)
        .parallelism(3)
        .sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("forward needs equal parallelism"));
}

#[test]
fn more_parallelism_than_a_source_supports_is_refused() {
    let flow = Dataflow::with_config("f", config(2));
    flow.source("iter", MemorySource::from_iterator(0..3i64))
        .parallelism(2)
        .sink("out", CollectSink::new());
    assert!(plan_error(flow).contains("supports at most 1"));
}

#[test]
fn a_dataflow_without_source_or_with_foreign_streams_is_refused() {
    assert!(plan_error(Dataflow::new("empty")).contains("no source"));
    let a = Dataflow::new("a");
    let b = Dataflow::new("b");
    let sa = numbers(&a, "sa");
    let sb = numbers(&b, "sb");
    sa.union("u", &[&sb]).sink("out", CollectSink::new());
    assert!(plan_error(a).contains("another dataflow"));
}

#[test]
fn forward_edges_at_equal_parallelism_are_chained() {
    let build = |chaining: bool| {
        let mut cfg = config(2);
        cfg.chaining = chaining;
        let flow = Dataflow::with_config("f", cfg);
        numbers(&flow, "src")
            .map("a", |v| v)
            .filter("b", |_| true)
            .key_by(|v| *v)
            .map("c", |v| v)
            .sink("out", CollectSink::new());
        flow.build().expect("plan")
    };
    let chained = build(true);
    // src+a+b | c+out (after the hash edge).
    assert_eq!(chained.task_count(), 2, "{}", chained.describe());
    assert!(chained.describe().contains("src -> a -> b"));
    assert!(chained.describe().contains("c -> out <- b (hash)"));
    assert_eq!(build(false).task_count(), 5);
    // A source limited to one instance feeds the next node by rebalance.
    let flow = Dataflow::with_config("f", config(2));
    flow.source("iter", MemorySource::from_iterator(0..3i64))
        .map("m", |v| v)
        .sink("out", CollectSink::new());
    let job = flow.build().expect("plan");
    assert_eq!(job.parallelism_of("iter"), Some(1));
    assert_eq!(job.parallelism_of("m"), Some(2));
    assert!(
        job.describe().contains("m -> out <- iter (rebalance)"),
        "{}",
        job.describe()
    );
}
