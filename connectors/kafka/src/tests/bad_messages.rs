//! Bad messages: fail, drop (counted) and dead-letter (raw message with
//! headers naming where it came from and why).

use brook_connectors::{BadRecordPolicy, DeadLetter};
use brook_core::{Error, SourceContext};
use futures::TryStreamExt;
use rdkafka::message::Message;

use super::super::{
    BadMessagePolicy, DLQ_ERROR_HEADER, DLQ_OFFSET_HEADER, DLQ_PARTITION_HEADER, DLQ_TOPIC_HEADER,
    KafkaSource, KafkaSourceConfig,
};
use super::{Msg, block_on, bounded, header, on_each_cluster, produce, read_plain, values};

/// Produces, to partition 0: 1, "oops" (offset 1), 2, a tombstone (offset
/// 3), 3. The bad ones have a key and a header.
async fn produce_mixed(bootstrap: &str, topic: &str) {
    let h: &[(&str, &[u8])] = &[("origin", b"test")];
    let msg = |value: Option<&'static [u8]>, key: Option<&'static [u8]>| Msg {
        partition: 0,
        key,
        value,
        timestamp: 5_000,
        headers: h,
    };
    let msgs = [
        msg(Some(b"1"), None),
        msg(Some(b"oops"), Some(b"k1")),
        msg(Some(b"2"), None),
        msg(None, Some(b"k3")),
        msg(Some(b"3"), None),
    ];
    produce(bootstrap, topic, &msgs).await;
}

#[test]
fn fail_names_topic_partition_and_offset() {
    block_on(on_each_cluster("bad-fail", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("bad-fail", 1).await;
        produce_mixed(&b, &topic).await;
        let cfg = bounded(&b, &topic, &format!("{topic}-g"));
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        let ctx = SourceContext::standalone("kafka", 0, 1);
        let err = brook_core::open_in_context(&mut source, &ctx)
            .expect("open")
            .try_collect::<Vec<_>>()
            .await
            .expect_err("a bad message fails the source");
        match err {
            Error::BadRecord { location, reason } => {
                assert_eq!(location, format!("{topic}/0@1"));
                assert!(!reason.is_empty());
            }
            e => panic!("expected a bad record, got {e}"),
        }
    }));
}

#[test]
fn drop_skips_and_counts_bad_messages() {
    block_on(on_each_cluster("bad-drop", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("bad-drop", 1).await;
        produce_mixed(&b, &topic).await;
        let cfg = KafkaSourceConfig {
            on_bad_message: BadMessagePolicy::Drop,
            ..bounded(&b, &topic, &format!("{topic}-g"))
        };
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        let ctx = SourceContext::standalone("kafka", 0, 1);
        let events: Vec<_> = brook_core::open_in_context(&mut source, &ctx)
            .expect("open")
            .try_collect()
            .await
            .expect("read");
        assert_eq!(values(events), vec![1, 2, 3]);
        assert_eq!(ctx.metrics().counters().dropped, 2);
    }));
}

#[test]
fn dead_letters_carry_the_raw_message_and_where_it_came_from() {
    block_on(on_each_cluster("bad-dlq", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("bad-dlq", 1).await;
        let dlq = c.topic("bad-dlq-dead", 1).await;
        produce_mixed(&b, &topic).await;
        let cfg = KafkaSourceConfig {
            on_bad_message: BadMessagePolicy::DeadLetter { topic: dlq.clone() },
            ..bounded(&b, &topic, &format!("{topic}-g"))
        };
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        let ctx = SourceContext::standalone("kafka", 0, 1);
        let events: Vec<_> = brook_core::open_in_context(&mut source, &ctx)
            .expect("open")
            .try_collect()
            .await
            .expect("read");
        assert_eq!(values(events), vec![1, 2, 3]);
        assert_eq!(ctx.metrics().counters().dead_lettered, 2);
        let (b2, dlq2) = (b.clone(), dlq.clone());
        let dead = tokio::task::spawn_blocking(move || read_plain(&b2, &dlq2, 1, 2))
            .await
            .expect("reader");
        assert_eq!(dead[0].payload(), Some(&b"oops"[..]));
        assert_eq!(dead[0].key(), Some(&b"k1"[..]));
        assert_eq!(dead[1].payload(), None, "a tombstone stays one");
        assert_eq!(dead[1].key(), Some(&b"k3"[..]));
        for (m, offset) in dead.iter().zip(["1", "3"]) {
            assert_eq!(header(m, DLQ_TOPIC_HEADER).as_deref(), Some(topic.as_str()));
            assert_eq!(header(m, DLQ_PARTITION_HEADER).as_deref(), Some("0"));
            assert_eq!(header(m, DLQ_OFFSET_HEADER).as_deref(), Some(offset));
            assert!(header(m, DLQ_ERROR_HEADER).is_some_and(|e| !e.is_empty()));
            assert_eq!(
                header(m, "origin").as_deref(),
                Some("test"),
                "original headers kept"
            );
            assert_eq!(m.timestamp().to_millis(), Some(5_000));
        }
    }));
}

#[test]
fn any_sink_takes_the_dead_letters_of_a_kafka_source() {
    block_on(on_each_cluster("bad-any", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("bad-any", 1).await;
        produce_mixed(&b, &topic).await;
        let letters = brook_connectors::CollectSink::<DeadLetter>::new();
        let got = letters.handle();
        let mut source = KafkaSource::<u64>::json(bounded(&b, &topic, &format!("{topic}-g")))
            .expect("source")
            .on_bad_message(BadRecordPolicy::dead_letter(letters));
        let ctx = SourceContext::standalone("kafka", 0, 1);
        let events: Vec<_> = brook_core::open_in_context(&mut source, &ctx)
            .expect("open")
            .try_collect()
            .await
            .expect("read");
        assert_eq!(values(events), vec![1, 2, 3]);
        let dead = got.values();
        assert_eq!(dead.len(), 2);
        assert_eq!(
            (dead[0].source.as_str(), dead[0].partition, dead[0].offset),
            (topic.as_str(), Some(0), 1)
        );
        assert_eq!(dead[0].raw, "oops");
        assert_eq!(dead[0].value.as_deref(), Some(&b"oops"[..]));
        assert_eq!(dead[0].key.as_deref(), Some(&b"k1"[..]));
        assert!(!dead[0].reason.is_empty());
        assert_eq!((dead[1].offset, dead[1].value.as_deref()), (3, None));
    }));
}

#[test]
fn a_file_source_dead_letters_to_a_kafka_topic() {
    block_on(on_each_cluster("bad-file", |c| async move {
        let b = c.bootstrap();
        let dlq = c.topic("bad-file-dead", 1).await;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("n.jsonl");
        std::fs::write(&path, "1\n{oops\n2\n").expect("write");
        let sink = crate::KafkaDeadLetterSink::new(b.clone(), dlq.clone());
        let mut source = brook_connectors::file::JsonLinesSource::<u64>::new(&path)
            .on_bad_line(BadRecordPolicy::dead_letter(sink));
        let ctx = SourceContext::standalone("file", 0, 1);
        let events: Vec<_> = brook_core::open_in_context(&mut source, &ctx)
            .expect("open")
            .try_collect()
            .await
            .expect("read");
        assert_eq!(values(events), vec![1, 2]);
        let (b2, dlq2) = (b.clone(), dlq.clone());
        let dead = tokio::task::spawn_blocking(move || read_plain(&b2, &dlq2, 1, 1))
            .await
            .expect("reader");
        assert_eq!(
            dead[0].payload(),
            Some(&b"{oops"[..]),
            "the line, as it was"
        );
        let file = path.display().to_string();
        assert_eq!(
            header(&dead[0], DLQ_TOPIC_HEADER).as_deref(),
            Some(file.as_str())
        );
        assert_eq!(
            header(&dead[0], crate::DLQ_LINE_HEADER).as_deref(),
            Some("2")
        );
        assert_eq!(header(&dead[0], DLQ_OFFSET_HEADER).as_deref(), Some("2"));
        assert_eq!(header(&dead[0], DLQ_PARTITION_HEADER), None);
    }));
}
