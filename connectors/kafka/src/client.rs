//! What the source and sink share about librdkafka clients: the client
//! context that routes librdkafka's logs and errors to `tracing`, and the
//! mapping of [`KafkaError`] to Brook's [`Error`].

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Error, NodeMetrics, RetryHint};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::{KafkaError, KafkaResult, RDKafkaErrorCode};
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::ends::FetchedHighs;
use crate::options::is_secret;

/// The context of every client Brook creates: logs go to `tracing` with the
/// node's name, and the last error is kept to explain a failure to connect.
pub(crate) struct BrookContext {
    node: String,
    last_error: Mutex<Option<String>>,
    /// Set when an asynchronous commit failed, so the next commit sends
    /// every offset again.
    commit_failed: AtomicBool,
    /// A bounded source's consumer: where librdkafka's statistics go.
    fetched: Option<Arc<FetchedHighs>>,
    /// A source instance's counters: where each partition's consumer lag
    /// from the statistics goes.
    lag: Option<Arc<NodeMetrics>>,
}

impl BrookContext {
    pub(crate) fn new(node: &str) -> Self {
        BrookContext {
            node: node.to_string(),
            last_error: Mutex::new(None),
            commit_failed: AtomicBool::new(false),
            fetched: None,
            lag: None,
        }
    }

    /// The same, reporting each partition's consumer lag to `metrics`.
    pub(crate) fn with_lag(mut self, metrics: Arc<NodeMetrics>) -> Self {
        self.lag = Some(metrics);
        self
    }

    /// The context of a bounded source's consumer, whose statistics feed
    /// `fetched`.
    pub(crate) fn with_fetched_highs(node: &str, fetched: Arc<FetchedHighs>) -> Self {
        BrookContext {
            fetched: Some(fetched),
            ..BrookContext::new(node)
        }
    }

    /// The last error librdkafka reported, if any.
    pub(crate) fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Whether an asynchronous commit failed since the last call.
    pub(crate) fn take_commit_failed(&self) -> bool {
        self.commit_failed.swap(false, Relaxed)
    }

    fn keep(&self, error: String) {
        *self
            .last_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(error);
    }
}

impl ClientContext for BrookContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        let node = self.node.as_str();
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => {
                self.keep(log_message.to_string());
                tracing::error!(
                    node,
                    facility = fac,
                    message = log_message,
                    "librdkafka reported an error."
                );
            }
            RDKafkaLogLevel::Warning => {
                self.keep(log_message.to_string());
                tracing::warn!(
                    node,
                    facility = fac,
                    message = log_message,
                    "librdkafka warned."
                );
            }
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!(
                    node,
                    facility = fac,
                    message = log_message,
                    "librdkafka said."
                );
            }
            RDKafkaLogLevel::Debug => {
                tracing::debug!(
                    node,
                    facility = fac,
                    message = log_message,
                    "librdkafka said."
                );
            }
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.keep(format!("{error}: {reason}"));
        tracing::warn!(node = %self.node, error = %error, reason, "Kafka client error.");
    }

    /// A bounded source's consumer reads the fetched high watermarks;
    /// other clients log the statistics (when `statistics.interval.ms` is
    /// set among their options), as rdkafka does by default.
    fn stats_raw(&self, statistics: &[u8]) {
        if let Some(metrics) = &self.lag {
            for (partition, lag) in crate::ends::lags(statistics) {
                metrics.set_backlog(&partition, lag);
            }
        }
        match &self.fetched {
            Some(fetched) => fetched.record(statistics),
            None if self.lag.is_some() => {}
            None => match serde_json::from_slice(statistics) {
                Ok(stats) => self.stats(stats),
                Err(e) => {
                    tracing::warn!(node = %self.node, error = %e, "Could not read librdkafka's statistics.")
                }
            },
        }
    }
}

impl ConsumerContext for BrookContext {
    fn commit_callback(&self, result: KafkaResult<()>, _offsets: &TopicPartitionList) {
        if let Err(e) = result {
            self.commit_failed.store(true, Relaxed);
            tracing::warn!(node = %self.node, error = %e, "Could not commit offsets; they are sent again with the next commit.");
        }
    }
}

/// A [`KafkaError`] with what was being done.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct KafkaFailure {
    /// What was being done, naming topics, partitions and offsets.
    pub what: String,
    /// The error from rdkafka.
    #[source]
    pub source: KafkaError,
}

impl KafkaFailure {
    /// Wraps `source` with what was being done.
    pub fn new(what: impl fmt::Display, source: KafkaError) -> Self {
        KafkaFailure {
            what: what.to_string(),
            source,
        }
    }
}

impl From<KafkaFailure> for Error {
    /// [`Error::Config`] for a configuration librdkafka refused,
    /// [`Error::External`] otherwise, retriable where librdkafka says so.
    fn from(f: KafkaFailure) -> Error {
        if let KafkaError::ClientConfig(_, ref msg, ref key, _) = f.source {
            // Never the value; nor librdkafka's message, which may quote
            // it, for a secret.
            let msg = if is_secret(key) {
                "librdkafka refused its value"
            } else {
                msg.as_str()
            };
            return Error::Config(format!("{}: option '{key}': {msg}", f.what));
        }
        let retry = if retriable(&f.source) {
            RetryHint::Retriable
        } else {
            RetryHint::Fatal
        };
        Error::External {
            source: Box::new(f),
            retry,
        }
    }
}

/// Whether retrying may help.
fn retriable(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::MessageTimedOut
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::NetworkException
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::QueueFull
        )
    )
}

/// Whether a consumer error means the source cannot go on.
pub(crate) fn fatal(e: &KafkaError) -> bool {
    matches!(e, KafkaError::MessageConsumptionFatal(_))
        || matches!(
            e.rdkafka_error_code(),
            Some(
                RDKafkaErrorCode::Fatal
                    | RDKafkaErrorCode::UnknownTopicOrPartition
                    | RDKafkaErrorCode::UnknownTopic
                    | RDKafkaErrorCode::UnknownPartition
                    | RDKafkaErrorCode::TopicAuthorizationFailed
                    | RDKafkaErrorCode::GroupAuthorizationFailed
                    | RDKafkaErrorCode::SaslAuthenticationFailed
                    | RDKafkaErrorCode::Authentication
            )
        )
}

/// Shorthand: an [`Error`] from a [`KafkaError`] and what was being done.
pub(crate) fn kafka_error(what: impl fmt::Display, e: KafkaError) -> Error {
    KafkaFailure::new(what, e).into()
}
