//! Starting: unreachable brokers give a clear error in time, or are waited
//! for without a busy loop; refused options and secrets.

use std::time::{Duration, Instant};

use brook_core::{Error, Source, SourceContext};
use futures::StreamExt;

use super::super::{KafkaOptions, KafkaSource, KafkaSourceConfig};
use super::block_on;

/// Nothing listens on port 1 of the loopback address.
const NOWHERE: &str = "127.0.0.1:1";

fn nowhere(startup_timeout: Option<Duration>) -> KafkaSourceConfig {
    KafkaSourceConfig {
        startup_timeout,
        ..KafkaSourceConfig::new(NOWHERE, &["logs"], "g")
    }
}

#[test]
fn unreachable_brokers_fail_in_time_with_a_clear_error() {
    block_on(async {
        let mut source =
            KafkaSource::<u64>::json(nowhere(Some(Duration::from_secs(2)))).expect("source");
        let mut stream = source
            .open(&SourceContext::standalone("kafka", 0, 1))
            .expect("open does no I/O");
        let started = Instant::now();
        let first = tokio::time::timeout(Duration::from_secs(20), stream.next())
            .await
            .expect("gave up in time");
        let waited = started.elapsed();
        let err = match first {
            Some(Err(e)) => e,
            _ => panic!("expected an error"),
        };
        assert!(matches!(err, Error::External { .. }), "{err}");
        let text = err.to_string();
        assert!(
            text.contains(NOWHERE) && text.contains("did not answer"),
            "{text}"
        );
        assert!(
            waited >= Duration::from_millis(1_900),
            "waited only {waited:?}"
        );
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
        // At most one attempt a second: no busy loop, even though the
        // brokers refuse at once.
        let attempts: u32 = text
            .split(" attempts)")
            .next()
            .and_then(|s| s.rsplit('(').next())
            .and_then(|n| n.parse().ok())
            .expect("the error counts attempts");
        assert!((1..=3).contains(&attempts), "{attempts} attempts: {text}");
    });
}

#[test]
fn without_a_timeout_the_source_waits_quietly_and_stops_when_dropped() {
    block_on(async {
        let mut source = KafkaSource::<u64>::json(nowhere(None)).expect("source");
        let mut stream = source
            .open(&SourceContext::standalone("kafka", 0, 1))
            .expect("open");
        let wait = tokio::time::timeout(Duration::from_secs(3), stream.next()).await;
        assert!(wait.is_err(), "still waiting, no error");
        // Dropping the stream stops the wait within one attempt.
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
fn an_option_librdkafka_rejects_is_a_config_error_without_its_value() {
    block_on(async {
        let cfg = KafkaSourceConfig {
            librdkafka_options: KafkaOptions::new().with("no.such.option", "v4lue"),
            ..nowhere(Some(Duration::from_secs(1)))
        };
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        let mut stream = source
            .open(&SourceContext::standalone("kafka", 0, 1))
            .expect("open");
        match stream.next().await {
            Some(Err(Error::Config(msg))) => assert!(msg.contains("no.such.option"), "{msg}"),
            other => panic!(
                "expected a config error, got {:?}",
                other.map(|r| r.map(|_| ()))
            ),
        }
    });
}
