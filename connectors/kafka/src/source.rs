//! [`KafkaSource`]: reads topics of a Kafka cluster, its partitions
//! ([`KafkaSplit`]s) listed once, when the dataflow is built, and spread
//! over the parallel instances.

use std::sync::Arc;

use brook_connectors::BadRecordPolicy;
use brook_core::{
    BoxedSourceStream, EventTime, PlanContext, Result, Source, SourceContext, SourceSplit, SplitId,
    Watermarks,
};

use crate::config::KafkaSourceConfig;
use brook_connectors::codec::{Bytes, Decoder, Json, Text};

use crate::format::{Deserializer, Reading};
use crate::setup;
use crate::stream::{KafkaStream, Shared};

/// A source of records from Kafka topics.
///
/// The partitions are listed once, when the dataflow is built
/// ([`Source::plan`]): a missing topic, brokers that do not answer within
/// the [startup timeout](KafkaSourceConfig::startup_timeout) or an option
/// librdkafka refuses make `build()` fail. Each partition is a
/// [`KafkaSplit`]; sorted by topic and number, they go round-robin to the
/// parallel instances, so shares are disjoint and differ by at most one.
/// Each instance assigns its share to its consumer explicitly (no group
/// rebalancing inside the job). Partitions added to a topic, or topics
/// matching the pattern created, after the build are not read. An
/// instance with no partition (more instances than partitions) says it is
/// idle at once, so it never holds back the watermark, and ends at once in
/// bounded mode.
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
/// use brook_kafka::{KafkaSource, KafkaSourceConfig};
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

/// A split of a [`KafkaSource`]: one partition of one topic, with the id
/// `"{topic}/{partition}"`.
///
/// Its [position](SourceSplit::Position) is the offset of the next message
/// to read. Where a reader starts is resolved from the source's
/// [`StartPosition`](super::StartPosition) only when its instance starts
/// reading (committed offsets, offsets by time and the partition's ends
/// may change between the build and the run), so the split does not know
/// its first offset: [`start`](SourceSplit::start) returns
/// [`CONFIGURED_START`](Self::CONFIGURED_START).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaSplit {
    topic: Arc<str>,
    partition: i32,
    /// The offset a restored job resumes at, instead of the configured
    /// start.
    resume: Option<i64>,
}

impl KafkaSplit {
    /// The position of a split nothing has been read from: "where the
    /// source's start position says", resolved when the reading instance
    /// starts. It is no offset (offsets are never negative), nor any of
    /// librdkafka's logical offsets.
    pub const CONFIGURED_START: i64 = i64::MIN;

    /// Partition `partition` of `topic`.
    pub fn new(topic: impl AsRef<str>, partition: i32) -> Self {
        KafkaSplit {
            topic: Arc::from(topic.as_ref()),
            partition,
            resume: None,
        }
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The partition's number.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub(crate) fn topic_arc(&self) -> Arc<str> {
        self.topic.clone()
    }

    /// The offset to resume at, when a checkpoint gave one.
    pub(crate) fn resumed(&self) -> Option<i64> {
        self.resume
    }
}

impl SourceSplit for KafkaSplit {
    /// The offset of the next message to read, or
    /// [`KafkaSplit::CONFIGURED_START`] before anything was read.
    type Position = i64;

    fn id(&self) -> SplitId {
        SplitId::new(format!("{}/{}", self.topic, self.partition))
    }

    /// Always [`KafkaSplit::CONFIGURED_START`]: see [`KafkaSplit`].
    fn start(&self) -> i64 {
        Self::CONFIGURED_START
    }

    const RESUMABLE: bool = true;

    /// Reads from `offset` on, whatever the configured start position: the
    /// checkpoint, not the consumer group's committed offsets, says where
    /// a restored job resumes.
    fn resume(&mut self, offset: i64) {
        if offset != Self::CONFIGURED_START {
            self.resume = Some(offset);
        }
    }
}

impl<T: serde::de::DeserializeOwned + Send + 'static> KafkaSource<T> {
    /// A source whose message values are JSON.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn json(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_codec(config, Json)
    }
}

impl KafkaSource<Vec<u8>> {
    /// A source of the raw bytes of message values.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn bytes(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_codec(config, Bytes)
    }
}

impl KafkaSource<String> {
    /// A source of message values as UTF-8 text.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid.
    pub fn utf8(config: KafkaSourceConfig) -> Result<Self> {
        Self::with_codec(config, Text)
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
        Self::reading(config, Reading::deserializer(deserializer))
    }

    /// A source that decodes each message's value with a codec of
    /// [`brook_connectors::codec`]: JSON, CSV (by position:
    /// `Csv::new().has_headers(false)`, one row per message), text or
    /// bytes, the same codecs as the file connectors'.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) if the config is
    /// invalid; a codec with a header is refused when the job is built.
    pub fn with_codec(config: KafkaSourceConfig, codec: impl Decoder<T>) -> Result<Self> {
        Self::reading(config, Reading::decoder(codec))
    }

    fn reading(config: KafkaSourceConfig, reading: Reading<T>) -> Result<Self> {
        config.validate()?;
        Ok(KafkaSource {
            shared: Arc::new(Shared {
                bad: crate::bad_message::policy_of(&config),
                config,
                reading,
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

    /// What to do with a message that cannot be read (its value does not
    /// deserialize, or its time is refused), replacing the config's
    /// [`on_bad_message`](KafkaSourceConfig::on_bad_message): fail, drop,
    /// or dead-letter to any sink (a [`KafkaDeadLetterSink`](crate::KafkaDeadLetterSink),
    /// a Parquet directory, a file). The source flushes the dead-letter
    /// sink before it commits the offsets of the messages it replaced.
    pub fn on_bad_message(self, policy: BadRecordPolicy) -> Self {
        self.change(|s| s.bad = policy)
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
                    bad: s.bad.clone(),
                    reading: s.reading.clone(),
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
    type Split = KafkaSplit;

    /// Checks the config, creates a client with the consumer config the
    /// instances will use (librdkafka refuses unknown options and bad
    /// values there), waits for the brokers (see
    /// [`KafkaSourceConfig::startup_timeout`]) and lists the partitions of
    /// the topics, sorted by topic and number: one split each. The default
    /// [`assign`](Source::assign) deals them round-robin. Blocks the
    /// calling thread (the one running `build()`) while it waits.
    ///
    /// # Errors
    /// [`Error::Config`](brook_core::Error::Config) for an invalid config
    /// or an option librdkafka refuses;
    /// [`Error::External`](brook_core::Error::External) when the brokers
    /// do not answer within the startup timeout (retriable), or a topic
    /// does not exist or cannot be read (fatal). Each names the source.
    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<KafkaSplit>> {
        let cfg = &self.shared.config;
        cfg.validate()?;
        self.shared.reading.check("source")?;
        let client_id = format!("brook-{}-{}-plan", ctx.job_name(), ctx.node_name());
        if let BadRecordPolicy::DeadLetter(target) = &self.shared.bad {
            target.plan(ctx)?;
        }
        let partitions = setup::plan(cfg, &client_id, ctx.node_name())?;
        Ok(partitions
            .into_iter()
            .map(|(topic, partition)| KafkaSplit::new(topic, partition))
            .collect())
    }

    /// Opens one instance, to read the partitions `splits`. No I/O here:
    /// when first polled, the stream creates its consumer on a blocking
    /// thread, waits for the brokers (see
    /// [`KafkaSourceConfig::startup_timeout`]), resolves where each
    /// partition starts (and, bounded, ends) and assigns them. With no
    /// split, it needs no broker: it says it is idle at once, or (bounded)
    /// ends.
    ///
    /// # Errors
    /// None here; starting errors come through the stream: the brokers not
    /// answering in time, offsets that cannot be read.
    ///
    /// # Cancellation
    /// Dropping the stream drops the consumer (and the dead-letter
    /// producer, with any dead letter not yet acknowledged, whose offsets
    /// were not committed either); a start still waiting for the brokers
    /// gives up within a few seconds.
    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<KafkaSplit>,
    ) -> Result<BoxedSourceStream<T>> {
        Ok(KafkaStream::new(self.shared.clone(), ctx.clone(), splits).into_stream())
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
