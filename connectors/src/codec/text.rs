//! [`Text`] and [`Bytes`]: records taken as they are.

use brook_core::BoxError;

use super::{Decoder, Encoder};

/// Each record as UTF-8 text, a `String`: a line of a file without its
/// terminator, a message's value. Bytes that are not UTF-8 are a bad
/// record; so is a Kafka tombstone (a message with no value). Encoding
/// refuses text with a line break, which would read back as two records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Text;

impl Decoder<String> for Text {
    type State = ();

    fn start(&self, _header: Option<&[u8]>) -> Result<(), BoxError> {
        Ok(())
    }

    fn decode(&self, _state: &mut (), bytes: &[u8]) -> Result<String, BoxError> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }

    fn is_text(&self) -> bool {
        true
    }

    fn decode_text(&self, _state: &mut (), text: &str) -> Result<String, BoxError> {
        Ok(text.to_owned())
    }
}

impl Encoder<String> for Text {
    type State = ();

    fn extension(&self) -> &str {
        "txt"
    }

    fn start(&self) {}

    fn encode(&self, _state: &mut (), value: &String, out: &mut Vec<u8>) -> Result<(), BoxError> {
        if memchr::memchr(b'\n', value.as_bytes()).is_some() {
            return Err("the text holds a line break, so it would read back as two records".into());
        }
        out.extend_from_slice(value.as_bytes());
        out.push(b'\n');
        Ok(())
    }
}

/// Each record's bytes as they are, a `Vec<u8>`: a line of a file without
/// its terminator, a message's value (a Kafka tombstone is a bad record).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bytes;

impl Decoder<Vec<u8>> for Bytes {
    type State = ();

    fn start(&self, _header: Option<&[u8]>) -> Result<(), BoxError> {
        Ok(())
    }

    fn decode(&self, _state: &mut (), bytes: &[u8]) -> Result<Vec<u8>, BoxError> {
        Ok(bytes.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_must_be_utf8_and_one_line_and_bytes_are_kept() {
        assert_eq!(Text.decode(&mut (), b"caf\xc3\xa9").expect("utf8"), "café");
        assert!(Text.decode(&mut (), b"\xff").is_err());
        assert!(Text.is_text());
        assert_eq!(
            Text.decode_text(&mut (), "caf\u{e9}").expect("text"),
            "café"
        );
        let mut out = Vec::new();
        Text.encode(&mut (), &"a\rb".to_string(), &mut out)
            .expect("one line");
        assert_eq!(out, b"a\rb\n");
        let err = Text
            .encode(&mut (), &"a\nb".to_string(), &mut out)
            .expect_err("two lines");
        assert!(err.to_string().contains("line break"), "{err}");
        assert_eq!(
            Bytes.decode(&mut (), b"\xff\x00").expect("bytes"),
            b"\xff\x00"
        );
    }
}
