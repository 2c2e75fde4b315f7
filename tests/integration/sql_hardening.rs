//! `brook sql` and [`SqlEngine`] against hostile input: deeply nested
//! queries, malformed Parquet files (a fuzzed footer), queries past the
//! time limit, functions asked for huge strings, and large results.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use brook::sql::{SqlEngine, SqlError};
use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::file::properties::WriterProperties;

use crate::support::block_on;

fn brook() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_brook"));
    command.env("HOME", std::env::temp_dir());
    command
}

fn run(args: &[&str]) -> Output {
    brook().args(args).output().expect("run brook")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `SELECT 1+1+…+1` with `terms` terms.
fn sum_of_ones(terms: usize) -> String {
    format!("SELECT {} AS total", vec!["1"; terms].join("+"))
}

/// `terms` predicates `ANDed` over a one-row table.
fn anded(terms: usize) -> String {
    format!(
        "SELECT x FROM (VALUES (1)) AS t(x) WHERE {}",
        vec!["x = 1"; terms].join(" AND ")
    )
}

/// `terms` one-row `SELECT`s joined by `UNION ALL`.
fn unions(terms: usize) -> String {
    vec!["SELECT 1 AS one"; terms].join(" UNION ALL ")
}

/// The process's peak resident memory in MiB, from `/proc/PID/status`.
fn peak_mib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

// Depths that overflowed the stack of the old `brook sql` (it aborted
// from 500 terms on); the 4000-term versions answer too, but take
// a minute in a debug build.
const SUM_TERMS: usize = 1000;
const AND_TERMS: usize = 1000;
const UNION_TERMS: usize = 500;

#[test]
fn deeply_nested_queries_answer_and_oversized_ones_are_refused() {
    let output = run(&["sql", "-f", "csv", &sum_of_ones(SUM_TERMS)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), format!("total\n{SUM_TERMS}\n"));

    let output = run(&["sql", "-f", "csv", &anded(AND_TERMS)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "x\n1\n");

    let output = run(&["sql", "-f", "csv", &unions(UNION_TERMS)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout).lines().count(), UNION_TERMS + 1);

    // Past the token limit: refused at once, with a clear error.
    let started = Instant::now();
    let output = run(&["sql", &sum_of_ones(15_000)]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output.stderr));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("the query is too large"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn the_prompt_goes_on_after_deep_and_oversized_queries() {
    let mut child = brook()
        .args(["sql", "-f", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let script = format!(
        "{};\n{};\n{};\n{};\nSELECT 'still here' AS s;\n",
        sum_of_ones(SUM_TERMS),
        anded(AND_TERMS),
        unions(UNION_TERMS),
        sum_of_ones(15_000),
    );
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(script.as_bytes()).expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    let stdout = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stdout.contains(&format!("total\n{SUM_TERMS}\n(1 row in")),
        "{stdout}"
    );
    assert!(stdout.contains("x\n1\n(1 row in"), "{stdout}");
    assert!(
        stdout.contains(&format!("({UNION_TERMS} rows in")),
        "{stdout}"
    );
    assert!(stderr.contains("the query is too large"), "{stderr}");
    assert!(stdout.contains("s\nstill here\n(1 row in"), "{stdout}");
}

/// A real Parquet file of two row groups: its bytes.
fn real_parquet() -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..300)),
            Arc::new(StringArray::from_iter(
                (0..300).map(|i| (i % 7 != 0).then(|| format!("name-{i}"))),
            )),
        ],
    )
    .expect("batch");
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(150))
        .build();
    let mut bytes = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut bytes, schema, Some(props)).expect("writer");
    writer.write(&batch).expect("write");
    writer.close().expect("close");
    bytes
}

/// A tiny deterministic generator (xorshift), for reproducible fuzzing.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// Malformed Parquet files, named for what they are: the real file cut at
/// every length near its footer and at lengths across it, with its footer
/// length claiming more (or much less) than there is, with bytes of the
/// footer flipped, and random bytes between two `PAR1`s.
fn malformed_files() -> Vec<(String, Vec<u8>)> {
    let real = real_parquet();
    let size = real.len();
    let footer = u32::from_le_bytes(real[size - 8..size - 4].try_into().expect("4 bytes")) as usize;
    let mut files = Vec::new();
    // Truncated: every length from a little before the footer to the end.
    for len in size.saturating_sub(footer + 40)..size {
        files.push((format!("cut-{len}"), real[..len].to_vec()));
    }
    for len in (0..size).step_by(size / 40 + 1) {
        files.push((format!("cut-{len}"), real[..len].to_vec()));
    }
    // The footer length claiming other sizes.
    let claims = [
        0,
        1,
        2,
        footer as u64 - 1,
        footer as u64 + 1,
        size as u64 - 12,
        size as u64 - 8,
        size as u64 - 7,
        size as u64,
        size as u64 + 1,
        1 << 20,
        i32::MAX as u64,
        1 << 31,
        u32::MAX as u64,
    ];
    for claim in claims {
        let mut bytes = real.clone();
        let claim = u32::try_from(claim).expect("a u32");
        bytes[size - 8..size - 4].copy_from_slice(&claim.to_le_bytes());
        files.push((format!("claims-{claim}"), bytes));
    }
    let mut rng = Rng(0x5eed_b00c);
    // Bytes of the footer's metadata flipped.
    for i in 0..60 {
        let mut bytes = real.clone();
        let at = size - 8 - 1 - rng.below(footer as u64) as usize;
        bytes[at] ^= 1 << rng.below(8);
        if i % 2 == 0 {
            let at = size - 8 - 1 - rng.below(footer as u64) as usize;
            bytes[at] = rng.next() as u8;
        }
        files.push((format!("flipped-{i}"), bytes));
    }
    // Random bytes between two PAR1s, with random and plausible lengths.
    for i in 0..80 {
        let len = 12 + rng.below(600) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        bytes[..4].copy_from_slice(b"PAR1");
        bytes[len - 4..].copy_from_slice(b"PAR1");
        let claim = match i % 3 {
            0 => rng.next() as u32,
            1 => rng.below(len as u64 - 12 + 1) as u32,
            _ => (len - 12) as u32,
        };
        bytes[len - 8..len - 4].copy_from_slice(&claim.to_le_bytes());
        files.push((format!("random-{i}"), bytes));
    }
    files.push(("par1par1".to_string(), b"PAR1PAR1".to_vec()));
    files.push(("empty".to_string(), Vec::new()));
    files
}

/// Writes each file as `<name>.parquet` in its own directory under `root`.
fn write_files(root: &Path, files: &[(String, Vec<u8>)]) -> Vec<(PathBuf, PathBuf)> {
    files
        .iter()
        .map(|(name, bytes)| {
            let dir = root.join(name);
            std::fs::create_dir_all(&dir).expect("dir");
            let file = dir.join(format!("{name}.parquet"));
            std::fs::write(&file, bytes).expect("write");
            (dir, file)
        })
        .collect()
}

/// Registering each malformed file (its directory, or the file itself)
/// fails with an error naming the file, or, where the footer reads, the
/// query does; nothing panics. A flipped bit may leave a file readable
/// (in a statistic, say): those may answer, all others must fail.
#[test]
fn every_malformed_parquet_file_gives_an_error_naming_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let files = malformed_files();
    let written = write_files(root.path(), &files);
    assert!(written.len() > 300, "{} files", written.len());
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        let mut failed_at_register = 0;
        for (i, (dir, file)) in written.iter().enumerate() {
            let shown = file.display().to_string();
            // Directories and single files are listed differently.
            let target = if i % 2 == 0 { dir } else { file };
            let name = format!("t{i}");
            let err = match engine.register_parquet(&name, target).await {
                Err(e) => {
                    failed_at_register += 1;
                    e
                }
                Ok(()) => match engine.query(&format!("SELECT * FROM {name}")).await {
                    Err(e) => e,
                    Ok(_) if shown.contains("flipped") => continue,
                    Ok(_) => panic!("{shown} read as a good Parquet file"),
                },
            };
            let message = err.to_string();
            assert!(message.contains(&shown), "{shown}: {message}");
            assert!(matches!(err, SqlError::BadFile { .. }), "{shown}: {err:?}");
        }
        assert!(failed_at_register > 0);
        // The engine still answers.
        let result = engine.query("SELECT 1 AS one").await.expect("a query");
        assert_eq!(result.num_rows(), 1);
    });
}

/// A file that turns bad after its table was registered (a sink's file
/// replaced by something else) fails the query with its name.
#[test]
fn a_file_that_turns_bad_fails_the_query_naming_it() {
    let root = tempfile::tempdir().expect("tempdir");
    let real = real_parquet();
    let file = root.path().join("part-0.parquet");
    block_on(async {
        let mut rng = Rng(42);
        for (i, (name, bad)) in malformed_files().into_iter().enumerate() {
            if i % 7 != 0 && name != "par1par1" {
                continue;
            }
            std::fs::write(&file, &real).expect("write");
            let engine = SqlEngine::new().expect("engine");
            engine
                .register_parquet("t", root.path())
                .await
                .expect("register");
            assert_eq!(
                engine
                    .query("SELECT count(*) FROM t")
                    .await
                    .expect("count")
                    .num_rows(),
                1
            );
            std::fs::write(&file, &bad).expect("write");
            let query = if rng.below(2) == 0 {
                "SELECT count(*) FROM t"
            } else {
                "SELECT * FROM t WHERE name LIKE '%9'"
            };
            match engine.query(query).await {
                Err(e) => assert!(
                    e.to_string().contains(&file.display().to_string()),
                    "{name}: {e}"
                ),
                Ok(_) if name.starts_with("flipped") => {}
                Ok(_) => panic!("{name}: read as a good Parquet file"),
            }
        }
    });
}

/// `brook sql` over malformed files: exit status 1, the file named, no
/// panic message.
#[test]
fn brook_sql_names_a_malformed_file_and_exits_1() {
    let root = tempfile::tempdir().expect("tempdir");
    let files: Vec<(String, Vec<u8>)> = malformed_files()
        .into_iter()
        .enumerate()
        .filter(|(i, (name, _))| i % 25 == 0 || name.starts_with("claims") || name == "par1par1")
        .map(|(_, f)| f)
        .collect();
    for (dir, file) in write_files(root.path(), &files) {
        for target in [&dir, &file] {
            let table = format!("t={}", target.display());
            let output = run(&["sql", "-t", &table, "SELECT count(*) FROM t"]);
            let stderr = text(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "{}: {stderr}",
                file.display()
            );
            assert!(
                stderr.contains(&file.display().to_string()),
                "{}: {stderr}",
                file.display()
            );
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

/// A cross join of 10^10 rows, which runs far past a second.
const LONG_QUERY: &str = "SELECT count(*) FROM generate_series(1, 100000) AS a, generate_series(1, 100000) AS b WHERE a.value + b.value = 7";

#[test]
fn a_query_past_its_time_limit_is_cancelled() {
    block_on(async {
        let engine = SqlEngine::new()
            .expect("engine")
            .with_timeout(Some(Duration::from_secs(1)));
        assert_eq!(engine.timeout(), Some(Duration::from_secs(1)));
        let started = Instant::now();
        let err = engine.query(LONG_QUERY).await.expect_err("too long");
        assert!(matches!(err, SqlError::Timeout { .. }), "{err:?}");
        assert!(err.to_string().contains("time limit of 1 s"), "{err}");
        // Cancelled, not waited for: well before the query could end.
        assert!(started.elapsed() < Duration::from_secs(30));
        // The engine goes on.
        assert_eq!(engine.query("SELECT 1").await.expect("query").num_rows(), 1);
    });

    let started = Instant::now();
    let output = run(&["sql", "--timeout", "1", LONG_QUERY]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("ran past its time limit of 1 s"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));

    // At the prompt, the next query runs.
    let mut child = brook()
        .args(["sql", "--timeout", "1", "-f", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    write!(stdin, "{LONG_QUERY};\nSELECT 'next' AS s;\n").expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    assert!(text(&output.stderr).contains("time limit"));
    assert!(text(&output.stdout).contains("s\nnext\n"));

    let output = run(&["sql", "--timeout", "-1", "SELECT 1"]);
    assert_eq!(output.status.code(), Some(2), "a usage error");
}

#[test]
fn functions_asked_for_huge_strings_are_refused() {
    for query in [
        "SELECT repeat('x', 1000000000)",
        "SELECT lpad('x', 1000000000)",
        "SELECT rpad('x', 1000000000, 'yz')",
        "SELECT replace(repeat('x', 100000), 'x', repeat('y', 10000))",
        "SELECT length(repeat(CAST(value AS VARCHAR), 100000)) FROM generate_series(1, 100000) AS t(value)",
    ] {
        let started = Instant::now();
        let output = run(&["sql", "--memory-limit", "64", query]);
        let stderr = text(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{query}: {stderr}");
        assert!(stderr.contains("a function may make"), "{query}: {stderr}");
        assert!(started.elapsed() < Duration::from_secs(30), "{query}");
    }
    // Within the cap, they work.
    let output = run(&[
        "sql",
        "--memory-limit",
        "64",
        "-f",
        "csv",
        "SELECT length(repeat('ab', 1000000)) AS n, length(lpad('x', 5)) AS p",
    ]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(text(&output.stdout), "n,p\n2000000,5\n");
}

/// Reads `child`'s stdout to the end, counting lines and sampling its peak
/// memory; returns (lines, whether output came while it ran, peak MiB).
fn read_streaming(child: &mut Child) -> (usize, bool, u64) {
    let pid = child.id();
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let (mut lines, mut peak, mut early) = (0usize, 0u64, false);
    let mut line = Vec::new();
    loop {
        line.clear();
        if stdout.read_until(b'\n', &mut line).expect("read") == 0 {
            break;
        }
        lines += 1;
        if lines == 1 {
            early = child.try_wait().expect("try_wait").is_none();
        }
        if lines % 50_000 == 1
            && let Some(mib) = peak_mib(pid)
        {
            peak = peak.max(mib);
        }
    }
    (lines, early, peak)
}

/// A 5M-row result is written as it comes: its first rows come while the
/// query runs, and `brook sql` stays far below the gigabytes it held when
/// it collected and formatted results whole.
#[test]
fn a_large_result_streams_within_the_memory_limit() {
    const ROWS: usize = 5_000_000;
    let query = format!(
        "SELECT value, value * 2 AS double, 'row ' || value AS label FROM generate_series(1, {ROWS}) AS t(value)"
    );
    let mut child = brook()
        .args(["sql", "--memory-limit", "64", "-f", "csv", &query])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (lines, early, peak) = read_streaming(&mut child);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr)
        .expect("stderr");
    assert!(child.wait().expect("wait").success(), "{stderr}");
    assert_eq!(lines, ROWS + 1, "a header and every row");
    assert!(early, "the first rows came only after the query ended");
    assert!(peak > 0, "the peak memory could not be read");
    assert!(peak < 500, "peak {peak} MiB");
}

/// A grouped `array_agg` (whose emitted state DataFusion does not account
/// for) fails with "Resources exhausted" before the process's memory goes
/// far past the limit; the prompt goes on.
#[test]
fn a_grouped_array_agg_stops_near_the_memory_limit() {
    let query = "SELECT k, array_agg(v) FROM (SELECT value % 1000 AS k, repeat('x', 1000) AS v FROM generate_series(1, 3000000) AS t(value)) GROUP BY k";
    let mut child = brook()
        .args(["sql", "--memory-limit", "64", "-f", "csv"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    writeln!(stdin, "{query};").expect("write");
    // The error comes while the prompt still runs: its peak is readable.
    let mut stderr = BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.starts_with("error:") {
        line.clear();
        assert!(stderr.read_line(&mut line).expect("read") > 0, "no error");
    }
    let peak = peak_mib(pid).expect("peak memory");
    assert!(line.contains("Resources exhausted"), "{line}");
    writeln!(stdin, "SELECT 'next' AS s;").expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("wait");
    assert!(output.status.success());
    assert!(text(&output.stdout).contains("s\nnext\n"));
    assert!(peak < 700, "peak {peak} MiB");
}
