//! [`RecordEncoder`]: how a value becomes bytes in a part file, with
//! [`JsonLinesEncoder`] and [`CsvEncoder`].

use std::cell::RefCell;
use std::io;

use brook_core::BoxError;
use serde::Serialize;

/// How a [`FileSink`](super::FileSink) turns values of type `T` into the
/// bytes of a part file. Implemented by [`JsonLinesEncoder`] and
/// [`CsvEncoder`]; implement it for other formats.
pub trait RecordEncoder<T>: Send + Sync + 'static {
    /// Encoding state for one file, made once per file: for CSV, whether
    /// the header is written and how many fields a row has.
    type State: Send + 'static;

    /// The extension of the part files, without the dot: `"csv"`.
    fn extension(&self) -> &str;

    /// Makes the state for a new file.
    fn start(&self) -> Self::State;

    /// Appends one value to `out`, with its line terminator, after whatever
    /// the file needs before its first value (a CSV header).
    ///
    /// # Errors
    /// A value this format cannot hold. The sink fails naming the file and
    /// the record; whatever the call appended to `out` is discarded.
    fn encode(&self, state: &mut Self::State, value: &T, out: &mut Vec<u8>)
    -> Result<(), BoxError>;
}

/// JSON lines: each value as one line of JSON, written with `serde_json`.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLinesEncoder;

impl<T: Serialize> RecordEncoder<T> for JsonLinesEncoder {
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

/// CSV rows, written with the `csv` crate: by default comma separated, with
/// a header row of field names, each row ending in `\n`.
///
/// CSV holds flat records: a struct whose fields are numbers, strings,
/// booleans or `Option`s of those, or a tuple of such values. A value with
/// a nested struct, map or sequence is an error, with or without a header,
/// and so is a row with another number of fields than the first. A field
/// with a line break is quoted, which is valid CSV but cannot be read back
/// by [`CsvSource`](crate::file::CsvSource), whose rows fit on one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CsvEncoder {
    header: bool,
    delimiter: u8,
}

impl Default for CsvEncoder {
    fn default() -> Self {
        CsvEncoder {
            header: true,
            delimiter: b',',
        }
    }
}

impl CsvEncoder {
    /// Comma-separated, with a header row.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether each file starts with a header row of field names (default:
    /// true). Only structs have field names: tuples get no header.
    pub fn header(mut self, yes: bool) -> Self {
        self.header = yes;
        self
    }

    /// The field delimiter (default: `b','`).
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

/// The state of [`CsvEncoder`] for one file: a `csv` writer that lives as
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

impl CsvEncoder {
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

impl<T: Serialize> RecordEncoder<T> for CsvEncoder {
    type State = CsvEncoderState;

    fn extension(&self) -> &str {
        "csv"
    }

    fn start(&self) -> CsvEncoderState {
        CsvEncoderState {
            writer: self
                .builder(self.header)
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
            if !self.header {
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
        out.extend_from_slice(&spill);
        spill.clear();
        Ok(())
    }
}
