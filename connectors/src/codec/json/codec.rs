//! The JSON codecs: [`Json`] on the fast path, [`JsonStrict`] on
//! `serde_json` alone.

use brook_core::BoxError;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::super::{Decoder, Encoder};

/// JSON: each record is one JSON value (in files, JSON lines), read with
/// the fast path ([`from_str`](super::from_str)) and written with
/// `serde_json`.
///
/// Decoding checks a record to be UTF-8 once, as a whole (a file source
/// checks each block it reads at once), and then reads it as text, with
/// the same result as `serde_json::from_str` in about two thirds of its
/// time (see [the module docs](super) for how, and for what it leaves to
/// `serde_json`). Encoding escapes line breaks inside strings, so a record
/// is always one line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json;

impl<T: DeserializeOwned + Send + 'static> Decoder<T> for Json {
    type State = ();

    fn start(&self, _header: Option<&[u8]>) -> Result<(), BoxError> {
        Ok(())
    }

    fn decode(&self, _state: &mut (), bytes: &[u8]) -> Result<T, BoxError> {
        Ok(super::from_str(utf8(bytes)?)?)
    }

    fn is_text(&self) -> bool {
        true
    }

    fn decode_text(&self, _state: &mut (), text: &str) -> Result<T, BoxError> {
        Ok(super::from_str(text)?)
    }
}

/// `bytes` as text: checked with SIMD (the logs-window job at parallelism
/// 1 went from 5.67 to 5.91 M events/s with it), and on failure by the
/// standard library, for its error, which says where the bad byte is.
fn utf8(bytes: &[u8]) -> Result<&str, std::str::Utf8Error> {
    match simdutf8::basic::from_utf8(bytes) {
        Ok(text) => Ok(text),
        Err(_) => std::str::from_utf8(bytes),
    }
}

/// JSON read and written with `serde_json` alone: [`Json`] without the
/// fast path, for a comparison or a doubt. It gives the same values and
/// errors as [`Json`].
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonStrict;

impl<T: DeserializeOwned + Send + 'static> Decoder<T> for JsonStrict {
    type State = ();

    fn start(&self, _header: Option<&[u8]>) -> Result<(), BoxError> {
        Ok(())
    }

    fn decode(&self, _state: &mut (), bytes: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_str(std::str::from_utf8(bytes)?)?)
    }

    fn is_text(&self) -> bool {
        true
    }

    fn decode_text(&self, _state: &mut (), text: &str) -> Result<T, BoxError> {
        Ok(serde_json::from_str(text)?)
    }
}

impl<T: Serialize> Encoder<T> for JsonStrict {
    type State = ();

    fn extension(&self) -> &str {
        "jsonl"
    }

    fn start(&self) {}

    fn encode(&self, state: &mut (), value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        Json.encode(state, value, out)
    }
}

impl<T: Serialize> Encoder<T> for Json {
    type State = ();

    fn extension(&self) -> &str {
        "jsonl"
    }

    fn start(&self) {}

    fn encode(&self, _state: &mut (), value: &T, out: &mut Vec<u8>) -> Result<(), BoxError> {
        serde_json::to_writer(&mut *out, value)?;
        out.push(b'\n');
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Deserialize)]
    struct Line {
        service: String,
        status: u16,
    }

    #[test]
    fn json_decodes_text_refuses_bytes_that_are_not_utf8_and_encodes_one_line() {
        let format = Json;
        let line: Line = format
            .decode(
                &mut (),
                b"{\"service\":\"svc-\\u00e9 \xc3\xa9\",\"status\":200}",
            )
            .expect("a line");
        assert_eq!(
            line,
            Line {
                service: "svc-é é".into(),
                status: 200
            }
        );

        let err = Decoder::<Line>::decode(&format, &mut (), b"{\"service\":\"\xff\",\"status\":1}")
            .expect_err("not UTF-8");
        assert!(err.to_string().contains("invalid utf-8"), "{err}");
        let err =
            Decoder::<Line>::decode(&format, &mut (), b"{\"service\":1}").expect_err("not a Line");
        assert!(err.to_string().contains("invalid type"), "{err}");

        #[derive(serde::Serialize)]
        struct Text<'a> {
            text: &'a str,
        }
        let mut out = Vec::new();
        Json.encode(&mut (), &Text { text: "a\nb\r" }, &mut out)
            .expect("encode");
        assert_eq!(out, b"{\"text\":\"a\\nb\\r\"}\n");
    }

    /// Text known to be UTF-8 decodes as its bytes do, on both paths.
    #[test]
    fn decode_text_gives_what_decode_gives() {
        let lines = [
            "{\"service\":\"svc-\\u00e9 \u{e9}\",\"status\":200}",
            "{\"status\":7,\"service\":\"\u{1f600}\",\"extra\":[1,{\"a\":null}]}",
            "{\"service\":1}",
            "{\"service\":\"a\"",
            "[\"svc\",404]",
        ];
        fn same(format: &impl Decoder<Line, State = ()>, line: &str) {
            let text = format.decode_text(&mut (), line).map_err(|e| e.to_string());
            let bytes = format
                .decode(&mut (), line.as_bytes())
                .map_err(|e| e.to_string());
            assert_eq!(text, bytes, "{line}");
        }
        assert!(Decoder::<Line>::is_text(&Json) && Decoder::<Line>::is_text(&JsonStrict));
        for line in lines {
            same(&Json, line);
            same(&JsonStrict, line);
        }
    }
}
