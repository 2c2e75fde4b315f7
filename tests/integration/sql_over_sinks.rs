//! Parquet output and SQL over it: the logs-window job's Parquet files
//! against an oracle computed by DataFusion from the input, readers while
//! files roll, live tables while a job runs, and `brook sql` as a process.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use brook::parquet::ParquetSink;
use brook::prelude::*;
use brook::sql::{LiveTableSink, OutputFormat, SqlEngine};
use brook_workload::generator::{GeneratedLog, LogGenerator};
use brook_workload::logs::{self, LogEvent, WindowStats};

use crate::logs_window::fixture;
use crate::support::{block_on, config};

/// Runs the logs-window query over `source` into a Parquet sink in `out`.
fn run_to_parquet<S: Source<LogEvent>>(source: S, parallelism: usize, out: &Path) {
    let flow = Dataflow::with_config("logs-window", config(parallelism));
    let events = flow.source("logs", source);
    logs::window_stats(&events).sink("parquet", ParquetSink::<WindowStats>::new(out));
    let job = flow.build().expect("plan");
    block_on(job.run(CancellationToken::new())).expect("job");
}

/// The workload's oracle (DataFusion SQL over the JSON-lines input) against
/// what the job wrote: returns (rows written, rows of the oracle, rows that
/// differ or exist on one side only).
fn compare_with_oracle(events: &Path, out: &Path) -> (i64, i64, i64) {
    let c = block_on(brook_workload::oracle::compare(events, out)).expect("compare");
    (c.written, c.expected, c.differing)
}

#[test]
fn parquet_output_equals_a_datafusion_oracle_over_the_input() {
    let input = fixture("logs_3k.jsonl");
    for parallelism in [1, 2, 4] {
        let dir = tempfile::tempdir().expect("tempdir");
        run_to_parquet(
            JsonLinesSource::<LogEvent>::new(&input),
            parallelism,
            dir.path(),
        );
        let (written, expected, differing) = compare_with_oracle(&input, dir.path());
        assert_eq!(expected, 259, "the fixture's answer has 259 rows");
        assert_eq!(written, expected, "parallelism {parallelism}");
        assert_eq!(differing, 0, "parallelism {parallelism}");
        assert_no_in_progress_files(dir.path());
    }
}

#[test]
fn generated_logs_through_parquet_equal_the_oracle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let generator = LogGenerator::new(120_000, 7);
    // The same events as a file, for the oracle.
    let input = dir.path().join("events.jsonl");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&input).expect("create"));
    for event in generator.iter() {
        writeln!(file, "{}", event.to_json_line()).expect("write");
    }
    file.flush().expect("flush");
    drop(file);

    let out = dir.path().join("stats");
    let flow = Dataflow::with_config("generated", config(2));
    let events = flow.source("logs", generator).map("event", LogEvent::from);
    logs::window_stats(&events).sink("parquet", ParquetSink::<WindowStats>::new(&out));
    block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("job");

    let (written, expected, differing) = compare_with_oracle(&input, &out);
    assert!(
        expected > 150,
        "12 s of event time: two windows of up to 150 keys"
    );
    assert_eq!(written, expected);
    assert_eq!(differing, 0);
}

fn assert_no_in_progress_files(dir: &Path) {
    for entry in walk(dir) {
        let name = entry
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            !name.ends_with(".inprogress"),
            "left in progress: {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// While a job writes many small rolling files, readers list the directory
/// and read every visible Parquet file in full, and query it with SQL:
/// nothing they see is ever partial, and the row count only grows.
#[test]
fn readers_never_see_a_partial_file_while_the_job_runs() {
    const EVENTS: u64 = 200_000;
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("raw");
    let flow = Dataflow::with_config("raw", config(2));
    // The 20,000th event waits until the reader has read a file and run a
    // query, so that it does so while the job runs, however the threads
    // are scheduled (files have been published by then).
    let progressed = Arc::new(AtomicBool::new(false));
    let seen = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let gate = progressed.clone();
    flow.source("logs", LogGenerator::new(EVENTS, 3).batch_size(256))
        .map("gate", move |e: GeneratedLog| {
            if seen.fetch_add(1, Ordering::Relaxed) == 20_000 {
                // Off the worker: the sink's task, queued behind this one,
                // publishes the files the reader waits for.
                tokio::task::block_in_place(|| {
                    let deadline = std::time::Instant::now() + Duration::from_secs(30);
                    while !gate.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
                        std::thread::sleep(Duration::from_millis(2));
                    }
                });
            }
            e
        })
        .sink(
            "parquet",
            ParquetSink::<GeneratedLog>::new(&out)
                .max_rows_per_file(2_000)
                .partition_by_field("level", |e: &GeneratedLog| e.level.as_str().to_string()),
        );
    let job = flow.build().expect("plan");

    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let out = out.clone();
        let done = done.clone();
        let progressed = progressed.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let (mut reads, mut queries, mut last_count) = (0u64, 0u64, 0i64);
            while !done.load(Ordering::Acquire) {
                for path in walk(&out) {
                    let name = path
                        .file_name()
                        .and_then(|n| n.to_str())
                        .unwrap_or_default();
                    if name.starts_with('.') {
                        continue;
                    }
                    assert!(
                        name.ends_with(".parquet"),
                        "unexpected file {}",
                        path.display()
                    );
                    let file = std::fs::File::open(&path).expect("open a listed file");
                    let rows: usize = datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                        .unwrap_or_else(|e| panic!("{} is not a whole Parquet file: {e}", path.display()))
                        .build()
                        .expect("reader")
                        .map(|batch| batch.expect("a readable batch").num_rows())
                        .sum();
                    assert!(rows > 0 && rows <= 2_000, "{}: {rows} rows", path.display());
                    reads += 1;
                }
                let count = rt.block_on(async {
                    let engine = SqlEngine::new().expect("engine");
                    if engine.register_parquet("raw", &out).await.is_err() {
                        return None; // no file published yet
                    }
                    let result = engine
                        .query("SELECT count(*) AS n FROM raw")
                        .await
                        .expect("a query while files roll");
                    let csv = result.format(OutputFormat::Csv).expect("csv");
                    Some(
                        csv.lines()
                            .nth(1)
                            .expect("a row")
                            .parse::<i64>()
                            .expect("a count"),
                    )
                });
                if let Some(count) = count {
                    assert!(
                        count >= last_count,
                        "the row count went back: {last_count} -> {count}"
                    );
                    last_count = count;
                    queries += 1;
                }
                if reads > 0 && queries > 0 {
                    progressed.store(true, Ordering::Release);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            (reads, queries)
        })
    };
    let result = block_on(job.run(CancellationToken::new()));
    done.store(true, Ordering::Release);
    let (reads, queries) = reader.join().expect("the reader failed");
    result.expect("job");
    assert!(
        reads > 0 && queries > 0,
        "the reader read {reads} files and ran {queries} queries"
    );

    let total = block_on(async {
        let engine = SqlEngine::new().expect("engine");
        engine
            .register_parquet("raw", &out)
            .await
            .expect("register");
        let result = engine
            .query("SELECT level, count(*) AS n FROM raw GROUP BY level ORDER BY level")
            .await
            .expect("query");
        result.format(OutputFormat::Csv).expect("csv")
    });
    let sum: u64 = total
        .lines()
        .skip(1)
        .map(|l| {
            l.split(',')
                .nth(1)
                .and_then(|n| n.parse::<u64>().ok())
                .expect("count")
        })
        .sum();
    assert_eq!(sum, EVENTS, "{total}");
    assert_eq!(total.lines().count(), 5, "four level partitions: {total}");
    assert_no_in_progress_files(&out);
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Reading {
    sensor: String,
    value: f64,
}

/// A job following a file feeds a live table; SQL sees each new latest
/// value while the job keeps running.
#[test]
fn a_live_table_answers_while_the_job_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("readings.jsonl");
    std::fs::write(
        &input,
        "{\"sensor\":\"a\",\"value\":1.0}\n{\"sensor\":\"b\",\"value\":2.0}\n",
    )
    .expect("write");
    let live = LiveTableSink::new(|r: &Reading| r.sensor.clone()).expect("live table");
    let engine = SqlEngine::new().expect("engine");
    engine
        .register_live("latest", &live.table())
        .expect("register");

    let flow = Dataflow::with_config("live", config(1));
    flow.source(
        "readings",
        JsonLinesSource::<Reading>::new(&input)
            .follow(true)
            .poll_interval(Duration::from_millis(10)),
    )
    .sink("live", live);
    let job = flow.build().expect("plan");
    let stop = CancellationToken::new();

    let queries = async {
        let query = "SELECT sensor, value FROM latest ORDER BY sensor";
        let wait_for = |want: &'static str| {
            let engine = engine.clone();
            async move {
                loop {
                    let got = engine
                        .query(query)
                        .await
                        .expect("query")
                        .format(OutputFormat::Csv)
                        .expect("csv");
                    if got == want {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        wait_for("sensor,value\na,1.0\nb,2.0\n").await;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&input)
            .expect("open");
        file.write_all(b"{\"sensor\":\"a\",\"value\":5.5}\n{\"sensor\":\"c\",\"value\":0.5}\n")
            .expect("append");
        drop(file);
        wait_for("sensor,value\na,5.5\nb,2.0\nc,0.5\n").await;
        // The job only ends now: every answer above came while it ran.
        stop.cancel();
    };
    let (result, ()) = block_on(async { tokio::join!(job.run(stop.clone()), queries) });
    result.expect("job");
}

/// Writes the fixture's window results as Parquet for the CLI tests.
fn fixture_stats() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    run_to_parquet(
        JsonLinesSource::<LogEvent>::new(fixture("logs_3k.jsonl")),
        2,
        dir.path(),
    );
    dir
}

fn brook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brook"));
    command.env("HOME", std::env::temp_dir());
    command
}

#[test]
fn brook_sql_runs_a_query_and_prints_table_csv_and_json() {
    let stats = fixture_stats();
    let table = format!("stats={}", stats.path().display());
    let query = "SELECT service, sum(count_5xx) AS errors FROM stats GROUP BY service ORDER BY 2 DESC, 1 LIMIT 5";

    // The expected top five, from the sequential reference.
    let events: Vec<LogEvent> = std::fs::read_to_string(fixture("logs_3k.jsonl"))
        .expect("read")
        .lines()
        .map(|l| serde_json::from_str(l).expect("event"))
        .collect();
    let mut per_service = std::collections::BTreeMap::<String, u64>::new();
    for row in logs::window_stats_batch(&events) {
        *per_service.entry(row.service).or_default() += row.count_5xx;
    }
    let mut top: Vec<(String, u64)> = per_service.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    top.truncate(5);

    let output = brook()
        .args(["sql", "--table", &table, "--format", "csv", query])
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut want = String::from("service,errors\n");
    for (service, errors) in &top {
        want.push_str(&format!("{service},{errors}\n"));
    }
    assert_eq!(String::from_utf8_lossy(&output.stdout), want);

    let output = brook()
        .args(["sql", "-t", &table, query])
        .output()
        .expect("run");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5 + 4, "header, rules and five rows:\n{text}");
    assert!(
        lines[1].starts_with("| service") && lines[1].contains("| errors"),
        "{text}"
    );
    assert!(
        lines.iter().all(|l| l.len() == lines[0].len()),
        "aligned:\n{text}"
    );
    assert!(lines[3].starts_with(&format!("| {} ", top[0].0)), "{text}");

    let output = brook()
        .args(["sql", "-t", &table, "-f", "json", query])
        .output()
        .expect("run");
    assert!(output.status.success());
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("a JSON array");
    assert_eq!(rows.len(), 5);
    assert_eq!(rows[0]["service"], top[0].0.as_str());
    assert_eq!(rows[0]["errors"], top[0].1);
}

#[test]
fn brook_sql_refuses_what_is_not_a_query_and_reports_bad_tables() {
    let stats = fixture_stats();
    let table = format!("stats={}", stats.path().display());
    for statement in [
        "DROP TABLE stats",
        "INSERT INTO stats SELECT * FROM stats",
        "CREATE TABLE x AS SELECT 1",
    ] {
        let output = brook()
            .args(["sql", "-t", &table, statement])
            .output()
            .expect("run");
        assert!(!output.status.success(), "{statement}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("only queries run here"),
            "{statement}: {stderr}"
        );
        assert!(output.stdout.is_empty());
    }
    let output = brook()
        .args(["sql", "-t", "stats=/nonexistent/brook", "SELECT 1"])
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--table stats=/nonexistent/brook"),
        "{stderr}"
    );
    assert!(stderr.contains("No such file"), "{stderr}");

    let output = brook()
        .args(["sql", "-t", "no-equals-sign", "SELECT 1"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&output.stderr).contains("expected NAME=DIRECTORY"));
}

#[test]
fn brook_sql_prompt_reads_statements_until_quit() {
    let stats = fixture_stats();
    let table = format!("stats={}", stats.path().display());
    let mut child = brook()
        .args(["sql", "-t", &table, "-f", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"SELECT count(*) AS n\n  FROM stats;\nDROP TABLE stats;\n\\d\nSELECT count(DISTINCT service) AS services FROM stats;\n\\q\nSELECT 'not run';\n")
        .expect("write");
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("n\n259\n(1 row in"), "{stdout}");
    assert!(
        stdout.contains("\nstats\n"),
        "\\d lists the table: {stdout}"
    );
    assert!(stdout.contains("services\n50\n(1 row in"), "{stdout}");
    assert!(!stdout.contains("not run"), "{stdout}");
    assert!(stderr.contains("only queries run here"), "{stderr}");
}
