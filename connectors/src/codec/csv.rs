//! [`Csv`]: one CSV row per record, read by header names or position, and
//! written with a header row first.

use brook_core::BoxError;
use std::cell::RefCell;
use std::io;

use csv::ByteRecord;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Decoder, Encoder};

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

/// CSV, one row per record, with the `csv` crate: by default comma
/// separated, with a header row.
///
/// **Decoding** deserializes a row by header names when the file has a
/// header row, by position otherwise. A row must fit on one line: a quoted
/// field may hold the delimiter and doubled quotes, but not a line break (a
/// line break always ends the row, which lets a file be split across
/// parallel readers). A row whose number of fields differs from the
/// header's is a bad record.
///
/// **Encoding** writes flat records: a struct whose fields are numbers,
/// strings, booleans or `Option`s of those, or a tuple of such values, each
/// row ending in `\n`, after a header row of field names at the start of a
/// file (only structs have field names: tuples get no header). A value with
/// a nested struct, map or sequence is an error, with or without a header,
/// and so is a row with another number of fields than the first, or a
/// field holding a line break (which could not be read back).
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

    /// Whether the first line of each file is a header row, read when
    /// decoding and written when encoding (default: true).
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

/// The decoding state of [`Csv`] for one file: its header and reused
/// buffers.
pub struct CsvDecoderState {
    headers: Option<ByteRecord>,
    reader: Reader,
    record: ByteRecord,
    out: Vec<u8>,
    ends: Vec<usize>,
}

impl std::fmt::Debug for CsvDecoderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvDecoderState")
            .field("headers", &self.headers)
            .finish_non_exhaustive()
    }
}

impl CsvDecoderState {
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

    /// [`CsvDecoderState::value`] of a line long enough to have grown the
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

impl<T: DeserializeOwned + Send + 'static> Decoder<T> for Csv {
    type State = CsvDecoderState;

    fn has_header(&self) -> bool {
        self.has_headers
    }

    fn start(&self, header: Option<&[u8]>) -> Result<CsvDecoderState, BoxError> {
        let mut parser = CsvDecoderState {
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

    fn decode(&self, parser: &mut CsvDecoderState, line: &[u8]) -> Result<T, BoxError> {
        if line.len() >= SHRINK_LINE {
            return parser.value_then_shrink(line);
        }
        parser.value(line)
    }
}

/// The encoding state of [`Csv`] for one file: a `csv` writer that lives as
/// long as the file, so it writes the header once and checks that every row
/// has as many fields as the first.
pub struct CsvEncoderState {
    writer: csv::Writer<Spill>,
    /// Whether the first value was checked to be flat.
    checked: bool,
}

impl std::fmt::Debug for CsvEncoderState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvEncoderState")
            .field("checked", &self.checked)
            .finish_non_exhaustive()
    }
}

/// Where the `csv` writer flushes to; emptied into the caller's buffer
/// after each row. A `RefCell` because the writer only lends it shared.
struct Spill(RefCell<Vec<u8>>);

impl io::Write for Spill {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.get_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Csv {
    fn builder(&self, header: bool) -> csv::WriterBuilder {
        let mut b = csv::WriterBuilder::new();
        b.has_headers(header).delimiter(self.delimiter);
        b
    }
}

/// Why a value is not a CSV row.
fn not_flat(e: csv::Error) -> BoxError {
    format!(
        "cannot write it as a CSV row: {e} (CSV rows are flat: every field \
         must be a number, string, boolean or an Option of one, not a struct, \
         map or sequence)"
    )
    .into()
}

impl<T: Serialize> Encoder<T> for Csv {
    type State = CsvEncoderState;

    fn has_header(&self) -> bool {
        self.has_headers
    }

    fn extension(&self) -> &str {
        "csv"
    }

    fn start(&self) -> CsvEncoderState {
        CsvEncoderState {
            writer: self
                .builder(self.has_headers)
                .from_writer(Spill(RefCell::new(Vec::new()))),
            checked: false,
        }
    }

    fn encode(
        &self,
        state: &mut CsvEncoderState,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), BoxError> {
        if !state.checked {
            // The `csv` crate rejects nested values only while it writes a
            // header from them; without a header it would flatten them
            // silently. Check the first value as if writing a header.
            if !self.has_headers {
                self.builder(true)
                    .from_writer(io::sink())
                    .serialize(value)
                    .map_err(not_flat)?;
            }
            state.checked = true;
        }
        state.writer.serialize(value).map_err(not_flat)?;
        state.writer.flush()?;
        let mut spill = state.writer.get_ref().0.borrow_mut();
        if quoted_line_break(&spill) {
            spill.clear();
            return Err(broken_row());
        }
        out.extend_from_slice(&spill);
        spill.clear();
        Ok(())
    }
}

/// Whether CSV as the writer wrote it holds a line break inside a quoted
/// field (the writer quotes every field with one; a doubled quote toggles
/// twice).
fn quoted_line_break(csv: &[u8]) -> bool {
    let mut quoted = false;
    for i in memchr::memchr2_iter(b'"', b'\n', csv) {
        if csv[i] == b'"' {
            quoted = !quoted;
        } else if quoted {
            return true;
        }
    }
    false
}

/// Why a row with a line break in a field is refused.
fn broken_row() -> BoxError {
    "a field holds a line break: a CSV record is one line, which Brook's CSV \
     readers need to read it back (replace or escape line breaks first)"
        .into()
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
        let mut parser = Decoder::<A>::start(&csv, Some(b"a")).expect("parser");
        assert_eq!(
            (parser.out.len(), parser.ends.len()),
            (OUT_START, ENDS_START)
        );
        // A long field grows the output buffer for its line only.
        let long = "x".repeat(3 << 20);
        let row: A = Decoder::decode(&csv, &mut parser, long.as_bytes()).expect("one field");
        assert_eq!(row.a.len(), 3 << 20);
        assert_eq!(parser.out.len(), OUT_START);
        assert!(parser.record.as_slice().is_empty());
        // Far more fields than the header: a bad line before they are all
        // stored.
        let wide = ",".repeat(1 << 20);
        let err = Decoder::<A>::decode(&csv, &mut parser, wide.as_bytes()).expect_err("wide");
        assert!(err.to_string().contains("more than"), "{err}");
        assert_eq!(parser.ends.len(), ENDS_START);
        let row: A = Decoder::decode(&csv, &mut parser, b"\"q, r\"").expect("row");
        assert_eq!(row.a, "q, r");

        // Without a header, the field ends grow as the line needs, then
        // shrink.
        let csv = Csv::new().has_headers(false);
        let mut parser = Decoder::<Vec<String>>::start(&csv, None).expect("parser");
        let wide = ",".repeat(300_000);
        let row: Vec<String> =
            Decoder::decode(&csv, &mut parser, wide.as_bytes()).expect("wide row");
        assert_eq!(row.len(), 300_001);
        assert_eq!(parser.ends.len(), ENDS_START);
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        n: u32,
        text: String,
    }

    #[test]
    fn encoding_writes_the_header_once_and_refuses_line_breaks_in_fields() {
        let csv = Csv::new();
        let mut state = Encoder::<Row>::start(&csv);
        let mut out = Vec::new();
        let row = |n, text: &str| Row {
            n,
            text: text.into(),
        };
        csv.encode(&mut state, &row(1, "a,\"b\""), &mut out)
            .expect("first");
        let err = csv
            .encode(&mut state, &row(2, "x\ny"), &mut out)
            .expect_err("a line break");
        assert!(err.to_string().contains("line break"), "{err}");
        csv.encode(&mut state, &row(3, "\r"), &mut out)
            .expect("a carriage return is data");
        assert_eq!(
            String::from_utf8(out.clone()).expect("utf8"),
            "n,text\n1,\"a,\"\"b\"\"\"\n3,\"\r\"\n"
        );
        // What was written reads back.
        let mut lines = out.split(|&b| b == b'\n');
        let mut dec = Decoder::<Row>::start(&csv, lines.next()).expect("header");
        let first: Row = csv
            .decode(&mut dec, lines.next().expect("row"))
            .expect("decode");
        assert_eq!(first, row(1, "a,\"b\""));
        assert!(quoted_line_break(b"a,\"b\n\"\n"));
        assert!(!quoted_line_break(b"a,\"b\"\"\"\n"));
    }
}
