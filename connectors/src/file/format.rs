//! [`LineFormat`]: how one line of a file becomes one value, and
//! [`JsonLines`], the JSON-lines format.

use brook_core::BoxError;
use serde::de::DeserializeOwned;

/// How the lines of a file become values of type `T`.
///
/// [`FileSource`](super::FileSource) splits files into lines and hands each
/// non-blank line, without its line terminator (`\n` or `\r\n`), to
/// [`LineFormat::parse`]. Implemented by [`JsonLines`] and [`Csv`](super::Csv);
/// implement it for other line-oriented formats.
pub trait LineFormat<T>: Send + Sync + 'static {
    /// Parsing state for one file (or one byte range of a file): for CSV,
    /// the header and scratch buffers. Made once per file and reused for
    /// every line, so parsing need not allocate.
    type Parser: Send + 'static;

    /// Whether the first line of every file is a header rather than a
    /// record. The header is given to [`LineFormat::parser`].
    fn has_header(&self) -> bool {
        false
    }

    /// Makes the parser for one file, given its header line (without line
    /// terminator) when [`LineFormat::has_header`] is true and the file has
    /// one.
    ///
    /// # Errors
    /// A header that cannot be used; the source fails naming the file.
    fn parser(&self, header: Option<&[u8]>) -> Result<Self::Parser, BoxError>;

    /// Parses one line (without line terminator, never blank).
    ///
    /// # Errors
    /// A line that is not a valid record; the source's
    /// [`BadRecordPolicy`](super::BadRecordPolicy) decides what happens to it.
    fn parse(&self, parser: &mut Self::Parser, line: &[u8]) -> Result<T, BoxError>;
}

/// JSON lines: one JSON value per line, deserialized with `serde_json`
/// straight from the read buffer.
///
/// Each line is checked to be UTF-8 once, as a whole, and then parsed as
/// text: cheaper than `serde_json` checking every string it meets
/// (about a quarter of the parse time of a typical log line).
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<T: DeserializeOwned + Send + 'static> LineFormat<T> for JsonLines {
    type Parser = ();

    fn parser(&self, _header: Option<&[u8]>) -> Result<(), BoxError> {
        Ok(())
    }

    fn parse(&self, _parser: &mut (), line: &[u8]) -> Result<T, BoxError> {
        Ok(serde_json::from_str(std::str::from_utf8(line)?)?)
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
    fn json_lines_parse_text_and_refuse_bytes_that_are_not_utf8() {
        let format = JsonLines;
        let line: Line = format
            .parse(
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

        let err =
            LineFormat::<Line>::parse(&format, &mut (), b"{\"service\":\"\xff\",\"status\":1}")
                .expect_err("not UTF-8");
        assert!(err.to_string().contains("invalid utf-8"), "{err}");
        let err = LineFormat::<Line>::parse(&format, &mut (), b"{\"service\":1}")
            .expect_err("not a Line");
        assert!(err.to_string().contains("invalid type"), "{err}");
    }
}
