//! [`KafkaSink`]: writes records to a Kafka topic.

use std::sync::Arc;

use brook_core::{
    Batch, CheckpointId, Error, JobOutcome, NO_TIMESTAMP, PlanContext, Result, Sink, SinkContext,
    SinkWriter,
};
use rdkafka::producer::Producer as _;

use crate::client::kafka_error;
use crate::config::{Delivery, KafkaSinkConfig};
use brook_connectors::codec::{Encoder, Json};

use crate::format::{Serializer, WriteFn, Writing};
use crate::producer::{self, Deliveries, Outgoing, Producer, ProducerSettings};
use crate::txn::{self, Copied, Head, PreCommit, Progress, Registry, Txn, TxnEvent};

type KeyFn<T> = dyn Fn(&T) -> Option<Vec<u8>> + Send + Sync;
type HeadersFn<T> = dyn Fn(&T) -> Vec<(String, Vec<u8>)> + Send + Sync;
type PartitionFn<T> = dyn Fn(&T, Option<&[u8]>, i32) -> i32 + Send + Sync;

/// How long the sink waits for the topic's partition count, for a
/// partitioner.
const METADATA_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A sink that produces each record as one message to a topic.
///
/// Values are written with a codec of [`brook_connectors::codec`] (JSON by
/// default; CSV without header, text) or a [`Serializer`]; keys,
/// headers and partitions come from functions of the value (default: no
/// key, no header, librdkafka's partitioner). A record's event time, when
/// it has one, is the message's timestamp.
///
/// # Delivery
/// [`KafkaSinkConfig::delivery`] chooses between two guarantees.
///
/// **At least once** ([`Delivery::AtLeastOnce`], the default). The
/// producer is idempotent by default. A write returns once its messages
/// are queued; at most
/// [`max_in_flight_bytes`](KafkaSinkConfig::max_in_flight_bytes) of them
/// wait for acknowledgement at once, and a write waits for deliveries to
/// make room. Every delivery is awaited by the next flush (when the input
/// is idle), at each checkpoint and at close, and a failed one fails the
/// job with an error naming the sink's node, the topic and the record:
/// never a silent loss. Messages are visible as soon as they are
/// acknowledged, so a job restored from a checkpoint (or run again)
/// writes again what it wrote after that checkpoint: consumers may see
/// duplicates.
///
/// **Exactly once** ([`Delivery::ExactlyOnce`]), for consumers that read
/// with `isolation.level=read_committed` (librdkafka's default; the Java
/// client's default is `read_uncommitted`, which sees every record of
/// every transaction, aborted or not). It needs a job with checkpoints:
/// without them, building the job fails with [`Error::Config`].
///
/// - *One transactional producer per instance*, with the transactional id
///   `brook-<job>-<node>-<instance>`: stable across restarts, so job and
///   node names must be unique among the jobs writing to one cluster.
///   When an instance opens, its producer registers the id with the
///   transaction coordinator (`init_transactions`), which *fences* every
///   earlier producer with that id (a previous incarnation of the job, a
///   zombie process): their writes and commits fail from then on, and the
///   transaction they left open is aborted. A fenced producer fails its
///   job with an error naming the transactional id and saying that
///   another incarnation took over.
/// - *The records of one checkpoint interval are one transaction.* It
///   begins at the first record after the instance opened or after the
///   previous commit. At checkpoint barrier `n` the writer waits for every
///   delivery of the transaction and pre-commits it: its checkpoint state
///   holds the transactional id, `n`, a token unique to the run, and a
///   write-ahead copy of every message of the transaction (partition,
///   timestamp, key, value, headers). When the checkpoint is complete
///   (every instance acknowledged it and its manifest is durable), the
///   sink adds a *commit marker* to the transaction and commits it. The
///   marker is an offset committed inside the transaction
///   (`send_offsets_to_transaction`) for the consumer group
///   `brook-<job>-<node>-<instance>-commits`, on partition 0 of the sink's
///   topic: offset `n`, with the token as metadata. The broker makes the
///   records and the marker visible together, at the commit, or neither.
/// - *Crash after the checkpoint completed, before its transaction
///   committed.* librdkafka cannot resume a transaction another process
///   began, so the checkpoint holds the transaction's copy. When the job
///   is restored from checkpoint `n`, before it starts, the sink takes
///   each instance's pre-commit of `n`: it creates a producer with that
///   transactional id and calls `init_transactions`, which fences the dead
///   incarnation and aborts its open transaction (the one of `n`, or one
///   begun after `n`); every instance's id is fenced before any marker is
///   read, so that no open transaction holds a marker back. Then it reads
///   the marker group's committed offset. If the marker is `n` with the
///   run's token (or `n` with no metadata, on a broker that drops it, such
///   as tansu: checkpoint numbers never repeat within a checkpoint
///   directory), the transaction had committed and nothing is written. Otherwise its copy is written again
///   in a new transaction, with the marker, and committed. Either way a
///   `read_committed` consumer sees each record of `n` exactly once, and
///   nothing of what followed `n` (that was aborted, and the restored job
///   writes it again). Instances the checkpoint had beyond the restored
///   job's parallelism are fenced too (when the job is built), so that
///   their open transactions do not hold `read_committed` consumers back.
/// - *End of the job.* When every source has read all its input, the job
///   takes a final checkpoint whose barrier follows the end of the input,
///   so the last records are a checkpoint's transaction like the others,
///   committed (and restored) the same way. [`Sink::finish`] commits what
///   a writer may still hold (nothing, after a final checkpoint) when the
///   job completes, and aborts it when the job is stopped (a run restored
///   from its checkpoint writes it again) or fails (the sink aborts its
///   open transactions when it is dropped; if the process dies, the next
///   incarnation's fencing or the broker's transaction timeout does).
///
/// The costs: a writer that receives records after a barrier waits for
/// that checkpoint to complete and commit before it writes them (the job
/// slows to the pace of checkpoint completion; with chained tasks its
/// sources wait too); `read_committed` consumers see a checkpoint's
/// records only when it completes, one checkpoint interval or more after
/// they were written (and a transaction left open by a process that died
/// holds them back until the restored job fences it, or
/// [`transaction_timeout`](KafkaSinkConfig::transaction_timeout)
/// passes); the checkpoint state holds a copy of one interval's output per
/// instance (keep intervals short for large outputs). The transaction
/// timeout must exceed a checkpoint interval plus the time a checkpoint
/// takes, or the broker aborts the transaction and the commit fails.
///
/// What exactly once does not cover: two jobs with the same job and node
/// names fence each other.
///
/// Failpoints (see [`brook_core::checkpoint::failpoint`]):
/// [`FAILPOINT_BEFORE_COMMIT`](crate::FAILPOINT_BEFORE_COMMIT)
/// (`kafka-before-commit`: the transaction holds every record and the
/// marker, and is not committed) and
/// [`FAILPOINT_AFTER_COMMIT`](crate::FAILPOINT_AFTER_COMMIT)
/// (`kafka-after-commit`: it committed; the sink's commit has not
/// returned), reached at each transaction's commit, including those of a
/// restore.
///
/// ```no_run
/// use brook_kafka::{KafkaSink, KafkaSinkConfig};
///
/// #[derive(Clone, serde::Serialize)]
/// struct Alert { service: String, count_5xx: u64 }
///
/// let sink = KafkaSink::<Alert>::json(KafkaSinkConfig::new("127.0.0.1:9092", "alerts"))?
///     .key(|a| Some(a.service.clone().into_bytes()));
/// # Ok::<(), brook_core::Error>(())
/// ```
///
/// Exactly once, in a job with checkpoints:
///
/// ```no_run
/// use std::time::Duration;
/// use brook_core::{CheckpointConfig, Dataflow};
/// use brook_kafka::{Delivery, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig};
///
/// let mut flow = Dataflow::new("alerts");
/// flow.set_checkpoints(CheckpointConfig::new("/var/lib/brook/alerts").interval(Duration::from_secs(5)));
/// let config = KafkaSinkConfig {
///     delivery: Delivery::ExactlyOnce,
///     ..KafkaSinkConfig::new("127.0.0.1:9092", "alerts")
/// };
/// let source = KafkaSource::<u64>::json(KafkaSourceConfig::new("127.0.0.1:9092", &["in"], "alerts"))?;
/// flow.source("in", source).sink("out", KafkaSink::<u64>::json(config)?);
/// # Ok::<(), brook_core::Error>(())
/// ```
pub struct KafkaSink<T> {
    config: KafkaSinkConfig,
    writing: Writing<T>,
    key: Option<Arc<KeyFn<T>>>,
    headers: Option<Arc<HeadersFn<T>>>,
    partitioner: Option<Arc<PartitionFn<T>>>,
    /// With exactly-once delivery: every instance's transactional
    /// producer, for the commits.
    txns: Arc<Registry>,
    /// The parallelism of the checkpoint being restored, when it had
    /// pre-commits: the ids of instances past the new parallelism are
    /// fenced when planned.
    restored_parallelism: Option<usize>,
}

impl<T: serde::Serialize + Send + 'static> KafkaSink<T> {
    /// A sink writing values as JSON.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn json(config: KafkaSinkConfig) -> Result<Self> {
        Self::with_codec(config, Json)
    }
}

impl<T: Send + 'static> KafkaSink<T> {
    /// A sink writing values with `serializer` (any
    /// `Fn(&T) -> Result<Vec<u8>, BoxError>` is one).
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid.
    pub fn with_serializer(
        config: KafkaSinkConfig,
        serializer: impl Serializer<T>,
    ) -> Result<Self> {
        Self::writing(config, Writing::serializer(serializer))
    }

    /// A sink writing each value as one record of a codec of
    /// [`brook_connectors::codec`] (JSON, CSV without header:
    /// `Csv::new().has_headers(false)`, text), the same codecs as the file
    /// connectors', without the record's final line break.
    ///
    /// # Errors
    /// [`Error::Config`] if the config is invalid; a codec with a header is
    /// refused when the job is built.
    pub fn with_codec(config: KafkaSinkConfig, codec: impl Encoder<T>) -> Result<Self> {
        Self::writing(config, Writing::encoder(codec))
    }

    fn writing(config: KafkaSinkConfig, writing: Writing<T>) -> Result<Self> {
        config.validate()?;
        Ok(KafkaSink {
            config,
            writing,
            key: None,
            headers: None,
            partitioner: None,
            txns: Arc::new(Registry::default()),
            restored_parallelism: None,
        })
    }

    /// Each message's key, from its value.
    pub fn key(mut self, f: impl Fn(&T) -> Option<Vec<u8>> + Send + Sync + 'static) -> Self {
        self.key = Some(Arc::new(f));
        self
    }

    /// Each message's headers, from its value.
    pub fn headers(
        mut self,
        f: impl Fn(&T) -> Vec<(String, Vec<u8>)> + Send + Sync + 'static,
    ) -> Self {
        self.headers = Some(Arc::new(f));
        self
    }

    /// Each message's partition, from its value, its key and the topic's
    /// partition count (read once per instance, at the first write). A
    /// partition out of range fails the job.
    pub fn partitioner(
        mut self,
        f: impl Fn(&T, Option<&[u8]>, i32) -> i32 + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(f));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaSinkConfig {
        &self.config
    }

    /// The sink's transactional producers and what happened to their
    /// transactions, for tests.
    #[cfg(test)]
    pub(crate) fn transactions(&self) -> Arc<Registry> {
        self.txns.clone()
    }
}

impl<T> KafkaSink<T> {
    /// The producer settings of instance `instance` of node `node`.
    fn settings<'a>(&'a self, client_id: &'a str) -> ProducerSettings<'a> {
        let c = &self.config;
        ProducerSettings {
            servers: &c.bootstrap_servers,
            options: &c.librdkafka_options,
            idempotent: c.idempotent,
            max_in_flight_bytes: c.max_in_flight_bytes,
            delivery_timeout: c.delivery_timeout,
            client_id,
            transactional: None,
        }
    }

    /// The settings of a transactional producer with id `tid`.
    fn transactional<'a>(&'a self, tid: &'a str) -> ProducerSettings<'a> {
        ProducerSettings {
            transactional: Some((tid, self.config.transaction_timeout)),
            ..self.settings(tid)
        }
    }

    fn exactly_once(&self) -> bool {
        self.config.delivery == Delivery::ExactlyOnce
    }

    fn what(&self, node: &str) -> String {
        format!("kafka sink '{node}' writing to '{}'", self.config.topic)
    }
}

impl<T: Send + 'static> Sink<T> for KafkaSink<T> {
    type Writer = KafkaWriter<T>;

    /// Checks that librdkafka accepts the options (no I/O), so that a bad
    /// option fails `build()`. Exactly once: refuses a job without
    /// checkpoints, and fences the transactional ids of instances that the
    /// restored checkpoint had and this job does not run.
    ///
    /// # Errors
    /// [`Error::Config`] for an option librdkafka refuses, or exactly-once
    /// delivery without checkpoints; the brokers' errors when fencing.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        self.writing.check("sink")?;
        let client_id = format!("brook-{}-{}-plan", ctx.job_name(), ctx.node_name());
        let what = self.what(ctx.node_name());
        if !self.exactly_once() {
            return producer::check(&self.settings(&client_id), &what);
        }
        if !ctx.checkpoints_enabled() {
            return Err(Error::Config(format!(
                "{what}: `delivery: exactly_once` needs a job with checkpoints \
                 (Dataflow::set_checkpoints): its transactions commit when checkpoints \
                 complete. Enable checkpoints, or use `delivery: at_least_once`"
            )));
        }
        let tid = txn::transactional_id(ctx.job_name(), ctx.node_name(), 0);
        producer::check(&self.transactional(&tid), &what)?;
        if let Some(old) = self.restored_parallelism.take() {
            for i in ctx.parallelism()..old {
                let tid = txn::transactional_id(ctx.job_name(), ctx.node_name(), i);
                txn::fence(&self.transactional(&tid), ctx.node_name(), &what)?;
            }
        }
        Ok(())
    }

    /// Creates the instance's producer (no I/O: it connects in the
    /// background). Exactly once: a transactional producer, whose
    /// `init_transactions` (fencing earlier incarnations) starts now, in
    /// the background.
    ///
    /// # Errors
    /// [`Error::Config`] for an option librdkafka refuses.
    fn open(&mut self, ctx: &SinkContext) -> Result<KafkaWriter<T>> {
        let c = &self.config;
        let what = self.what(ctx.node_name());
        let (producer, txn) = if self.exactly_once() {
            let tid = txn::transactional_id(ctx.job_name(), ctx.node_name(), ctx.instance());
            let txn = Arc::new(Txn::new(
                &self.transactional(&tid),
                ctx.node_name(),
                &c.topic,
                &what,
            )?);
            self.txns.insert(txn.clone());
            // In the background on a job's runtime; outside one (a writer
            // used on its own), here.
            let init = match tokio::runtime::Handle::try_current() {
                Ok(runtime) => {
                    let txn = txn.clone();
                    Some(runtime.spawn_blocking(move || txn.init()))
                }
                Err(_) => {
                    txn.init()?;
                    None
                }
            };
            let writer = TxnWriter {
                txn: txn.clone(),
                init,
                open: false,
                awaiting: None,
                copy: Vec::new(),
                token: txn::run_token(),
                parallelism: ctx.parallelism(),
            };
            (txn.producer.clone(), Some(writer))
        } else {
            let client_id = format!(
                "brook-{}-{}-{}",
                ctx.job_name(),
                ctx.node_name(),
                ctx.instance()
            );
            let settings = self.settings(&client_id);
            (producer::create(&settings, ctx.node_name(), &what)?, None)
        };
        let mut deliveries = Deliveries::new(c.max_in_flight_bytes, what);
        if txn.is_some() {
            deliveries.track_placement();
        }
        Ok(KafkaWriter {
            producer,
            topic: c.topic.clone(),
            deliveries,
            write: self.writing.instance(),
            key: self.key.clone(),
            headers: self.headers.clone(),
            partitioner: self.partitioner.clone(),
            partitions: None,
            txn,
        })
    }

    /// Exactly once: commits each instance's transaction of checkpoint
    /// `checkpoint`, with its commit marker (see [Delivery](KafkaSink#delivery)).
    ///
    /// # Errors
    /// A fenced producer (naming its transactional id), a transaction the
    /// broker aborted or that does not commit within the transaction
    /// timeout; [`Error::State`] for a pre-commit that does not parse.
    fn commit(&mut self, checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        for bytes in pre_committed {
            let head = PreCommit::decode_head(bytes)?;
            let tid = head.transactional_id;
            let Some(txn) = self.txns.get(&tid) else {
                return Err(Error::State(format!(
                    "kafka sink writing to '{}': checkpoint {checkpoint} has a pre-commit of \
                     transactional id '{tid}', which no writer of this sink opened",
                    head.topic
                )));
            };
            if head.checkpoint != checkpoint {
                return Err(Error::State(format!(
                    "{}: committing checkpoint {checkpoint}, the pre-commit of transactional id \
                     '{tid}' is for checkpoint {}",
                    txn.what, head.checkpoint
                )));
            }
            let records = txn.commit(checkpoint, &head.token)?;
            tracing::debug!(transactional_id = %tid, checkpoint, records, "Kafka transaction committed.");
            self.txns.note(TxnEvent::Committed {
                tid,
                checkpoint,
                records,
            });
        }
        Ok(())
    }

    /// Publishes the transactions of checkpoint `checkpoint` that may not
    /// have committed: for each, fences its transactional id, and unless
    /// its commit marker says it committed, writes its copy again in a new
    /// transaction (see [Delivery](KafkaSink#delivery)).
    ///
    /// # Errors
    /// [`Error::State`] for a pre-commit that does not parse; the brokers'
    /// errors.
    fn restore(&mut self, checkpoint: CheckpointId, pre_committed: &[Vec<u8>]) -> Result<()> {
        let pres = pre_committed
            .iter()
            .map(|b| PreCommit::decode(b))
            .collect::<Result<Vec<_>>>()?;
        // Fence every instance first: a transaction one of them left open
        // may hold back the others' commit markers on the same partitions
        // (tansu applies a marker only when the overlapping transactions
        // end), so no marker is read while any of them is open.
        for pre in &pres {
            let tid = &pre.head.transactional_id;
            let what = self.what(tid);
            txn::fence(&self.transactional(tid), tid, &what)?;
        }
        for pre in pres {
            let tid = pre.head.transactional_id.clone();
            let outcome = txn::restore(
                &self.settings(&tid),
                &tid,
                checkpoint,
                &pre,
                self.config.transaction_timeout,
            )?;
            self.restored_parallelism = Some(
                self.restored_parallelism
                    .unwrap_or(0)
                    .max(pre.head.parallelism),
            );
            self.txns.note(TxnEvent::Restored {
                tid,
                checkpoint,
                outcome,
            });
        }
        Ok(())
    }

    /// Exactly once: commits the records written after the last
    /// checkpoint when the job completed; aborts them when it was stopped
    /// (a run restored from the checkpoint writes them again).
    ///
    /// # Errors
    /// The first transaction that could not be committed or aborted (the
    /// others are still tried).
    fn finish(&mut self, outcome: JobOutcome) -> Result<()> {
        let mut first = None;
        for txn in self.txns.drain() {
            if !txn.is_open() {
                continue;
            }
            let tid = txn.transactional_id.clone();
            let done = match outcome {
                JobOutcome::Completed => txn
                    .commit_tail()
                    .map(|records| TxnEvent::TailCommitted { tid, records }),
                JobOutcome::Stopped => txn
                    .abort()
                    .map(|records| TxnEvent::Aborted { tid, records }),
            };
            match done {
                Ok(event) => self.txns.note(event),
                Err(e) => {
                    first.get_or_insert(e);
                }
            }
        }
        first.map_or(Ok(()), Err)
    }
}

/// One instance of a [`KafkaSink`].
pub struct KafkaWriter<T> {
    producer: Producer,
    topic: String,
    deliveries: Deliveries,
    /// This instance's writer of values.
    write: WriteFn<T>,
    key: Option<Arc<KeyFn<T>>>,
    headers: Option<Arc<HeadersFn<T>>>,
    partitioner: Option<Arc<PartitionFn<T>>>,
    /// The topic's partition count, once read (for the partitioner).
    partitions: Option<i32>,
    /// With exactly-once delivery: the instance's transactions.
    txn: Option<TxnWriter>,
}

/// A writer's side of its transactions.
struct TxnWriter {
    txn: Arc<Txn>,
    /// `init_transactions` (which fences earlier incarnations), started
    /// when the writer opened; awaited before the first transaction.
    init: Option<tokio::task::JoinHandle<Result<()>>>,
    /// A transaction is begun and not yet pre-committed.
    open: bool,
    /// The checkpoint whose transaction the sink must commit before the
    /// next one begins.
    awaiting: Option<CheckpointId>,
    /// The write-ahead copy of the open transaction's messages.
    copy: Vec<Copied>,
    /// Unique to this run of the writer: with the checkpoint's number, it
    /// names each transaction in its commit marker.
    token: String,
    /// The node's parallelism.
    parallelism: usize,
}

impl TxnWriter {
    /// Waits for `init_transactions`, if it has not been awaited.
    async fn initialized(&mut self) -> Result<()> {
        let Some(init) = self.init.take() else {
            return Ok(());
        };
        init.await
            .map_err(|e| Error::Internal(format!("initializing transactions: {e}")))?
    }

    /// Makes a transaction open to write into: waits for the fencing at
    /// open, and for the commit of the transaction pre-committed last,
    /// then begins one if none is open.
    async fn ready(&mut self) -> Result<()> {
        self.initialized().await?;
        if let Some(n) = self.awaiting {
            let mut progress = self.txn.progress.subscribe();
            let seen = progress
                .wait_for(|p| match p {
                    Progress::Committed(c) => *c >= n,
                    Progress::Failed(_) => true,
                })
                .await
                .map_err(|e| Error::Internal(format!("waiting for a commit: {e}")))?
                .clone();
            if let Progress::Failed(e) = seen {
                return Err(Error::External {
                    source: format!(
                        "{}: the transaction of checkpoint {n} did not commit, so this writer \
                         cannot go on: {e}",
                        self.txn.what
                    )
                    .into(),
                    retry: brook_core::RetryHint::Fatal,
                });
            }
            self.awaiting = None;
        }
        if !self.open {
            self.txn.begin()?;
            self.open = true;
        }
        Ok(())
    }
}

impl<T: Send + 'static> KafkaWriter<T> {
    /// Reads the topic's partition count on a blocking thread.
    async fn partition_count(&mut self) -> Result<i32> {
        if let Some(n) = self.partitions {
            return Ok(n);
        }
        let producer = self.producer.clone();
        let topic = self.topic.clone();
        let metadata = tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), METADATA_TIMEOUT)
        })
        .await
        .map_err(|e| Error::Internal(format!("reading topic metadata: {e}")))?
        .map_err(|e| {
            kafka_error(
                format!("kafka sink: reading the partitions of '{}'", self.topic),
                e,
            )
        })?;
        let n = metadata
            .topics()
            .iter()
            .find(|t| t.name() == self.topic)
            .map_or(0, |t| t.partitions().len());
        let n = i32::try_from(n).unwrap_or(i32::MAX);
        if n == 0 {
            return Err(Error::External {
                source: format!(
                    "kafka sink: topic '{}' has no partitions (does it exist?)",
                    self.topic
                )
                .into(),
                retry: brook_core::RetryHint::Fatal,
            });
        }
        self.partitions = Some(n);
        Ok(n)
    }
}

impl<T: Send + 'static> SinkWriter<T> for KafkaWriter<T> {
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let count = match &self.partitioner {
            Some(_) => Some(self.partition_count().await?),
            None => None,
        };
        if let Some(t) = &mut self.txn {
            t.ready().await?;
            t.txn.produced(batch.len() as u64);
        }
        for record in batch {
            let v = &record.value;
            let payload = (self.write)(v).map_err(|e| {
                Error::User(
                    format!("kafka sink: serializing a record for '{}': {e}", self.topic).into(),
                )
            })?;
            let key = self.key.as_ref().and_then(|f| f(v));
            let partition = match (&self.partitioner, count) {
                (Some(f), Some(n)) => {
                    let p = f(v, key.as_deref(), n);
                    if !(0..n).contains(&p) {
                        return Err(Error::User(
                            format!("kafka sink: the partitioner chose partition {p} of '{}', which has {n}", self.topic)
                                .into(),
                        ));
                    }
                    Some(p)
                }
                _ => None,
            };
            let header_list = self.headers.as_ref().map(|f| f(v)).unwrap_or_default();
            let headers = txn::headers(&header_list);
            let timestamp = (record.timestamp != NO_TIMESTAMP).then_some(record.timestamp);
            if let Some(t) = &mut self.txn {
                // Where it goes is noted when it is acknowledged.
                t.copy.push(Copied {
                    partition: partition.unwrap_or(-1),
                    timestamp,
                    key: key.clone(),
                    value: Some(payload.clone()),
                    headers: header_list,
                });
            }
            let out = Outgoing {
                key,
                payload: Some(payload),
                partition,
                timestamp,
                headers,
                label: if record.timestamp == NO_TIMESTAMP {
                    "a record".to_string()
                } else {
                    format!("a record with event time {}", record.timestamp)
                },
            };
            self.deliveries
                .send(&self.producer, &self.topic, out)
                .await?;
        }
        // Surface failed deliveries early, without waiting.
        self.deliveries.reap()
    }

    /// Waits for every delivery.
    async fn flush(&mut self) -> Result<()> {
        self.deliveries.settle().await
    }

    /// Waits for every delivery (and, with exactly-once delivery, for the
    /// fencing at open). The open transaction, if any, is left to the
    /// sink's [`finish`](Sink::finish).
    async fn close(&mut self) -> Result<()> {
        self.deliveries.settle().await?;
        if let Some(t) = &mut self.txn {
            t.initialized().await?;
        }
        Ok(())
    }

    /// At least once: waits for every delivery. Exactly once: waits for
    /// every delivery of the open transaction and returns its pre-commit
    /// (which transaction, and a copy of its messages); the next
    /// transaction begins once the sink has committed this one.
    async fn checkpoint(&mut self, checkpoint: CheckpointId) -> Result<Option<Vec<u8>>> {
        self.deliveries.settle().await?;
        let Some(t) = &mut self.txn else {
            return Ok(None);
        };
        if !t.open {
            return Ok(None);
        }
        let placed = self.deliveries.take_placed();
        if placed.len() != t.copy.len() {
            return Err(Error::Internal(format!(
                "{}: {} messages in the transaction, {} acknowledged",
                t.txn.what,
                t.copy.len(),
                placed.len()
            )));
        }
        for (m, (partition, timestamp)) in t.copy.iter_mut().zip(placed) {
            m.partition = partition;
            if timestamp.is_some() {
                m.timestamp = timestamp;
            }
        }
        let pre = PreCommit {
            head: Head {
                transactional_id: t.txn.transactional_id.clone(),
                checkpoint,
                token: t.token.clone(),
                topic: self.topic.clone(),
                parallelism: t.parallelism,
            },
            messages: std::mem::take(&mut t.copy),
        };
        t.txn.pre_commit(checkpoint);
        t.open = false;
        t.awaiting = Some(checkpoint);
        Ok(Some(pre.encode()))
    }
}
