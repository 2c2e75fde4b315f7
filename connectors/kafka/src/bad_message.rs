//! What a source instance does with a message it cannot deserialize: the
//! [`BadMessagePolicy`] applied to one message, and the dead-letter
//! producer.

use std::collections::HashSet;

use brook_core::{BoxError, Error, Result, TaskContext};
use rdkafka::message::{Header, OwnedHeaders};

use crate::config::{BadMessagePolicy, KafkaSourceConfig};
use crate::format::KafkaMessage;
use crate::producer::{self, Deliveries, Outgoing, Producer, ProducerSettings};

/// The dead-letter header naming the topic the message was read from.
pub const DLQ_TOPIC_HEADER: &str = "brook.dlq.topic";
/// The dead-letter header naming the partition, in decimal.
pub const DLQ_PARTITION_HEADER: &str = "brook.dlq.partition";
/// The dead-letter header naming the offset, in decimal.
pub const DLQ_OFFSET_HEADER: &str = "brook.dlq.offset";
/// The dead-letter header saying why the message could not be read.
pub const DLQ_ERROR_HEADER: &str = "brook.dlq.error";

/// The most bytes of dead letters in flight per instance.
const DLQ_IN_FLIGHT: u64 = 4 << 20;

/// Where a message is, as errors and logs name it: `topic/partition@offset`.
pub(crate) fn location(m: &KafkaMessage<'_>) -> String {
    format!("{}/{}@{}", m.topic, m.partition, m.offset)
}

/// The bad-message policy of one source instance.
pub(crate) enum BadMessages {
    Fail,
    Drop {
        /// Partitions (by index) already warned about.
        warned: HashSet<usize>,
    },
    DeadLetter {
        producer: Producer,
        topic: String,
        deliveries: Deliveries,
    },
}

impl BadMessages {
    /// The policy of `cfg`; a dead-letter producer is created (no I/O).
    pub(crate) fn new(cfg: &KafkaSourceConfig, node: &str, client_id: &str) -> Result<Self> {
        Ok(match &cfg.on_bad_message {
            BadMessagePolicy::Fail => BadMessages::Fail,
            BadMessagePolicy::Drop => BadMessages::Drop {
                warned: HashSet::new(),
            },
            BadMessagePolicy::DeadLetter { topic } => {
                let what = format!("kafka source '{node}' dead-lettering to '{topic}'");
                let settings = ProducerSettings {
                    servers: &cfg.bootstrap_servers,
                    options: &cfg.librdkafka_options,
                    idempotent: true,
                    max_in_flight_bytes: DLQ_IN_FLIGHT,
                    delivery_timeout: std::time::Duration::from_secs(60),
                    client_id: &format!("{client_id}-dlq"),
                };
                BadMessages::DeadLetter {
                    producer: producer::create(&settings, node, &what)?,
                    topic: topic.clone(),
                    deliveries: Deliveries::new(DLQ_IN_FLIGHT, what),
                }
            }
        })
    }

    /// Applies the policy to a message of partition `index` that failed to
    /// deserialize with `error`.
    ///
    /// # Errors
    /// Under [`BadMessagePolicy::Fail`], [`Error::BadRecord`] naming
    /// `topic/partition@offset`; a dead letter librdkafka refuses.
    pub(crate) async fn handle(
        &mut self,
        ctx: &TaskContext,
        index: usize,
        m: Dead,
        error: BoxError,
    ) -> Result<()> {
        match self {
            BadMessages::Fail => Err(Error::BadRecord {
                location: m.location,
                reason: error.to_string(),
            }),
            BadMessages::Drop { warned } => {
                if warned.insert(index) {
                    tracing::warn!(
                        node = ctx.node_name(),
                        at = %m.location,
                        reason = %error,
                        "Dropped a bad message; later ones in this partition are dropped without a warning."
                    );
                }
                ctx.metrics().add_dropped(1);
                Ok(())
            }
            BadMessages::DeadLetter {
                producer,
                topic,
                deliveries,
            } => {
                let mut headers = m.headers;
                headers = headers
                    .insert(header(DLQ_TOPIC_HEADER, m.topic.as_bytes()))
                    .insert(header(
                        DLQ_PARTITION_HEADER,
                        m.partition.to_string().as_bytes(),
                    ))
                    .insert(header(DLQ_OFFSET_HEADER, m.offset.to_string().as_bytes()))
                    .insert(header(DLQ_ERROR_HEADER, error.to_string().as_bytes()));
                let out = Outgoing {
                    key: m.key,
                    payload: m.payload,
                    partition: None,
                    timestamp: m.timestamp,
                    headers: Some(headers),
                    label: format!("the dead letter of {}", m.location),
                };
                deliveries.send(producer, topic, out).await?;
                ctx.metrics().add_dead_lettered(1);
                Ok(())
            }
        }
    }

    /// Waits until every dead letter is acknowledged: before the offsets of
    /// the messages they replace are committed.
    ///
    /// # Errors
    /// A failed delivery, naming the dead-letter topic and the message.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self {
            BadMessages::DeadLetter { deliveries, .. } if deliveries.len() > 0 => {
                deliveries.settle().await
            }
            _ => Ok(()),
        }
    }
}

/// A bad message, copied out of the consumer's buffer: raw key, value and
/// headers.
pub(crate) struct Dead {
    location: String,
    topic: String,
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: OwnedHeaders,
}

impl Dead {
    /// Copies what the policy needs: for [`BadMessages::DeadLetter`], the
    /// raw message; for the others, only its location.
    pub(crate) fn copy(m: &KafkaMessage<'_>, raw: bool) -> Self {
        let mut headers = OwnedHeaders::new();
        if raw {
            for (key, value) in m.headers() {
                headers = headers.insert(Header { key, value });
            }
        }
        Dead {
            location: location(m),
            topic: m.topic.to_string(),
            partition: m.partition,
            offset: m.offset,
            key: m.key.filter(|_| raw).map(<[u8]>::to_vec),
            payload: m.payload.filter(|_| raw).map(<[u8]>::to_vec),
            timestamp: m.timestamp,
            headers,
        }
    }
}

impl BadMessages {
    /// Whether a bad message's raw contents are needed.
    pub(crate) fn needs_raw(&self) -> bool {
        matches!(self, BadMessages::DeadLetter { .. })
    }
}

fn header<'a>(key: &'a str, value: &'a [u8]) -> Header<'a, &'a [u8]> {
    Header {
        key,
        value: Some(value),
    }
}
