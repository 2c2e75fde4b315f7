//! [`KafkaSource`]: reads topics of a Kafka cluster, its partitions spread
//! over the parallel instances.

use std::sync::Arc;

use brook_core::{BoxedSourceStream, EventTime, Result, Source, SourceContext, Watermarks};

use super::config::KafkaSourceConfig;
use super::format::{Deserializer, Json, RawBytes, Utf8};
use super::stream::{KafkaStream, Shared};

/// A source of records from Kafka topics.
///
/// Each parallel instance reads its own share of the partitions, assigned
/// explicitly (no group rebalancing inside the job): the partitions of the
/// topics, sorted by topic and number, go round-robin to the instances, so
/// shares are disjoint and differ by at most one. An instance with no
/// partition (more instances than partitions) says it is idle at once, so
/// it never holds back the watermark, and ends at once in bounded mode.
/// Partitions are listed once, when each instance starts.
///
/// Records carry the message's timestamp as event time, or what
/// [`event_time`](Self::event_time) reads from the value. With
/// [`watermarks`](Self::watermarks), each partition has its own watermark
/// generator, and the instance emits the minimum over its partitions that
/// are neither idle nor (bounded) read to their end.
///
/// Offsets are committed to the consumer group only for records the next
/// task has taken (see [the module docs](super)); delivery is at least
/// once.
///
/// ```no_run
/// use brook_connectors::kafka::{KafkaSource, KafkaSourceConfig};
///
/// #[derive(Clone, serde::Deserialize)]
/// struct Hit { path: String, status: u16, ts: i64 }
///
/// let config = KafkaSourceConfig::new("127.0.0.1:9092", &["hits"], "hit-counter");
/// let source = KafkaSource::<Hit>::json(config)?.event_time(|h| h.ts);
/// # Ok::<(), brook_core::Error>(())
/// ```
pub struct KafkaSource<T> {
    shared: Arc<Shared<T>>,
}

impl<T: serde::de::DeserializeOwned + Send + 'static> KafkaSource<T> {
    /// A source whose message values are JSON.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn json(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_deserializer(config, Json::<T>::new())
    }
}

impl KafkaSource<Vec<u8>> {
    /// A source of the raw bytes of message values.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn bytes(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_deserializer(config, RawBytes)
    }
}

impl KafkaSource<String> {
    /// A source of message values as UTF-8 text.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn utf8(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_deserializer(config, Utf8)
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// A source that reads messages with `deserializer` (any
    /// `Fn(&KafkaMessage<'_>) -> Result<T, BoxError>` is one).
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn with_deserializer(
        config: KafkaSourceConfig,
        deserializer: impl Deserializer<T>,
    ) -> Result<Self> {
        config.validate()?;
        Ok(KafkaSource {
            shared: Arc::new(Shared {
                config,
                deserializer: Arc::new(deserializer),
                event_time: None,
                watermarks: None,
            }),
        })
    }

    /// Reads each record's event time from its value, instead of the
    /// message's timestamp.
    pub fn event_time(self, f: impl Fn(&T) -> EventTime + Send + Sync + 'static) -> Self {
        self.change(|s| s.event_time = Some(Arc::new(f)))
    }

    /// Emits watermarks per partition with this strategy (default: none;
    /// downstream gets the final watermark at the end of a bounded read).
    /// With an idle timeout, a partition quiet for that long stops holding
    /// the watermark back, and when all of an instance's partitions are, it
    /// says it is idle.
    pub fn watermarks(self, strategy: Watermarks) -> Self {
        self.change(|s| s.watermarks = Some(strategy))
    }

    /// The configuration.
    pub fn config(&self) -> &KafkaSourceConfig {
        &self.shared.config
    }

    fn change(mut self, f: impl FnOnce(&mut Shared<T>)) -> Self {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => f(shared),
            None => {
                let s = &self.shared;
                let mut copy = Shared {
                    config: s.config.clone(),
                    deserializer: s.deserializer.clone(),
                    event_time: s.event_time.clone(),
                    watermarks: s.watermarks,
                };
                f(&mut copy);
                self.shared = Arc::new(copy);
            }
        }
        self
    }
}

impl<T: Send + 'static> Source<T> for KafkaSource<T> {
    /// Opens one instance. No I/O here: when first polled, the stream
    /// creates its consumer on a blocking thread, waits for the brokers
    /// (see [`KafkaSourceConfig::startup_timeout`]), takes its share of the
    /// partitions and assigns them.
    ///
    /// # Errors
    /// None here; starting errors come through the stream: the brokers not
    /// answering in time, a missing topic, an option librdkafka refuses.
    ///
    /// # Cancellation
    /// Dropping the stream drops the consumer (and the dead-letter
    /// producer, with any dead letter not yet acknowledged, whose offsets
    /// were not committed either); a start still waiting for the brokers
    /// gives up within a few seconds.
    fn open(&mut self, ctx: &SourceContext) -> Result<BoxedSourceStream<T>> {
        Ok(KafkaStream::new(self.shared.clone(), ctx.clone()).into_stream())
    }
}

impl<T> std::fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("config", &self.shared.config)
            .field("event_time", &self.shared.event_time.is_some())
            .field("watermarks", &self.shared.watermarks)
            .finish_non_exhaustive()
    }
}
