//! The source in a job with checkpoints: a job dropped mid-read (as a crash
//! would end it) and built again resumes at the checkpoint's offsets, not
//! the group's, and every message reaches a two-phase sink exactly once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use brook_core::{
    Batch, CancellationToken, CheckpointConfig, CheckpointId, Dataflow, JobConfig, JobOutcome,
    Result, Sink, SinkContext, SinkWriter,
};
use rdkafka::mocking::MockCluster;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::super::KafkaSource;
use super::{block_on, bounded, produce_numbers};

/// What the sink published.
#[derive(Debug, Default)]
struct Published {
    values: Vec<u64>,
    /// Written after the last checkpoint; published by `finish`.
    last: Vec<u64>,
    commits: Vec<CheckpointId>,
}

/// Publishes what its writers pre-committed when a checkpoint completes;
/// slow, so that the job is still running when the test drops it.
#[derive(Clone, Default)]
struct TwoPhase(Arc<Mutex<Published>>);

struct Writer {
    buf: Vec<u64>,
    shared: Arc<Mutex<Published>>,
}

fn decode(bytes: &[u8]) -> Result<Vec<u64>> {
    serde_json::from_slice(bytes).map_err(|e| brook_core::Error::State(e.to_string()))
}

impl Sink<u64> for TwoPhase {
    type Writer = Writer;

    fn open(&mut self, _ctx: &SinkContext) -> Result<Writer> {
        Ok(Writer {
            buf: Vec::new(),
            shared: self.0.clone(),
        })
    }

    fn commit(&mut self, checkpoint: CheckpointId, pre: &[Vec<u8>]) -> Result<()> {
        let mut p = self.0.lock().expect("lock");
        p.commits.push(checkpoint);
        for bytes in pre {
            p.values.extend(decode(bytes)?);
        }
        Ok(())
    }

    fn restore(&mut self, checkpoint: CheckpointId, pre: &[Vec<u8>]) -> Result<()> {
        if self.0.lock().expect("lock").commits.contains(&checkpoint) {
            return Ok(());
        }
        self.commit(checkpoint, pre)
    }

    fn finish(&mut self, outcome: JobOutcome) -> Result<()> {
        let mut p = self.0.lock().expect("lock");
        if outcome == JobOutcome::Completed {
            let last = std::mem::take(&mut p.last);
            p.values.extend(last);
        }
        Ok(())
    }
}

impl SinkWriter<u64> for Writer {
    async fn write(&mut self, batch: Batch<u64>) -> Result<()> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.buf.extend(batch.into_iter().map(|r| r.value));
        Ok(())
    }

    async fn checkpoint(&mut self, _id: CheckpointId) -> Result<Option<Vec<u8>>> {
        let buf = std::mem::take(&mut self.buf);
        if buf.is_empty() {
            return Ok(None);
        }
        serde_json::to_vec(&buf)
            .map(Some)
            .map_err(|e| brook_core::Error::State(e.to_string()))
    }

    async fn close(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        self.shared.lock().expect("lock").last.extend(buf);
        Ok(())
    }
}

/// The sum of the offsets group `group` committed on `topic`, waiting up
/// to 10 s for a first one.
fn committed_total(bootstrap: &str, topic: &str, group: &str, partitions: i32) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()
        .expect("consumer");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut tpl = TopicPartitionList::new();
        for p in 0..partitions {
            tpl.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(tpl, Duration::from_secs(5))
            .expect("committed offsets");
        let total: i64 = committed
            .elements()
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(n) => Some(n),
                _ => None,
            })
            .sum();
        if total > 0 || std::time::Instant::now() > deadline {
            return total;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until no job holds `dir`'s checkpoint lock: a dropped job lets
/// go of it once its tasks have ended.
async fn released(dir: &std::path::Path) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while brook_core::checkpoint::in_use(dir).expect("probe") {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the dropped job let go of its checkpoint directory");
}

#[test]
fn a_dropped_job_resumes_at_the_checkpoints_offsets_with_every_message_once() {
    block_on(async {
        let mock = MockCluster::new(1).expect("mock");
        mock.create_topic("ck", 3, 1).expect("topic");
        let b = mock.bootstrap_servers();
        let n = 3_000;
        produce_numbers(&b, "ck", 3, 0, n).await;
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("ck");
        let sink = TwoPhase::default();
        let job = |sink: TwoPhase| {
            let mut flow = Dataflow::with_config(
                "kafka-ck",
                JobConfig {
                    parallelism: 2,
                    batch_size: 16,
                    channel_capacity: 2,
                    chaining: true,
                },
            );
            flow.set_checkpoints(CheckpointConfig::new(&dir).interval(Duration::from_millis(20)));
            let source = KafkaSource::<u64>::json(bounded(&b, "ck", "ck-group")).expect("source");
            flow.source("kafka", source).sink("out", sink);
            flow.build().expect("build")
        };

        let first = job(sink.clone());
        assert_eq!(first.restored_from(), None);
        let metrics = first.metrics();
        let running = first.start(CancellationToken::new()).expect("start");
        tokio::time::timeout(Duration::from_secs(60), async {
            while metrics.snapshot().checkpoints.completed < 2 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
        .await
        .expect("two checkpoints");
        // The group has the offsets of a completed checkpoint (for lag),
        // committed on a later poll: some, never more than what was read.
        let b2 = b.clone();
        let committed =
            tokio::task::spawn_blocking(move || committed_total(&b2, "ck", "ck-group", 3))
                .await
                .expect("reader");
        // Read after: what was read by then is at least what was committed.
        let read = metrics
            .snapshot()
            .node("kafka")
            .map_or(0, |n| n.total.records_out);
        drop(running);
        assert!(committed > 0, "no checkpointed offset reached the group");
        assert!(
            committed <= read as i64,
            "{committed} committed, {read} read"
        );
        // What the dropped job was still doing (a checkpoint it was
        // writing) ends once it lets go of its checkpoint directory.
        released(&dir).await;
        {
            let mut p = sink.0.lock().expect("lock");
            assert!(p.values.len() < n as usize, "the job ended before the drop");
            p.last.clear();
        }

        // The group committed nothing (the checkpoint holds the offsets),
        // yet the restored job neither re-reads nor skips a message.
        let second = job(sink.clone());
        assert!(second.restored_from().is_some());
        tokio::time::timeout(
            Duration::from_secs(60),
            second.run(CancellationToken::new()),
        )
        .await
        .expect("the restored job hung")
        .expect("the restored job");
        let mut values = sink.0.lock().expect("lock").values.clone();
        values.sort_unstable();
        let total = values.len();
        values.dedup();
        assert_eq!(
            (total, values.len()),
            (n as usize, n as usize),
            "(messages published, distinct): each of the {n} exactly once"
        );
    });
}
