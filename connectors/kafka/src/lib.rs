//! Kafka: a consumer source ([`KafkaSource`]) and a producer sink
//! ([`KafkaSink`]), on rdkafka. Behind the `kafka` feature.
//!
//! ```no_run
//! use brook_kafka::{KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig};
//! use brook_core::prelude::*;
//! use brook_operators::StreamExt;
//!
//! #[derive(Clone, serde::Deserialize, serde::Serialize)]
//! struct Hit { path: String, status: u16 }
//!
//! # async fn run() -> Result<()> {
//! let source = KafkaSource::<Hit>::json(KafkaSourceConfig::new("127.0.0.1:9092", &["hits"], "errors"))?;
//! let sink = KafkaSink::<Hit>::json(KafkaSinkConfig::new("127.0.0.1:9092", "errors"))?;
//! let flow = Dataflow::new("errors");
//! flow.source("hits", source)
//!     .filter("5xx", |h: &Hit| h.status >= 500)
//!     .sink("errors", sink);
//! flow.build()?.run(CancellationToken::new()).await
//! # }
//! ```
//!
//! # Partitions and parallelism
//! The source lists the partitions of its topics once, when the dataflow is
//! built (`build()` blocks meanwhile, and fails if a topic is missing, the
//! brokers do not answer within the startup timeout, or librdkafka refuses
//! an option). Each partition is a [`KafkaSplit`]; each parallel instance
//! is assigned its own share of them explicitly (see [`KafkaSource`]);
//! partitions added later are not read by that job. The group is used for
//! its committed offsets only, not for rebalancing. Several processes
//! reading one topic in one group would each read every partition: run one
//! job per group.
//!
//! # Backpressure
//! The source polls its consumer only when the dataflow asks for the next
//! batch. While the dataflow is slow, librdkafka fetches ahead at most
//! [`max_buffered_bytes`](KafkaSourceConfig::max_buffered_bytes) per
//! instance, then stops fetching: memory stays bounded. The sink keeps at
//! most [`max_in_flight_bytes`](KafkaSinkConfig::max_in_flight_bytes) of
//! messages unacknowledged per instance; a write waits for room.
//!
//! # Offsets and delivery guarantees
//! **With checkpoints** ([`Dataflow::set_checkpoints`]), each checkpoint
//! holds every partition's next offset, recorded with the batch that
//! reached it; a restored job resumes at those offsets, whatever the
//! group committed. Nothing in flight is lost, and with a sink that
//! commits on checkpoints (Parquet, or the Kafka sink with
//! [`Delivery::ExactlyOnce`]: see [`KafkaSink`](KafkaSink#delivery)) nothing
//! is read into the output twice.
//! The source then commits to the group only the offsets of checkpoints
//! that completed, on its next poll after each (so lag shows what the job
//! made durable); on restore the checkpoint, not the group, is the truth.
//!
//! **Without checkpoints**, the source commits a message's offset to the
//! group only after the record was taken by the next task (the runtime
//! asks a source for its next batch only after it pushed the previous
//! one): at the next poll, at most once per
//! [`commit_interval`](KafkaSourceConfig::commit_interval), and
//! synchronously at the end of a bounded read. A graceful stop loses
//! nothing and reads again, on restart, what it took since the last commit
//! (at least each instance's last batch: the runtime drops the source
//! without polling it again). "Taken" means handed to the next task, not
//! written by the sinks: if the job fails or the process dies, records in
//! flight inside the job whose offsets were already committed are not read
//! again. Use checkpoints to close that gap. Nothing is read twice within
//! one run.
//!
//! [`Dataflow::set_checkpoints`]: brook_core::Dataflow::set_checkpoints
//!
//! # Bounded reads
//! With [`bounded`](KafkaSourceConfig::bounded), each instance reads its
//! partitions up to their end offsets seen when it starts, then commits
//! and ends. The end offsets the brokers list at start are only a lower
//! bound, because some brokers (tansu 0.6) list them too low: each end is
//! confirmed, and raised if need be, by the high watermark that the first
//! fetch of its partition reports (or by the consumer reaching the broker's
//! high watermark). So a bounded read may also take what was produced
//! shortly after its start, and a partition with nothing to read ends only
//! once the broker answered a fetch for it.
//!
//! # Ordering
//! Within a partition, records keep their order through the source; across
//! partitions there is none. The sink keeps the order of one instance's
//! writes per partition (idempotence keeps it through retries).
//!
//! # Bad messages
//! A message that cannot be read follows the one bad-record policy every
//! Brook source has ([`BadRecordPolicy`](brook_connectors::BadRecordPolicy)):
//! fail the job naming `topic/partition@offset`, drop and count, or send it
//! as a [`DeadLetter`](brook_connectors::DeadLetter) to a dead-letter sink.
//! The config's [`BadMessagePolicy`] names a dead-letter topic, served by
//! [`KafkaDeadLetterSink`], which produces the raw message back with
//! headers naming where it came from and why ([`DLQ_TOPIC_HEADER`],
//! [`DLQ_PARTITION_HEADER`], [`DLQ_OFFSET_HEADER`], [`DLQ_ERROR_HEADER`]);
//! [`KafkaSource::on_bad_message`] takes any sink instead (a Parquet
//! directory SQL can query). The same sink serves a file source's bad
//! lines.
//!
//! # Security
//! Options that run commands or load code are refused, and secrets never
//! show in `Debug` output or logs; see [`KafkaOptions`]. SSL and SASL need
//! librdkafka built with them (rdkafka's `ssl`, `gssapi` features), which
//! the `kafka` feature does not turn on.

mod bad_message;
mod client;
mod config;
mod dead_letter;
mod duration;
mod ends;
mod format;
mod options;
mod producer;
mod setup;
mod sink;
mod source;
mod stream;
mod txn;
mod watermark;

#[cfg(test)]
mod tests;

pub use brook_connectors::codec;
pub use client::KafkaFailure;
pub use config::{
    BadMessagePolicy, Delivery, KafkaSinkConfig, KafkaSourceConfig, OffsetReset, StartPosition,
};
pub use dead_letter::{
    DLQ_ERROR_HEADER, DLQ_LINE_HEADER, DLQ_OFFSET_HEADER, DLQ_PARTITION_HEADER, DLQ_TOPIC_HEADER,
    KafkaDeadLetterSink, KafkaDeadLetterWriter,
};
pub use format::{Deserializer, KafkaMessage, Serializer};
pub use options::KafkaOptions;
/// The rdkafka this crate is built on, for clients of your own (admin, a
/// plain producer in a test, the mock cluster) of the same version.
pub use rdkafka;
pub use sink::{KafkaSink, KafkaWriter};
pub use source::{KafkaSource, KafkaSplit};
pub use txn::{FAILPOINT_AFTER_COMMIT, FAILPOINT_BEFORE_COMMIT};
