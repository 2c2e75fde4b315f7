//! Unit tests of the file sinks: what jobs write at any parallelism, the
//! rename on close, and errors that name their path.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use brook_core::{Batch, Dataflow, Error, Record, Result, Sink, SinkWriter};
use serde::{Deserialize, Serialize};

use crate::codec::Encoder;
use crate::file::{CsvSink, CsvSource, FileSink, JsonLinesSink, JsonLinesSource};
use crate::testing::{io_error, open_writer, run_into, untimed};
use crate::{CollectSink, MemorySource};

#[derive(Debug, Clone, PartialEq, PartialOrd, Serialize, Deserialize)]
struct Row {
    n: u32,
    name: String,
    score: f64,
    note: Option<String>,
}

/// Rows with text that needs quoting: delimiters, quotes, non-ASCII.
fn rows(count: u32) -> Vec<Row> {
    (0..count)
        .map(|n| Row {
            n,
            name: match n % 4 {
                0 => format!("plain {n}"),
                1 => format!("comma, semicolon; {n}"),
                2 => format!("\"quoted\" {n}"),
                _ => format!("ünïcødé {n}"),
            },
            score: f64::from(n) / 8.0,
            note: (n % 3 == 0).then(|| format!("note {n}")),
        })
        .collect()
}

fn sorted(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    rows
}

/// Every file name in `dir` but the sink's lock, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n != crate::output::LOCK_FILE)
        .collect();
    names.sort();
    names
}

/// The contents of the part files (names not starting with `.`), by name.
fn parts(dir: &Path) -> Vec<(String, String)> {
    names(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.'))
        .map(|n| {
            let text = std::fs::read_to_string(dir.join(&n)).expect("read part");
            (n, text)
        })
        .collect()
}

/// Runs `values` into `sink` (node `files`) at parallelism `p`.
async fn run<T, S>(values: Vec<T>, sink: S, p: usize) -> Result<()>
where
    T: Clone + Send + 'static,
    S: Sink<T>,
{
    run_into(values, sink, "files", p).await
}

fn read_csv(text: &str, header: bool, delimiter: u8) -> Vec<Row> {
    csv::ReaderBuilder::new()
        .has_headers(header)
        .delimiter(delimiter)
        .from_reader(text.as_bytes())
        .deserialize()
        .map(|r| r.expect("a CSV row"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_parts_hold_every_row_once_at_parallelism_1_and_3() {
    let input = rows(1000);
    for p in [1, 3] {
        // One chunk per instance, and many small chunks.
        for chunk in [1 << 20, 100] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let dir = tmp.path().join("out");
            let sink = CsvSink::<Row>::new(&dir).chunk_size(chunk);
            run(input.clone(), sink, p).await.expect("run");
            let expected: Vec<String> = (0..p).map(|i| format!("part-{i}.csv")).collect();
            assert_eq!(names(&dir), expected, "p={p} chunk={chunk}");
            let mut got = Vec::new();
            for (_, text) in parts(&dir) {
                assert!(text.starts_with("n,name,score,note\n"), "{text:.40}");
                assert_eq!(text.matches("n,name").count(), 1, "one header");
                got.extend(read_csv(&text, true, b','));
            }
            assert_eq!(sorted(got), input, "p={p} chunk={chunk}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_lines_parts_hold_every_row_once_at_parallelism_1_and_3() {
    // A line break in a value is escaped: still one line per record.
    let mut input = rows(1000);
    input[7].name = "two\nlines".into();
    for p in [1, 3] {
        for chunk in [1 << 20, 100] {
            let tmp = tempfile::tempdir().expect("tempdir");
            let sink = JsonLinesSink::<Row>::new(tmp.path()).chunk_size(chunk);
            run(input.clone(), sink, p).await.expect("run");
            let expected: Vec<String> = (0..p).map(|i| format!("part-{i}.jsonl")).collect();
            assert_eq!(names(tmp.path()), expected);
            let got: Vec<Row> = parts(tmp.path())
                .iter()
                .flat_map(|(_, text)| text.lines().map(|l| serde_json::from_str(l).expect("json")))
                .collect();
            assert_eq!(sorted(got), sorted(input.clone()), "p={p} chunk={chunk}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_without_header_and_with_another_delimiter() {
    let input = rows(50);
    let tmp = tempfile::tempdir().expect("tempdir");
    let sink = CsvSink::<Row>::new(tmp.path())
        .header(false)
        .delimiter(b';');
    run(input.clone(), sink, 1).await.expect("run");
    let (name, text) = parts(tmp.path()).remove(0);
    assert_eq!(name, "part-0.csv");
    assert_eq!(text.lines().next(), Some("0;plain 0;0.0;note 0"));
    assert_eq!(read_csv(&text, false, b';'), input);
}

/// What the sinks write, Brook's own sources read back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_sources_read_back_what_the_sinks_wrote() {
    let input = rows(500);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (csv_dir, json_dir) = (tmp.path().join("csv"), tmp.path().join("json"));
    run(input.clone(), CsvSink::<Row>::new(&csv_dir), 3)
        .await
        .expect("csv");
    run(input.clone(), JsonLinesSink::<Row>::new(&json_dir), 3)
        .await
        .expect("json");
    for (dir, csv) in [(csv_dir, true), (json_dir, false)] {
        let out = CollectSink::new();
        let got = out.handle();
        let flow = Dataflow::new("read");
        let stream = if csv {
            flow.source("read", CsvSource::<Row>::new(&dir))
        } else {
            flow.source("read", JsonLinesSource::<Row>::new(&dir))
        };
        stream.sink("collect", out);
        flow.build()
            .expect("build")
            .run(Default::default())
            .await
            .expect("read");
        assert_eq!(sorted(got.values()), input, "{}", dir.display());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_instance_without_records_writes_no_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // Two records over three instances: the third gets none.
    run(rows(2), CsvSink::<Row>::new(tmp.path()), 3)
        .await
        .expect("run");
    assert_eq!(names(tmp.path()), ["part-0.csv", "part-1.csv"]);
    run(
        Vec::<Row>::new(),
        JsonLinesSink::<Row>::new(tmp.path().join("none")),
        2,
    )
    .await
    .expect("run");
    // The directory is made (and locked) when the job is built, but no
    // file is written into it.
    assert!(names(&tmp.path().join("none")).is_empty());
}

/// A writer of instance 0 of `sink`, opened outside a job.
fn open<T, S: Sink<T>>(sink: &mut S) -> S::Writer {
    open_writer(sink, "files")
}

fn batch(rows: &[Row]) -> Batch<Row> {
    untimed(rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_final_name_appears_only_at_close_replacing_an_old_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (part, hidden) = (
        tmp.path().join("part-0.csv"),
        tmp.path().join(".part-0.csv.inprogress"),
    );
    std::fs::write(&part, "an older run's part\n").expect("write");
    let mut sink = CsvSink::<Row>::new(tmp.path()).chunk_size(64);
    let mut w = open(&mut sink);
    let input = rows(20);
    w.write(batch(&input[..10])).await.expect("write");
    w.flush().await.expect("flush");
    // Chunks went to the hidden file; the old part is untouched.
    assert!(std::fs::metadata(&hidden).expect("in progress").len() > 0);
    assert_eq!(
        std::fs::read_to_string(&part).expect("old"),
        "an older run's part\n"
    );
    w.write(batch(&input[10..])).await.expect("write");
    w.close().await.expect("close");
    assert_eq!(names(tmp.path()), ["part-0.csv"]);
    let text = std::fs::read_to_string(&part).expect("part");
    assert_eq!(read_csv(&text, true, b','), input);
    // Closing again changes nothing; writing after close is refused.
    w.close().await.expect("close again");
    assert!(w.write(batch(&input[..1])).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_a_job_runs_only_the_hidden_file_exists() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().to_path_buf();
    let (part, hidden) = (
        dir.join("part-0.jsonl"),
        dir.join(".part-0.jsonl.inprogress"),
    );
    // The source stops before record 500 until the test lets it go on.
    let (go, gate) = mpsc::channel::<()>();
    let values = (0..1000u32).inspect(move |&i| {
        if i == 500 {
            gate.recv().expect("gate");
        }
    });
    let mut flow = Dataflow::new("slow");
    flow.set_parallelism(1).set_batch_size(50);
    flow.source("slow", MemorySource::from_iterator(values))
        .sink("files", JsonLinesSink::<u32>::new(&dir).chunk_size(256));
    let job = flow
        .build()
        .expect("build")
        .start(Default::default())
        .expect("start");
    let mut waited = Duration::ZERO;
    while !hidden.exists() {
        assert!(waited < Duration::from_secs(10), "no in-progress file");
        tokio::time::sleep(Duration::from_millis(10)).await;
        waited += Duration::from_millis(10);
    }
    assert!(!part.exists(), "a final name while the job runs");
    assert_eq!(names(&dir), [".part-0.jsonl.inprogress"]);
    go.send(()).expect("go");
    job.wait().await.expect("job");
    assert_eq!(names(&dir), ["part-0.jsonl"]);
    let text = std::fs::read_to_string(&part).expect("part");
    let got: Vec<u32> = text.lines().map(|l| l.parse().expect("n")).collect();
    assert_eq!(got, (0..1000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_left_in_progress_by_a_crash_is_replaced() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let hidden = tmp.path().join(".part-0.jsonl.inprogress");
    std::fs::write(&hidden, "{\"partial\":".repeat(1000)).expect("write");
    run(vec![1u32, 2, 3], JsonLinesSink::<u32>::new(tmp.path()), 1)
        .await
        .expect("run");
    assert_eq!(names(tmp.path()), ["part-0.jsonl"]);
    let text = std::fs::read_to_string(tmp.path().join("part-0.jsonl")).expect("part");
    assert_eq!(text, "1\n2\n3\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_a_file_fails_naming_the_path() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let file = tmp.path().join("not-a-dir");
    std::fs::write(&file, "x").expect("write");
    // At build(), before anything is written: the path itself, or a parent.
    for dir in [file.clone(), file.join("sub")] {
        let err = run(rows(3), CsvSink::<Row>::new(&dir), 2)
            .await
            .expect_err("fails");
        let text = err.to_string();
        assert!(text.contains(&*dir.to_string_lossy()), "{text}");
        assert!(text.contains("node 'files'"), "{text}");
    }
    // At the first write: the directory became a file after open.
    let dir = tmp.path().join("later");
    let mut sink = CsvSink::<Row>::new(&dir);
    let mut w = open(&mut sink);
    std::fs::write(&dir, "x").expect("write");
    w.write(batch(&rows(3))).await.expect("buffered");
    let err = w.close().await.expect_err("fails");
    let text = io_error(&err);
    assert!(
        text.contains(&format!("creating directory {}", dir.display())),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_rename_names_both_paths_and_keeps_the_hidden_file() {
    let tmp = tempfile::tempdir().expect("tempdir");
    // A non-empty directory holds the final name.
    let part = tmp.path().join("part-0.jsonl");
    std::fs::create_dir(&part).expect("mkdir");
    std::fs::write(part.join("x"), "x").expect("write");
    let mut sink = JsonLinesSink::<u32>::new(tmp.path());
    let mut w = open(&mut sink);
    w.write([1u32, 2].into_iter().map(Record::untimed).collect())
        .await
        .expect("write");
    let err = w.close().await.expect_err("fails");
    let text = io_error(&err);
    let hidden: PathBuf = tmp.path().join(".part-0.jsonl.inprogress");
    assert!(
        text.contains(&format!(
            "renaming {} to {}",
            hidden.display(),
            part.display()
        )),
        "{text}"
    );
    assert_eq!(std::fs::read_to_string(&hidden).expect("hidden"), "1\n2\n");
    assert!(
        w.write(Batch::new()).await.is_err(),
        "a failed writer stays failed"
    );
}

#[derive(Clone, Serialize)]
struct Inner {
    a: u32,
    b: u32,
}

#[derive(Clone, Serialize)]
struct Nested {
    n: u32,
    inner: Inner,
}

#[derive(Clone, Serialize)]
struct WithList {
    n: u32,
    tags: Vec<String>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nested_value_in_csv_is_a_clear_error_with_or_without_header() {
    for header in [true, false] {
        let tmp = tempfile::tempdir().expect("tempdir");
        let nested = vec![Nested {
            n: 1,
            inner: Inner { a: 2, b: 3 },
        }];
        let err = run(nested, CsvSink::<Nested>::new(tmp.path()).header(header), 1)
            .await
            .expect_err("nested struct");
        let Error::BadRecord { location, reason } = err.root() else {
            panic!("not a bad record: {err}");
        };
        assert_eq!(
            location,
            &format!("{} record 1", tmp.path().join("part-0.csv").display())
        );
        assert!(reason.contains("CSV rows are flat"), "{reason}");
        assert!(
            names(tmp.path()).iter().all(|n| n.starts_with('.')),
            "no part file"
        );

        let list = vec![WithList {
            n: 1,
            tags: vec!["a".into(), "b".into()],
        }];
        let err = run(list, CsvSink::<WithList>::new(tmp.path()).header(header), 1)
            .await
            .expect_err("sequence");
        assert!(matches!(err.root(), Error::BadRecord { .. }), "{err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_refuses_more_after_a_value_failed_to_encode() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut sink = CsvSink::<Nested>::new(tmp.path());
    let mut w = open(&mut sink);
    let nested = Nested {
        n: 1,
        inner: Inner { a: 2, b: 3 },
    };
    let one = || [nested.clone()].into_iter().map(Record::untimed).collect();
    let err = w.write(one()).await.expect_err("nested");
    assert!(matches!(err, Error::BadRecord { .. }), "{err}");
    let err = w.write(one()).await.expect_err("refused");
    assert!(matches!(err, Error::Internal(_)), "{err}");
    assert!(w.close().await.is_err());
    assert!(names(tmp.path()).is_empty());
}

#[test]
fn encoders_name_their_extension_and_plain_values_need_no_header() {
    let csv = crate::codec::Csv::new();
    let json = crate::codec::Json;
    assert_eq!(Encoder::<u32>::extension(&csv), "csv");
    assert_eq!(Encoder::<u32>::extension(&json), "jsonl");
    // A tuple has no field names: no header row, just the fields.
    let mut state = Encoder::<(u32, &str)>::start(&csv);
    let mut out = Vec::new();
    csv.encode(&mut state, &(1, "a,b"), &mut out)
        .expect("encode");
    csv.encode(&mut state, &(2, "c"), &mut out).expect("encode");
    assert_eq!(String::from_utf8(out).expect("utf8"), "1,\"a,b\"\n2,c\n");
}

#[test]
fn sink_handles_are_send() {
    fn send<S: Send>() {}
    send::<FileSink<Row, crate::codec::Csv>>();
    send::<<CsvSink<Row> as Sink<Row>>::Writer>();
    send::<<JsonLinesSink<Row> as Sink<Row>>::Writer>();
}
