//! (c) An erroring closure, a panicking one, a failing sink: each ends the
//! job with an error naming the node, never a hang.

use brook::core::Error;
use brook::prelude::*;

use crate::support::{block_on, config};

fn run(flow: Dataflow) -> Result<()> {
    block_on(async {
        flow.build()
            .expect("plan")
            .run(CancellationToken::new())
            .await
    })
}

#[test]
fn an_erroring_closure_fails_the_job_naming_the_node() {
    for (p, chaining) in [(1, true), (2, true), (2, false)] {
        let mut cfg = config(p);
        cfg.chaining = chaining;
        let flow = Dataflow::with_config("errors", cfg);
        flow.source("numbers", MemorySource::new((0..1000i64).collect()))
            .map("inc", |v| v + 1)
            .try_map("parse", |v: i64| {
                if v == 500 {
                    Err(format!("cannot parse {v}"))
                } else {
                    Ok(v)
                }
            })
            .sink("out", CollectSink::new());
        let err = run(flow).expect_err("the job fails");
        assert_eq!(err.node(), Some("parse"), "{err}");
        assert_eq!(err.to_string(), "node 'parse' failed: cannot parse 500");
    }
}

#[test]
fn a_panicking_closure_fails_the_job_naming_the_node() {
    for (p, chaining) in [(1, true), (3, true), (3, false)] {
        let mut cfg = config(p);
        cfg.chaining = chaining;
        let flow = Dataflow::with_config("panics", cfg);
        flow.source("numbers", MemorySource::new((0..1000i64).collect()))
            .map("explode", |v| {
                if v == 777 { panic!("bad value {v}") } else { v }
            })
            .filter("all", |_| true)
            .sink("out", CollectSink::new());
        let err = run(flow).expect_err("the job fails");
        assert_eq!(err.node(), Some("explode"), "{err}");
        assert!(
            matches!(err.root(), Error::Panic(m) if m == "bad value 777"),
            "{err}"
        );
    }
}

/// A sink that fails, or panics, on its third batch.
struct Failing {
    panic: bool,
}
struct FailingWriter {
    panic: bool,
    seen: usize,
}
impl Sink<i64> for Failing {
    type Writer = FailingWriter;
    fn open(&mut self, _: &SinkContext) -> Result<FailingWriter> {
        Ok(FailingWriter {
            panic: self.panic,
            seen: 0,
        })
    }
}
impl SinkWriter<i64> for FailingWriter {
    async fn write(&mut self, _batch: Batch<i64>) -> Result<()> {
        self.seen += 1;
        match (self.seen, self.panic) {
            (3, true) => panic!("sink exploded"),
            (3, false) => Err(Error::External {
                source: "disk full".into(),
                retry: brook::core::RetryHint::Fatal,
            }),
            _ => Ok(()),
        }
    }
}

#[test]
fn a_failing_or_panicking_sink_fails_the_job_naming_the_sink() {
    for panic in [false, true] {
        let flow = Dataflow::with_config("sink-fails", config(2));
        flow.source("numbers", MemorySource::from_iterator(0i64..))
            .map("id", |v| v)
            .sink("writer", Failing { panic })
            .disable_chaining();
        let err = run(flow).expect_err("the job fails");
        assert_eq!(err.node(), Some("writer"), "{err}");
    }
}

/// A source whose stream fails after one batch.
struct BrokenSource;
impl Source<i64> for BrokenSource {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        _: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<i64>> {
        use futures::StreamExt;
        let items = vec![
            Ok(SourceEvent::Batch((0..10).map(Record::untimed).collect())),
            Err(Error::BadRecord {
                location: "input:2".into(),
                reason: "truncated".into(),
            }),
        ];
        Ok(futures::stream::iter(items).boxed())
    }
}

#[test]
fn a_failing_source_fails_the_job_naming_the_source() {
    let flow = Dataflow::with_config("source-fails", config(2));
    flow.source("broken", BrokenSource)
        .sink("out", CollectSink::new());
    let err = run(flow).expect_err("the job fails");
    assert_eq!(
        err.to_string(),
        "node 'broken' failed: bad record at input:2: truncated"
    );
}
