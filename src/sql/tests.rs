use std::path::Path;
use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;

use super::*;

/// Writes `(service, count, latency)` rows as one Parquet file at `path`.
fn write_parquet(path: &Path, rows: &[(&str, i64, f64)]) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("count", DataType::Int64, false),
        Field::new("latency", DataType::Float64, false),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.2))),
        ],
    )
    .expect("batch");
    std::fs::create_dir_all(path.parent().expect("parent")).expect("dir");
    let file = std::fs::File::create(path).expect("file");
    let mut writer = ArrowWriter::try_new(file, schema, None).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
}

/// Runs `fut` on a two-worker runtime; a query that hangs fails the test
/// after a minute instead of hanging it.
fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), fut)
                .await
                .expect("a query hung")
        })
}

/// An engine with the Parquet files under `dir` registered as `name`.
async fn engine_over(name: &str, dir: &Path) -> SqlEngine {
    let engine = SqlEngine::new().expect("engine");
    engine.register_parquet(name, dir).await.expect("register");
    engine
}

/// The result of `sql` as CSV.
async fn csv(engine: &SqlEngine, sql: &str) -> String {
    let result = engine.query(sql).await.expect("query");
    result.format(OutputFormat::Csv).expect("csv")
}

#[test]
fn queries_a_directory_and_skips_hidden_and_other_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_parquet(
        &dir.path().join("part-0.parquet"),
        &[("a", 1, 10.0), ("b", 2, 20.0)],
    );
    write_parquet(&dir.path().join("part-1.parquet"), &[("a", 3, 30.0)]);
    // A sink's in-progress file: a partial file that must never be read.
    std::fs::write(
        dir.path().join(".part-2.parquet.inprogress"),
        b"PAR1 partial",
    )
    .expect("write");
    std::fs::write(dir.path().join("_SUCCESS"), b"").expect("write");
    block_on(async {
        let engine = engine_over("stats", dir.path()).await;
        let result = engine
            .query("SELECT service, sum(count) AS n, max(latency) AS worst FROM stats GROUP BY service ORDER BY service")
            .await
            .expect("query");
        assert_eq!(result.num_rows(), 2);
        assert_eq!(
            result.format(OutputFormat::Csv).expect("csv"),
            "service,n,worst\na,4,30.0\nb,2,20.0\n"
        );
        assert_eq!(engine.tables(), vec!["stats".to_string()]);
    });
}

#[test]
fn hive_partition_directories_become_columns() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_parquet(
        &dir.path().join("region=eu/part-0.parquet"),
        &[("a", 1, 1.0)],
    );
    write_parquet(
        &dir.path().join("region=us/part-0.parquet"),
        &[("a", 2, 2.0), ("b", 5, 3.0)],
    );
    block_on(async {
        let engine = engine_over("t", dir.path()).await;
        assert_eq!(
            csv(
                &engine,
                "SELECT region, sum(count) AS n FROM t GROUP BY region ORDER BY region"
            )
            .await,
            "region,n\neu,1\nus,7\n"
        );
    });
}

#[test]
fn formats_table_csv_json_and_json_lines() {
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let result = engine
            .query("SELECT * FROM (VALUES (1, 'x'), (22, NULL)) AS t(n, s)")
            .await
            .expect("query");
        let table = result.format(OutputFormat::Table).expect("table");
        assert_eq!(
            table,
            "+----+---+\n| n  | s |\n+----+---+\n| 1  | x |\n| 22 |   |\n+----+---+"
        );
        assert_eq!(
            result.format(OutputFormat::Csv).expect("csv"),
            "n,s\n1,x\n22,\n"
        );
        assert_eq!(
            result.format(OutputFormat::Json).expect("json"),
            "[{\"n\":1,\"s\":\"x\"},{\"n\":22}]\n"
        );
        assert_eq!(
            result.format(OutputFormat::Ndjson).expect("ndjson"),
            "{\"n\":1,\"s\":\"x\"}\n{\"n\":22}\n"
        );

        let empty = engine
            .query("SELECT 1 AS one WHERE false")
            .await
            .expect("query");
        assert_eq!(empty.num_rows(), 0);
        assert_eq!(empty.format(OutputFormat::Csv).expect("csv"), "one\n");
        assert_eq!(empty.format(OutputFormat::Json).expect("json"), "[]\n");
        assert!(
            empty
                .format(OutputFormat::Table)
                .expect("table")
                .contains("| one |")
        );
    });
}

#[test]
fn refuses_everything_but_queries() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_parquet(&dir.path().join("part-0.parquet"), &[("a", 1, 1.0)]);
    let copied = dir.path().join("copied.csv");
    block_on(async {
        let engine = engine_over("stats", dir.path()).await;
        let statements = [
            "CREATE TABLE t (a INT)".to_string(),
            "CREATE TABLE t AS SELECT * FROM stats".to_string(),
            format!(
                "CREATE EXTERNAL TABLE e STORED AS PARQUET LOCATION '{}'",
                dir.path().display()
            ),
            "CREATE VIEW v AS SELECT 1".to_string(),
            "DROP TABLE stats".to_string(),
            "INSERT INTO stats VALUES ('z', 9, 9.0)".to_string(),
            format!("COPY (SELECT * FROM stats) TO '{}'", copied.display()),
            "SET datafusion.execution.batch_size = 1".to_string(),
            "EXPLAIN INSERT INTO stats VALUES ('z', 9, 9.0)".to_string(),
        ];
        for sql in &statements {
            match engine.query(sql).await {
                Err(SqlError::Refused { reason }) => {
                    let message = SqlError::Refused { reason }.to_string();
                    assert!(
                        message.starts_with("only queries run here"),
                        "{sql}: {message}"
                    );
                }
                other => panic!("{sql}: expected a refusal, got {other:?}"),
            }
        }
        assert!(!copied.exists(), "COPY wrote a file");
        assert_eq!(engine.tables(), vec!["stats".to_string()]);
        // The table is still there and unchanged.
        assert_eq!(
            csv(&engine, "SELECT count(*) AS n FROM stats").await,
            "n\n1\n"
        );
        // Queries of every read-only kind run.
        for sql in [
            "SHOW TABLES",
            "DESCRIBE stats",
            "EXPLAIN SELECT * FROM stats",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            engine
                .query(sql)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
        }
    });
}

#[test]
fn a_query_past_the_memory_limit_fails_with_a_clear_error() {
    block_on(async {
        let engine = SqlEngine::with_memory_limit(1 << 20).expect("engine");
        assert_eq!(engine.memory_limit(), 1 << 20);
        let err = engine
            .query("SELECT v % 1000000 AS k, array_agg(v) FROM generate_series(1, 3000000) AS t(v) GROUP BY k")
            .await
            .expect_err("over the limit");
        assert!(err.to_string().contains("Resources exhausted"), "{err}");
        // The same query fits in the default limit.
        let engine = SqlEngine::new().expect("engine");
        assert_eq!(csv(&engine, "SELECT count(*) AS n FROM (SELECT v % 1000 AS k, count(*) FROM generate_series(1, 3000000) AS t(v) GROUP BY k)").await, "n\n1000\n");
    });
}

#[test]
fn registering_checks_names_and_directories() {
    let dir = tempfile::tempdir().expect("tempdir");
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let missing = dir.path().join("missing");
        let err = engine
            .register_parquet("t", &missing)
            .await
            .expect_err("missing");
        assert!(matches!(err, SqlError::Directory { .. }), "{err:?}");
        assert!(err.to_string().contains("missing"), "{err}");

        let err = engine
            .register_parquet("t", dir.path())
            .await
            .expect_err("empty");
        assert!(
            err.to_string().contains("no Parquet file there yet"),
            "{err}"
        );

        write_parquet(&dir.path().join("part-0.parquet"), &[("a", 1, 1.0)]);
        for bad in ["", "Stats", "1st", "a-b", "a b"] {
            let err = engine
                .register_parquet(bad, dir.path())
                .await
                .expect_err(bad);
            assert!(matches!(err, SqlError::Table { .. }), "{bad}: {err:?}");
        }
        engine
            .register_parquet("t", dir.path())
            .await
            .expect("register");
        let err = engine
            .register_parquet("t", dir.path())
            .await
            .expect_err("taken");
        assert!(err.to_string().contains("already registered"), "{err}");
    });
}

#[test]
fn table_specs_parse() {
    let spec: TableSpec = "stats=brook-out/stats".parse().expect("spec");
    assert_eq!(spec.name, "stats");
    assert_eq!(spec.path, Path::new("brook-out/stats"));
    assert!("stats".parse::<TableSpec>().is_err());
    assert!("=dir".parse::<TableSpec>().is_err());
    assert!("t=".parse::<TableSpec>().is_err());
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
enum Level {
    Info,
    Error,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Latest {
    service: String,
    level: Level,
    window_start: i64,
    count: u64,
    note: Option<String>,
}

#[test]
fn a_live_table_serves_the_latest_row_per_key() {
    use brook_core::{Batch, Sink, SinkContext, SinkWriter};

    let row = |service: &str, level, window_start, count| Latest {
        service: service.to_string(),
        level,
        window_start,
        count,
        note: (count > 2).then(|| "busy".to_string()),
    };
    block_on(async {
        let mut sink =
            LiveTableSink::new(|r: &Latest| (r.service.clone(), r.level.clone())).expect("sink");
        let table = sink.table();
        let engine = SqlEngine::new().expect("engine");
        engine.register_live("latest", &table).expect("register");
        let query =
            "SELECT service, level, window_start, count, note FROM latest ORDER BY service, level";

        let empty = engine.query(query).await.expect("query");
        assert_eq!(empty.num_rows(), 0);

        let mut writer = sink
            .open(&SinkContext::standalone("live", 0, 1))
            .expect("open");
        let mut batch = Batch::new();
        batch.push(0, row("a", Level::Info, 0, 1));
        batch.push(0, row("a", Level::Error, 0, 2));
        batch.push(0, row("b", Level::Info, 0, 5));
        writer.write(batch).await.expect("write");
        assert_eq!(
            csv(&engine, query).await,
            "service,level,window_start,count,note\na,Error,0,2,\na,Info,0,1,\nb,Info,0,5,busy\n"
        );

        // A later window of the same key replaces the row.
        let mut batch = Batch::new();
        batch.push(0, row("a", Level::Info, 10_000, 7));
        writer.write(batch).await.expect("write");
        assert_eq!(
            csv(&engine, query).await,
            "service,level,window_start,count,note\na,Error,0,2,\na,Info,10000,7,busy\nb,Info,0,5,busy\n"
        );
        assert_eq!(table.len(), 3);
        assert_eq!(table.schema().field(0).data_type(), &DataType::Utf8);
        assert_eq!(
            table.schema().field(1).data_type(),
            &DataType::Dictionary(Box::new(DataType::UInt32), Box::new(DataType::Utf8))
        );
    });
}

#[test]
fn a_long_table_is_written_in_aligned_chunks_under_one_header() {
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let mut rows = engine
            .query_stream("SELECT value AS n FROM generate_series(1, 10000) AS t(value)")
            .await
            .expect("query");
        let mut writer = ResultWriter::new(Vec::new(), rows.schema(), OutputFormat::Table);
        while let Some(batch) = rows.next_batch().await {
            writer.write(&batch.expect("batch")).expect("write");
        }
        assert_eq!(writer.rows(), 10_000);
        let text = String::from_utf8(writer.finish().expect("finish")).expect("utf-8");
        let lines: Vec<&str> = text.lines().collect();
        // Top rule, header, rule, the rows, closing rule: nothing repeated.
        // The first chunk is aligned for 4-digit numbers, the last for 5.
        assert_eq!(lines.len(), 10_000 + 4, "{}", &text[..200]);
        assert_eq!(lines[1], "| n    |");
        assert_eq!(lines[3], "| 1    |");
        assert_eq!(lines[10_002], "| 10000 |");
        assert_eq!(lines.iter().filter(|l| l.starts_with('+')).count(), 3);
        assert!(text.ends_with("+-------+\n"));
    });
}

#[test]
fn csv_json_and_json_lines_stream_across_batches() {
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let sql = "SELECT value AS n FROM generate_series(1, 20000) AS t(value)";
        for format in [OutputFormat::Csv, OutputFormat::Json, OutputFormat::Ndjson] {
            let mut rows = engine.query_stream(sql).await.expect("query");
            let mut writer = ResultWriter::new(Vec::new(), rows.schema(), format);
            let mut batches = 0;
            while let Some(batch) = rows.next_batch().await {
                writer.write(&batch.expect("batch")).expect("write");
                batches += 1;
            }
            assert!(batches > 1, "{format:?}: one batch only");
            let text = String::from_utf8(writer.finish().expect("finish")).expect("utf-8");
            // The same text as the whole result formatted at once.
            let whole = engine.query(sql).await.expect("query");
            assert_eq!(text, whole.format(format).expect("format"), "{format:?}");
            match format {
                OutputFormat::Csv => assert_eq!(text.lines().count(), 20_001),
                OutputFormat::Json => {
                    let rows: serde_json::Value = serde_json::from_str(&text).expect("json");
                    assert_eq!(rows.as_array().map(Vec::len), Some(20_000));
                }
                _ => assert_eq!(text.lines().count(), 20_000),
            }
        }
    });
}

#[test]
fn collecting_a_result_larger_than_the_memory_limit_fails() {
    block_on(async {
        let engine = SqlEngine::with_memory_limit(1 << 20).expect("engine");
        let err = engine
            .query(
                "SELECT value, 'row ' || value AS s FROM generate_series(1, 1000000) AS t(value)",
            )
            .await
            .expect_err("over the limit");
        assert!(err.to_string().contains("Resources exhausted"), "{err}");
        // Streamed, the same result passes: no batch is held.
        let mut rows = engine
            .query_stream(
                "SELECT value, 'row ' || value AS s FROM generate_series(1, 1000000) AS t(value)",
            )
            .await
            .expect("query");
        let mut count = 0;
        while let Some(batch) = rows.next_batch().await {
            count += batch.expect("batch").num_rows();
        }
        assert_eq!(count, 1_000_000);
    });
}

#[test]
fn string_functions_are_capped_at_a_quarter_of_the_memory_limit() {
    block_on(async {
        let engine = SqlEngine::with_memory_limit(8 << 20).expect("engine");
        for sql in [
            "SELECT repeat('ab', 2000000)",
            "SELECT lpad('x', 1000000)",
            "SELECT rpad('x', 1000000, 'y')",
            "SELECT replace(repeat('x', 3000), 'x', repeat('y', 1000))",
            "SELECT regexp_replace(repeat('x', 1000), 'x', repeat('y', 3000), 'g')",
            // Per call, not per row: 1000 rows of 4 KB each.
            "SELECT repeat('abcd', 1000 + value % 2) FROM generate_series(1, 1000) AS t(value)",
        ] {
            let err = engine.query(sql).await.expect_err(sql);
            assert!(
                err.to_string().contains("a function may make"),
                "{sql}: {err}"
            );
        }
        // Below the cap they answer as the built-ins do, under their names.
        assert_eq!(
            csv(
                &engine,
                "SELECT repeat('ab', 3) AS r, lpad('7', 3, '0') AS l, rpad('a', 2) AS p, \
                 replace('aXbX', 'X', '-') AS c, regexp_replace('a1b22', '[0-9]+', '#', 'g') AS g"
            )
            .await,
            "r,l,p,c,g\nababab,007,a ,a-b-,a#b#\n"
        );
        let result = engine.query("SELECT repeat('x', 2)").await.expect("query");
        assert_eq!(
            result.schema.field(0).name(),
            "repeat(Utf8(\"x\"),Int64(2))"
        );
        assert_eq!(
            csv(
                &engine,
                "SELECT count(*) AS n FROM (SELECT repeat(CAST(value AS VARCHAR), 10) FROM generate_series(1, 100000) AS t(value))"
            )
            .await,
            "n\n100000\n"
        );
    });
}

#[test]
fn a_query_of_too_many_tokens_is_refused_before_it_is_parsed() {
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let terms = MAX_QUERY_TOKENS / 2 + 1;
        let sql = format!("SELECT {}", vec!["1"; terms].join("+"));
        match engine.query(&sql).await {
            Err(SqlError::TooLarge { tokens, limit }) => {
                assert_eq!(limit, MAX_QUERY_TOKENS);
                assert_eq!(tokens, 2 * terms);
            }
            other => panic!("expected TooLarge, got {other:?}"),
        }
        // Comments and whitespace do not count.
        let sql = format!("SELECT 1 -- {}\n", "x ".repeat(MAX_QUERY_TOKENS));
        assert_eq!(engine.query(&sql).await.expect("query").num_rows(), 1);
    });
}

#[test]
fn dropping_a_stream_cancels_its_query_and_the_engine_goes_on() {
    block_on(async {
        let engine = SqlEngine::new()
            .expect("engine")
            .with_timeout(Some(std::time::Duration::from_secs(20)));
        let mut rows = engine
            .query_stream("SELECT value FROM generate_series(1, 1000000000000) AS t(value)")
            .await
            .expect("query");
        assert!(rows.next_batch().await.expect("a batch").is_ok());
        drop(rows);
        assert_eq!(csv(&engine, "SELECT 1 AS one").await, "one\n1\n");
        assert_eq!(engine.timeout(), Some(std::time::Duration::from_secs(20)));
        assert_eq!(
            SqlEngine::new().expect("engine").timeout(),
            Some(DEFAULT_TIMEOUT)
        );
    });
}

#[test]
fn footers_are_checked_before_parquet_reads_them() {
    use super::committed::footer_problem;
    let tail = |len: u32, magic: &[u8; 4]| {
        let mut t = len.to_le_bytes().to_vec();
        t.extend_from_slice(magic);
        t
    };
    assert!(footer_problem(100, &tail(10, b"PAR1")).is_none());
    assert!(footer_problem(100, &tail(88, b"PAR1")).is_none());
    let too_long = footer_problem(100, &tail(89, b"PAR1")).expect("a problem");
    assert!(too_long.contains("claims 89 bytes"), "{too_long}");
    assert!(footer_problem(100, &tail(u32::MAX, b"PAR1")).is_some());
    assert!(footer_problem(100, &tail(10, b"PARE")).is_some());
    assert!(footer_problem(8, b"PAR1PAR1").is_some());
    assert!(footer_problem(0, &[]).is_some());
}

#[test]
fn a_truncated_file_is_named_when_registered_and_when_queried() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = dir.path().join("part-0.parquet");
    write_parquet(&good, &[("a", 1, 1.0)]);
    let bytes = std::fs::read(&good).expect("read");
    block_on(async {
        let engine = engine_over("stats", dir.path()).await;
        // Cut after registering: the query names the file.
        std::fs::write(&good, &bytes[..bytes.len() - 3]).expect("write");
        let err = engine
            .query("SELECT count(*) FROM stats")
            .await
            .expect_err("truncated");
        assert!(
            matches!(&err, SqlError::BadFile { table, .. } if table == "stats"),
            "{err:?}"
        );
        assert!(err.to_string().contains("part-0.parquet"), "{err}");
        // And registering names it too.
        let err = engine
            .register_parquet("again", dir.path())
            .await
            .expect_err("truncated");
        assert!(err.to_string().contains("part-0.parquet"), "{err}");
    });
}
