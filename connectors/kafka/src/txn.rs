//! The transactional side of [`KafkaSink`](crate::KafkaSink)
//! ([`Delivery::ExactlyOnce`](crate::Delivery::ExactlyOnce)): what a
//! writer pre-commits at a checkpoint ([`PreCommit`]), the producers the
//! sink commits with ([`Registry`], [`Txn`]), the commit marker, and the
//! restore of a checkpoint whose transactions may not have committed.
//!
//! See the sink's docs for the protocol; in short, per checkpoint `n` and
//! instance:
//! 1. the writer produces the interval's records in one transaction and,
//!    at barrier `n`, waits for their acknowledgements and returns a
//!    [`PreCommit`]: its transactional id, `n`, a token unique to this
//!    transaction, and a copy of every message (where it was written);
//! 2. once the checkpoint's manifest is durable, [`Txn::commit`] adds the
//!    commit marker to the transaction (the offset `n` with the token as
//!    metadata, committed for group `<transactional id>-commits` on
//!    partition 0 of the topic, with `send_offsets_to_transaction`) and
//!    commits it: records and marker become visible together, or not at
//!    all;
//! 3. a job restored from `n` ([`restore`]) fences each transactional id
//!    (aborting a transaction left open), reads its marker, and if the
//!    marker is not `n` with the token, writes the copy again in a new
//!    transaction, with the marker.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brook_core::checkpoint::failpoint;
use brook_core::{CheckpointId, Error, Result, RetryHint};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer as _;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use tokio::sync::watch;

use crate::client::{KafkaFailure, kafka_error};
use crate::producer::{self, Deliveries, Outgoing, Producer, ProducerSettings};

/// The failpoint reached when a transaction holds every record and the
/// commit marker, and is not yet committed.
pub const FAILPOINT_BEFORE_COMMIT: &str = "kafka-before-commit";
/// The failpoint reached when a transaction has committed, before the
/// sink's commit returns.
pub const FAILPOINT_AFTER_COMMIT: &str = "kafka-after-commit";

/// The partition of the sink's topic on which the commit marker is
/// committed (every topic has it).
const MARKER_PARTITION: i32 = 0;

/// The transactional id of instance `instance` of node `node` of job
/// `job`: stable across restarts, so that a new incarnation fences the old.
pub(crate) fn transactional_id(job: &str, node: &str, instance: usize) -> String {
    format!("brook-{job}-{node}-{instance}")
}

/// The consumer group whose committed offset on the marker partition is
/// the commit marker of transactional id `tid`.
pub(crate) fn marker_group(tid: &str) -> String {
    format!("{tid}-commits")
}

/// A token unique to one run of one writer: the start time and random
/// bits. With the checkpoint's number it names one transaction, so that a
/// marker left by another run (whose checkpoints had the same numbers)
/// never passes for this one's.
pub(crate) fn run_token() -> String {
    brook_connectors::output::run_id()
}

/// One message of a transaction, kept to be written again by a restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Copied {
    pub(crate) partition: i32,
    pub(crate) timestamp: Option<i64>,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
}

/// What a writer pre-commits for a checkpoint: which transaction, and a
/// write-ahead copy of its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PreCommit {
    pub(crate) head: Head,
    pub(crate) messages: Vec<Copied>,
}

/// Which transaction a [`PreCommit`] is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub(crate) transactional_id: String,
    pub(crate) checkpoint: CheckpointId,
    /// Unique to this transaction (with `checkpoint`): the marker's
    /// metadata.
    pub(crate) token: String,
    pub(crate) topic: String,
    /// The parallelism of the writer's node, to fence the ids of instances
    /// a restore at a lower parallelism no longer runs.
    pub(crate) parallelism: usize,
}

/// The first bytes of an encoded [`PreCommit`], and its version.
const MAGIC: &[u8; 5] = b"BKTX1";

impl PreCommit {
    /// A compact binary encoding (JSON would triple the size of the
    /// copy): the head, then each message, lengths as `u32`, integers
    /// big-endian.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let size: usize = self
            .messages
            .iter()
            .map(|m| {
                32 + m.key.as_ref().map_or(0, Vec::len)
                    + m.value.as_ref().map_or(0, Vec::len)
                    + m.headers
                        .iter()
                        .map(|(k, v)| 8 + k.len() + v.len())
                        .sum::<usize>()
            })
            .sum();
        let mut w = Vec::with_capacity(size + 128);
        w.extend_from_slice(MAGIC);
        let h = &self.head;
        put_bytes(&mut w, Some(h.transactional_id.as_bytes()));
        w.extend_from_slice(&h.checkpoint.to_be_bytes());
        put_bytes(&mut w, Some(h.token.as_bytes()));
        put_bytes(&mut w, Some(h.topic.as_bytes()));
        w.extend_from_slice(&(h.parallelism as u64).to_be_bytes());
        w.extend_from_slice(&(self.messages.len() as u64).to_be_bytes());
        for m in &self.messages {
            w.extend_from_slice(&m.partition.to_be_bytes());
            match m.timestamp {
                Some(t) => {
                    w.push(1);
                    w.extend_from_slice(&t.to_be_bytes());
                }
                None => w.push(0),
            }
            put_bytes(&mut w, m.key.as_deref());
            put_bytes(&mut w, m.value.as_deref());
            w.extend_from_slice(&(m.headers.len() as u32).to_be_bytes());
            for (k, v) in &m.headers {
                put_bytes(&mut w, Some(k.as_bytes()));
                put_bytes(&mut w, Some(v));
            }
        }
        w
    }

    /// Decodes only the head.
    ///
    /// # Errors
    /// [`Error::State`] for bytes that are not a pre-commit of this sink.
    pub(crate) fn decode_head(bytes: &[u8]) -> Result<Head> {
        Reader::new(bytes)?.head()
    }

    /// Decodes the whole pre-commit.
    ///
    /// # Errors
    /// [`Error::State`] for bytes that are not a pre-commit of this sink.
    pub(crate) fn decode(bytes: &[u8]) -> Result<PreCommit> {
        let mut r = Reader::new(bytes)?;
        let head = r.head()?;
        let n = r.u64()?;
        let mut messages = Vec::with_capacity(usize::try_from(n).unwrap_or(0).min(1 << 20));
        for _ in 0..n {
            let partition = i32::from_be_bytes(r.array()?);
            let timestamp = match r.take(1)?[0] {
                0 => None,
                _ => Some(i64::from_be_bytes(r.array()?)),
            };
            let key = r.bytes()?;
            let value = r.bytes()?;
            let count = u32::from_be_bytes(r.array()?);
            let mut headers = Vec::new();
            for _ in 0..count {
                let k = r.string()?;
                let v = r.bytes()?.unwrap_or_default();
                headers.push((k, v));
            }
            messages.push(Copied {
                partition,
                timestamp,
                key,
                value,
                headers,
            });
        }
        if r.at < r.bytes.len() {
            return Err(bad("trailing bytes"));
        }
        Ok(PreCommit { head, messages })
    }
}

/// Writes optional bytes: `u32::MAX` for none, else the length and them.
fn put_bytes(w: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => w.extend_from_slice(&u32::MAX.to_be_bytes()),
        Some(b) => {
            w.extend_from_slice(&(b.len() as u32).to_be_bytes());
            w.extend_from_slice(b);
        }
    }
}

fn bad(what: &str) -> Error {
    Error::State(format!(
        "a kafka sink's pre-commit does not parse ({what}): the checkpoint was written by \
         another version or is damaged"
    ))
}

/// Reads what [`PreCommit::encode`] wrote.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Result<Self> {
        if !bytes.starts_with(MAGIC) {
            return Err(bad("no header"));
        }
        Ok(Reader {
            bytes,
            at: MAGIC.len(),
        })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).ok_or_else(|| bad("length"))?;
        let out = self
            .bytes
            .get(self.at..end)
            .ok_or_else(|| bad("truncated"))?;
        self.at = end;
        Ok(out)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        self.take(N)?.try_into().map_err(|_| bad("truncated"))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Option<Vec<u8>>> {
        let n = u32::from_be_bytes(self.array()?);
        if n == u32::MAX {
            return Ok(None);
        }
        Ok(Some(self.take(n as usize)?.to_vec()))
    }

    fn string(&mut self) -> Result<String> {
        let b = self.bytes()?.ok_or_else(|| bad("missing text"))?;
        String::from_utf8(b).map_err(|_| bad("text is not UTF-8"))
    }

    fn head(&mut self) -> Result<Head> {
        Ok(Head {
            transactional_id: self.string()?,
            checkpoint: self.u64()?,
            token: self.string()?,
            topic: self.string()?,
            parallelism: usize::try_from(self.u64()?).map_err(|_| bad("parallelism"))?,
        })
    }
}

/// Where one instance's transactions stand, as the sink sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Progress {
    /// Every transaction pre-committed up to this checkpoint is committed.
    Committed(CheckpointId),
    /// A commit failed: the writer must not go on.
    Failed(String),
}

/// One instance's transactional producer, shared by its writer (which
/// produces) and the sink (which commits).
pub(crate) struct Txn {
    pub(crate) transactional_id: String,
    pub(crate) producer: Producer,
    /// The marker group's metadata, for `send_offsets_to_transaction`.
    group: ConsumerGroupMetadata,
    pub(crate) topic: String,
    /// `kafka sink 'out' writing to 'alerts'`, for errors.
    pub(crate) what: String,
    pub(crate) timeout: Duration,
    state: Mutex<TxnState>,
    /// What the writer waits on before it begins the next transaction.
    pub(crate) progress: watch::Sender<Progress>,
}

/// Whether a transaction is open in the producer, and for what.
#[derive(Debug, Default)]
struct TxnState {
    /// A transaction is begun and neither committed nor aborted.
    open: bool,
    /// The records produced in it.
    records: u64,
    /// The checkpoint it was pre-committed for, if it was.
    pre_committed: Option<CheckpointId>,
}

impl Txn {
    /// A transactional producer with id `tid` (no I/O; call
    /// [`init`](Self::init) before anything else).
    ///
    /// # Errors
    /// [`Error::Config`] for an option librdkafka refuses.
    pub(crate) fn new(
        settings: &ProducerSettings<'_>,
        node: &str,
        topic: &str,
        what: &str,
    ) -> Result<Self> {
        let Some((tid, timeout)) = settings.transactional else {
            return Err(Error::Internal(
                "a transactional producer without an id".into(),
            ));
        };
        let producer = producer::create(settings, node, what)?;
        let group = marker_consumer(settings, tid, what)?
            .group_metadata()
            .ok_or_else(|| {
                Error::Internal(format!("{what}: no group metadata for the commit marker"))
            })?;
        Ok(Txn {
            transactional_id: tid.to_string(),
            producer,
            group,
            topic: topic.to_string(),
            what: what.to_string(),
            timeout,
            state: Mutex::new(TxnState::default()),
            progress: watch::Sender::new(Progress::Committed(0)),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, TxnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers the id with the transaction coordinator: fences every
    /// earlier producer with this id (an earlier incarnation of the
    /// instance) and aborts the transaction it left open. Blocking.
    ///
    /// # Errors
    /// The brokers do not answer within the transaction timeout, or refuse.
    pub(crate) fn init(&self) -> Result<()> {
        self.producer
            .init_transactions(self.timeout)
            .map_err(|e| self.error("initializing transactions (fencing earlier producers)", e))
    }

    /// Begins a transaction (local: no I/O).
    ///
    /// # Errors
    /// A producer in a state that cannot begin one (fenced, failed).
    pub(crate) fn begin(&self) -> Result<()> {
        self.producer
            .begin_transaction()
            .map_err(|e| self.error("beginning a transaction", e))?;
        let mut s = self.state();
        s.open = true;
        s.records = 0;
        s.pre_committed = None;
        Ok(())
    }

    /// Notes `n` more records in the open transaction.
    pub(crate) fn produced(&self, n: u64) {
        self.state().records += n;
    }

    /// Notes that the open transaction is pre-committed for `checkpoint`;
    /// returns how many records it holds.
    pub(crate) fn pre_commit(&self, checkpoint: CheckpointId) -> u64 {
        let mut s = self.state();
        s.pre_committed = Some(checkpoint);
        s.records
    }

    /// Whether a transaction is open.
    pub(crate) fn is_open(&self) -> bool {
        self.state().open
    }

    /// Commits the transaction pre-committed for `checkpoint`, with its
    /// marker (`token` as metadata), then lets the writer go on. Blocking.
    ///
    /// # Errors
    /// A fenced producer (another incarnation took over), a broker that
    /// does not answer within the transaction timeout, or a transaction
    /// that must be aborted. The writer is told, and fails too.
    pub(crate) fn commit(&self, checkpoint: CheckpointId, token: &str) -> Result<u64> {
        {
            let s = self.state();
            if !s.open || s.pre_committed != Some(checkpoint) {
                let e = Error::Internal(format!(
                    "{}: checkpoint {checkpoint} has no pre-committed transaction for \
                     transactional id '{}' (open: {}, pre-committed for: {:?})",
                    self.what, self.transactional_id, s.open, s.pre_committed
                ));
                drop(s);
                self.progress.send_replace(Progress::Failed(e.to_string()));
                return Err(e);
            }
        }
        let committed = send_marker(
            &self.producer,
            &self.group,
            &self.topic,
            checkpoint,
            token,
            self.timeout,
        )
        .map_err(|e| {
            self.error(
                &format!("adding the commit marker of checkpoint {checkpoint}"),
                e,
            )
        })
        .and_then(|()| {
            failpoint::hit(FAILPOINT_BEFORE_COMMIT);
            self.producer
                .commit_transaction(self.timeout)
                .map_err(|e| self.error(&format!("committing checkpoint {checkpoint}"), e))
        });
        match committed {
            Ok(()) => {
                failpoint::hit(FAILPOINT_AFTER_COMMIT);
                let records = {
                    let mut s = self.state();
                    s.open = false;
                    s.pre_committed = None;
                    std::mem::take(&mut s.records)
                };
                self.progress.send_replace(Progress::Committed(checkpoint));
                Ok(records)
            }
            Err(e) => {
                self.progress.send_replace(Progress::Failed(e.to_string()));
                Err(e)
            }
        }
    }

    /// Commits the open transaction (the records written after the last
    /// checkpoint of a job that completed), without a marker. Blocking.
    ///
    /// # Errors
    /// As [`commit`](Self::commit).
    pub(crate) fn commit_tail(&self) -> Result<u64> {
        self.producer
            .commit_transaction(self.timeout)
            .map_err(|e| {
                self.error(
                    "committing the records written after the last checkpoint",
                    e,
                )
            })?;
        let mut s = self.state();
        s.open = false;
        Ok(std::mem::take(&mut s.records))
    }

    /// Aborts the open transaction. Blocking.
    ///
    /// # Errors
    /// The brokers do not answer, or the producer is fenced.
    pub(crate) fn abort(&self) -> Result<u64> {
        self.producer
            .abort_transaction(self.timeout)
            .map_err(|e| self.error("aborting a transaction", e))?;
        let mut s = self.state();
        s.open = false;
        s.pre_committed = None;
        Ok(std::mem::take(&mut s.records))
    }

    fn error(&self, doing: &str, e: KafkaError) -> Error {
        txn_error(&self.what, &self.transactional_id, doing, e)
    }
}

/// A transactional failure, naming the transactional id; a fenced
/// producer says that another incarnation took over.
fn txn_error(what: &str, tid: &str, doing: &str, e: KafkaError) -> Error {
    if is_fenced(&e) {
        return Error::External {
            source: Box::new(KafkaFailure::new(
                format!(
                    "{what}: {doing}: the producer with transactional id '{tid}' was fenced: \
                     another incarnation of this job (a producer with the same transactional \
                     id) took over, and this one must stop"
                ),
                e,
            )),
            retry: RetryHint::Fatal,
        };
    }
    kafka_error(format!("{what}: {doing} (transactional id '{tid}')"), e)
}

/// Whether an error says the producer was fenced by a newer one.
pub(crate) fn is_fenced(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fenced
                | RDKafkaErrorCode::ProducerFenced
                | RDKafkaErrorCode::InvalidProducerEpoch
        )
    )
}

/// Adds the commit marker of `checkpoint` to the open transaction.
fn send_marker(
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
fn marker_consumer(settings: &ProducerSettings<'_>, tid: &str, what: &str) -> Result<BaseConsumer> {
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
pub(crate) fn read_marker(
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
pub(crate) fn marker_says_committed(
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

/// Fences transactional id `tid`: a transaction an earlier producer left
/// open is aborted, and that producer can no longer write. Blocking.
///
/// # Errors
/// The brokers do not answer within the transaction timeout.
pub(crate) fn fence(settings: &ProducerSettings<'_>, node: &str, what: &str) -> Result<()> {
    let Some((tid, timeout)) = settings.transactional else {
        return Ok(());
    };
    let producer = producer::create(settings, node, what)?;
    producer
        .init_transactions(timeout)
        .map_err(|e| txn_error(what, tid, "fencing an instance the job no longer runs", e))
}

/// Headers as librdkafka takes them.
pub(crate) fn headers(h: &[(String, Vec<u8>)]) -> Option<OwnedHeaders> {
    (!h.is_empty()).then(|| {
        h.iter().fold(OwnedHeaders::new(), |acc, (k, v)| {
            acc.insert(Header {
                key: k.as_str(),
                value: Some(v.as_slice()),
            })
        })
    })
}

/// What happened to transactions, for tests and logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TxnEvent {
    /// Checkpoint `checkpoint`'s transaction of `tid` committed, holding
    /// `records` records.
    Committed {
        tid: String,
        checkpoint: CheckpointId,
        records: u64,
    },
    /// The records after the last checkpoint committed when the job
    /// completed.
    TailCommitted { tid: String, records: u64 },
    /// A transaction was aborted (a stopped or failed job).
    Aborted { tid: String, records: u64 },
    /// A restore found the transaction committed, or wrote it again.
    Restored {
        tid: String,
        checkpoint: CheckpointId,
        outcome: Restored,
    },
}

/// The transactional producers of one sink, by transactional id, and what
/// happened to their transactions.
#[derive(Default)]
pub(crate) struct Registry {
    txns: Mutex<HashMap<String, Arc<Txn>>>,
    /// Kept for tests only: a job that runs on would grow it forever.
    #[cfg(test)]
    events: Mutex<Vec<TxnEvent>>,
}

impl Registry {
    pub(crate) fn insert(&self, txn: Arc<Txn>) {
        self.txns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(txn.transactional_id.clone(), txn);
    }

    pub(crate) fn get(&self, tid: &str) -> Option<Arc<Txn>> {
        self.txns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(tid)
            .cloned()
    }

    /// Takes every producer out.
    pub(crate) fn drain(&self) -> Vec<Arc<Txn>> {
        let mut txns: Vec<_> = self
            .txns
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain()
            .map(|(_, t)| t)
            .collect();
        txns.sort_by(|a, b| a.transactional_id.cmp(&b.transactional_id));
        txns
    }

    /// Logs what happened to a transaction (and keeps it, in tests).
    pub(crate) fn note(&self, event: TxnEvent) {
        tracing::debug!(?event, "Kafka transaction.");
        #[cfg(test)]
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }

    /// What happened so far.
    #[cfg(test)]
    pub(crate) fn events(&self) -> Vec<TxnEvent> {
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for Registry {
    /// A sink dropped with transactions open (its job failed, or was
    /// dropped): they are aborted on a thread of their own (the drop may
    /// happen on an async task), so that `read_committed` consumers are
    /// not held back until the transaction timeout. A restore would abort
    /// them anyway (and write again what a completed checkpoint holds).
    fn drop(&mut self) {
        let open: Vec<Arc<Txn>> = self.drain().into_iter().filter(|t| t.is_open()).collect();
        if open.is_empty() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("brook-kafka-abort".into())
            .spawn(move || {
                for txn in open {
                    if let Err(e) = txn.abort() {
                        tracing::warn!(transactional_id = %txn.transactional_id, error = %e, "Could not abort the transaction of a sink that was dropped; the next incarnation or the transaction timeout will.");
                    }
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "Could not start a thread to abort a dropped sink's transactions.");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pre_commit_reads_back_whole() {
        let pre = PreCommit {
            head: Head {
                transactional_id: "brook-job-out-1".into(),
                checkpoint: 42,
                token: run_token(),
                topic: "alerts".into(),
                parallelism: 3,
            },
            messages: vec![
                Copied {
                    partition: 2,
                    timestamp: Some(-5),
                    key: Some(b"k".to_vec()),
                    value: None,
                    headers: vec![("h".into(), vec![]), ("i".into(), b"\xff".to_vec())],
                },
                Copied {
                    partition: 0,
                    timestamp: None,
                    key: None,
                    value: Some(Vec::new()),
                    headers: vec![],
                },
            ],
        };
        let bytes = pre.encode();
        assert_eq!(PreCommit::decode(&bytes).expect("decodes"), pre);
        assert_eq!(PreCommit::decode_head(&bytes).expect("head"), pre.head);
        for cut in [0, 3, 6, bytes.len() - 1] {
            assert!(
                matches!(PreCommit::decode(&bytes[..cut]), Err(Error::State(_))),
                "cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(PreCommit::decode(&longer).is_err());
        assert_ne!(run_token(), run_token());
    }
}
