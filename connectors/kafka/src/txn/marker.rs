//! The commit marker (an offset committed inside each transaction, for
//! group `<transactional id>-commits`), and the restore of a checkpoint
//! whose transactions may not have committed.

use std::time::Duration;

use brook_core::{CheckpointId, Error, Result};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::producer::Producer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::{MARKER_PARTITION, PreCommit, Txn, headers, marker_group};
use crate::client::kafka_error;
use crate::producer::{Deliveries, Outgoing, Producer, ProducerSettings};

/// Adds the commit marker of `checkpoint` to the open transaction.
pub(super) fn send_marker(
    producer: &Producer,
    group: &ConsumerGroupMetadata,
    topic: &str,
    checkpoint: CheckpointId,
    token: &str,
    timeout: Duration,
) -> rdkafka::error::KafkaResult<()> {
    let mut offsets = TopicPartitionList::new();
    let offset = i64::try_from(checkpoint).unwrap_or(i64::MAX);
    offsets.add_partition_offset(topic, MARKER_PARTITION, Offset::Offset(offset))?;
    if let Some(mut e) = offsets.find_partition(topic, MARKER_PARTITION) {
        e.set_metadata(token);
    }
    producer.send_offsets_to_transaction(&offsets, group, timeout)
}

/// A consumer of the marker group of `tid`, to read the marker and make
/// its group metadata (no I/O until used).
pub(super) fn marker_consumer(
    settings: &ProducerSettings<'_>,
    tid: &str,
    what: &str,
) -> Result<BaseConsumer> {
    let mut c = ClientConfig::new();
    c.set("client.id", settings.client_id);
    settings.options.apply(&mut c);
    c.set("bootstrap.servers", settings.servers.trim())
        .set("group.id", marker_group(tid))
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    c.create()
        .map_err(|e| kafka_error(format!("{what}: creating the commit marker's reader"), e))
}

/// The commit marker of `tid` on `topic`: the checkpoint and token of the
/// last transaction that committed with one, if any. Read after
/// [`Txn::init`], so that no transaction of `tid` is pending.
///
/// # Errors
/// The brokers do not answer within `timeout`.
fn read_marker(
    settings: &ProducerSettings<'_>,
    tid: &str,
    topic: &str,
    what: &str,
    timeout: Duration,
) -> Result<Option<(CheckpointId, String)>> {
    let consumer = marker_consumer(settings, tid, what)?;
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, MARKER_PARTITION);
    let committed = consumer.committed_offsets(tpl, timeout).map_err(|e| {
        kafka_error(
            format!(
                "{what}: reading the commit marker of transactional id '{tid}' (group '{}')",
                marker_group(tid)
            ),
            e,
        )
    })?;
    Ok(committed
        .find_partition(topic, MARKER_PARTITION)
        .and_then(|e| match e.offset() {
            Offset::Offset(n) if n >= 0 => Some((n as CheckpointId, e.metadata().to_string())),
            _ => None,
        }))
}

/// Whether a marker read back says checkpoint `checkpoint`'s transaction
/// (of the run whose token is `token`) committed. Checkpoint numbers never
/// repeat within a checkpoint directory, so the number alone decides on a
/// broker that drops offset metadata (tansu 0.6.0); where the metadata is
/// kept, the run's token must match too.
fn marker_says_committed(
    marker: Option<&(CheckpointId, String)>,
    checkpoint: CheckpointId,
    token: &str,
) -> bool {
    marker.is_some_and(|(n, meta)| *n == checkpoint && (meta == token || meta.is_empty()))
}

/// What a restore did with one pre-committed transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Restored {
    /// Its marker says it committed: nothing was written.
    AlreadyCommitted,
    /// It had not committed (its transaction was aborted by the fencing):
    /// its copy was written again, in a new transaction, and committed.
    Rewritten(u64),
}

/// Publishes one pre-committed transaction of checkpoint `checkpoint` on
/// restore: fences its transactional id (which aborts a transaction the
/// dead incarnation left open), then, unless its marker says it
/// committed, writes its copy again and commits it with the marker.
/// Blocking.
///
/// # Errors
/// A pre-commit of another checkpoint, brokers that do not answer, a
/// failed delivery or commit.
pub(crate) fn restore(
    settings: &ProducerSettings<'_>,
    node: &str,
    checkpoint: CheckpointId,
    pre: &PreCommit,
    timeout: Duration,
) -> Result<Restored> {
    let head = &pre.head;
    let what = format!("kafka sink '{node}' writing to '{}'", head.topic);
    if head.checkpoint != checkpoint {
        return Err(Error::State(format!(
            "{what}: restoring checkpoint {checkpoint}, a pre-commit of transactional id '{}' \
             is for checkpoint {}",
            head.transactional_id, head.checkpoint
        )));
    }
    let tid = head.transactional_id.as_str();
    let settings = ProducerSettings {
        transactional: Some((tid, timeout)),
        ..*settings
    };
    let txn = Txn::new(&settings, node, &head.topic, &what)?;
    txn.init()?;
    let marker = read_marker(&settings, tid, &head.topic, &what, txn.timeout)?;
    if marker_says_committed(marker.as_ref(), checkpoint, &head.token) {
        tracing::info!(
            node,
            transactional_id = tid,
            checkpoint,
            "Restore: the checkpoint's transaction had committed."
        );
        return Ok(Restored::AlreadyCommitted);
    }
    txn.begin()?;
    let mut deliveries = Deliveries::new(settings.max_in_flight_bytes, what.clone());
    futures::executor::block_on(async {
        for (i, m) in pre.messages.iter().enumerate() {
            let out = Outgoing {
                key: m.key.clone(),
                payload: m.value.clone(),
                partition: Some(m.partition),
                timestamp: m.timestamp,
                headers: headers(&m.headers),
                label: format!("message {i} of checkpoint {checkpoint}, written again"),
            };
            deliveries.send(&txn.producer, &head.topic, out).await?;
        }
        deliveries.settle().await
    })?;
    txn.produced(pre.messages.len() as u64);
    txn.pre_commit(checkpoint);
    let records = txn.commit(checkpoint, &head.token)?;
    tracing::info!(
        node,
        transactional_id = tid,
        checkpoint,
        records,
        "Restore: the checkpoint's transaction had not committed; its records were written again."
    );
    Ok(Restored::Rewritten(records))
}
