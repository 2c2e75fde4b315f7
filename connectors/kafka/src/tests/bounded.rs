//! Where bounded reads end: partitions that look empty, topics whose
//! partitions share numbers (an end-of-partition event names only the
//! number), and topics still being written to.
//!
//! A broker that lists end offsets too low (tansu 0.6) cannot be played by
//! the mock cluster, whose ListOffsets always answers the leader's end; the
//! real-broker variants of these tests and of the others cover it.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use rdkafka::producer::FutureRecord;

use super::super::{KafkaSource, KafkaSourceConfig};
use super::{
    block_on, bounded, on_each_cluster, produce_numbers, producer, read_instance, run_job, values,
};

#[test]
fn empty_partitions_and_topics_sharing_partition_numbers_end() {
    block_on(on_each_cluster("bounded-shared-numbers", |c| async move {
        let b = c.bootstrap();
        let full = c.topic("full", 2).await;
        let empty = c.topic("empty", 2).await;
        produce_numbers(&b, &full, 2, 0, 30).await;
        let pattern = format!("{}|{}", regex::escape(&full), regex::escape(&empty));
        for p in [1, 2, 3] {
            let cfg = KafkaSourceConfig {
                topics: Vec::new(),
                topic_pattern: Some(pattern.clone()),
                ..bounded(&b, &full, &format!("{full}-g{p}"))
            };
            let source = KafkaSource::<u64>::json(cfg).expect("source");
            let mut got: Vec<u64> = run_job(source, p)
                .await
                .expect("job")
                .into_iter()
                .map(|r| r.value)
                .collect();
            got.sort_unstable();
            assert_eq!(got, (0..30).collect::<Vec<_>>(), "parallelism {p}");
        }
        // A topic with nothing in it: each instance ends once its fetches
        // confirm that.
        let cfg = bounded(&b, &empty, &format!("{empty}-g"));
        let mut source = KafkaSource::<u64>::json(cfg).expect("source");
        let events = read_instance(&mut source, 0, 1).await.expect("read");
        assert!(values(events).is_empty());
    }));
}

#[test]
fn a_bounded_read_ends_while_the_topic_is_written_to() {
    block_on(on_each_cluster("bounded-live", |c| async move {
        let b = c.bootstrap();
        let topic = c.topic("live", 2).await;
        produce_numbers(&b, &topic, 2, 0, 40).await;
        let stop = AtomicBool::new(false);
        let writer = async {
            let p = producer(&b);
            let mut n: u64 = 1_000;
            while !stop.load(Relaxed) {
                let value = n.to_string();
                let record = FutureRecord::<[u8], [u8]>::to(&topic)
                    .partition((n % 2) as i32)
                    .payload(value.as_bytes());
                p.send(record, Duration::from_secs(10))
                    .await
                    .map_err(|(e, _)| e)
                    .expect("delivered");
                n += 1;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            n - 1_000
        };
        let reader = async {
            let cfg = bounded(&b, &topic, &format!("{topic}-g"));
            let source = KafkaSource::<u64>::json(cfg).expect("source");
            let records = run_job(source, 1).await.expect("job");
            // The writer goes on a little after the read ended.
            tokio::time::sleep(Duration::from_millis(200)).await;
            stop.store(true, Relaxed);
            records
        };
        let (written, records) = futures::join!(writer, reader);
        let mut got: Vec<u64> = records.into_iter().map(|r| r.value).collect();
        got.sort_unstable();
        // Everything there at start, maybe a few written just after, and
        // then the read ends although writes go on.
        assert!(
            got.iter().take(40).copied().eq(0..40),
            "{:?}",
            &got[..got.len().min(50)]
        );
        let late = got.len() - 40;
        assert!(
            late < written as usize,
            "read {late} of the {written} late messages"
        );
    }));
}
