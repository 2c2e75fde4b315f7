//! Shutdown, start-up failures and trickling input: the corners where a
//! runtime hangs, leaks output or names the wrong node.

use std::time::Duration;

use brook::core::Error;
use brook::prelude::*;
use futures::StreamExt as _;

use crate::support::{block_on, config};

/// Cancels from another task while an always-ready source feeds a sink that
/// never waits: the busy tasks must still let the cancellation run.
fn shutdown_from_another_task(rt: tokio::runtime::Runtime, pipelines: usize) {
    let flow = Dataflow::with_config("busy", config(1));
    let mut handles = Vec::new();
    for i in 0..pipelines {
        let sink = CollectSink::new();
        handles.push(sink.handle());
        flow.source(format!("endless-{i}"), MemorySource::from_iterator(0u64..))
            .map(format!("m-{i}"), |v| v)
            .sink(format!("out-{i}"), sink);
    }
    let job = flow.build().expect("plan");
    let token = CancellationToken::new();
    let stopper = token.clone();
    let watched = handles.clone();
    // A starved runtime cannot time itself out: watch it from a thread.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        rt.block_on(async move {
            let mut canceller = tokio::task::JoinSet::new();
            canceller.spawn(async move {
                // Stopped once every pipeline has delivered, so that each
                // source is busy when the token is cancelled.
                while watched.iter().any(|h| h.is_empty()) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                stopper.cancel();
            });
            tokio::time::timeout(Duration::from_secs(30), job.run(token))
                .await
                .expect("shutdown completes")
                .expect("clean end");
            canceller.join_all().await;
        });
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("shutdown reaches the busy tasks");
    assert!(handles.iter().all(|h| !h.is_empty()));
}

#[test]
fn shutdown_reaches_busy_tasks_on_one_thread() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("rt");
    shutdown_from_another_task(rt, 1);
}

#[test]
fn shutdown_reaches_busy_tasks_on_every_worker() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    // Two busy source tasks occupy both workers.
    shutdown_from_another_task(rt, 2);
}

#[derive(Clone)]
struct PanicsInOpen;
impl Operator<i64, i64> for PanicsInOpen {
    fn open(&mut self, _: &OperatorContext) -> Result<()> {
        panic!("boom in open")
    }
    fn process(&mut self, batch: Batch<i64>, out: &mut Collector<i64>) -> Result<()> {
        out.emit_batch(batch);
        Ok(())
    }
}

#[test]
fn a_panic_while_opening_is_an_error_naming_the_node() {
    let flow = Dataflow::with_config("open-panics", config(2));
    flow.source("numbers", MemorySource::new((0..10i64).collect()))
        .process("fragile", PanicsInOpen)
        .sink("out", CollectSink::new());
    let err =
        block_on(flow.build().expect("plan").run(CancellationToken::new())).expect_err("fails");
    assert_eq!(err.node(), Some("fragile"));
    assert!(matches!(err.root(), Error::Panic(m) if m == "boom in open"));
}

/// A sink that cannot open.
struct Unopenable;
struct Never;
impl Sink<i64> for Unopenable {
    type Writer = Never;
    fn open(&mut self, _: &SinkContext) -> Result<Never> {
        Err(Error::Config("no such bucket".into()))
    }
}
impl SinkWriter<i64> for Never {
    async fn write(&mut self, _: Batch<i64>) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_job_that_fails_to_start_has_written_nothing() {
    let flow = Dataflow::with_config("bad-start", config(2));
    let audit = CollectSink::new();
    let h = audit.handle();
    let src = flow.source("numbers", MemorySource::new((0..500i64).collect()));
    src.sink("audit", audit);
    src.map("m", |v| v)
        .sink("late", Unopenable)
        .disable_chaining();
    let err = block_on(async {
        flow.build()
            .expect("plan")
            .start(CancellationToken::new())
            .map(|_| ())
    })
    .expect_err("start fails");
    assert_eq!(
        err.to_string(),
        "node 'late' failed: invalid configuration: no such bucket"
    );
    assert!(h.is_empty(), "the audit sink got {} records", h.len());
}

/// Five records at a time, with pauses: partial batches only.
struct Trickle;
impl Source<i64> for Trickle {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        _: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<i64>> {
        Ok(futures::stream::iter(0..40i64)
            .then(|i| async move {
                tokio::time::sleep(Duration::from_millis(1)).await;
                Ok(SourceEvent::Batch(
                    (i * 5..i * 5 + 5).map(Record::untimed).collect(),
                ))
            })
            .boxed())
    }
    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
}

#[derive(Clone, Default)]
struct Instance(usize);
impl Operator<i64, usize> for Instance {
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.0 = ctx.instance();
        Ok(())
    }
    fn process(&mut self, batch: Batch<i64>, out: &mut Collector<usize>) -> Result<()> {
        let me = self.0;
        out.emit_batch(batch.map(|_| me));
        Ok(())
    }
}

#[test]
fn rebalance_rotates_even_when_input_trickles() {
    let flow = Dataflow::with_config("trickle", config(4));
    let out = CollectSink::new();
    let h = out.handle();
    flow.source("trickle", Trickle)
        .rebalance()
        .process("which", Instance::default())
        .sink("out", out);
    block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("run");
    let got = h.values();
    assert_eq!(got.len(), 200);
    for i in 0..4 {
        let n = got.iter().filter(|&&x| x == i).count();
        assert!(n >= 20, "instance {i} got {n} of 200");
    }
}

#[test]
fn a_panicking_key_function_names_the_node_it_follows() {
    let flow = Dataflow::with_config("key-panics", config(2));
    flow.source("numbers", MemorySource::new((0..100i64).collect()))
        .map("parse", |v| v)
        .key_by(|v: &i64| if *v == 7 { panic!("bad key {v}") } else { *v })
        .map("per-key", |v| v)
        .sink("out", CollectSink::new());
    let err =
        block_on(flow.build().expect("plan").run(CancellationToken::new())).expect_err("fails");
    assert_eq!(err.node(), Some("parse"), "{err}");
    assert!(matches!(err.root(), Error::Panic(m) if m == "bad key 7"));
}

#[test]
fn streams_kept_past_build_do_not_panic() {
    let flow = Dataflow::new("kept");
    let s = flow.source("numbers", MemorySource::new(vec![1i64]));
    s.sink("out", CollectSink::new());
    let _job = flow.build().expect("plan");
    let s = s.parallelism(3).disable_chaining();
    assert_eq!(s.node_name(), "");
}
