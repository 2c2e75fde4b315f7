//! Each partition's consumer lag reaches the source's metrics (the job's
//! `/metrics` and `/api/job` show it as the source's backlog per split),
//! from librdkafka's statistics.

use std::time::Duration;

use brook_core::{
    Batch, CancellationToken, Collector, Dataflow, JobConfig, Operator, Result, Sink, SinkContext,
    SinkWriter,
};

use super::super::KafkaSource;
use super::{block_on, bounded, on_each_cluster, produce_numbers};

/// Sleeps on every batch, so that the topic stays ahead of the job.
#[derive(Clone)]
struct Slow;

impl Operator<u64, u64> for Slow {
    fn process(&mut self, batch: Batch<u64>, out: &mut Collector<u64>) -> Result<()> {
        std::thread::sleep(Duration::from_millis(20));
        out.emit_batch(batch);
        Ok(())
    }
}

#[derive(Clone)]
struct Discard;

impl Sink<u64> for Discard {
    type Writer = Discard;

    fn open(&mut self, _ctx: &SinkContext) -> Result<Discard> {
        Ok(Discard)
    }
}

impl SinkWriter<u64> for Discard {
    async fn write(&mut self, _batch: Batch<u64>) -> Result<()> {
        Ok(())
    }
}

#[test]
fn the_consumer_lag_of_each_partition_is_in_the_source_metrics() {
    block_on(on_each_cluster("lag", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("lag", 2).await;
        produce_numbers(&b, &topic, 2, 0, 20_000).await;
        let flow = Dataflow::with_config(
            "lag",
            JobConfig {
                parallelism: 1,
                batch_size: 100,
                channel_capacity: 2,
                chaining: true,
            },
        );
        let source =
            KafkaSource::<u64>::json(bounded(&b, &topic, &format!("{topic}-g"))).expect("source");
        flow.source("kafka", source)
            .process("slow", Slow)
            .sink("out", Discard);
        let job = flow.build().expect("build");
        let metrics = job.metrics();
        let running = job.start(CancellationToken::new()).expect("start");
        let mut seen = Vec::new();
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            let backlog = metrics
                .snapshot()
                .node("kafka")
                .expect("node")
                .backlog
                .clone();
            if backlog.iter().any(|(_, lag)| *lag > 0) {
                seen = backlog;
                break;
            }
        }
        running.shutdown();
        running.wait().await.expect("the job stops");
        let splits: Vec<&str> = seen.iter().map(|(s, _)| s.as_str()).collect();
        assert!(
            splits.contains(&format!("{topic}/0").as_str())
                || splits.contains(&format!("{topic}/1").as_str()),
            "no lag by partition: {seen:?}"
        );
        let total: i64 = seen.iter().map(|(_, lag)| lag).sum();
        assert!(total > 0 && total <= 20_000, "{seen:?}");
    }));
}
