//! The exactly-once sink against a real broker (`BROOK_KAFKA_BROKERS`,
//! for example tansu started by `scripts/kafka-broker.sh start`): what the
//! mock cluster cannot show (see `transactions.rs`): commit markers that
//! the broker stores when, and only when, their transaction commits, and
//! fencing by a second producer with the same transactional id. Without
//! `BROOK_KAFKA_BROKERS` every test here passes at once, saying that it
//! was skipped.
//!
//! Topic, job and node names hold the time and the process id, so that
//! runs against one long-lived broker do not meet each other's topics,
//! transactional ids or marker groups.
//!
//! What tansu 0.6.0 (`memory://` storage) does, probed with librdkafka
//! 2.16 (confluent-kafka) and 2.12 (these tests):
//! - `init_transactions` works. A second producer's `init_transactions`
//!   with the same transactional id fences the first: its produce,
//!   `send_offsets_to_transaction` and commit fail with `PRODUCER_FENCED`
//!   / `_FENCED` (but a commit with no request between the fencing and
//!   `EndTxn` times out instead of failing as fenced). If the first had a
//!   transaction open, the new `init_transactions` aborts it, and an
//!   offset it had added is never committed.
//! - `send_offsets_to_transaction` (`TxnOffsetCommit`): the offset is not
//!   visible to `committed_offsets` before `commit_transaction`, nor ever
//!   for an aborted transaction. After the commit it is visible at once
//!   *only if no other transaction that wrote to the same partitions is
//!   open*: tansu leaves a transaction that overlaps an open one in
//!   `PrepareCommit` (its `EndTxn` answers success) and applies its
//!   offsets only when the open one ends. A transaction left open by a
//!   dead producer is not timed out (not within minutes, past its
//!   `transaction.timeout.ms`), so it holds back every later marker on
//!   those partitions until its id is fenced.
//! - It does **not** keep the metadata of a committed offset, neither of
//!   a `TxnOffsetCommit` nor of a plain `OffsetCommit`: it reads back
//!   empty.
//! - It holds `read_committed` consumers at the first open transaction
//!   (the last stable offset), but does not hide aborted records from
//!   them once that transaction ends.
//!
//! Brook's marker is the checkpoint's number with the run's token as
//! metadata, read by a restore once it has fenced *every* instance's id
//! (so that no open transaction holds a marker back). Checkpoint numbers
//! never repeat within a checkpoint directory, so where the broker drops
//! the metadata (tansu) the number alone decides; where it keeps it, the
//! token must match too. [`a_crash_after_the_kafka_commit_restores_with_every_record_once`]
//! kills the job inside the sink's commit, after the Kafka commit, and
//! checks that the restore writes nothing again (before the marker's
//! number alone was enough, tansu's dropped token made the restore write
//! that checkpoint's 40 records a second time).
//!
//! The other tests assert on what the sink does (every record in a
//! committed transaction, none aborted), which is what a `read_committed`
//! consumer of any broker sees when nothing was aborted.

use std::io::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use brook_core::{
    Batch, BoxedSourceStream, CancellationToken, CheckpointConfig, CheckpointId, Dataflow, Job,
    JobConfig, PlanContext, Record, Result, Sink, SinkWriter, Source, SourceContext, SourceEvent,
    SourceSplit, SplitId, TaskContext,
};
use futures::{StreamExt, stream};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Message, OwnedMessage};
use rdkafka::producer::{BaseProducer, Producer as _};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::super::txn::{Registry, Restored, TxnEvent, marker_group, transactional_id};
use super::super::{Delivery, KafkaSink, KafkaSinkConfig};
use super::{BROKERS_ENV, Cluster, assert_fenced, assert_stops_after_fence, block_on};

/// The real broker, or `None` after saying (past the harness's capture)
/// that `test` is skipped.
fn real_broker(test: &str) -> Option<String> {
    match std::env::var(BROKERS_ENV) {
        Ok(b) if !b.trim().is_empty() => Some(b.trim().to_string()),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "kafka test '{test}': SKIPPED, it needs a real broker ({BROKERS_ENV} is not set; \
                 see scripts/kafka-broker.sh)"
            );
            None
        }
    }
}

/// A name unique to this run: `base`, the time in milliseconds, the
/// process id.
fn unique(base: &str) -> String {
    format!("{}-{}", stamped(base), std::process::id())
}

/// A topic name unique to this run: `base` and the time in milliseconds
/// ([`Cluster::topic`] adds the process id).
fn stamped(base: &str) -> String {
    let ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{base}-{ms}")
}

/// An exactly-once config with short timeouts.
fn exactly_once(bootstrap: &str, topic: &str) -> KafkaSinkConfig {
    KafkaSinkConfig {
        delivery: Delivery::ExactlyOnce,
        delivery_timeout: Duration::from_secs(10),
        transaction_timeout: Duration::from_secs(10),
        ..KafkaSinkConfig::new(bootstrap, topic)
    }
}

/// Numbers `0..n` in splits of 100, each resumable at its next number,
/// in batches of 10 with a pause after each: the job runs long enough for
/// several checkpoints.
struct Numbers {
    n: u64,
    pause: Duration,
}

#[derive(Debug, Clone)]
struct Range {
    start: u64,
    end: u64,
    next: u64,
}

impl SourceSplit for Range {
    type Position = u64;

    fn id(&self) -> SplitId {
        SplitId::new(format!("{}..{}", self.start, self.end))
    }

    fn start(&self) -> u64 {
        self.start
    }

    const RESUMABLE: bool = true;

    fn resume(&mut self, position: u64) {
        self.next = position;
    }
}

impl Source<u64> for Numbers {
    type Split = Range;

    fn plan(&mut self, _ctx: &PlanContext) -> Result<Vec<Range>> {
        Ok((0..self.n.div_ceil(100))
            .map(|i| Range {
                start: i * 100,
                end: ((i + 1) * 100).min(self.n),
                next: i * 100,
            })
            .collect())
    }

    fn open(&mut self, _ctx: &SourceContext, splits: Vec<Range>) -> Result<BoxedSourceStream<u64>> {
        let pause = self.pause;
        let events = splits.into_iter().enumerate().flat_map(move |(i, s)| {
            (s.next..s.end).step_by(10).map(move |from| {
                let to = (from + 10).min(s.end);
                let batch: Batch<u64> = (from..to).map(|v| Record::new(v as i64, v)).collect();
                SourceEvent::batch_at(batch, [(i, to)])
            })
        });
        Ok(stream::iter(events)
            .then(move |e| async move {
                tokio::time::sleep(pause).await;
                Ok(e)
            })
            .boxed())
    }
}

/// Where the test job's sink writes, and how.
struct Setup<'a> {
    bootstrap: &'a str,
    topic: &'a str,
    job: &'a str,
    checkpoints: &'a Path,
    n: u64,
    /// The sink's parallelism.
    sinks: usize,
}

/// The test job: `0..n` from [`Numbers`], through a rebalance to
/// `sinks` exactly-once sink instances (node `out`). Built on the checkpoint
/// directory, it restores from its latest checkpoint if there is one.
fn eo_job(s: &Setup<'_>) -> (Job, Arc<Registry>) {
    let mut flow = Dataflow::with_config(
        s.job,
        JobConfig {
            parallelism: 1,
            batch_size: 16,
            channel_capacity: 2,
            chaining: false,
        },
    );
    flow.set_checkpoints(CheckpointConfig::new(s.checkpoints).interval(Duration::from_millis(50)));
    let sink = KafkaSink::<u64>::json(exactly_once(s.bootstrap, s.topic)).expect("sink");
    let txns = sink.transactions();
    let numbers = Numbers {
        n: s.n,
        pause: Duration::from_millis(10),
    };
    flow.source("numbers", numbers)
        .rebalance()
        .sink("out", sink)
        .parallelism(s.sinks);
    (flow.build().expect("build"), txns)
}

/// Every message of `topic` (`partitions` partitions), read with a
/// `read_committed` consumer to the end of each partition. Blocking.
fn read_all(bootstrap: &str, topic: &str, partitions: i32) -> Vec<OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique("brook-reader"))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "true")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("partition");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let mut at_end = vec![false; partitions as usize];
    let deadline = Instant::now() + Duration::from_secs(30);
    while !at_end.iter().all(|e| *e) {
        assert!(
            Instant::now() < deadline,
            "{topic}: not at the end of every partition after 30 s ({at_end:?}, {} read)",
            out.len()
        );
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                at_end[m.partition() as usize] = false;
                out.push(m.detach());
            }
            Some(Err(KafkaError::PartitionEOF(p))) => at_end[p as usize] = true,
            Some(Err(e)) => panic!("reading {topic}: {e}"),
            None => {}
        }
    }
    out
}

/// The values of JSON messages, sorted.
fn sorted_values(messages: &[OwnedMessage]) -> Vec<u64> {
    let mut values: Vec<u64> = messages
        .iter()
        .map(|m| serde_json::from_slice(m.payload().expect("a value")).expect("json"))
        .collect();
    values.sort_unstable();
    values
}

/// The values of `0..n` that are missing from `values` (sorted), and those
/// in it more than once.
fn missing_and_doubled(values: &[u64], n: u64) -> (Vec<u64>, Vec<u64>) {
    let mut counts = vec![0u32; n as usize];
    for &v in values {
        counts[v as usize] += 1;
    }
    let missing = (0..n).filter(|&v| counts[v as usize] == 0).collect();
    let doubled = (0..n).filter(|&v| counts[v as usize] > 1).collect();
    (missing, doubled)
}

/// The committed offset and metadata of group `group` on partition 0 of
/// `topic`, if it has one. Blocking.
fn committed(bootstrap: &str, group: &str, topic: &str) -> Option<(i64, String)> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    let c = consumer
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed offsets");
    let e = c.find_partition(topic, 0)?;
    match e.offset() {
        Offset::Offset(n) => Some((n, e.metadata().to_string())),
        _ => None,
    }
}

/// Whether the broker keeps the metadata of a committed offset (Brook's
/// marker needs it): commits one with a plain offset commit and reads it
/// back. Blocking.
fn keeps_offset_metadata(bootstrap: &str, topic: &str) -> bool {
    let group = unique("brook-metadata-probe");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(3))
        .expect("partition");
    tpl.find_partition(topic, 0)
        .expect("partition")
        .set_metadata("brook-probe");
    consumer.commit(&tpl, CommitMode::Sync).expect("commit");
    committed(bootstrap, &group, topic) == Some((3, "brook-probe".to_string()))
}

/// The last checkpoint each transactional id committed a transaction of,
/// from the sink's events.
fn last_commits(events: &[TxnEvent]) -> Vec<(String, CheckpointId)> {
    let mut last: Vec<(String, CheckpointId)> = Vec::new();
    for e in events {
        if let TxnEvent::Committed {
            tid, checkpoint, ..
        } = e
        {
            match last.iter_mut().find(|(t, _)| t == tid) {
                Some((_, c)) => *c = (*c).max(*checkpoint),
                None => last.push((tid.clone(), *checkpoint)),
            }
        }
    }
    last.sort();
    last
}

/// (a) A checkpointed job writes `0..n` with exactly-once delivery: a
/// consumer reads each record once, every record went out in a committed
/// transaction, and each instance's marker group holds the last
/// checkpoint it committed.
#[test]
fn a_checkpointed_exactly_once_job_writes_every_record_once_with_its_markers() {
    let Some(b) = real_broker("a_checkpointed_exactly_once_job_writes_every_record_once") else {
        return;
    };
    block_on(async move {
        let cluster = Cluster::Real(b.clone());
        let topic = cluster.topic(&stamped("brook-eo"), 3).await;
        let job = unique("eo");
        let tmp = tempfile::tempdir().expect("tempdir");
        let n = 1_500;
        let setup = Setup {
            bootstrap: &b,
            topic: &topic,
            job: &job,
            checkpoints: &tmp.path().join("ck"),
            n,
            sinks: 2,
        };
        let (built, txns) = eo_job(&setup);
        let metrics = built.metrics();
        tokio::time::timeout(
            Duration::from_secs(120),
            built.run(CancellationToken::new()),
        )
        .await
        .expect("the job hung")
        .expect("the job");

        let (b2, t2) = (b.clone(), topic.clone());
        let messages = tokio::task::spawn_blocking(move || read_all(&b2, &t2, 3))
            .await
            .expect("reader");
        let values = sorted_values(&messages);
        let (missing, doubled) = missing_and_doubled(&values, n);
        assert!(
            missing.is_empty() && doubled.is_empty() && values.len() == n as usize,
            "{} messages; missing {missing:?}; more than once {doubled:?}",
            values.len()
        );

        let events = txns.events();
        let in_commits: u64 = events
            .iter()
            .map(|e| match e {
                TxnEvent::Committed { records, .. } | TxnEvent::TailCommitted { records, .. } => {
                    *records
                }
                _ => 0,
            })
            .sum();
        assert_eq!(
            in_commits, n,
            "records in committed transactions: {events:?}"
        );
        assert!(
            events
                .iter()
                .all(|e| matches!(e, TxnEvent::Committed { .. })),
            "only checkpoint commits (no tail, abort or restore): {events:?}"
        );
        let last = last_commits(&events);
        let completed = metrics.snapshot().checkpoints.completed;
        let distinct = {
            let mut c: Vec<CheckpointId> = events
                .iter()
                .filter_map(|e| match e {
                    TxnEvent::Committed { checkpoint, .. } => Some(*checkpoint),
                    _ => None,
                })
                .collect();
            c.sort_unstable();
            c.dedup();
            c.len()
        };
        assert!(
            distinct >= 3,
            "transactions of at least three checkpoints ({completed} completed): {events:?}"
        );
        assert_eq!(
            last.iter().map(|(t, _)| t.as_str()).collect::<Vec<_>>(),
            vec![
                transactional_id(&job, "out", 0),
                transactional_id(&job, "out", 1)
            ],
            "both instances committed: {events:?}"
        );

        // Each instance's marker: the number of the last checkpoint whose
        // transaction it committed (the marker of every earlier one was
        // overwritten by the next).
        let (b2, t2) = (b.clone(), topic.clone());
        let markers = tokio::task::spawn_blocking(move || {
            let keeps = keeps_offset_metadata(&b2, &t2);
            let markers: Vec<_> = last
                .iter()
                .map(|(tid, c)| (tid.clone(), *c, committed(&b2, &marker_group(tid), &t2)))
                .collect();
            (keeps, markers)
        })
        .await
        .expect("markers");
        let (keeps_metadata, markers) = markers;
        for (tid, checkpoint, marker) in &markers {
            let (offset, token) = marker
                .clone()
                .unwrap_or_else(|| panic!("{tid}: no marker (checkpoint {checkpoint})"));
            assert_eq!(offset, *checkpoint as i64, "{tid}: the marker's checkpoint");
            if keeps_metadata {
                assert!(!token.is_empty(), "{tid}: the marker has no token");
            }
        }
        let _ = writeln!(
            std::io::stderr(),
            "kafka test (real broker): {n} records once in {distinct} checkpoints' transactions \
             ({completed} checkpoints completed); markers {markers:?}; the broker keeps offset \
             metadata: {keeps_metadata}"
        );
    });
}

/// The brokers, topic, job name, checkpoint directory and record count
/// of the crashing child, space-separated.
const CRASH_ENV: &str = "BROOK_TEST_KAFKA_REAL_CRASH";

/// The child of [`a_crash_after_the_kafka_commit_restores_with_every_record_once`]:
/// runs the job until the failpoint its parent set kills it. Does nothing
/// unless its parent started it.
#[test]
#[ignore = "run by a_crash_after_the_kafka_commit_restores_with_every_record_once"]
fn real_crash_child() {
    let Ok(spec) = std::env::var(CRASH_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split(' ').collect();
    let [b, topic, job, dir, n] = parts.as_slice() else {
        panic!("{CRASH_ENV}: {spec}");
    };
    let setup = Setup {
        bootstrap: b,
        topic,
        job,
        checkpoints: Path::new(dir),
        n: n.parse().expect("n"),
        sinks: 1,
    };
    block_on(async move {
        let (built, _) = eo_job(&setup);
        tokio::time::timeout(
            Duration::from_secs(120),
            built.run(CancellationToken::new()),
        )
        .await
        .expect("the job hung")
        .expect("the job");
    });
    // Not reached when the failpoint fires.
}

/// (b) The process dies right after the K-th Kafka transaction committed,
/// before the sink's commit returned (so before the checkpoint was noted
/// as committed). Its writer had begun no later transaction (a writer
/// waits for the commit of its pre-committed transaction), so every
/// record the broker holds is in a committed transaction, whether or not
/// the broker hides aborted records. The job restored from the same
/// checkpoint directory finds the marker of the committed transaction and
/// does not write it again, and runs to its end: every record is in the
/// topic once.
///
/// One sink instance: with two, the other instance's transaction of the
/// same checkpoint is still open when the process dies; the restore
/// aborts it and writes it again, which a `read_committed` consumer sees
/// once only on a broker that hides aborted records (tansu does not).
#[test]
fn a_crash_after_the_kafka_commit_restores_with_every_record_once() {
    let test = "a_crash_after_the_kafka_commit_restores_with_every_record_once";
    let Some(b) = real_broker(test) else {
        return;
    };
    block_on(async move {
        let cluster = Cluster::Real(b.clone());
        let topic = cluster.topic(&stamped("brook-crash"), 3).await;
        let job = unique("crash");
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().join("ck");
        let n = 1_500u64;
        // The second transaction: checkpoint 2's (if checkpoint 1 had
        // records), or a later one.
        let k = 2;
        let spec = format!("{b} {topic} {job} {} {n}", dir.display());
        let child = tokio::task::spawn_blocking(move || {
            std::process::Command::new(std::env::current_exe().expect("test binary"))
                .args([
                    "--exact",
                    "tests::real_broker::real_crash_child",
                    "--ignored",
                    "--nocapture",
                ])
                .env(
                    brook_core::checkpoint::failpoint::ENV,
                    format!("{}@{k}", crate::FAILPOINT_AFTER_COMMIT),
                )
                .env(CRASH_ENV, spec)
                .output()
                .expect("the child runs")
        })
        .await
        .expect("child");
        let stderr = String::from_utf8_lossy(&child.stderr);
        assert!(!child.status.success(), "the child did not die: {stderr}");
        assert!(
            stderr.contains(&format!("failpoint 'kafka-after-commit' reached (hit {k})")),
            "{stderr}"
        );

        // What the dead process left: committed transactions only.
        let (b2, t2) = (b.clone(), topic.clone());
        let before = tokio::task::spawn_blocking(move || sorted_values(&read_all(&b2, &t2, 3)))
            .await
            .expect("reader");
        let (_, doubled) = missing_and_doubled(&before, n);
        assert!(doubled.is_empty(), "before the restore: {doubled:?}");
        assert!(
            !before.is_empty() && before.len() < n as usize,
            "the child died mid-job: {} of {n} records written",
            before.len()
        );

        // The markers the dead process left: its last committed checkpoint
        // per instance, with the run's token as metadata (if the broker
        // keeps it).
        let (b2, t2, j2) = (b.clone(), topic.clone(), job.clone());
        let markers = tokio::task::spawn_blocking(move || {
            (0..1)
                .map(|i| {
                    let tid = transactional_id(&j2, "out", i);
                    (i, committed(&b2, &marker_group(&tid), &t2))
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("markers");

        // Restore from the same directory and run to the end.
        let setup = Setup {
            bootstrap: &b,
            topic: &topic,
            job: &job,
            checkpoints: &dir,
            n,
            sinks: 1,
        };
        let (built, txns) = eo_job(&setup);
        let restored = built.restored_from().expect("restores from a checkpoint");
        tokio::time::timeout(
            Duration::from_secs(120),
            built.run(CancellationToken::new()),
        )
        .await
        .expect("the restored job hung")
        .expect("the restored job");
        let events = txns.events();
        let restores: Vec<&TxnEvent> = events
            .iter()
            .filter(|e| matches!(e, TxnEvent::Restored { .. }))
            .collect();

        let (b2, t2) = (b.clone(), topic.clone());
        let after = tokio::task::spawn_blocking(move || sorted_values(&read_all(&b2, &t2, 3)))
            .await
            .expect("reader");
        let (missing, doubled) = missing_and_doubled(&after, n);
        let _ = writeln!(
            std::io::stderr(),
            "kafka test (real broker): died at commit {k}; {} records before the restore; \
             markers (instance, (checkpoint, token)) {markers:?}; restored from checkpoint \
             {restored}: {restores:?}; {} records after",
            before.len(),
            after.len()
        );
        assert!(
            missing.is_empty() && doubled.is_empty(),
            "after the restore: missing {missing:?}; more than once {doubled:?} \
             ({} records, {n} written); restores {restores:?}",
            after.len()
        );
        // The transaction committed before the crash: the restore found
        // its marker and wrote nothing.
        assert_eq!(
            restores,
            vec![&TxnEvent::Restored {
                tid: transactional_id(&job, "out", 0),
                checkpoint: restored,
                outcome: Restored::AlreadyCommitted,
            }],
            "the restore of checkpoint {restored} found the committed transaction"
        );
    });
}

/// (c) Natural fencing: a second producer registering the sink
/// instance's transactional id fences it; its commit fails with the
/// sink's error naming the id and another incarnation, and the writer
/// stops. The newer producer goes on.
#[test]
fn a_newer_producer_with_the_same_transactional_id_fences_the_sink() {
    let Some(b) = real_broker("a_newer_producer_with_the_same_transactional_id_fences_the_sink")
    else {
        return;
    };
    block_on(async move {
        let cluster = Cluster::Real(b.clone());
        let topic = cluster.topic(&stamped("brook-fenced"), 2).await;
        let node = unique("fenced");
        let mut sink = KafkaSink::<u64>::json(exactly_once(&b, &topic)).expect("sink");
        let mut writer = sink
            .open(&TaskContext::standalone(&node, 0, 1))
            .expect("open");
        let records: Vec<Record<u64>> = (0..10).map(|v| Record::new(5_000 + v, v as u64)).collect();
        writer.write(Batch::from(records)).await.expect("write");
        let pre = writer
            .checkpoint(1)
            .await
            .expect("checkpoint")
            .expect("a pre-commit");

        // A new incarnation registers the same transactional id.
        let tid = transactional_id("standalone", &node, 0);
        let (b2, tid2) = (b.clone(), tid.clone());
        let newer = tokio::task::spawn_blocking(move || {
            let newer: BaseProducer = ClientConfig::new()
                .set("bootstrap.servers", &b2)
                .set("transactional.id", &tid2)
                .create()
                .expect("producer");
            newer
                .init_transactions(Duration::from_secs(10))
                .expect("init");
            newer
        })
        .await
        .expect("newer");

        let err = tokio::task::spawn_blocking(move || {
            let e = sink.commit(1, &[pre]).expect_err("fenced");
            (e, sink)
        })
        .await
        .expect("commit");
        let (err, sink) = err;
        let text = assert_fenced(&err, &tid);
        assert!(text.contains("checkpoint 1"), "{text}");
        let _ = writeln!(
            std::io::stderr(),
            "kafka test (real broker): the fenced sink's commit: {text}"
        );

        // The writer does not go on past a transaction that did not commit.
        assert_stops_after_fence(&mut writer, &sink).await;
        // No marker: the fenced transaction's offset was never committed.
        let (b2, t2) = (b.clone(), topic.clone());
        let marker = tokio::task::spawn_blocking(move || committed(&b2, &marker_group(&tid), &t2))
            .await
            .expect("marker");
        assert_eq!(marker, None, "the fenced transaction's marker");

        // The newer producer is not fenced: it commits a transaction.
        tokio::task::spawn_blocking(move || {
            newer.begin_transaction().expect("begin");
            newer
                .commit_transaction(Duration::from_secs(10))
                .expect("the newer producer commits");
            // The fenced sink is dropped on a thread that may block.
            drop(sink);
        })
        .await
        .expect("newer commits");
        drop(writer);
    });
}
