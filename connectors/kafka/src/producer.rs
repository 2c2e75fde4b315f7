//! What the sink and the dead-letter writer share: the producer's config,
//! and [`Deliveries`], the bounded queue of messages produced and not yet
//! acknowledged.
//!
//! Every message's delivery is awaited before the sink reports a flush or
//! close done, or the source commits the offset of a dead-lettered message;
//! a failed delivery is an error, never a silent loss.

use std::collections::VecDeque;
use std::time::Duration;

use brook_core::{Error, Result};
use futures::FutureExt;
use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};

use crate::client::{BrookContext, kafka_error};
use crate::options::KafkaOptions;

/// A producer with Brook's client context.
pub(crate) type Producer = FutureProducer<BrookContext>;

/// What a producer is made of.
#[derive(Clone, Copy)]
pub(crate) struct ProducerSettings<'a> {
    pub(crate) servers: &'a str,
    pub(crate) options: &'a KafkaOptions,
    pub(crate) idempotent: bool,
    pub(crate) max_in_flight_bytes: u64,
    pub(crate) delivery_timeout: Duration,
    pub(crate) client_id: &'a str,
    /// A transactional producer's id and transaction timeout.
    pub(crate) transactional: Option<(&'a str, Duration)>,
}

/// Creates a producer. No I/O: librdkafka connects in the background.
pub(crate) fn create(s: &ProducerSettings<'_>, node: &str, what: &str) -> Result<Producer> {
    Producer::from_config_and_context(&config(s), BrookContext::new(node))
        .map_err(|e| kafka_error(format!("{what}: creating the producer"), e))
}

/// Checks that librdkafka accepts the settings, by creating (and dropping)
/// a plain producer: no I/O, no runtime needed.
pub(crate) fn check(s: &ProducerSettings<'_>, what: &str) -> Result<()> {
    config(s)
        .create::<rdkafka::producer::BaseProducer>()
        .map(drop)
        .map_err(|e| kafka_error(format!("{what}: creating the producer"), e))
}

/// The librdkafka configuration of a producer.
fn config(s: &ProducerSettings<'_>) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("client.id", s.client_id);
    s.options.apply(&mut c);
    c.set("bootstrap.servers", s.servers.trim())
        .set(
            "enable.idempotence",
            if s.idempotent { "true" } else { "false" },
        )
        .set(
            "queue.buffering.max.kbytes",
            (s.max_in_flight_bytes / 1024).max(1).to_string(),
        )
        .set(
            "message.timeout.ms",
            s.delivery_timeout.as_millis().max(1).to_string(),
        );
    if let Some((id, timeout)) = s.transactional {
        c.set("transactional.id", id).set(
            "transaction.timeout.ms",
            timeout.as_millis().max(1).to_string(),
        );
    }
    c
}

/// One message to produce, owned.
pub(crate) struct Outgoing {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) payload: Option<Vec<u8>>,
    pub(crate) partition: Option<i32>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<OwnedHeaders>,
    /// What the message is, for errors (never its contents).
    pub(crate) label: String,
}

impl Outgoing {
    fn size(&self) -> u64 {
        (self.key.as_ref().map_or(0, Vec::len) + self.payload.as_ref().map_or(0, Vec::len) + 64)
            as u64
    }
}

/// Where and when a message was written: its partition and creation
/// timestamp.
pub(crate) type Placed = (i32, Option<i64>);

/// Messages produced and not yet acknowledged, with their bytes bounded.
pub(crate) struct Deliveries {
    queue: VecDeque<(DeliveryFuture, u64, String)>,
    bytes: u64,
    max_bytes: u64,
    /// What the writer is, for errors: `kafka sink 'out' writing to 'alerts'`.
    what: String,
    /// When tracked: where each acknowledged message was written, in the
    /// order they were produced (acknowledgements are taken in that order).
    placed: Option<Vec<Placed>>,
}

impl Deliveries {
    pub(crate) fn new(max_bytes: u64, what: String) -> Self {
        Deliveries {
            queue: VecDeque::new(),
            bytes: 0,
            max_bytes,
            what,
            placed: None,
        }
    }

    /// From now on, notes where each acknowledged message was written.
    pub(crate) fn track_placement(&mut self) {
        self.placed.get_or_insert_with(Vec::new);
    }

    /// Where the messages acknowledged since the last call were written,
    /// in the order they were produced.
    pub(crate) fn take_placed(&mut self) -> Vec<Placed> {
        self.placed.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The number of messages not yet acknowledged.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Produces one message to `topic`, first waiting for earlier
    /// deliveries while it would take the bytes in flight past the bound.
    ///
    /// # Errors
    /// A failed earlier delivery, or a message librdkafka refuses.
    pub(crate) async fn send(
        &mut self,
        producer: &Producer,
        topic: &str,
        m: Outgoing,
    ) -> Result<()> {
        let size = m.size();
        while self.bytes + size > self.max_bytes && !self.queue.is_empty() {
            self.settle_one().await?;
        }
        loop {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic);
            if let Some(k) = &m.key {
                record = record.key(k.as_slice());
            }
            if let Some(p) = &m.payload {
                record = record.payload(p.as_slice());
            }
            if let Some(p) = m.partition {
                record = record.partition(p);
            }
            if let Some(t) = m.timestamp {
                record = record.timestamp(t);
            }
            if let Some(h) = &m.headers {
                record = record.headers(h.clone());
            }
            match producer.send_result(record) {
                Ok(future) => {
                    self.queue.push_back((future, size, m.label));
                    self.bytes += size;
                    return Ok(());
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _))
                    if !self.queue.is_empty() =>
                {
                    self.settle_one().await?;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    // Full with nothing of ours in it: another writer on the
                    // same producer. Wait a little for room.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err((e, _)) => {
                    return Err(kafka_error(
                        format!("{}: producing {}", self.what, m.label),
                        e,
                    ));
                }
            }
        }
    }

    /// Takes the results of deliveries already done, without waiting.
    ///
    /// # Errors
    /// The first failed delivery.
    pub(crate) fn reap(&mut self) -> Result<()> {
        while let Some((front, _, _)) = self.queue.front_mut() {
            match front.now_or_never() {
                Some(result) => {
                    let (_, size, label) = self.queue.pop_front().ok_or_else(internal)?;
                    self.bytes -= size;
                    self.check(result, &label)?;
                }
                None => break,
            }
        }
        Ok(())
    }

    /// Waits for every delivery.
    ///
    /// # Errors
    /// The first failed delivery.
    pub(crate) async fn settle(&mut self) -> Result<()> {
        while !self.queue.is_empty() {
            self.settle_one().await?;
        }
        Ok(())
    }

    async fn settle_one(&mut self) -> Result<()> {
        let Some((future, size, label)) = self.queue.pop_front() else {
            return Ok(());
        };
        self.bytes -= size;
        let result = future.await;
        self.check(result, &label)
    }

    fn check(
        &mut self,
        result: Result<
            rdkafka::producer::future_producer::OwnedDeliveryResult,
            futures::channel::oneshot::Canceled,
        >,
        label: &str,
    ) -> Result<()> {
        match result {
            Ok(Ok(delivery)) => {
                if let Some(placed) = &mut self.placed {
                    // A log-append time is the broker's, not the message's.
                    let created = match delivery.timestamp {
                        rdkafka::Timestamp::CreateTime(t) => Some(t),
                        _ => None,
                    };
                    placed.push((delivery.partition, created));
                }
                Ok(())
            }
            Ok(Err((e, _))) => Err(kafka_error(
                format!("{}: the delivery of {label} failed", self.what),
                e,
            )),
            Err(_) => Err(Error::Internal(format!(
                "{}: the producer went away before {label} was acknowledged",
                self.what
            ))),
        }
    }
}

fn internal() -> Error {
    Error::Internal("a delivery queue lost its front".into())
}
