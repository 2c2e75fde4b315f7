//! Codecs: how the bytes of one record become a value ([`Decoder`]) and a
//! value becomes the bytes of one record ([`Encoder`]), shared by every
//! connector that carries records as bytes.
//!
//! | codec | value | decodes | encodes |
//! |---|---|---|---|
//! | [`Json`] | any serde type | one JSON value ([fast path](json::from_str)) | one JSON value |
//! | [`JsonStrict`] | any serde type | one JSON value (`serde_json`) | one JSON value |
//! | [`Csv`] | a flat serde type | one CSV row, by header or position | one CSV row (header first) |
//! | [`Text`] | `String` | UTF-8 text | the text |
//! | [`Bytes`] | `Vec<u8>` | the bytes as they are | — |
//!
//! A record is one line of a file or one Kafka message:
//! - the file sources ([`FileSource`](crate::file::FileSource)) split a file
//!   into lines and decode each non-blank line without its terminator; the
//!   file sinks ([`FileSink`](crate::file::FileSink)) write what the
//!   encoder appends, a record and its `\n`;
//! - the Kafka source (`brook_kafka::KafkaSource::with_codec`) decodes each
//!   message's value; the Kafka sink (`brook_kafka::KafkaSink::with_codec`)
//!   sends each encoded record, without its final `\n`, as one message.
//!
//! A codec with a header ([`Csv`] by default) reads the first line of each
//! file as the header and writes one at the start of each file. A Kafka
//! message holds one record and no header, so Kafka connectors refuse such a
//! codec when the job is built: use `Csv::new().has_headers(false)`.
//!
//! ```
//! use brook_connectors::codec::{Csv, Decoder, Encoder, Json};
//!
//! #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
//! struct Hit { path: String, status: u16 }
//!
//! let hit = Hit { path: "/a,b".into(), status: 200 };
//! for codec in [Csv::new().has_headers(false)] {
//!     let mut out = Vec::new();
//!     codec.encode(&mut Encoder::<Hit>::start(&codec), &hit, &mut out).unwrap();
//!     assert_eq!(out, b"\"/a,b\",200\n");
//!     let mut state = Decoder::<Hit>::start(&codec, None).unwrap();
//!     let back: Hit = codec.decode(&mut state, &out[..out.len() - 1]).unwrap();
//!     assert_eq!(back, hit);
//! }
//! let mut out = Vec::new();
//! Json.encode(&mut (), &hit, &mut out).unwrap();
//! assert_eq!(out, b"{\"path\":\"/a,b\",\"status\":200}\n");
//! ```

mod csv;
pub mod json;
mod text;

use brook_core::BoxError;

pub use self::csv::{Csv, CsvDecoderState, CsvEncoderState};
pub use self::json::{Json, JsonStrict};
pub use self::text::{Bytes, Text};

/// Turns the bytes of one record into a value of type `T`. Implemented by
/// [`Json`], [`JsonStrict`], [`Csv`], [`Text`] and [`Bytes`]; implement it for other
/// formats.
pub trait Decoder<T>: Send + Sync + 'static {
    /// Decoding state for one file (or one byte range of a file, or one
    /// instance of a Kafka source): for CSV, the header and scratch
    /// buffers. Made once and reused for every record, so decoding need not
    /// allocate.
    type State: Send + 'static;

    /// Whether the first line of every file is a header rather than a
    /// record. The header is given to [`Decoder::start`]. Kafka sources
    /// refuse a decoder with a header.
    fn has_header(&self) -> bool {
        false
    }

    /// Makes the state for one file, given its header line (without line
    /// terminator) when [`Decoder::has_header`] is true and the file has
    /// one; for a Kafka source, with no header.
    ///
    /// # Errors
    /// A header that cannot be used; the source fails naming the file.
    fn start(&self, header: Option<&[u8]>) -> Result<Self::State, BoxError>;

    /// Decodes one record: a line without its terminator (never blank), or
    /// a message's value.
    ///
    /// # Errors
    /// Bytes that are not a valid record; the source's
    /// [`BadRecordPolicy`](crate::BadRecordPolicy) decides what happens to
    /// them, and the source adds where they came from.
    fn decode(&self, state: &mut Self::State, bytes: &[u8]) -> Result<T, BoxError>;

    /// Whether every record is UTF-8 text. A file source then checks each
    /// block it reads for UTF-8 once, as a whole, and hands the lines of a
    /// block that is all UTF-8 to [`Decoder::decode_text`]: one check of a
    /// megabyte costs less than a check of each of its lines. The lines of
    /// a block that is not go to [`Decoder::decode`], each failing or not
    /// as it would alone.
    fn is_text(&self) -> bool {
        false
    }

    /// [`Decoder::decode`] of a record known to be UTF-8, with the same
    /// result; the default decodes its bytes. Called only when
    /// [`Decoder::is_text`] is true.
    ///
    /// # Errors
    /// As [`Decoder::decode`].
    fn decode_text(&self, state: &mut Self::State, text: &str) -> Result<T, BoxError> {
        self.decode(state, text.as_bytes())
    }
}

/// Turns a value of type `T` into the bytes of one record. Implemented by
/// [`Json`], [`Csv`] and [`Text`]; implement it for other formats.
pub trait Encoder<T>: Send + Sync + 'static {
    /// Encoding state for one file (or one instance of a Kafka sink): for
    /// CSV, whether the header is written and how many fields a row has.
    type State: Send + 'static;

    /// Whether [`Encoder::encode`] writes a header before the first record
    /// of a file. Kafka sinks refuse an encoder with a header.
    fn has_header(&self) -> bool {
        false
    }

    /// The extension of the files it writes, without the dot: `"csv"`.
    fn extension(&self) -> &str;

    /// Makes the state for a new file.
    fn start(&self) -> Self::State;

    /// Appends one value to `out` as one record ending in `\n`, after
    /// whatever a file needs before its first record (a CSV header). The
    /// record itself holds no other line break, so a file of them can be
    /// read back line by line.
    ///
    /// # Errors
    /// A value this format cannot hold. The sink fails naming the record;
    /// whatever the call appended to `out` is discarded.
    fn encode(&self, state: &mut Self::State, value: &T, out: &mut Vec<u8>)
    -> Result<(), BoxError>;
}
