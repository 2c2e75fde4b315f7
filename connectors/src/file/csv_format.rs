//! [`Csv`]: one CSV row per line, deserialized by header names.

use brook_core::BoxError;
use csv::ByteRecord;
use csv_core::{ReadRecordResult, Reader, ReaderBuilder, Terminator};
use serde::de::DeserializeOwned;

use super::format::LineFormat;

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
    /// Splits one line into the fields of `self.record`.
    fn read(&mut self, line: &[u8]) {
        self.reader.reset();
        self.record.clear();
        // Unescaped output is never longer than the input, and a line has at
        // most one field more than it has bytes.
        if self.out.len() <= line.len() {
            self.out.resize(line.len() + 1, 0);
        }
        if self.ends.len() <= line.len() + 1 {
            self.ends.resize(line.len() + 2, 0);
        }
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
                ReadRecordResult::OutputEndsFull => self.ends.resize(self.ends.len() * 2, 0),
                ReadRecordResult::Record | ReadRecordResult::End => break,
            }
        }
        let mut prev = 0;
        for &end in &self.ends[..nend] {
            self.record.push_field(&self.out[prev..end]);
            prev = end;
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
            out: Vec::new(),
            ends: Vec::new(),
        };
        if let Some(header) = header.filter(|_| self.has_headers) {
            parser.read(header);
            parser.headers = Some(std::mem::take(&mut parser.record));
        }
        Ok(parser)
    }

    fn parse(&self, parser: &mut CsvParser, line: &[u8]) -> Result<T, BoxError> {
        parser.read(line);
        if let Some(headers) = &parser.headers
            && headers.len() != parser.record.len()
        {
            return Err(format!(
                "found {} fields, but the header has {}",
                parser.record.len(),
                headers.len()
            )
            .into());
        }
        Ok(parser.record.deserialize(parser.headers.as_ref())?)
    }
}
