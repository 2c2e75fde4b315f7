//! Starting: a missing topic, unreachable brokers and refused options fail
//! `build()` (where the partitions are listed) with a clear error, in
//! time; without a timeout, building and instances wait for the brokers
//! without a busy loop; secrets.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use brook_core::{Dataflow, Error, RetryHint, Source, open_instance};
use futures::StreamExt;
use rdkafka::mocking::MockCluster;

use super::super::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use super::{block_on, on_each_cluster};
use brook_connectors::CollectSink;

/// Nothing listens on port 1 of the loopback address.
const NOWHERE: &str = "127.0.0.1:1";

fn nowhere(startup_timeout: Option<Duration>) -> KafkaSourceConfig {
    KafkaSourceConfig {
        startup_timeout,
        ..KafkaSourceConfig::new(NOWHERE, &["logs"], "g")
    }
}

/// Builds a dataflow reading `source` in a node named "kafka".
fn build<S: Source<u64>>(source: S) -> brook_core::Result<()> {
    let flow = Dataflow::new("kafka-test");
    flow.source("kafka", source)
        .sink("collect", CollectSink::<u64>::new());
    flow.build().map(drop)
}

#[test]
fn unreachable_brokers_fail_the_build_in_time_with_a_clear_error() {
    let source = KafkaSource::<u64>::json(nowhere(Some(Duration::from_secs(2)))).expect("source");
    let started = Instant::now();
    let err = build(source).expect_err("the brokers do not answer");
    let waited = started.elapsed();
    assert_eq!(err.node(), Some("kafka"), "{err}");
    assert!(
        matches!(
            err.root(),
            Error::External {
                retry: RetryHint::Retriable,
                ..
            }
        ),
        "{err}"
    );
    let text = err.to_string();
    assert!(
        text.contains("kafka source 'kafka'")
            && text.contains(NOWHERE)
            && text.contains("did not answer"),
        "{text}"
    );
    assert!(
        waited >= Duration::from_millis(1_900),
        "waited only {waited:?}"
    );
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    // At most one attempt a second: no busy loop, even though the brokers
    // refuse at once.
    let attempts: u32 = text
        .split(" attempts)")
        .next()
        .and_then(|s| s.rsplit('(').next())
        .and_then(|n| n.parse().ok())
        .expect("the error counts attempts");
    assert!((1..=3).contains(&attempts), "{attempts} attempts: {text}");
}

#[test]
fn a_missing_topic_fails_the_build_naming_it() {
    block_on(on_each_cluster("missing-topic", |c| async move {
        let missing = format!("no-such-topic-{}", std::process::id());
        let cfg = KafkaSourceConfig {
            startup_timeout: Some(Duration::from_secs(20)),
            ..KafkaSourceConfig::new(c.bootstrap(), &[missing.as_str()], "g")
        };
        let source = KafkaSource::<u64>::json(cfg).expect("source");
        let err = build(source).expect_err("the topic does not exist");
        assert_eq!(err.node(), Some("kafka"), "{err}");
        assert!(
            matches!(
                err.root(),
                Error::External {
                    retry: RetryHint::Fatal,
                    ..
                }
            ),
            "{err}"
        );
        // Brokers either leave the topic out of their answer or list it
        // with an error (as the mock cluster does).
        let text = err.to_string();
        assert!(
            text.contains(&format!("topic '{missing}'"))
                && (text.contains("does not exist") || text.contains("UNKNOWN_TOPIC_OR_PART")),
            "{text}"
        );
    }));
}

#[test]
fn without_a_timeout_the_build_waits_quietly_for_the_brokers() {
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("waited", 2, 1).expect("topic");
    cluster.broker_down(1).expect("broker down");
    let cfg = KafkaSourceConfig {
        startup_timeout: None,
        ..KafkaSourceConfig::new(cluster.bootstrap_servers(), &["waited"], "g")
    };
    let mut source = KafkaSource::<u64>::json(cfg).expect("source");
    let (done, finished) = mpsc::channel();
    let planner = std::thread::spawn(move || {
        let planned = source.plan(&brook_core::PlanContext::standalone("kafka", 1));
        let _ = done.send(planned.map(|splits| splits.len()));
    });
    assert!(
        finished.recv_timeout(Duration::from_secs(3)).is_err(),
        "still waiting, no error"
    );
    cluster.broker_up(1).expect("broker up");
    let planned = finished
        .recv_timeout(Duration::from_secs(30))
        .expect("planned once the brokers answer");
    assert_eq!(planned.expect("plan"), 2);
    planner.join().expect("planner");
}

#[test]
fn without_a_timeout_an_instance_waits_quietly_and_stops_when_dropped() {
    block_on(async {
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic("waited", 1, 1).expect("topic");
        let cfg = KafkaSourceConfig {
            startup_timeout: None,
            ..KafkaSourceConfig::new(cluster.bootstrap_servers(), &["waited"], "g")
        };
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        // Planned while the broker answers; it goes away before the
        // instance starts.
        let mut stream = open_instance(&mut source, "kafka", 0, 1).expect("open");
        cluster.broker_down(1).expect("broker down");
        let wait = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
        assert!(wait.is_err(), "still waiting, no error");
        // Dropping the stream stops the wait within one attempt (else the
        // runtime, waiting for its blocking threads, would not shut down).
        drop(stream);
    });
}

#[test]
fn refused_options_and_secrets() {
    let cfg = KafkaSourceConfig {
        librdkafka_options: KafkaOptions::new().with("sasl.kerberos.kinit.cmd", "touch /tmp/pwned"),
        ..KafkaSourceConfig::new(NOWHERE, &["logs"], "g")
    };
    let e = KafkaSource::<u64>::json(cfg).expect_err("refused");
    assert!(matches!(e, Error::Config(_)), "{e}");
    let cfg = KafkaSourceConfig {
        librdkafka_options: KafkaOptions::new()
            .with("security.protocol", "sasl_plaintext")
            .with("sasl.mechanism", "PLAIN")
            .with("sasl.username", "brook")
            .with("sasl.password", "s3cr3t-value"),
        ..KafkaSourceConfig::new(NOWHERE, &["logs"], "g")
    };
    let source = KafkaSource::<u64>::json(cfg.clone()).expect("source");
    let shown = format!("{source:?} {cfg:?}");
    assert!(!shown.contains("s3cr3t-value"), "{shown}");
    assert!(shown.contains("sasl.mechanism"), "{shown}");
}

#[test]
fn an_option_librdkafka_rejects_is_a_config_error_of_the_build_without_its_value() {
    let cfg = KafkaSourceConfig {
        librdkafka_options: KafkaOptions::new().with("no.such.option", "v4lue"),
        ..nowhere(Some(Duration::from_secs(1)))
    };
    let source = KafkaSource::<u64>::json(cfg).expect("source");
    let started = Instant::now();
    match build(source) {
        Err(Error::Config(msg)) => {
            assert!(
                msg.contains("node 'kafka'") && msg.contains("no.such.option"),
                "{msg}"
            );
            assert!(!msg.contains("v4lue"), "{msg}");
        }
        other => panic!("expected a config error, got {:?}", other.err()),
    }
    // Refused before any attempt to reach the brokers.
    assert!(started.elapsed() < Duration::from_millis(900));
}
