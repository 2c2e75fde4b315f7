//! How messages become values and values become messages: a codec of
//! [`brook_connectors::codec`] (JSON, CSV, text, bytes: the same as the
//! file connectors'), or a user's [`Deserializer`] (which sees the whole
//! message) and [`Serializer`].

use std::sync::Arc;

use brook_connectors::codec::{Decoder, Encoder};
use brook_core::{BoxError, Error};
use rdkafka::message::{BorrowedHeaders, Headers};

/// A message as a deserializer sees it: borrowed from the consumer, valid
/// during the call only.
#[derive(Clone, Copy)]
pub struct KafkaMessage<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) payload: Option<&'a [u8]>,
    pub(crate) timestamp: Option<i64>,
    pub(crate) headers: Option<&'a BorrowedHeaders>,
}

impl<'a> KafkaMessage<'a> {
    /// The topic it was read from.
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// Its partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Its offset in the partition.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Its key, if it has one.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// Its value; `None` for a tombstone.
    pub fn payload(&self) -> Option<&'a [u8]> {
        self.payload
    }

    /// Its timestamp (create or log-append time), in milliseconds since the
    /// epoch, if it has one.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Its headers, in order; a header may have no value.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, Option<&'a [u8]>)> + 'a {
        self.headers
            .into_iter()
            .flat_map(|h| h.iter().map(|h| (h.key, h.value)))
    }

    /// The value of the last header named `name`.
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .filter(|(k, _)| *k == name)
            .last()
            .and_then(|(_, v)| v)
    }

    /// Its value, or an error for a tombstone.
    fn value(&self) -> Result<&'a [u8], BoxError> {
        self.payload
            .ok_or_else(|| "the message has no value".into())
    }
}

/// Turns a message into a value of type `T`. An error makes the message a
/// bad message, handled by the source's
/// [`BadMessagePolicy`](super::BadMessagePolicy).
///
/// Any `Fn(&KafkaMessage<'_>) -> Result<T, BoxError>` is a deserializer:
///
/// ```
/// use brook_kafka::{KafkaMessage, KafkaSource, KafkaSourceConfig};
///
/// let config = KafkaSourceConfig::new("127.0.0.1:9092", &["lengths"], "g");
/// let source = KafkaSource::with_deserializer(config, |m: &KafkaMessage<'_>| {
///     Ok(m.payload().map_or(0, |p| p.len()))
/// });
/// # let _ = source;
/// ```
pub trait Deserializer<T>: Send + Sync + 'static {
    /// Reads one message.
    ///
    /// # Errors
    /// Why the message cannot be read; it names no location, the source
    /// adds topic, partition and offset.
    fn deserialize(&self, message: &KafkaMessage<'_>) -> Result<T, BoxError>;
}

impl<T, F> Deserializer<T> for F
where
    F: Fn(&KafkaMessage<'_>) -> Result<T, BoxError> + Send + Sync + 'static,
{
    fn deserialize(&self, message: &KafkaMessage<'_>) -> Result<T, BoxError> {
        self(message)
    }
}

/// Turns a value into a message's bytes. An error fails the job.
///
/// Any `Fn(&T) -> Result<Vec<u8>, BoxError>` is a serializer.
pub trait Serializer<T>: Send + Sync + 'static {
    /// Writes one value.
    ///
    /// # Errors
    /// Why the value cannot be written.
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError>;
}

impl<T, F> Serializer<T> for F
where
    F: Fn(&T) -> Result<Vec<u8>, BoxError> + Send + Sync + 'static,
{
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        self(value)
    }
}

/// Reads one message, for one source instance.
pub(crate) type ReadFn<T> = Box<dyn FnMut(&KafkaMessage<'_>) -> Result<T, BoxError> + Send>;

/// Writes one value as a message's bytes, for one sink instance.
pub(crate) type WriteFn<T> = Box<dyn FnMut(&T) -> Result<Vec<u8>, BoxError> + Send>;

/// Why a codec with a header cannot serve Kafka.
fn header_refused(what: &str) -> Error {
    Error::Config(format!(
        "kafka {what}: the codec has a header row, but a Kafka message holds one record \
         and no header (for CSV, use `Csv::new().has_headers(false)`)"
    ))
}

/// A per-instance function `F` (a [`ReadFn`] or a [`WriteFn`]) and how to
/// make one: each source or sink instance gets its own, so a codec's state
/// (CSV buffers, a CSV writer) is never shared.
pub(crate) struct PerInstance<F> {
    make: Arc<dyn Fn() -> F + Send + Sync>,
    /// Whether the codec has a header row, which a Kafka message cannot
    /// hold.
    header: bool,
}

impl<F> Clone for PerInstance<F> {
    fn clone(&self) -> Self {
        PerInstance {
            make: self.make.clone(),
            header: self.header,
        }
    }
}

impl<F> PerInstance<F> {
    /// The function for one instance.
    pub(crate) fn instance(&self) -> F {
        (self.make)()
    }

    /// Refuses a codec with a header; `what` is "source" or "sink".
    pub(crate) fn check(&self, what: &str) -> brook_core::Result<()> {
        if self.header {
            return Err(header_refused(what));
        }
        Ok(())
    }
}

/// How a source reads messages.
pub(crate) type Reading<T> = PerInstance<ReadFn<T>>;

/// How a sink writes values.
pub(crate) type Writing<T> = PerInstance<WriteFn<T>>;

impl<T: 'static> PerInstance<ReadFn<T>> {
    /// Reads with a user's deserializer, shared by every instance.
    pub(crate) fn deserializer(d: impl Deserializer<T>) -> Self {
        let d = Arc::new(d);
        PerInstance {
            make: Arc::new(move || {
                let d = d.clone();
                Box::new(move |m: &KafkaMessage<'_>| d.deserialize(m))
            }),
            header: false,
        }
    }

    /// Reads each message's value with a codec; its state is made on the
    /// first message.
    pub(crate) fn decoder<C: Decoder<T>>(codec: C) -> Self {
        let header = codec.has_header();
        let codec = Arc::new(codec);
        PerInstance {
            make: Arc::new(move || {
                let codec = codec.clone();
                let mut state: Option<C::State> = None;
                Box::new(move |m: &KafkaMessage<'_>| {
                    let value = m.value()?;
                    let state = match &mut state {
                        Some(state) => state,
                        None => state.insert(codec.start(None)?),
                    };
                    codec.decode(state, value)
                })
            }),
            header,
        }
    }
}

impl<T: 'static> PerInstance<WriteFn<T>> {
    /// Writes with a user's serializer, shared by every instance.
    pub(crate) fn serializer(s: impl Serializer<T>) -> Self {
        let s = Arc::new(s);
        PerInstance {
            make: Arc::new(move || {
                let s = s.clone();
                Box::new(move |v: &T| s.serialize(v))
            }),
            header: false,
        }
    }

    /// Writes each value as one record of a codec, without the record's
    /// final line break.
    pub(crate) fn encoder<C: Encoder<T>>(codec: C) -> Self {
        let header = codec.has_header();
        let codec = Arc::new(codec);
        PerInstance {
            make: Arc::new(move || {
                let codec = codec.clone();
                let mut state = codec.start();
                Box::new(move |v: &T| {
                    let mut out = Vec::new();
                    codec.encode(&mut state, v, &mut out)?;
                    if out.last() == Some(&b'\n') {
                        out.pop();
                    }
                    Ok(out)
                })
            }),
            header,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(payload: Option<&[u8]>) -> KafkaMessage<'_> {
        KafkaMessage {
            topic: "t",
            partition: 1,
            offset: 7,
            key: None,
            payload,
            timestamp: Some(5),
            headers: None,
        }
    }

    #[test]
    fn codecs_read_values_refuse_tombstones_and_headers() {
        use brook_connectors::codec::{Bytes, Csv, Json, Text};

        let m = message(Some(br#"{"a": 1}"#));
        let v: serde_json::Value = Reading::decoder(Json).instance()(&m).expect("json");
        assert_eq!(v["a"], 1);
        let mut text = Reading::decoder(Text).instance();
        assert_eq!(text(&m).expect("utf8"), r#"{"a": 1}"#);
        assert_eq!(
            Reading::decoder(Bytes).instance()(&m).expect("raw").len(),
            8
        );
        let tomb = message(None);
        assert!(text(&tomb).is_err());
        assert!(text(&message(Some(b"\xff"))).is_err());
        let f = |m: &KafkaMessage<'_>| -> Result<i64, BoxError> { Ok(m.offset()) };
        assert_eq!(Reading::deserializer(f).instance()(&m).expect("fn"), 7);

        // CSV by position: each message is one row.
        let csv = Csv::new().has_headers(false);
        let row: (u32, String) =
            Reading::decoder(csv).instance()(&message(Some(b"3,\"x,y\""))).expect("csv");
        assert_eq!(row, (3, "x,y".to_string()));
        let mut write = Writing::encoder(csv).instance();
        assert_eq!(
            write(&(3u32, "x,y".to_string())).expect("ser"),
            b"3,\"x,y\""
        );
        assert!(Writing::<(u32, String)>::encoder(csv).check("sink").is_ok());
        // A header has no place in a message.
        let err = Reading::<(u32, String)>::decoder(Csv::new())
            .check("source")
            .expect_err("header");
        assert!(err.to_string().contains("has_headers(false)"), "{err}");
        assert!(
            Writing::<(u32, String)>::encoder(Csv::new())
                .check("sink")
                .is_err()
        );
        let bytes = Writing::encoder(Json).instance()(&vec![1, 2]).expect("ser");
        assert_eq!(bytes, b"[1,2]");
    }
}
