//! [`OutputFormat`]: how a query result is printed.

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::pretty::pretty_format_batches_with_schema;

use super::SqlError;

/// How [`QueryResult::format`](super::QueryResult::format) shows rows.
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

/// Formats `batches` (of `schema`) as `format`.
pub(super) fn format(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    format: OutputFormat,
) -> Result<String, SqlError> {
    match format {
        OutputFormat::Table => {
            Ok(pretty_format_batches_with_schema(schema.clone(), batches)?.to_string())
        }
        OutputFormat::Csv => {
            let mut out = Vec::new();
            {
                let mut writer = arrow::csv::WriterBuilder::new()
                    .with_header(true)
                    .build(&mut out);
                if batches.is_empty() {
                    writer.write(&RecordBatch::new_empty(schema.clone()))?;
                }
                for batch in batches {
                    writer.write(batch)?;
                }
            }
            Ok(utf8(out))
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::ArrayWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            let mut out = utf8(writer.into_inner());
            if out.is_empty() {
                out.push_str("[]");
            }
            out.push('\n');
            Ok(out)
        }
        OutputFormat::Ndjson => {
            let mut writer = arrow::json::LineDelimitedWriter::new(Vec::new());
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            Ok(utf8(writer.into_inner()))
        }
    }
}

/// Arrow's writers write UTF-8; a lossy conversion only guards the
/// impossible case.
fn utf8(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}
