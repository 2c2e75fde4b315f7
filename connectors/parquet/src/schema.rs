//! The Arrow schema a Parquet sink writes: traced from the type or given,
//! with the fields marked as timestamps retyped, and checked once.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema, SchemaRef, TimeUnit};
use brook_core::{Error, Result};
use parquet::arrow::ArrowSchemaConverter;
use serde::de::DeserializeOwned;
use serde_arrow::ArrayBuilder;
use serde_arrow::schema::{SchemaLike, TracingOptions};

/// The time zone of the timestamp columns the sink makes.
pub(crate) const UTC: &str = "UTC";

/// Traces the Arrow fields of a type.
pub(crate) type Tracer = fn(TracingOptions) -> serde_arrow::Result<Vec<FieldRef>>;

/// Where a sink's fields come from.
pub(crate) enum SchemaSource {
    /// Traced from the type `T` with these options.
    Traced {
        tracer: Tracer,
        options: TracingOptions,
    },
    /// Given by the user.
    Given(Fields),
}

/// The tracer of `T`.
pub(crate) fn tracer<T: DeserializeOwned>() -> Tracer {
    |options| Vec::<FieldRef>::from_type::<T>(options)
}

/// The tracing options a sink starts from: null-only fields allowed, plain
/// (not large) strings, binaries and lists, maps as Arrow maps, and enums
/// without data as dictionary-encoded strings (Parquet cannot hold unions).
pub(crate) fn default_tracing_options() -> TracingOptions {
    TracingOptions::default()
        .allow_null_fields(true)
        .strings_as_large_utf8(false)
        .bytes_as_large_binary(false)
        .sequence_as_large_list(false)
        .map_as_struct(false)
        .enums_without_data_as_strings(true)
}

/// The schema the sink writes for `type_name`: the fields from `source`,
/// the fields at `timestamps` (dotted paths) made millisecond UTC
/// timestamps; checked to be writable by serde_arrow and storable in
/// Parquet.
///
/// # Errors
/// [`Error::Config`] naming the type and saying what is wrong.
pub(crate) fn resolve(
    source: &SchemaSource,
    timestamps: &[String],
    type_name: &str,
) -> Result<SchemaRef> {
    let config = |what: &str, e: &dyn std::fmt::Display| {
        Error::Config(format!(
            "parquet sink for {type_name}: {what}: {e}; give an explicit schema with \
             ParquetSink::with_schema"
        ))
    };
    let mut fields: Vec<FieldRef> = match source {
        SchemaSource::Traced { tracer, options } => {
            tracer(options.clone()).map_err(|e| config("cannot trace an Arrow schema", &e))?
        }
        SchemaSource::Given(fields) => fields.iter().cloned().collect(),
    };
    for path in timestamps {
        let parts: Vec<&str> = path.split('.').collect();
        fields = retype(&fields, &parts).map_err(|e| {
            Error::Config(format!(
                "parquet sink for {type_name}: timestamp field '{path}': {e}"
            ))
        })?;
    }
    ArrayBuilder::from_arrow(&fields)
        .map_err(|e| config("serde_arrow cannot build this schema", &e))?;
    if let Some(field) = fields.iter().find(|f| has_union(f.data_type())) {
        let e = format!("field '{}' is a union (an enum with data)", field.name());
        return Err(config("Parquet cannot store unions", &e));
    }
    let schema = Arc::new(Schema::new(fields));
    ArrowSchemaConverter::new()
        .convert(&schema)
        .map_err(|e| config("Parquet cannot store this schema", &e))?;
    Ok(schema)
}

/// Whether a type is or holds a union, which Parquet's schema conversion
/// does not handle (it panics).
fn has_union(data_type: &DataType) -> bool {
    match data_type {
        DataType::Union(..) => true,
        DataType::Struct(fields) => fields.iter().any(|f| has_union(f.data_type())),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::FixedSizeList(f, _)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::Map(f, _) => has_union(f.data_type()),
        DataType::Dictionary(_, value) => has_union(value),
        DataType::RunEndEncoded(_, values) => has_union(values.data_type()),
        _ => false,
    }
}

/// The fields with the one at `path` made `Timestamp(Millisecond, "UTC")`,
/// keeping its name, nullability and metadata.
fn retype(fields: &[FieldRef], path: &[&str]) -> Result<Vec<FieldRef>, String> {
    let Some((name, rest)) = path.split_first() else {
        return Err("empty path".into());
    };
    let Some(i) = fields.iter().position(|f| f.name() == name) else {
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        return Err(format!("no field '{name}' among {names:?}"));
    };
    let field = &fields[i];
    let data_type = match (field.data_type(), rest.is_empty()) {
        (DataType::Int64 | DataType::Utf8 | DataType::LargeUtf8, true) => {
            DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
        }
        (DataType::Timestamp(..), true) => field.data_type().clone(),
        (DataType::Struct(children), false) => {
            let children: Vec<FieldRef> = children.iter().cloned().collect();
            DataType::Struct(retype(&children, rest)?.into())
        }
        (other, true) => {
            return Err(format!(
                "'{name}' is {other}, not an i64 of epoch milliseconds or an RFC 3339 string"
            ));
        }
        (other, false) => return Err(format!("'{name}' is {other}, not a struct")),
    };
    let mut out = fields.to_vec();
    out[i] = Arc::new(
        Field::new(field.name(), data_type, field.is_nullable())
            .with_metadata(field.metadata().clone()),
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Inner {
        at: Option<i64>,
        label: String,
    }

    #[derive(serde::Deserialize)]
    #[allow(dead_code)]
    struct Outer {
        ts: i64,
        inner: Inner,
        tags: Vec<String>,
    }

    fn traced(timestamps: &[&str]) -> Result<SchemaRef> {
        let source = SchemaSource::Traced {
            tracer: tracer::<Outer>(),
            options: default_tracing_options(),
        };
        let paths: Vec<String> = timestamps.iter().map(|s| s.to_string()).collect();
        resolve(&source, &paths, "Outer")
    }

    #[test]
    fn traced_types_are_plain_and_timestamps_keep_nullability() {
        let schema = traced(&["ts", "inner.at"]).expect("schema");
        let ts = DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()));
        assert_eq!(schema.field(0).data_type(), &ts);
        assert!(!schema.field(0).is_nullable());
        let DataType::Struct(inner) = schema.field(1).data_type() else {
            panic!("not a struct: {}", schema.field(1));
        };
        assert_eq!(inner[0].data_type(), &ts);
        assert!(inner[0].is_nullable());
        assert_eq!(inner[1].data_type(), &DataType::Utf8);
        assert!(matches!(schema.field(2).data_type(), DataType::List(_)));
    }

    #[test]
    fn bad_timestamp_paths_are_config_errors_naming_them() {
        for (path, says) in [
            ("nope", "no field 'nope'"),
            ("inner.label.x", "not a struct"),
            ("tags", "not an i64"),
            ("inner", "not an i64"),
        ] {
            let err = traced(&[path]).expect_err(path);
            let Error::Config(text) = &err else {
                panic!("not a config error: {err}");
            };
            assert!(text.contains(&format!("'{path}'")), "{text}");
            assert!(text.contains(says), "{text}");
        }
    }

    #[test]
    fn a_type_that_is_not_a_struct_cannot_be_traced() {
        let source = SchemaSource::Traced {
            tracer: tracer::<u32>(),
            options: default_tracing_options(),
        };
        let err = resolve(&source, &[], "u32").expect_err("not a struct");
        assert!(err.to_string().contains("parquet sink for u32"), "{err}");
    }

    #[test]
    fn a_schema_parquet_cannot_store_is_refused() {
        let empty = Field::new("empty", DataType::Struct(Fields::empty()), false);
        let err = resolve(&SchemaSource::Given(vec![empty].into()), &[], "X").expect_err("x");
        assert!(err.to_string().contains("Parquet cannot store"), "{err}");
    }
}
