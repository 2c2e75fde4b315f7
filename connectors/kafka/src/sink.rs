//! [`KafkaSink`]: writes records to a Kafka topic.

use std::sync::Arc;

use brook_core::{Batch, Error, NO_TIMESTAMP, PlanContext, Result, Sink, SinkContext, SinkWriter};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::Producer as _;

use crate::client::kafka_error;
use crate::config::KafkaSinkConfig;
use brook_connectors::codec::{Encoder, Json};

use crate::format::{Serializer, WriteFn, Writing};
use crate::producer::{self, Deliveries, Outgoing, Producer, ProducerSettings};

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
/// The producer is idempotent by default. A write returns once its
/// messages are queued; at most
/// [`max_in_flight_bytes`](KafkaSinkConfig::max_in_flight_bytes) of them
/// wait for acknowledgement at once, and a write waits for deliveries to
/// make room. Every delivery is awaited by the next flush (when the input
/// is idle) or at close, and a failed one fails the job with an error
/// naming the sink's node, the topic and the record: never a silent loss.
/// The guarantee is at least once: there are no transactions yet.
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
pub struct KafkaSink<T> {
    config: KafkaSinkConfig,
    writing: Writing<T>,
    key: Option<Arc<KeyFn<T>>>,
    headers: Option<Arc<HeadersFn<T>>>,
    partitioner: Option<Arc<PartitionFn<T>>>,
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
        }
    }

    fn what(&self, node: &str) -> String {
        format!("kafka sink '{node}' writing to '{}'", self.config.topic)
    }
}

impl<T: Send + 'static> Sink<T> for KafkaSink<T> {
    type Writer = KafkaWriter<T>;

    /// Checks that librdkafka accepts the options (no I/O), so that a bad
    /// option fails `build()`.
    ///
    /// # Errors
    /// [`Error::Config`] for an option librdkafka refuses.
    fn plan(&mut self, ctx: &PlanContext) -> Result<()> {
        self.writing.check("sink")?;
        let client_id = format!("brook-{}-{}-plan", ctx.job_name(), ctx.node_name());
        let what = self.what(ctx.node_name());
        producer::check(&self.settings(&client_id), &what)
    }

    /// Creates the instance's producer (no I/O: it connects in the
    /// background).
    ///
    /// # Errors
    /// [`Error::Config`] for an option librdkafka refuses.
    fn open(&mut self, ctx: &SinkContext) -> Result<KafkaWriter<T>> {
        let c = &self.config;
        let what = self.what(ctx.node_name());
        let client_id = format!(
            "brook-{}-{}-{}",
            ctx.job_name(),
            ctx.node_name(),
            ctx.instance()
        );
        let settings = self.settings(&client_id);
        Ok(KafkaWriter {
            producer: producer::create(&settings, ctx.node_name(), &what)?,
            topic: c.topic.clone(),
            deliveries: Deliveries::new(c.max_in_flight_bytes, what),
            write: self.writing.instance(),
            key: self.key.clone(),
            headers: self.headers.clone(),
            partitioner: self.partitioner.clone(),
            partitions: None,
        })
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
        let count = match &self.partitioner {
            Some(_) => Some(self.partition_count().await?),
            None => None,
        };
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
            let headers = self.headers.as_ref().map(|f| {
                f(v).iter().fold(OwnedHeaders::new(), |h, (k, val)| {
                    h.insert(Header {
                        key: k.as_str(),
                        value: Some(val.as_slice()),
                    })
                })
            });
            let out = Outgoing {
                key,
                payload: Some(payload),
                partition,
                timestamp: (record.timestamp != NO_TIMESTAMP).then_some(record.timestamp),
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

    /// Waits for every delivery.
    async fn close(&mut self) -> Result<()> {
        self.deliveries.settle().await
    }
}
