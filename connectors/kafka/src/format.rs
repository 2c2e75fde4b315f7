//! How messages become values and values become messages:
//! [`Deserializer`]s for the source (JSON, raw bytes, UTF-8, user functions)
//! and [`Serializer`]s for the sink (JSON, user functions).

use std::marker::PhantomData;

use brook_core::BoxError;
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

/// The value is JSON, read with serde into `T`.
pub struct Json<T>(PhantomData<fn() -> T>);

impl<T> Json<T> {
    /// A JSON (de)serializer.
    pub fn new() -> Self {
        Json(PhantomData)
    }
}

impl<T> Default for Json<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: serde::de::DeserializeOwned + 'static> Deserializer<T> for Json<T> {
    fn deserialize(&self, message: &KafkaMessage<'_>) -> Result<T, BoxError> {
        Ok(serde_json::from_slice(message.value()?)?)
    }
}

/// The value's raw bytes, as a `Vec<u8>` (a tombstone is a bad message).
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytes;

impl Deserializer<Vec<u8>> for RawBytes {
    fn deserialize(&self, message: &KafkaMessage<'_>) -> Result<Vec<u8>, BoxError> {
        Ok(message.value()?.to_vec())
    }
}

/// The value as UTF-8 text (invalid UTF-8 and tombstones are bad messages).
#[derive(Debug, Clone, Copy, Default)]
pub struct Utf8;

impl Deserializer<String> for Utf8 {
    fn deserialize(&self, message: &KafkaMessage<'_>) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(message.value()?)?.to_string())
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

impl<T: serde::Serialize + 'static> Serializer<T> for Json<T> {
    fn serialize(&self, value: &T) -> Result<Vec<u8>, BoxError> {
        Ok(serde_json::to_vec(value)?)
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
    fn formats_read_values_and_refuse_tombstones() {
        let m = message(Some(br#"{"a": 1}"#));
        let v: serde_json::Value = Json::new().deserialize(&m).expect("json");
        assert_eq!(v["a"], 1);
        assert_eq!(Utf8.deserialize(&m).expect("utf8"), r#"{"a": 1}"#);
        assert_eq!(RawBytes.deserialize(&m).expect("raw").len(), 8);
        let tomb = message(None);
        assert!(Utf8.deserialize(&tomb).is_err());
        assert!(Utf8.deserialize(&message(Some(b"\xff"))).is_err());
        let f = |m: &KafkaMessage<'_>| -> Result<i64, BoxError> { Ok(m.offset()) };
        assert_eq!(f.deserialize(&m).expect("fn"), 7);
        let bytes = Json::<Vec<u32>>::new().serialize(&vec![1, 2]).expect("ser");
        assert_eq!(bytes, b"[1,2]");
    }
}
