//! Typed configuration of the Kafka source ([`KafkaSourceConfig`]) and sink
//! ([`KafkaSinkConfig`]): serde structs whose `validate()` is pure; I/O
//! starts only when a source instance is first polled or a sink opens.

use std::time::Duration;

use brook_core::{Error, EventTime, Result};

use crate::duration;
use crate::options::KafkaOptions;

/// Options of the source's consumer that typed settings own.
const SOURCE_OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "bootstrap_servers"),
    ("metadata.broker.list", "bootstrap_servers"),
    ("group.id", "group_id"),
    ("auto.offset.reset", "start"),
    ("enable.auto.commit", "commit_interval"),
    ("auto.commit.interval.ms", "commit_interval"),
    ("enable.auto.offset.store", "commit_interval"),
    ("enable.partition.eof", "bounded"),
    ("queued.max.messages.kbytes", "max_buffered_bytes"),
];

/// Options of the sink's producer that typed settings own.
const SINK_OWNED: &[(&str, &str)] = &[
    ("bootstrap.servers", "bootstrap_servers"),
    ("metadata.broker.list", "bootstrap_servers"),
    ("enable.idempotence", "idempotent"),
    ("queue.buffering.max.kbytes", "max_in_flight_bytes"),
    ("message.timeout.ms", "delivery_timeout"),
    ("delivery.timeout.ms", "delivery_timeout"),
    ("transactional.id", "delivery"),
    ("transaction.timeout.ms", "transaction_timeout"),
];

/// Where a source starts reading each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartPosition {
    /// The oldest message still in the partition.
    Earliest,
    /// After the newest message: only what is produced from now on.
    Latest,
    /// The group's committed offset; where the group has none, `fallback`.
    Committed {
        /// Where to start in a partition the group has no offset for.
        #[serde(default)]
        fallback: OffsetReset,
    },
    /// The first message whose timestamp is at or after this time
    /// (milliseconds since the epoch); the end, where there is none.
    Timestamp(EventTime),
}

impl Default for StartPosition {
    /// The group's committed offsets, else the earliest.
    fn default() -> Self {
        StartPosition::Committed {
            fallback: OffsetReset::Earliest,
        }
    }
}

/// Where to start when the group has no committed offset.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OffsetReset {
    /// The oldest message still in the partition.
    #[default]
    Earliest,
    /// After the newest message.
    Latest,
}

/// What the source does with a message it cannot deserialize.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BadMessagePolicy {
    /// Fail the job with [`Error::BadRecord`], located as
    /// `<topic>/<partition>@<offset>`.
    #[default]
    Fail,
    /// Skip the message and count it in the node's `dropped` metric; log
    /// one warning per partition.
    Drop,
    /// Produce the message's raw key and value to a dead-letter topic, with
    /// its headers and `brook.dlq.*` headers naming the original topic,
    /// partition, offset and the error (see
    /// [`DLQ_TOPIC_HEADER`](super::DLQ_TOPIC_HEADER) and the others), and
    /// count it in the node's `dead_lettered` metric. The source awaits the
    /// delivery before committing the message's offset; a failed delivery
    /// fails the job.
    DeadLetter {
        /// The dead-letter topic, on the same brokers as the source.
        topic: String,
    },
}

/// The configuration of a [`KafkaSource`](super::KafkaSource).
///
/// ```
/// use brook_kafka::{KafkaSourceConfig, StartPosition};
///
/// let config: KafkaSourceConfig = serde_json::from_str(r#"{
///     "bootstrap_servers": "127.0.0.1:9092",
///     "topics": ["logs"],
///     "group_id": "log-analysis",
///     "start": "earliest",
///     "bounded": true,
///     "startup_timeout": "10s"
/// }"#).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.start, StartPosition::Earliest);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSourceConfig {
    /// The brokers to bootstrap from, `host:port` separated by commas.
    pub bootstrap_servers: String,
    /// The topics to read. Exactly one of `topics` and `topic_pattern` is
    /// set.
    pub topics: Vec<String>,
    /// A regular expression that whole topic names must match (topics
    /// starting with `__`, Kafka's internal ones, never do). Topics are
    /// listed once, when the dataflow is built.
    pub topic_pattern: Option<String>,
    /// The consumer group whose offsets the source commits and, with
    /// [`StartPosition::Committed`], starts from.
    pub group_id: String,
    /// Where to start reading (default: the group's committed offsets, else
    /// the earliest).
    pub start: StartPosition,
    /// Read only up to the end offsets seen when each instance starts, then
    /// end (for tests and backfills). Otherwise the source never ends by
    /// itself. Each end is confirmed by the first fetch of its partition
    /// (see [the module docs](super#bounded-reads)); for that, a bounded
    /// source sets librdkafka's `statistics.interval.ms` (over any value in
    /// `librdkafka_options`).
    pub bounded: bool,
    /// How long the source waits for the brokers when the dataflow is built
    /// (to list the partitions) and when each instance starts: building or
    /// the instance fails with an error naming them after this long, or
    /// with `null` waits until they answer (or, for an instance, the job
    /// stops), retrying every few seconds.
    #[serde(with = "duration::option")]
    pub startup_timeout: Option<Duration>,
    /// The longest time between two commits of the group's offsets while
    /// records flow; `"0s"` commits after every batch. Offsets are
    /// committed only for records the next task has taken.
    #[serde(with = "duration")]
    pub commit_interval: Duration,
    /// The most bytes of messages fetched ahead of the dataflow, per
    /// instance (librdkafka's `queued.max.messages.kbytes`). When the
    /// dataflow is slow, the source stops polling and librdkafka stops
    /// fetching once this much is queued.
    pub max_buffered_bytes: u64,
    /// What to do with a message that cannot be deserialized.
    pub on_bad_message: BadMessagePolicy,
    /// Other librdkafka consumer options (security, tuning); see
    /// [`KafkaOptions`] for what is refused. The dead-letter producer gets
    /// them too.
    pub librdkafka_options: KafkaOptions,
}

impl Default for KafkaSourceConfig {
    fn default() -> Self {
        KafkaSourceConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topics: Vec::new(),
            topic_pattern: None,
            group_id: "brook".into(),
            start: StartPosition::default(),
            bounded: false,
            startup_timeout: Some(Duration::from_secs(30)),
            commit_interval: Duration::from_secs(1),
            max_buffered_bytes: 16 << 20,
            on_bad_message: BadMessagePolicy::Fail,
            librdkafka_options: KafkaOptions::new(),
        }
    }
}

impl KafkaSourceConfig {
    /// A config reading `topics` from `bootstrap_servers` in group
    /// `group_id`, with the defaults otherwise.
    pub fn new(
        bootstrap_servers: impl Into<String>,
        topics: &[&str],
        group_id: impl Into<String>,
    ) -> Self {
        KafkaSourceConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topics: topics.iter().map(|t| t.to_string()).collect(),
            group_id: group_id.into(),
            ..Default::default()
        }
    }

    /// Checks the settings without any I/O.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let what = "kafka source";
        check_servers(what, &self.bootstrap_servers)?;
        match (&self.topic_pattern, self.topics.is_empty()) {
            (None, true) => return config(what, "set `topics` or `topic_pattern`"),
            (Some(_), false) => return config(what, "set `topics` or `topic_pattern`, not both"),
            _ => {}
        }
        if let Some(t) = self.topics.iter().find(|t| t.trim().is_empty()) {
            return config(what, format!("topic name '{t}' is empty"));
        }
        let pattern = self.pattern()?;
        if self.group_id.trim().is_empty() {
            return config(what, "`group_id` is empty");
        }
        if self.max_buffered_bytes < 1024 {
            return config(what, "`max_buffered_bytes` must be at least 1024");
        }
        if let BadMessagePolicy::DeadLetter { topic } = &self.on_bad_message {
            if topic.trim().is_empty() {
                return config(what, "the dead-letter topic is empty");
            }
            let reads_it = match &pattern {
                Some(re) => re.is_match(topic),
                None => self.topics.contains(topic),
            };
            if reads_it {
                return config(
                    what,
                    format!("the dead-letter topic '{topic}' is one the source reads"),
                );
            }
        }
        self.librdkafka_options.validate(what, SOURCE_OWNED)
    }

    /// The topic pattern, compiled to match whole names.
    pub(crate) fn pattern(&self) -> Result<Option<regex::Regex>> {
        self.topic_pattern
            .as_deref()
            .map(|p| {
                regex::Regex::new(&format!("^(?:{p})$"))
                    .map_err(|e| Error::Config(format!("kafka source: `topic_pattern` '{p}': {e}")))
            })
            .transpose()
    }
}

/// What a [`KafkaSink`](super::KafkaSink) guarantees about each record
/// reaching its topic; see [the sink's docs](super::KafkaSink#delivery) for
/// the whole story.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Delivery {
    /// At least once (the default): each record is produced as soon as it
    /// is written, and is visible to every consumer at once. Nothing is
    /// lost, but a job restored from a checkpoint (or run again) writes
    /// again what it had written after that checkpoint: consumers may see
    /// duplicates. Works with or without checkpoints.
    #[default]
    AtLeastOnce,
    /// Exactly once for `read_committed` consumers: each instance writes
    /// through a transactional producer, the records of one checkpoint
    /// interval in one transaction, committed when the checkpoint
    /// completes. Needs a job with checkpoints
    /// ([`Dataflow::set_checkpoints`](brook_core::Dataflow::set_checkpoints)):
    /// without them the job is refused when built.
    ExactlyOnce,
}

/// The configuration of a [`KafkaSink`](super::KafkaSink).
///
/// ```
/// use brook_kafka::KafkaSinkConfig;
///
/// let config: KafkaSinkConfig = serde_json::from_str(r#"{
///     "bootstrap_servers": "127.0.0.1:9092",
///     "topic": "alerts",
///     "delivery_timeout": "30s"
/// }"#).unwrap();
/// config.validate().unwrap();
/// assert!(config.idempotent);
///
/// let exactly_once: KafkaSinkConfig = serde_json::from_str(r#"{
///     "topic": "alerts",
///     "delivery": "exactly_once",
///     "transaction_timeout": "2m"
/// }"#).unwrap();
/// exactly_once.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaSinkConfig {
    /// The brokers to bootstrap from, `host:port` separated by commas.
    pub bootstrap_servers: String,
    /// The topic to write to.
    pub topic: String,
    /// Whether the producer is idempotent (default: true): retries never
    /// duplicate or reorder messages within a partition, and every write is
    /// acknowledged by all in-sync replicas.
    pub idempotent: bool,
    /// The most bytes of messages produced but not yet acknowledged, per
    /// instance (also librdkafka's `queue.buffering.max.kbytes`). A write
    /// waits for deliveries when it would go past this.
    pub max_in_flight_bytes: u64,
    /// How long librdkafka tries to deliver a message, retries included,
    /// before its delivery fails (and with it the job).
    #[serde(with = "duration")]
    pub delivery_timeout: Duration,
    /// At least once (the default) or exactly once, with transactions; see
    /// [`Delivery`].
    pub delivery: Delivery,
    /// With [`Delivery::ExactlyOnce`]: the longest a transaction may stay
    /// open before the broker aborts it (librdkafka's
    /// `transaction.timeout.ms`; the broker caps it at its
    /// `transaction.max.timeout.ms`, 15 minutes by default). A transaction
    /// holds one checkpoint interval's records until the checkpoint
    /// completes, so this must be longer than the checkpoint interval plus
    /// the time a checkpoint takes; it must also be at least
    /// `delivery_timeout`. Also the bound on each transactional call
    /// (init, commit, abort). Default: 60 s.
    #[serde(with = "duration")]
    pub transaction_timeout: Duration,
    /// Other librdkafka producer options (compression, security, tuning);
    /// see [`KafkaOptions`] for what is refused.
    pub librdkafka_options: KafkaOptions,
}

impl Default for KafkaSinkConfig {
    fn default() -> Self {
        KafkaSinkConfig {
            bootstrap_servers: "127.0.0.1:9092".into(),
            topic: String::new(),
            idempotent: true,
            max_in_flight_bytes: 16 << 20,
            delivery_timeout: Duration::from_secs(60),
            delivery: Delivery::AtLeastOnce,
            transaction_timeout: Duration::from_secs(60),
            librdkafka_options: KafkaOptions::new(),
        }
    }
}

impl KafkaSinkConfig {
    /// A config writing to `topic` on `bootstrap_servers`, with the
    /// defaults otherwise.
    pub fn new(bootstrap_servers: impl Into<String>, topic: impl Into<String>) -> Self {
        KafkaSinkConfig {
            bootstrap_servers: bootstrap_servers.into(),
            topic: topic.into(),
            ..Default::default()
        }
    }

    /// Checks the settings without any I/O.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first bad setting.
    pub fn validate(&self) -> Result<()> {
        let what = "kafka sink";
        check_servers(what, &self.bootstrap_servers)?;
        if self.topic.trim().is_empty() {
            return config(what, "`topic` is empty");
        }
        if self.max_in_flight_bytes < 1024 {
            return config(what, "`max_in_flight_bytes` must be at least 1024");
        }
        if self.delivery_timeout.is_zero() {
            return config(what, "`delivery_timeout` must not be zero");
        }
        if self.delivery == Delivery::ExactlyOnce {
            if !self.idempotent {
                return config(
                    what,
                    "`delivery: exactly_once` needs an idempotent producer (`idempotent: true`)",
                );
            }
            if self.transaction_timeout < Duration::from_secs(1) {
                return config(what, "`transaction_timeout` must be at least 1s");
            }
            if self.delivery_timeout > self.transaction_timeout {
                return config(
                    what,
                    "`delivery_timeout` must not be longer than `transaction_timeout`",
                );
            }
        }
        self.librdkafka_options.validate(what, SINK_OWNED)
    }
}

/// Checks a `host:port,...` list.
fn check_servers(what: &str, servers: &str) -> Result<()> {
    if servers.split(',').all(|s| s.trim().is_empty()) {
        return config(what, "`bootstrap_servers` is empty");
    }
    Ok(())
}

fn config<T>(what: &str, msg: impl std::fmt::Display) -> Result<T> {
    Err(Error::Config(format!("{what}: {msg}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_need_only_topics() {
        let mut c = KafkaSourceConfig::default();
        assert!(c.validate().is_err());
        c.topics = vec!["logs".into()];
        c.validate().expect("valid");
        KafkaSinkConfig::new("127.0.0.1:9092", "out")
            .validate()
            .expect("valid");
    }

    #[test]
    fn unknown_fields_and_bad_settings_are_refused() {
        let e = serde_json::from_str::<KafkaSourceConfig>(r#"{"topicz": ["a"]}"#).expect_err("x");
        assert!(e.to_string().contains("topicz"), "{e}");
        let both = KafkaSourceConfig {
            topic_pattern: Some("a.*".into()),
            ..KafkaSourceConfig::new("h:1", &["a"], "g")
        };
        assert!(both.validate().is_err());
        let bad_re = KafkaSourceConfig {
            topic_pattern: Some("(".into()),
            topics: vec![],
            ..Default::default()
        };
        assert!(matches!(bad_re.validate(), Err(Error::Config(_))));
        let own_dlq = KafkaSourceConfig {
            topic_pattern: Some("logs.*".into()),
            topics: vec![],
            on_bad_message: BadMessagePolicy::DeadLetter {
                topic: "logs-dlq".into(),
            },
            ..Default::default()
        };
        let e = own_dlq.validate().expect_err("reads its dead letters");
        assert!(e.to_string().contains("logs-dlq"), "{e}");
        let owned = KafkaSinkConfig {
            librdkafka_options: KafkaOptions::new().with("enable.idempotence", "false"),
            ..KafkaSinkConfig::new("h:1", "t")
        };
        assert!(owned.validate().is_err());
    }

    #[test]
    fn exactly_once_settings_are_checked() {
        let eo = KafkaSinkConfig {
            delivery: Delivery::ExactlyOnce,
            ..KafkaSinkConfig::new("h:1", "t")
        };
        eo.validate().expect("valid");
        assert_eq!(KafkaSinkConfig::default().delivery, Delivery::AtLeastOnce);
        let refused = |c: KafkaSinkConfig, what: &str| {
            let e = c.validate().expect_err(what);
            assert!(matches!(e, Error::Config(_)), "{e}");
            assert!(e.to_string().contains(what), "{e}");
        };
        refused(
            KafkaSinkConfig {
                idempotent: false,
                ..eo.clone()
            },
            "idempotent",
        );
        refused(
            KafkaSinkConfig {
                delivery_timeout: Duration::from_secs(61),
                ..eo.clone()
            },
            "transaction_timeout",
        );
        refused(
            KafkaSinkConfig {
                librdkafka_options: KafkaOptions::new().with("transactional.id", "mine"),
                ..eo.clone()
            },
            "transactional.id",
        );
        let read: KafkaSinkConfig =
            serde_json::from_str(r#"{"topic": "t", "delivery": "at_least_once"}"#).expect("json");
        assert_eq!(read.delivery, Delivery::AtLeastOnce);
    }

    #[test]
    fn start_positions_read_from_json() {
        let read = |s: &str| serde_json::from_str::<StartPosition>(s).expect(s);
        assert_eq!(read(r#""latest""#), StartPosition::Latest);
        assert_eq!(read(r#"{"timestamp": 17}"#), StartPosition::Timestamp(17));
        assert_eq!(
            read(r#"{"committed": {}}"#),
            StartPosition::Committed {
                fallback: OffsetReset::Earliest
            }
        );
        let p: BadMessagePolicy =
            serde_json::from_str(r#"{"dead_letter": {"topic": "dlq"}}"#).expect("policy");
        assert_eq!(
            p,
            BadMessagePolicy::DeadLetter {
                topic: "dlq".into()
            }
        );
    }
}
