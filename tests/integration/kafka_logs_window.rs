//! The logs-window query over a Kafka topic on rdkafka's mock cluster: the
//! fixture's lines keyed by service over 4 partitions, read by 1, 2 and 4
//! source instances with per-partition watermarks, give the exact answer.

use std::time::Duration;

use brook::kafka::rdkafka::ClientConfig;
use brook::kafka::rdkafka::mocking::MockCluster;
use brook::kafka::rdkafka::producer::{FutureProducer, FutureRecord};
use brook::kafka::{KafkaSource, KafkaSourceConfig, StartPosition};
use brook::prelude::*;
use brook_workload::logs::{self, LogEvent};

use crate::logs_window::{assert_same, expected_from_pyarrow, fixture, sort};
use crate::support::{block_on, config};

#[test]
fn the_query_over_a_partitioned_topic_gives_the_exact_answer() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    let brokers = cluster.bootstrap_servers();
    cluster.create_topic("logs", 4, 1).expect("topic");
    let lines = std::fs::read_to_string(fixture("logs_3k.jsonl")).expect("fixture");
    block_on(async {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("producer");
        let sends = lines.lines().map(|line| {
            let event: LogEvent = serde_json::from_str(line).expect("event");
            let producer = producer.clone();
            async move {
                let record = FutureRecord::to("logs").key(&event.service).payload(line);
                producer.send(record, Duration::from_secs(10)).await
            }
        });
        for sent in futures::future::join_all(sends).await {
            sent.map_err(|(e, _)| e).expect("produced");
        }
    });
    let want = expected_from_pyarrow();
    for (i, p) in [1, 2, 4].into_iter().enumerate() {
        let mut cfg = KafkaSourceConfig::new(&brokers, &["logs"], format!("logs-window-{i}"));
        cfg.start = StartPosition::Earliest;
        cfg.bounded = true;
        let source = KafkaSource::<LogEvent>::json(cfg)
            .expect("source")
            .event_time(|e| e.ts)
            .watermarks(Watermarks::bounded(logs::MAX_OUT_OF_ORDERNESS));
        let flow = Dataflow::with_config("kafka-logs-window", config(p));
        let sink = CollectSink::new();
        let rows = sink.handle();
        logs::window_stats_timed(&flow.source("logs", source)).sink("out", sink);
        let job = flow.build().expect("plan");
        let metrics = job.metrics();
        block_on(job.run(CancellationToken::new())).expect("job");
        let late = metrics.snapshot().node("stats").map(|n| n.total.late);
        assert_eq!(
            late,
            Some(0),
            "parallelism {p}: per-partition watermarks make nothing late"
        );
        assert_same(
            &sort(rows.values()),
            &want,
            &format!("kafka, parallelism {p}"),
        );
    }
}
