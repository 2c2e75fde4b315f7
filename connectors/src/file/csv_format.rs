//! [`Csv`]: one CSV row per line, deserialized by header names.

use brook_core::BoxError;
use csv::ByteRecord;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};
use serde::de::DeserializeOwned;

use super::format::LineFormat;

/// The unescaped bytes a parser starts with room for.
const OUT_START: usize = 1 << 10;
/// The field ends a parser starts with room for.
const ENDS_START: usize = 64;
/// Past this, a buffer that one line made large is shrunk after the line:
/// 1 MiB of bytes, or of field ends.
const SHRINK_BYTES: usize = 1 << 20;
const SHRINK_FIELDS: usize = SHRINK_BYTES / size_of::<usize>();
/// Only a line this long can grow a buffer past those (they double as they
/// grow): shorter lines skip the check.
const SHRINK_LINE: usize = SHRINK_FIELDS / 2;

/// CSV with one row per line, deserialized with the `csv` crate: by header
/// names when the file has a header row (the default), by position
/// otherwise.
///
/// A row must fit on one line: a quoted field may hold the delimiter and
/// doubled quotes, but not a line break (a line break always ends the row,
/// which lets a file be split across parallel readers). A row whose number
/// of fields differs from the header's is a bad line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Csv {
    has_headers: bool,
    delimiter: u8,
}

impl Default for Csv {
    fn default() -> Self {
        Csv {
            has_headers: true,
            delimiter: b',',
        }
    }
}

impl Csv {
    /// Comma-separated, with a header row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the first line of each file is a header row (default: true).
    pub fn has_headers(mut self, yes: bool) -> Self {
        self.has_headers = yes;
        self
    }

    /// The field delimiter (default: `b','`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

/// The state of [`Csv`] for one file: its header and reused buffers.
pub struct CsvParser {
    headers: Option<ByteRecord>,
    reader: Reader,
    record: ByteRecord,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl std::fmt::Debug for CsvParser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvParser")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl CsvParser {
    /// Splits one line into the fields of `self.record`. The buffers start
    /// small and grow as a line needs.
    ///
    /// # Errors
    /// A line with more fields than the header, found before all its
    /// fields are stored.
    fn read(&mut self, line: &[u8]) -> Result<(), BoxError> {
        self.reader.reset();
        self.record.clear();
        let (mut input, mut nout, mut nend) = (line, 0, 0);
        loop {
            let (res, i, o, e) =
                self.reader
                    .read_record(input, &mut self.out[nout..], &mut self.ends[nend..]);
            input = &input[i..];
            nout += o;
            nend += e;
            match res {
                // The empty input that follows tells the reader the row ended.
                ReadRecordResult::InputEmpty => {}
                ReadRecordResult::OutputFull => self.out.resize(self.out.len() * 2, 0),
                ReadRecordResult::OutputEndsFull => {
                    if let Some(headers) = &self.headers
                        && nend > headers.len()
                    {
                        let n = headers.len();
                        return Err(format!(
                            "found more than {nend} fields, but the header has {n}"
                        )
                        .into());
                    }
                    self.ends.resize(self.ends.len() * 2, 0);
                }
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        let mut prev = 0;
        for &end in &self.ends[..nend] {
            self.record.push_field(&self.out[prev..end]);
            prev = end;
        }
        Ok(())
    }

    /// The value of the fields read, checked against the header.
    fn value<T: DeserializeOwned>(&mut self, line: &[u8]) -> Result<T, BoxError> {
        self.read(line)?;
        if let Some(headers) = &self.headers
            && headers.len() != self.record.len()
        {
            return Err(format!(
                "found {} fields, but the header has {}",
                self.record.len(),
                headers.len()
            )
            .into());
        }
        Ok(self.record.deserialize(self.headers.as_ref())?)
    }

    /// [`CsvParser::value`] of a line long enough to have grown the
    /// buffers, then frees what it grew.
    #[cold]
    #[inline(never)]
    fn value_then_shrink<T: DeserializeOwned>(&mut self, line: &[u8]) -> Result<T, BoxError> {
        let value = self.value(line);
        self.shrink();
        value
    }

    /// Frees what an outlier line made large.
    fn shrink(&mut self) {
        if self.out.len() > SHRINK_BYTES {
            self.out = vec![0; OUT_START];
        }
        if self.ends.len() > SHRINK_FIELDS {
            self.ends = vec![0; ENDS_START];
        }
        if self.record.as_slice().len() > SHRINK_BYTES || self.record.len() > SHRINK_FIELDS {
            self.record = ByteRecord::new();
        }
    }
}

impl<T: DeserializeOwned + Send + 'static> LineFormat<T> for Csv {
    type Parser = CsvParser;

    fn has_header(&self) -> bool {
        self.has_headers
    }

    fn parser(&self, header: Option<&[u8]>) -> Result<CsvParser, BoxError> {
        let mut parser = CsvParser {
            headers: None,
            reader: ReaderBuilder::new()
                .delimiter(self.delimiter)
                // Lines come without `\n`; a `\r` inside one is data.
                .terminator(Terminator::Any(b'\n'))
                .build(),
            record: ByteRecord::new(),
            out: vec![0; OUT_START],
            ends: vec![0; ENDS_START],
        };
        if let Some(header) = header.filter(|_| self.has_headers) {
            parser.read(header)?;
            parser.headers = Some(std::mem::take(&mut parser.record));
            parser.shrink();
        }
        Ok(parser)
    }

    fn parse(&self, parser: &mut CsvParser, line: &[u8]) -> Result<T, BoxError> {
        if line.len() >= SHRINK_LINE {
            return parser.value_then_shrink(line);
        }
        parser.value(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    struct A {
        a: String,
    }

    #[test]
    fn buffers_start_small_and_shrink_after_an_outlier_line() {
        let csv = Csv::new();
        let mut parser = LineFormat::<A>::parser(&csv, Some(b"a")).expect("parser");
        assert_eq!(
            (parser.out.len(), parser.ends.len()),
            (OUT_START, ENDS_START)
        );
        // A long field grows the output buffer for its line only.
        let long = "x".repeat(3 << 20);
        let row: A = LineFormat::parse(&csv, &mut parser, long.as_bytes()).expect("one field");
        assert_eq!(row.a.len(), 3 << 20);
        assert_eq!(parser.out.len(), OUT_START);
        assert!(parser.record.as_slice().is_empty());
        // Far more fields than the header: a bad line before they are all
        // stored.
        let wide = ",".repeat(1 << 20);
        let err = LineFormat::<A>::parse(&csv, &mut parser, wide.as_bytes()).expect_err("wide");
        assert!(err.to_string().contains("more than"), "{err}");
        assert_eq!(parser.ends.len(), ENDS_START);
        let row: A = LineFormat::parse(&csv, &mut parser, b"\"q, r\"").expect("row");
        assert_eq!(row.a, "q, r");

        // Without a header, the field ends grow as the line needs, then
        // shrink.
        let csv = Csv::new().has_headers(false);
        let mut parser = LineFormat::<Vec<String>>::parser(&csv, None).expect("parser");
        let wide = ",".repeat(300_000);
        let row: Vec<String> =
            LineFormat::parse(&csv, &mut parser, wide.as_bytes()).expect("wide row");
        assert_eq!(row.len(), 300_001);
        assert_eq!(parser.ends.len(), ENDS_START);
    }
}
