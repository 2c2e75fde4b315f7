//! The sink: values, keys, headers and partitions read back by a plain
//! consumer; a failed delivery fails the job naming the node.

use std::time::Duration;

use brook_core::{Dataflow, Error, JobConfig, Record};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;

use super::super::{KafkaSink, KafkaSinkConfig, KafkaSource};
use super::{block_on, bounded, header, on_each_cluster, read_plain, run_job};
use brook_connectors::MemorySource;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Event {
    user: String,
    n: u32,
}

fn events() -> Vec<Record<Event>> {
    (0..30)
        .map(|n| {
            Record::new(
                10_000 + i64::from(n),
                Event {
                    user: format!("u{}", n % 3),
                    n,
                },
            )
        })
        .collect()
}

async fn write(sink: KafkaSink<Event>, parallelism: usize) -> brook_core::Result<()> {
    let flow = Dataflow::with_config(
        "kafka-sink-test",
        JobConfig {
            parallelism,
            batch_size: 7,
            channel_capacity: 2,
            chaining: true,
        },
    );
    flow.source("events", MemorySource::from_records(events()))
        .sink("out", sink);
    tokio::time::timeout(
        Duration::from_secs(60),
        flow.build()?.run(Default::default()),
    )
    .await
    .expect("the job hung")
}

#[test]
fn keys_headers_and_partitions_are_read_back_by_a_plain_consumer() {
    block_on(on_each_cluster("sink", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("sink", 3).await;
        let sink = KafkaSink::<Event>::json(KafkaSinkConfig::new(&b, &topic))
            .expect("sink")
            .key(|e| Some(e.user.clone().into_bytes()))
            .headers(|e| vec![("n".to_string(), e.n.to_string().into_bytes())])
            .partitioner(|e, _key, partitions| (e.n % 3) as i32 % partitions);
        write(sink, 2).await.expect("job");
        let (b2, t2) = (b.clone(), topic.clone());
        let messages = tokio::task::spawn_blocking(move || read_plain(&b2, &t2, 3, 30))
            .await
            .expect("reader");
        let mut seen = Vec::new();
        for m in &messages {
            let e: Event = serde_json::from_slice(m.payload().expect("value")).expect("json");
            assert_eq!(m.key(), Some(e.user.as_bytes()));
            assert_eq!(header(m, "n"), Some(e.n.to_string()));
            assert_eq!(m.partition(), (e.n % 3) as i32);
            assert_eq!(m.timestamp().to_millis(), Some(10_000 + i64::from(e.n)));
            seen.push(e.n);
        }
        seen.sort_unstable();
        assert_eq!(seen, (0..30).collect::<Vec<_>>());
        // And the source reads back what the sink wrote.
        let cfg = bounded(&b, &topic, &format!("{topic}-g"));
        let back = run_job(KafkaSource::<Event>::json(cfg).expect("source"), 2)
            .await
            .expect("read back");
        let mut back: Vec<Record<Event>> = back;
        back.sort_by_key(|r| r.value.n);
        assert_eq!(back, events());
    }));
}

#[test]
fn the_file_codecs_serve_kafka_one_record_per_message() {
    use brook_connectors::codec::Csv;
    block_on(async {
        let mock = MockCluster::new(1).expect("mock");
        mock.create_topic("csv", 2, 1).expect("topic");
        let b = mock.bootstrap_servers();
        let csv = Csv::new().has_headers(false).delimiter(b';');
        let sink =
            KafkaSink::<Event>::with_codec(KafkaSinkConfig::new(&b, "csv"), csv).expect("sink");
        write(sink, 2).await.expect("job");
        let b2 = b.clone();
        let messages = tokio::task::spawn_blocking(move || read_plain(&b2, "csv", 2, 30))
            .await
            .expect("reader");
        let mut lines: Vec<_> = messages
            .iter()
            .map(|m| String::from_utf8(m.payload().expect("value").to_vec()).expect("utf8"))
            .collect();
        lines.sort();
        // One row per message, no header and no line break.
        assert_eq!(lines[0], "u0;0");
        assert!(lines.iter().all(|l| !l.contains('\n')), "{lines:?}");
        let source =
            KafkaSource::<Event>::with_codec(bounded(&b, "csv", "csv-g"), csv).expect("source");
        let mut back: Vec<Record<Event>> = run_job(source, 2).await.expect("read back");
        back.sort_by_key(|r| r.value.n);
        assert_eq!(back, events());

        // A codec with a header is refused when the job is built, naming
        // the node.
        let sink = KafkaSink::<Event>::with_codec(KafkaSinkConfig::new(&b, "csv"), Csv::new())
            .expect("sink");
        let err = write(sink, 1).await.expect_err("a header");
        assert!(matches!(err.root(), Error::Config(_)), "{err}");
        assert!(err.to_string().contains("node 'out'"), "{err}");
        let source = KafkaSource::<Event>::with_codec(bounded(&b, "csv", "csv-h"), Csv::new())
            .expect("source");
        let err = run_job(source, 1).await.expect_err("a header");
        assert!(err.to_string().contains("has_headers(false)"), "{err}");
    });
}

#[test]
fn a_failed_delivery_fails_the_job_naming_the_node() {
    block_on(async {
        let mock = MockCluster::new(1).expect("mock");
        mock.create_topic("doomed", 1, 1).expect("topic");
        mock.broker_down(1).expect("down");
        let cfg = KafkaSinkConfig {
            delivery_timeout: Duration::from_millis(1_500),
            ..KafkaSinkConfig::new(mock.bootstrap_servers(), "doomed")
        };
        let sink = KafkaSink::<Event>::json(cfg).expect("sink");
        let err = write(sink, 1).await.expect_err("delivery fails");
        assert_eq!(err.node(), Some("out"), "{err}");
        assert!(matches!(err.root(), Error::External { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains("doomed") && text.contains("delivery"),
            "{text}"
        );
    });
}

#[test]
fn bad_sink_settings_are_config_errors() {
    let refused = KafkaSinkConfig {
        librdkafka_options: super::super::KafkaOptions::new().with("plugin.library.paths", "/x.so"),
        ..KafkaSinkConfig::new("127.0.0.1:9", "t")
    };
    assert!(matches!(
        KafkaSink::<Event>::json(refused),
        Err(Error::Config(_))
    ));
    let empty = KafkaSinkConfig::new("127.0.0.1:9", "");
    assert!(matches!(
        KafkaSink::<Event>::json(empty),
        Err(Error::Config(_))
    ));
}

#[test]
fn an_option_librdkafka_refuses_fails_build_naming_the_node() {
    let cfg = KafkaSinkConfig {
        librdkafka_options: super::super::KafkaOptions::new().with("no.such.property", "1"),
        ..KafkaSinkConfig::new("127.0.0.1:9", "t")
    };
    let sink = KafkaSink::<Event>::json(cfg).expect("brook accepts it; librdkafka decides");
    let flow = brook_core::Dataflow::new("refused");
    flow.source("events", MemorySource::new(Vec::<Event>::new()))
        .sink("out", sink);
    let err = flow.build().expect_err("refused at build");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("node 'out'") && text.contains("no.such.property"),
        "{text}"
    );
}
