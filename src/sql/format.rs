//! [`OutputFormat`] and [`ResultWriter`]: how a query result is printed,
//! batch by batch as the rows come.

use std::io::Write;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::pretty::pretty_format_batches_with_schema;

use super::SqlError;

/// How [`QueryResult::format`](super::QueryResult::format) and
/// [`ResultWriter`] show rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// An aligned table with a header, for people.
    #[default]
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects, one per row.
    Json,
    /// JSON lines: one object per row.
    Ndjson,
}

/// Rows of a table kept back to align them together: up to this many.
const TABLE_CHUNK_ROWS: usize = 4096;
/// ... or about this many bytes of Arrow data.
const TABLE_CHUNK_BYTES: usize = 8 << 20;

/// Writes a query's rows to `out` as they come, in an [`OutputFormat`],
/// holding at most one chunk of rows: CSV, JSON and JSON lines are written
/// batch by batch. A table is aligned over chunks of up to 4096 rows: a
/// result of one chunk is one aligned table, and a longer one goes on with
/// each chunk aligned by itself under the same header (the way `psql`
/// prints a result it fetches in parts).
///
/// ```
/// # async fn example() -> Result<(), brook::sql::SqlError> {
/// use brook::sql::{OutputFormat, ResultWriter, SqlEngine};
///
/// let engine = SqlEngine::new()?;
/// let mut rows = engine.query_stream("SELECT * FROM generate_series(1, 3)").await?;
/// let mut out = ResultWriter::new(std::io::stdout(), rows.schema(), OutputFormat::Csv);
/// while let Some(batch) = rows.next_batch().await {
///     out.write(&batch?)?;
/// }
/// out.finish()?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ResultWriter<W: Write> {
    out: W,
    schema: SchemaRef,
    format: OutputFormat,
    rows: usize,
    /// Whether the header (CSV, table) or `[` (JSON) is out.
    started: bool,
    /// Table rows waiting to be aligned together.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    pending_bytes: usize,
    /// The table's closing rule, written last.
    closing: Option<String>,
}

impl<W: Write> ResultWriter<W> {
    /// A writer of rows of `schema` to `out`.
    pub fn new(out: W, schema: SchemaRef, format: OutputFormat) -> Self {
        ResultWriter {
            out,
            schema,
            format,
            rows: 0,
            started: false,
            pending: Vec::new(),
            pending_rows: 0,
            pending_bytes: 0,
            closing: None,
        }
    }

    /// How many rows were given so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes `batch`'s rows (a table may keep up to one chunk back).
    ///
    /// # Errors
    /// [`SqlError::Format`] for a value the format cannot show;
    /// [`SqlError::Output`] when `out` fails.
    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), SqlError> {
        self.rows += batch.num_rows();
        match self.format {
            OutputFormat::Table => {
                let bytes = batch.get_array_memory_size();
                let rows = batch.num_rows().max(1);
                let mut offset = 0;
                while offset < batch.num_rows() {
                    let take =
                        (TABLE_CHUNK_ROWS - self.pending_rows).min(batch.num_rows() - offset);
                    self.pending.push(batch.slice(offset, take));
                    self.pending_rows += take;
                    self.pending_bytes += bytes / rows * take;
                    offset += take;
                    if self.pending_rows >= TABLE_CHUNK_ROWS
                        || self.pending_bytes >= TABLE_CHUNK_BYTES
                    {
                        self.table_chunk()?;
                    }
                }
                Ok(())
            }
            OutputFormat::Csv => {
                let mut buf = Vec::new();
                {
                    let mut writer = arrow::csv::WriterBuilder::new()
                        .with_header(!self.started)
                        .build(&mut buf);
                    writer.write(batch)?;
                }
                self.started = true;
                self.emit(&buf)
            }
            OutputFormat::Json => {
                let mut writer = arrow::json::ArrayWriter::new(Vec::new());
                writer.write(batch)?;
                writer.finish()?;
                let buf = writer.into_inner();
                // `[row,row]`: the rows, joined to those before.
                let rows = buf
                    .strip_prefix(b"[")
                    .and_then(|b| b.strip_suffix(b"]"))
                    .unwrap_or(&buf);
                if rows.is_empty() {
                    return Ok(());
                }
                let lead: &[u8] = if self.started { b"," } else { b"[" };
                self.started = true;
                self.out.write_all(lead).map_err(SqlError::Output)?;
                self.emit(rows)
            }
            OutputFormat::Ndjson => {
                let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
                writer.write(batch)?;
                writer.finish()?;
                self.emit(&writer.into_inner())
            }
        }
    }

    /// Writes what is left (a table's last rows and closing rule, JSON's
    /// `]`, an empty result's header) and flushes; returns `out`.
    ///
    /// # Errors
    /// As [`write`](Self::write).
    pub fn finish(mut self) -> Result<W, SqlError> {
        match self.format {
            OutputFormat::Table => {
                if !self.pending.is_empty() {
                    self.table_chunk()?;
                }
                match self.closing.take() {
                    Some(closing) => self.emit(format!("{closing}\n").as_bytes())?,
                    None => {
                        let empty = pretty_format_batches_with_schema(self.schema.clone(), &[])?;
                        self.emit(format!("{empty}\n").as_bytes())?;
                    }
                }
            }
            OutputFormat::Csv if !self.started => {
                let mut buf = Vec::new();
                {
                    let mut writer = arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(&mut buf);
                    writer.write(&RecordBatch::new_empty(self.schema.clone()))?;
                }
                self.emit(&buf)?;
            }
            OutputFormat::Json if !self.started => self.emit(b"[]\n")?,
            OutputFormat::Json => self.emit(b"]\n")?,
            OutputFormat::Csv | OutputFormat::Ndjson => {}
        }
        Ok(self.out)
    }

    /// Writes the pending table rows: with the header the first time, and
    /// the closing rule kept for [`finish`](Self::finish).
    fn table_chunk(&mut self) -> Result<(), SqlError> {
        let pending = std::mem::take(&mut self.pending);
        self.pending_rows = 0;
        self.pending_bytes = 0;
        let text = pretty_format_batches_with_schema(self.schema.clone(), &pending)?.to_string();
        drop(pending);
        let lines: Vec<&str> = text.lines().collect();
        let Some((closing, body)) = lines.split_last() else {
            return Ok(());
        };
        // The top rule, the header and its rule come once.
        let skip = if self.started {
            body.iter()
                .skip(1)
                .position(|l| l.starts_with('+'))
                .map_or(0, |i| i + 2)
        } else {
            0
        };
        self.started = true;
        let mut buf = String::with_capacity(text.len());
        for line in &body[skip.min(body.len())..] {
            buf.push_str(line);
            buf.push('\n');
        }
        self.closing = Some((*closing).to_string());
        self.emit(buf.as_bytes())
    }

    fn emit(&mut self, bytes: &[u8]) -> Result<(), SqlError> {
        self.out.write_all(bytes).map_err(SqlError::Output)?;
        self.out.flush().map_err(SqlError::Output)
    }
}

/// Formats `batches` (of `schema`) as `format`, whole.
pub(super) fn format(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, SqlError> {
    let mut writer = ResultWriter::new(Vec::new(), schema.clone(), format);
    for batch in batches {
        writer.write(batch)?;
    }
    let mut out = utf8(writer.finish()?);
    // A table has no newline after its closing rule.
    if format == OutputFormat::Table && out.ends_with('\n') {
        out.pop();
    }
    Ok(out)
}

/// Arrow's writers write UTF-8; a lossy conversion only guards the
/// impossible case.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
