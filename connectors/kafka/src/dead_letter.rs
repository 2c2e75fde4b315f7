//! [`KafkaDeadLetterSink`]: dead letters to a Kafka topic, each written
//! back as the message it was, with headers saying where it was read and
//! why it could not be.

use brook_connectors::DeadLetter;
use brook_core::{Batch, PlanContext, Result, Sink, SinkContext, SinkWriter};
use rdkafka::message::{Header, OwnedHeaders};

use crate::options::KafkaOptions;
use crate::producer::{self, Deliveries, Outgoing, Producer, ProducerSettings};

/// The dead-letter header naming where the record was read: the topic, or
/// a file's path.
pub const DLQ_TOPIC_HEADER: &str = "brook.dlq.topic";
/// The dead-letter header naming the partition, in decimal (Kafka only).
pub const DLQ_PARTITION_HEADER: &str = "brook.dlq.partition";
/// The dead-letter header naming the offset (a message's, or a line's byte
/// offset), in decimal.
pub const DLQ_OFFSET_HEADER: &str = "brook.dlq.offset";
/// The dead-letter header naming a file's line number (files only).
pub const DLQ_LINE_HEADER: &str = "brook.dlq.line";
/// The dead-letter header saying why the record could not be read.
pub const DLQ_ERROR_HEADER: &str = "brook.dlq.error";

/// The most bytes of dead letters in flight per instance.
const DLQ_IN_FLIGHT: u64 = 4 << 20;
/// How long librdkafka tries to deliver a dead letter.
const DLQ_DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A [`Sink`] of [`DeadLetter`]s writing to a Kafka topic: the dead-letter
/// sink of a [`BadRecordPolicy`](brook_connectors::BadRecordPolicy), for any
/// source. Each dead letter becomes a message with the original key,
/// value (a file's line as its text), timestamp and headers, plus
/// `brook.dlq.*` headers ([`DLQ_TOPIC_HEADER`] and the others) naming
/// where it was read and why. Idempotent; a write waits while 4 MiB are
/// unacknowledged, and [`flush`](SinkWriter::flush) waits for every
/// acknowledgement (a Kafka source flushes before committing offsets).
///
/// ```
/// use brook_connectors::BadRecordPolicy;
/// use brook_kafka::KafkaDeadLetterSink;
///
/// let policy = BadRecordPolicy::dead_letter(KafkaDeadLetterSink::new("127.0.0.1:9092", "bad-logs"));
/// # let _ = policy;
/// ```
#[derive(Debug, Clone)]
pub struct KafkaDeadLetterSink {
    bootstrap_servers: String,
    topic: String,
    options: KafkaOptions,
}

impl KafkaDeadLetterSink {
    /// Dead letters to `topic` on the brokers `bootstrap_servers`.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaDeadLetterSink {
            bootstrap_servers: bootstrap_servers.into(),
            topic: topic.into(),
            options: KafkaOptions::new(),
        }
    }

    /// librdkafka options for the producer (security, tuning).
    pub fn with_options(mut self, options: KafkaOptions) -> Self {
        self.options = options;
        self
    }

    fn settings<'a>(&'a self, client_id: &'a str) -> ProducerSettings<'a> {
        ProducerSettings {
            servers: &self.bootstrap_servers,
            options: &self.options,
            idempotent: true,
            max_in_flight_bytes: DLQ_IN_FLIGHT,
            delivery_timeout: DLQ_DELIVERY_TIMEOUT,
            client_id,
            transactional: None,
        }
    }

    fn what(&self, node: &str) -> String {
        format!("'{node}' dead-lettering to '{}'", self.topic)
    }
}

impl Sink<DeadLetter> for KafkaDeadLetterSink {
    type Writer = KafkaDeadLetterWriter;

    /// Checks that librdkafka accepts the options (no I/O).
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) for an empty topic or
    /// an option librdkafka refuses.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        if self.topic.trim().is_empty() {
            return Err(brook_core::Error::Config(
                "the dead-letter topic is empty".into(),
            ));
        }
        let client_id = format!("brook-{}-{}-dlq-plan", ctx.job_name(), ctx.node_name());
        producer::check(&self.settings(&client_id), &self.what(ctx.node_name()))
    }

    /// Creates the instance's producer (no I/O: it connects in the
    /// background).
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) for an option
    /// librdkafka refuses.
    fn open(&mut self, ctx: &SinkContext) -> Result<KafkaDeadLetterWriter> {
        let client_id = format!(
            "brook-{}-{}-{}-dlq",
            ctx.job_name(),
            ctx.node_name(),
            ctx.instance()
        );
        let what = self.what(ctx.node_name());
        Ok(KafkaDeadLetterWriter {
            producer: producer::create(&self.settings(&client_id), ctx.node_name(), &what)?,
            topic: self.topic.clone(),
            deliveries: Deliveries::new(DLQ_IN_FLIGHT, what),
        })
    }
}

/// One instance of a [`KafkaDeadLetterSink`].
pub struct KafkaDeadLetterWriter {
    producer: Producer,
    topic: String,
    deliveries: Deliveries,
}

impl SinkWriter<DeadLetter> for KafkaDeadLetterWriter {
    /// Produces each dead letter, waiting only while too many bytes are
    /// unacknowledged.
    ///
    /// # Errors
    /// A failed delivery, naming the topic and the record.
    async fn write(&mut self, batch: Batch<DeadLetter>) -> Result<()> {
        for r in batch {
            let out = outgoing(r.value);
            self.deliveries
                .send(&self.producer, &self.topic, out)
                .await?;
        }
        Ok(())
    }

    /// Waits until every dead letter written is acknowledged.
    ///
    /// # Errors
    /// A failed delivery, naming the topic and the record.
    async fn flush(&mut self) -> Result<()> {
        if self.deliveries.len() > 0 {
            self.deliveries.settle().await?;
        }
        Ok(())
    }

    /// As [`flush`](SinkWriter::flush).
    async fn close(&mut self) -> Result<()> {
        self.flush().await
    }
}

/// The message a dead letter becomes.
fn outgoing(d: DeadLetter) -> Outgoing {
    let mut headers = OwnedHeaders::new();
    for (key, value) in &d.headers {
        headers = headers.insert(Header {
            key: key.as_str(),
            value: value.as_deref(),
        });
    }
    headers = headers.insert(header(DLQ_TOPIC_HEADER, d.source.as_bytes()));
    if let Some(p) = d.partition {
        headers = headers.insert(header(DLQ_PARTITION_HEADER, p.to_string().as_bytes()));
    }
    headers = headers.insert(header(DLQ_OFFSET_HEADER, d.offset.to_string().as_bytes()));
    if d.partition.is_none() && d.line > 0 {
        headers = headers.insert(header(DLQ_LINE_HEADER, d.line.to_string().as_bytes()));
    }
    headers = headers.insert(header(DLQ_ERROR_HEADER, d.reason.as_bytes()));
    let label = match d.partition {
        Some(p) => format!("the dead letter of {}/{p}@{}", d.source, d.offset),
        None => format!("the dead letter of {}:{}", d.source, d.line),
    };
    // A message's value as it was (a tombstone stays one); a file's line as
    // its text.
    let payload = match (d.partition, d.value) {
        (Some(_), value) => value,
        (None, value) => Some(value.unwrap_or_else(|| d.raw.into_bytes())),
    };
    Outgoing {
        key: d.key,
        payload,
        partition: None,
        timestamp: d.timestamp,
        headers: Some(headers),
        label,
    }
}

fn header<'a>(key: &'a str, value: &'a [u8]) -> Header<'a, &'a [u8]> {
    Header {
        key,
        value: Some(value),
    }
}
