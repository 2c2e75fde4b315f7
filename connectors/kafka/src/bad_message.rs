//! What a source instance does with a message it cannot read: the
//! [`BadRecordPolicy`] applied to one message.

use std::collections::HashSet;

use brook_connectors::{BadRecordPolicy, DeadLetter, DeadLetterWriter};
use brook_core::{Batch, BoxError, Error, NO_TIMESTAMP, Result, TaskContext};

use crate::config::{BadMessagePolicy, KafkaSourceConfig};
use crate::dead_letter::KafkaDeadLetterSink;
use crate::format::KafkaMessage;

/// Where a message is, as errors and logs name it: `topic/partition@offset`.
pub(crate) fn location(m: &KafkaMessage<'_>) -> String {
    format!("{}/{}@{}", m.topic, m.partition, m.offset)
}

/// The policy a source config asks for: a dead-letter topic is a
/// [`KafkaDeadLetterSink`] on the same brokers, with the same options.
pub(crate) fn policy_of(cfg: &KafkaSourceConfig) -> BadRecordPolicy {
    match &cfg.on_bad_message {
        BadMessagePolicy::Fail => BadRecordPolicy::Fail,
        BadMessagePolicy::Drop => BadRecordPolicy::Drop,
        BadMessagePolicy::DeadLetter { topic } => BadRecordPolicy::dead_letter(
            KafkaDeadLetterSink::new(cfg.bootstrap_servers.trim(), topic.clone())
                .with_options(cfg.librdkafka_options.clone()),
        ),
    }
}

/// The bad-message policy of one source instance.
pub(crate) enum BadMessages {
    Fail,
    Drop {
        /// Partitions (by index) already warned about.
        warned: HashSet<usize>,
    },
    DeadLetter {
        writer: Box<dyn DeadLetterWriter>,
        /// Whether letters were written since the last settle.
        unsettled: bool,
    },
}

impl BadMessages {
    /// The policy of one instance; a dead-letter writer is opened.
    ///
    /// # Errors
    /// The dead-letter sink's `open`.
    pub(crate) fn new(policy: &BadRecordPolicy, ctx: &TaskContext) -> Result<Self> {
        Ok(match policy {
            BadRecordPolicy::Fail => BadMessages::Fail,
            BadRecordPolicy::Drop => BadMessages::Drop {
                warned: HashSet::new(),
            },
            BadRecordPolicy::DeadLetter(target) => BadMessages::DeadLetter {
                writer: target.open(ctx)?,
                unsettled: false,
            },
        })
    }

    /// Applies the policy to a message of partition `index` that could not
    /// be read, for `error`.
    ///
    /// # Errors
    /// Under [`BadRecordPolicy::Fail`], [`Error::BadRecord`] naming
    /// `topic/partition@offset`; a dead letter the sink refuses.
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
            BadMessages::DeadLetter { writer, unsettled } => {
                let mut letter = m.letter;
                letter.reason = error.to_string();
                let mut batch = Batch::with_capacity(1);
                batch.push(NO_TIMESTAMP, letter);
                writer.write(batch).await?;
                *unsettled = true;
                ctx.metrics().add_dead_lettered(1);
                Ok(())
            }
        }
    }

    /// Waits until every dead letter is safely written (the sink's flush):
    /// before the offsets of the messages they replace are committed.
    ///
    /// # Errors
    /// A failed write of the dead-letter sink.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        match self {
            BadMessages::DeadLetter { writer, unsettled } if *unsettled => {
                writer.flush().await?;
                *unsettled = false;
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// Whether a bad message's raw contents are needed.
    pub(crate) fn needs_raw(&self) -> bool {
        matches!(self, BadMessages::DeadLetter { .. })
    }
}

/// A bad message, copied out of the consumer's buffer: its location, and
/// for a dead letter its raw key, value and headers.
pub(crate) struct Dead {
    location: String,
    letter: DeadLetter,
}

impl Dead {
    /// Copies what the policy needs: for a dead letter, the raw message;
    /// for the others, only its location.
    pub(crate) fn copy(m: &KafkaMessage<'_>, raw: bool) -> Self {
        let mut letter = DeadLetter {
            source: m.topic.to_string(),
            partition: Some(m.partition),
            offset: u64::try_from(m.offset).unwrap_or(0),
            timestamp: m.timestamp,
            ..DeadLetter::default()
        };
        if raw {
            letter.key = m.key.map(<[u8]>::to_vec);
            letter.value = m.payload.map(<[u8]>::to_vec);
            letter.raw = m
                .payload
                .map(|p| String::from_utf8_lossy(p).into_owned())
                .unwrap_or_default();
            letter.headers = m
                .headers()
                .map(|(k, v)| (k.to_string(), v.map(<[u8]>::to_vec)))
                .collect();
        }
        Dead {
            location: location(m),
            letter,
        }
    }
}
