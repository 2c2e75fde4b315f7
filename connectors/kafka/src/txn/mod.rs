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
//! 3. a job restored from `n` fences every transactional id of the
//!    checkpoint (aborting the transactions left open), then for each
//!    ([`restore`]) reads its marker, and if the marker is not `n` (with
//!    the token, where the broker keeps offset metadata), writes the copy
//!    again in a new transaction, with the marker.
//!
//! [`precommit`] holds the pre-commit's encoding, [`marker`] the marker
//! and the restore.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brook_core::checkpoint::failpoint;
use brook_core::{CheckpointId, Error, Result, RetryHint};
use rdkafka::consumer::{Consumer, ConsumerGroupMetadata};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer as _;
use tokio::sync::watch;

use crate::client::{KafkaFailure, kafka_error};
use crate::producer::{self, Producer, ProducerSettings};

mod marker;
mod precommit;

pub(crate) use marker::{Restored, restore};
use marker::{marker_consumer, send_marker};
pub(crate) use precommit::{Copied, Head, PreCommit};

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
