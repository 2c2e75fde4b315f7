//! Tests of the Kafka source and sink on rdkafka's in-process mock cluster,
//! and, when `BROOK_KAFKA_BROKERS` is set (for example by
//! `scripts/kafka-broker.sh start`), the same tests against that broker.
//! Every address is on 127.0.0.1.

mod bad_messages;
mod bounded;
mod checkpoints;
mod consume;
mod lag;
mod real_broker;
mod sink;
mod startup;
mod transactions;

use std::future::Future;
use std::io::Write as _;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::time::Duration;

use brook_core::{Batch, Data, Dataflow, JobConfig, Record, Result, Source, SourceEvent};
use futures::StreamExt;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders, OwnedMessage};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::KafkaSourceConfig;
use brook_connectors::CollectSink;

/// The environment variable naming a real broker to test against.
pub(super) const BROKERS_ENV: &str = "BROOK_KAFKA_BROKERS";

/// A cluster to test on.
pub(super) enum Cluster {
    Mock(MockCluster<'static, DefaultProducerContext>),
    Real(String),
}

impl Cluster {
    pub(super) fn bootstrap(&self) -> String {
        match self {
            Cluster::Mock(m) => m.bootstrap_servers(),
            Cluster::Real(b) => b.clone(),
        }
    }

    pub(super) fn is_mock(&self) -> bool {
        matches!(self, Cluster::Mock(_))
    }

    /// Creates a topic with a name unique to this run.
    pub(super) async fn topic(&self, base: &str, partitions: i32) -> String {
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!("{base}-{}-{}", std::process::id(), N.fetch_add(1, Relaxed));
        match self {
            Cluster::Mock(m) => m.create_topic(&name, partitions, 1).expect("mock topic"),
            Cluster::Real(b) => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", b)
                    .create()
                    .expect("admin client");
                let topic = NewTopic::new(&name, partitions, TopicReplication::Fixed(1));
                let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
                let results = admin
                    .create_topics([&topic], &opts)
                    .await
                    .expect("create topic");
                for r in results {
                    r.expect("topic created");
                }
            }
        }
        name
    }
}

/// Runs `test` on the mock cluster, then on the real broker if one is set;
/// says plainly (past the test harness's capture) when that variant is
/// skipped.
pub(super) async fn on_each_cluster<F, Fut>(name: &str, test: F)
where
    F: Fn(Cluster) -> Fut,
    Fut: Future<Output = ()>,
{
    test(Cluster::Mock(MockCluster::new(1).expect("mock cluster"))).await;
    match std::env::var(BROKERS_ENV) {
        Ok(brokers) if !brokers.trim().is_empty() => {
            test(Cluster::Real(brokers.trim().to_string())).await;
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "kafka test '{name}': real-broker variant SKIPPED ({BROKERS_ENV} is not set; \
                 see scripts/kafka-broker.sh)"
            );
        }
    }
}

/// A producer for test messages.
pub(super) fn producer(bootstrap: &str) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer")
}

/// One test message.
pub(super) struct Msg<'a> {
    pub(super) partition: i32,
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
    pub(super) timestamp: i64,
    pub(super) headers: &'a [(&'a str, &'a [u8])],
}

/// Produces messages and waits for every delivery.
pub(super) async fn produce(bootstrap: &str, topic: &str, msgs: &[Msg<'_>]) {
    let p = producer(bootstrap);
    let mut futures = Vec::new();
    for m in msgs {
        let mut r = FutureRecord::<[u8], [u8]>::to(topic)
            .partition(m.partition)
            .timestamp(m.timestamp);
        if let Some(k) = m.key {
            r = r.key(k);
        }
        if let Some(v) = m.value {
            r = r.payload(v);
        }
        if !m.headers.is_empty() {
            let h = m.headers.iter().fold(OwnedHeaders::new(), |h, (k, v)| {
                h.insert(Header {
                    key: k,
                    value: Some(*v),
                })
            });
            r = r.headers(h);
        }
        futures.push(p.send_result(r).map_err(|(e, _)| e).expect("queued"));
    }
    for f in futures {
        f.await
            .expect("delivery")
            .map_err(|(e, _)| e)
            .expect("delivered");
    }
}

/// Produces `n` JSON numbers `first..first + n`, round-robin over
/// `partitions`, with timestamp `1_000 + value`.
pub(super) async fn produce_numbers(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    first: u64,
    n: u64,
) {
    let values: Vec<String> = (first..first + n).map(|v| v.to_string()).collect();
    let msgs: Vec<Msg<'_>> = values
        .iter()
        .enumerate()
        .map(|(i, v)| Msg {
            partition: (i as i32) % partitions,
            key: None,
            value: Some(v.as_bytes()),
            timestamp: 1_000 + (first + i as u64) as i64,
            headers: &[],
        })
        .collect();
    produce(bootstrap, topic, &msgs).await;
}

/// A bounded source config reading `topic` from the start, in a group of
/// its own.
pub(super) fn bounded(bootstrap: &str, topic: &str, group: &str) -> KafkaSourceConfig {
    KafkaSourceConfig {
        bounded: true,
        start: super::StartPosition::Earliest,
        startup_timeout: Some(Duration::from_secs(20)),
        ..KafkaSourceConfig::new(bootstrap, &[topic], group)
    }
}

/// Runs `source` in a job at `parallelism` and returns what it read.
pub(super) async fn run_job<T: Data, S: Source<T>>(
    source: S,
    parallelism: usize,
) -> Result<Vec<Record<T>>> {
    let flow = Dataflow::with_config(
        "kafka-test",
        JobConfig {
            parallelism,
            batch_size: 16,
            channel_capacity: 2,
            chaining: true,
        },
    );
    let sink = CollectSink::new();
    let out = sink.handle();
    flow.source("kafka", source).sink("collect", sink);
    let job = flow.build()?;
    tokio::time::timeout(Duration::from_secs(60), job.run(Default::default()))
        .await
        .expect("the job hung")?;
    Ok(out.records())
}

/// Reads every event of one standalone instance of `source` to its end.
pub(super) async fn read_instance<T: Send + 'static, S: Source<T>>(
    source: &mut S,
    instance: usize,
    parallelism: usize,
) -> Result<Vec<SourceEvent<T>>> {
    let mut stream = brook_core::open_instance(source, "kafka", instance, parallelism)?;
    let mut events = Vec::new();
    let read = async {
        while let Some(e) = stream.next().await {
            events.push(e?);
        }
        Ok::<(), brook_core::Error>(())
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("the source hung")?;
    Ok(events)
}

/// The values of the batches among `events`.
pub(super) fn values<T>(events: Vec<SourceEvent<T>>) -> Vec<T> {
    events
        .into_iter()
        .filter_map(SourceEvent::into_batch)
        .flat_map(Batch::into_iter)
        .map(|r| r.value)
        .collect()
}

/// Reads `n` messages of `topic` from its start with a plain consumer.
pub(super) fn read_plain(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    n: usize,
) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "plain-reader")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while out.len() < n && std::time::Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(m.detach()),
            Some(Err(e)) => panic!("plain consumer: {e}"),
            None => {}
        }
    }
    assert_eq!(out.len(), n, "messages read back from {topic}");
    out
}

/// The value of header `name` of a message, as text.
pub(super) fn header(m: &OwnedMessage, name: &str) -> Option<String> {
    use rdkafka::message::Headers;
    let h = m.headers()?;
    h.iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}

/// Runs a test body on a two-worker runtime.
pub(super) fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// Asserts that `err` is the sink's fatal error for a fenced producer,
/// naming transactional id `tid`; returns its text.
pub(super) fn assert_fenced(err: &brook_core::Error, tid: &str) -> String {
    assert!(
        matches!(
            err,
            brook_core::Error::External {
                retry: brook_core::RetryHint::Fatal,
                ..
            }
        ),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains(tid) && text.contains("fenced") && text.contains("another incarnation"),
        "{text}"
    );
    text
}

/// After a commit was fenced: the sink's writer refuses to go on past the
/// transaction that did not commit, and the sink committed nothing.
pub(super) async fn assert_stops_after_fence<W>(writer: &mut W, sink: &crate::KafkaSink<u64>)
where
    W: brook_core::SinkWriter<u64>,
{
    let next = Batch::from(vec![Record::new(1, 99u64)]);
    let err = writer.write(next).await.expect_err("the writer stops");
    assert!(err.to_string().contains("did not commit"), "{err}");
    assert!(
        !sink
            .transactions()
            .events()
            .iter()
            .any(|e| matches!(e, crate::txn::TxnEvent::Committed { .. })),
        "nothing committed"
    );
}
