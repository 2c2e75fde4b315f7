//! Tests of the Parquet sink: what jobs write and read back, rolling,
//! partitioning, file names, compression and errors.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{Array, TimestampMillisecondArray};
use arrow::datatypes::{DataType, Field, TimeUnit};
use brook_core::{
    Batch, BoxedSourceStream, Dataflow, Error, Result, Sink, SinkWriter, Source, SourceContext,
    SourceEvent,
};
use futures::{StreamExt, stream};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;
use parquet::file::metadata::ParquetMetaData;
use parquet::file::properties::WriterProperties;
use serde::{Deserialize, Serialize};

use crate::ParquetSink;
use brook_connectors::testing::{io_error, open_writer, run_into, untimed};

mod partitioning;
mod replace;
mod rolling;

const DAY_MS: i64 = 86_400_000;
/// 2023-11-14T22:13:20Z.
const T0: i64 = 1_700_000_000_000;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
enum Level {
    Info,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Latency {
    p50: f64,
    p99: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Stat {
    n: u32,
    window_start: i64,
    service: String,
    level: Level,
    latency: Latency,
    note: Option<String>,
    tags: Vec<String>,
}

/// Stats over three days and four services, with every kind of field.
fn stats(count: u32) -> Vec<Stat> {
    (0..count)
        .map(|n| Stat {
            n,
            window_start: T0 + i64::from(n % 3) * DAY_MS + i64::from(n) * 1000,
            service: format!("svc-{:02}", n % 4),
            level: [Level::Info, Level::Warn, Level::Error][n as usize % 3],
            latency: Latency {
                p50: f64::from(n) / 4.0,
                p99: (n % 5 != 0).then(|| f64::from(n) * 2.5),
            },
            note: (n % 3 == 0).then(|| format!("note ünï {n}")),
            tags: (0..n % 4).map(|t| format!("t{t}")).collect(),
        })
        .collect()
}

fn sorted(mut stats: Vec<Stat>) -> Vec<Stat> {
    stats.sort_by_key(|s| s.n);
    stats
}

/// Every file below `dir`, as paths relative to it, sorted; none may be
/// left in progress.
fn files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("read dir") {
            let path = entry.expect("entry").path();
            if path.ends_with(brook_connectors::output::LOCK_FILE) {
                continue;
            }
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let rel = path.strip_prefix(base).expect("below");
                out.push(rel.to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The files below `dir`, asserting that none is still in progress.
fn published(dir: &Path) -> Vec<String> {
    let names = files(dir);
    assert!(
        names.iter().all(|n| !n.contains(".inprogress")),
        "left in progress: {names:?}"
    );
    names
}

/// The file name of a published part: `part-<ms>-<6 hex>-<i>-<5 digits>`.
fn part_name(path: &str) -> (String, usize, u64) {
    let name = path.rsplit('/').next().expect("name");
    let rest = name
        .strip_prefix("part-")
        .and_then(|r| r.strip_suffix(".parquet"))
        .unwrap_or_else(|| panic!("not a part name: {name}"));
    let parts: Vec<&str> = rest.split('-').collect();
    assert_eq!(parts.len(), 4, "{name}");
    assert!(parts[0].len() >= 13 && parts[0].bytes().all(|b| b.is_ascii_digit()));
    assert!(parts[1].len() == 6 && parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(parts[3].len(), 5, "{name}");
    let run = format!("{}-{}", parts[0], parts[1]);
    (
        run,
        parts[2].parse().expect("i"),
        parts[3].parse().expect("seq"),
    )
}

/// A Parquet file read back: its values, Arrow batches and metadata.
struct Read<T> {
    values: Vec<T>,
    batches: Vec<arrow::record_batch::RecordBatch>,
    meta: Arc<ParquetMetaData>,
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Read<T> {
    let file = File::open(path).expect("open parquet");
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).expect("a parquet file");
    let meta = builder.metadata().clone();
    let batches: Vec<_> = builder
        .build()
        .expect("reader")
        .map(|b| b.expect("batch"))
        .collect();
    let values = batches
        .iter()
        .flat_map(|b| serde_arrow::from_record_batch::<Vec<T>>(b).expect("values"))
        .collect();
    Read {
        values,
        batches,
        meta,
    }
}

/// Every stat below `dir`, by file.
fn read_all(dir: &Path) -> Vec<(String, Read<Stat>)> {
    published(dir)
        .into_iter()
        .map(|name| {
            let r = read(&dir.join(&name));
            (name, r)
        })
        .collect()
}

/// Runs `values` into `sink` (node `parquet`) at parallelism `p`.
async fn run<T, S>(values: Vec<T>, sink: S, p: usize) -> Result<()>
where
    T: Clone + Send + 'static,
    S: Sink<T>,
{
    run_into(values, sink, "parquet", p).await
}

fn codecs(meta: &ParquetMetaData) -> Vec<Compression> {
    meta.row_groups()
        .iter()
        .flat_map(|g| g.columns().iter().map(|c| c.compression()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_read_back_equal_with_a_timestamp_column_and_zstd() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = stats(1000);
    let sink = ParquetSink::<Stat>::new(tmp.path()).timestamp_millis("window_start");
    run(input.clone(), sink, 1).await.expect("run");
    let mut all = read_all(tmp.path());
    assert_eq!(all.len(), 1);
    let (name, r) = all.remove(0);
    let (_, instance, seq) = part_name(&name);
    assert_eq!((instance, seq), (0, 0));
    assert_eq!(r.values, input);
    // The time column is a real Parquet timestamp, in UTC milliseconds.
    let schema = r.batches[0].schema();
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    assert_eq!(
        schema
            .field_with_name("window_start")
            .expect("f")
            .data_type(),
        &ts
    );
    let times: Vec<i64> = r
        .batches
        .iter()
        .flat_map(|b| {
            let col = b.column_by_name("window_start").expect("column");
            let col = col.as_any().downcast_ref::<TimestampMillisecondArray>();
            col.expect("timestamps").values().to_vec()
        })
        .collect();
    let expected: Vec<i64> = input.iter().map(|s| s.window_start).collect();
    assert_eq!(times, expected);
    let kind = |c| {
        schema
            .field_with_name(c)
            .expect("field")
            .data_type()
            .clone()
    };
    assert!(matches!(kind("latency"), DataType::Struct(f) if f.len() == 2));
    assert!(matches!(kind("tags"), DataType::List(_)));
    assert!(matches!(kind("level"), DataType::Dictionary(..)));
    assert_eq!(kind("note"), DataType::Utf8);
    assert!(schema.field_with_name("note").expect("note").is_nullable());
    let column = r.meta.file_metadata().schema_descr().column(1);
    let parquet_type = column.logical_type_ref();
    assert!(
        matches!(
            parquet_type,
            Some(parquet::basic::LogicalType::Timestamp { .. })
        ),
        "{parquet_type:?}"
    );
    // zstd by default, on every column.
    let codecs = codecs(&r.meta);
    assert!(codecs.len() >= 8, "{codecs:?}");
    assert!(
        codecs.iter().all(|c| matches!(c, Compression::ZSTD(_))),
        "{codecs:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snappy_row_groups_and_writer_properties_are_honoured() {
    let input = stats(1000);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (snappy, props) = (tmp.path().join("snappy"), tmp.path().join("props"));
    let sink = ParquetSink::<Stat>::new(&snappy)
        .compression(Compression::SNAPPY)
        .max_row_group_size(300);
    run(input.clone(), sink, 1).await.expect("run");
    let (_, r) = read_all(&snappy).remove(0);
    assert!(codecs(&r.meta).iter().all(|c| *c == Compression::SNAPPY));
    let rows: Vec<i64> = r.meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(rows, [300, 300, 300, 100]);
    assert_eq!(r.values, input);

    let properties = WriterProperties::builder()
        .set_compression(Compression::UNCOMPRESSED)
        .build();
    // The properties win over compression, whatever the order.
    let sink = ParquetSink::<Stat>::new(&props)
        .writer_properties(properties)
        .compression(Compression::SNAPPY);
    run(input.clone(), sink, 1).await.expect("run");
    let (_, r) = read_all(&props).remove(0);
    assert!(
        codecs(&r.meta)
            .iter()
            .all(|c| *c == Compression::UNCOMPRESSED)
    );
    assert_eq!(r.values, input);
}

#[test]
fn the_sink_is_send_and_sync_and_its_writer_send() {
    fn send_sync<T: Send + Sync>() {}
    fn send<T: Send>() {}
    send_sync::<ParquetSink<Stat>>();
    send::<super::ParquetSinkWriter<Stat>>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_and_runs_write_distinct_files() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = stats(500);
    run(input.clone(), ParquetSink::<Stat>::new(tmp.path()), 2)
        .await
        .expect("run");
    let first = published(tmp.path());
    let parts: Vec<(String, usize, u64)> = first.iter().map(|n| part_name(n)).collect();
    assert_eq!(parts.len(), 2, "{first:?}");
    assert_eq!(parts[0].0, parts[1].0, "one run");
    assert_eq!((parts[0].1, parts[1].1), (0, 1));
    let values = read_all(tmp.path())
        .into_iter()
        .flat_map(|(_, r)| r.values)
        .collect();
    assert_eq!(sorted(values), input);
    // A second run adds its own files and overwrites nothing.
    run(input.clone(), ParquetSink::<Stat>::new(tmp.path()), 2)
        .await
        .expect("run");
    let all = published(tmp.path());
    assert_eq!(all.len(), 4, "{all:?}");
    assert!(first.iter().all(|n| all.contains(n)));
    let runs: std::collections::BTreeSet<String> = all.iter().map(|n| part_name(n).0).collect();
    assert_eq!(runs.len(), 2);
    let count: usize = read_all(tmp.path())
        .iter()
        .map(|(_, r)| r.values.len())
        .sum();
    assert_eq!(count, 1000);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Event {
    at: i64,
    seen: String,
    user: Option<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_explicit_schema_with_timestamps_over_integers_and_strings() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let ts = DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into()));
    let fields = vec![
        Field::new("at", ts.clone(), false),
        Field::new("seen", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, true),
    ];
    let input = vec![
        Event {
            at: T0,
            seen: "2023-11-14T22:13:20Z".into(),
            user: Some("ann".into()),
        },
        Event {
            at: T0 + 1,
            seen: "2023-11-14T22:13:20.001Z".into(),
            user: None,
        },
    ];
    let sink = ParquetSink::<Event>::with_schema(tmp.path(), fields).timestamp_millis("seen");
    run(input.clone(), sink, 1).await.expect("run");
    let name = published(tmp.path()).remove(0);
    let r = read::<Event>(&tmp.path().join(name));
    let values = r.values;
    let schema = r.batches[0].schema();
    assert_eq!(schema.field(0).data_type(), &ts);
    assert_eq!(schema.field(1).data_type(), &ts);
    let col = r.batches[0].column(1);
    let seen = col
        .as_any()
        .downcast_ref::<TimestampMillisecondArray>()
        .expect("timestamps");
    assert_eq!(seen.values().to_vec(), [T0, T0 + 1]);
    assert_eq!(
        values.iter().map(|e| e.at).collect::<Vec<_>>(),
        [T0, T0 + 1]
    );
    assert_eq!(
        values.iter().map(|e| e.user.clone()).collect::<Vec<_>>(),
        [Some("ann".into()), None]
    );
    assert!(
        values[0].seen.starts_with("2023-11-14T22:13:20"),
        "{}",
        values[0].seen
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_a_file_fails_naming_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    for dir in [file.clone(), file.join("sub")] {
        // Refused by build(), before anything is written.
        let err = run(stats(3), ParquetSink::<Stat>::new(&dir), 2)
            .await
            .expect_err("fails");
        let text = err.to_string();
        assert!(text.contains(&*dir.to_string_lossy()), "{text}");
        assert!(text.contains("node 'parquet'"), "{text}");
    }
    // A partition directory that is a file fails the write naming it.
    let out = tmp.path().join("out");
    std::fs::create_dir_all(&out).expect("mkdir");
    std::fs::write(out.join("service=svc-00"), "x").expect("write");
    let sink =
        ParquetSink::<Stat>::new(&out).partition_by_field("service", |s: &Stat| s.service.clone());
    let err = run(stats(3), sink, 1).await.expect_err("fails");
    let text = io_error(&err);
    let dir: PathBuf = out.join("service=svc-00");
    assert!(
        text.contains(&format!("creating directory {}", dir.display())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_schemas_and_settings_fail_at_start_and_bad_values_name_their_row() {
    #[derive(Clone, Serialize, Deserialize)]
    enum Shape {
        Circle(f64),
        Square { side: f64 },
    }
    #[derive(Clone, Serialize, Deserialize)]
    struct Drawing {
        shape: Shape,
    }
    let tmp = tempfile::tempdir().expect("tempdir");
    let drawing = vec![
        Drawing {
            shape: Shape::Circle(1.0),
        },
        Drawing {
            shape: Shape::Square { side: 2.0 },
        },
    ];
    let err = run(drawing, ParquetSink::<Drawing>::new(tmp.path()), 1)
        .await
        .expect_err("union");
    assert!(matches!(err.root(), Error::Config(_)), "{err}");
    assert!(err.to_string().contains("Drawing"), "{err}");
    for sink in [
        ParquetSink::<Stat>::new(tmp.path()).max_rows_per_file(0),
        ParquetSink::<Stat>::new(tmp.path()).rollover_interval(Duration::ZERO),
        ParquetSink::<Stat>::new(tmp.path()).partition_by_field("../x", |s: &Stat| s.n),
        ParquetSink::<Stat>::new(tmp.path()).timestamp_millis("service.x"),
    ] {
        let err = run(stats(3), sink, 1).await.expect_err("config");
        assert!(matches!(err.root(), Error::Config(_)), "{err}");
    }
    assert!(files(tmp.path()).is_empty(), "nothing written");
    // A None in a field the schema says cannot be null.
    let fields = vec![
        Field::new("at", DataType::Int64, false),
        Field::new("seen", DataType::Utf8, false),
        Field::new("user", DataType::Utf8, false),
    ];
    let events = vec![
        Event {
            at: 1,
            seen: "x".into(),
            user: Some("a".into()),
        },
        Event {
            at: 2,
            seen: "y".into(),
            user: None,
        },
    ];
    let err = run(
        events,
        ParquetSink::<Event>::with_schema(tmp.path(), fields),
        1,
    )
    .await
    .expect_err("null");
    let Error::BadRecord { location, .. } = err.root() else {
        panic!("not a bad record: {err}");
    };
    assert!(location.ends_with(".parquet row 2"), "{location}");
    assert!(
        location.starts_with(&*tmp.path().join("part-").to_string_lossy()),
        "{location}"
    );
}
