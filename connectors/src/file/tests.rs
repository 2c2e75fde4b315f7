//! Unit tests of the file sources: splitting, formats and listing here;
//! bad-line policies, follow mode and the reader's hand-over in `tests/`.

mod follow;
mod handover;
mod line_numbers;
mod long_lines;
mod policies;
mod stream;

use std::path::Path;
use std::sync::{Arc, LazyLock};

use brook_core::{Error, Result, Source, TaskContext};
use futures::StreamExt;
use proptest::prelude::*;
use proptest::sample::Index;
use tokio::runtime::Runtime;
use tokio::sync::mpsc;

use crate::codec::Decoder;

use super::bad_line::Mode;
use super::plan::{FileEntry, Plan, Split};
use super::reader::{BufferPool, CHANNEL_CAPACITY, CHUNK_SIZE, ReadOptions, read_splits};
use super::stream::LineStream;
use super::*;

/// A runtime shared by the property tests.
fn rt() -> &'static Runtime {
    static RT: LazyLock<Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime")
    });
    &RT
}

/// Contexts for `p` instances of one source.
fn contexts(p: usize) -> Vec<TaskContext> {
    (0..p)
        .map(|i| TaskContext::standalone("src", i, p))
        .collect()
}

/// Opens every instance first, as the runtime does, then reads each stream
/// to its end or first error, checking batch sizes.
async fn read_with<T, F>(src: &mut FileSource<T, F>, ctxs: &[TaskContext]) -> Vec<Result<Vec<T>>>
where
    T: Send + 'static,
    F: Decoder<T>,
{
    // Planned once, as the runtime does, each instance opened with its own
    // context (whose counters the tests read).
    let p = ctxs.len();
    let splits = src
        .plan(&brook_core::PlanContext::standalone("src", p))
        .expect("plan");
    let mut shares: Vec<Option<_>> = src.assign(splits, p).into_iter().map(Some).collect();
    let streams: Vec<_> = ctxs
        .iter()
        .map(|ctx| {
            let share = shares[ctx.instance()]
                .take()
                .expect("one context per instance");
            src.open(ctx, share).expect("open")
        })
        .collect();
    let mut out = Vec::new();
    for (mut stream, ctx) in streams.into_iter().zip(ctxs) {
        let mut values = Vec::new();
        let mut result = Ok(());
        while let Some(batch) = stream.next().await {
            match batch {
                Ok(event) => {
                    let batch = event.into_batch().expect("only batches");
                    assert!(!batch.is_empty() && batch.len() <= ctx.batch_size());
                    values.extend(batch.into_iter().map(|r| r.value));
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        out.push(result.map(|()| values));
    }
    out
}

/// Reads with `p` instances; every instance must succeed.
async fn read<T, F>(src: &mut FileSource<T, F>, p: usize) -> Vec<Vec<T>>
where
    T: Send + 'static,
    F: Decoder<T>,
{
    read_with(src, &contexts(p))
        .await
        .into_iter()
        .map(|r| r.expect("read"))
        .collect()
}

/// A counter of an instance.
fn counter(ctx: &TaskContext, name: &str) -> u64 {
    let c = ctx.metrics().counters();
    match name {
        "dropped" => c.dropped,
        "dead_lettered" => c.dead_lettered,
        other => panic!("no counter {other}"),
    }
}

/// A file of JSON-string lines: `(kind, len, crlf)` per line, where kind 0
/// and 1 are blank lines, 2 a long line, others short ones. Returns the
/// bytes and the non-blank values, each prefixed by its line index.
fn render(lines: &[(u8, usize, bool)], final_newline: bool, tag: &str) -> (Vec<u8>, Vec<String>) {
    let (mut bytes, mut values) = (Vec::new(), Vec::new());
    for (i, &(kind, len, crlf)) in lines.iter().enumerate() {
        match kind {
            0 => {}
            1 => bytes.extend_from_slice(b" \t"),
            _ => {
                let fill = if kind == 2 {
                    "x".repeat(len * 8)
                } else {
                    "y".repeat(len % 16)
                };
                let value = format!("{tag}{i:04}-{fill}");
                bytes.extend_from_slice(format!("\"{value}\"").as_bytes());
                values.push(value);
            }
        }
        if i + 1 < lines.len() || final_newline {
            bytes.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    (bytes, values)
}

fn lines_strategy() -> impl Strategy<Value = (Vec<(u8, usize, bool)>, bool)> {
    (
        proptest::collection::vec((0u8..6, 0usize..300, any::<bool>()), 0..40),
        any::<bool>(),
    )
}

/// Checks that the instances read `expected` exactly once, each instance
/// in file order.
fn check_exactly_once(got: Vec<Vec<String>>, mut expected: Vec<String>) {
    for share in &got {
        assert!(
            share.windows(2).all(|w| w[0] < w[1]),
            "out of order: {share:?}"
        );
    }
    let mut all: Vec<String> = got.into_iter().flatten().collect();
    all.sort();
    expected.sort();
    assert_eq!(all, expected);
}

/// Reads the byte ranges cut at `cuts` with one reader each, bypassing the
/// planner, and returns every value read.
async fn read_ranges(path: &Path, size: u64, cuts: &[u64]) -> Vec<String> {
    let entry = Arc::new(FileEntry::new(path.to_path_buf(), size));
    let mut bounds = vec![0];
    bounds.extend_from_slice(cuts);
    bounds.push(size);
    let mut out = Vec::new();
    for w in bounds.windows(2) {
        let split = Split {
            file: entry.clone(),
            start: w[0],
            end: w[1],
            resume: None,
        };
        let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
        let pool = BufferPool::new(CHUNK_SIZE);
        let reader = {
            let pool = pool.clone();
            let opts = ReadOptions {
                has_header: false,
                max_line: DEFAULT_MAX_LINE_LENGTH,
                chunk: CHUNK_SIZE,
            };
            Box::new(move || read_splits(vec![split], opts, tx, pool))
        };
        let ctx = TaskContext::standalone("ranges", 0, 1);
        let format = Arc::new(Json);
        let mut stream = LineStream::new(
            format,
            ctx,
            Mode::Fail,
            DEFAULT_MAX_LINE_LENGTH,
            reader,
            rx,
            pool,
        )
        .into_stream();
        while let Some(batch) = stream.next().await {
            let batch = batch.expect("batch").into_batch().expect("a batch");
            out.extend(batch.into_iter().map(|r| r.value));
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Any cut points: every line is read once, by the range it starts in.
    #[test]
    fn any_byte_ranges_read_every_line_once(
        (lines, final_newline) in lines_strategy(),
        cuts in proptest::collection::vec(any::<Index>(), 0..8),
    ) {
        let (bytes, expected) = render(&lines, final_newline, "");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.jsonl");
        std::fs::write(&path, &bytes).expect("write");
        let size = bytes.len() as u64;
        let mut cuts: Vec<u64> = cuts.iter().map(|i| i.index(bytes.len() + 1) as u64).collect();
        cuts.sort();
        let got = rt().block_on(read_ranges(&path, size, &cuts));
        check_exactly_once(vec![got], expected);
    }

    /// Through the source: random split sizes and parallelism.
    #[test]
    fn split_readers_read_every_line_once(
        (lines, final_newline) in lines_strategy(),
        split_size in prop_oneof![1u64..16, 16u64..4096],
        p in 1usize..=5,
        chunk in prop_oneof![Just(CHUNK_SIZE), 1usize..64],
    ) {
        let (bytes, expected) = render(&lines, final_newline, "");
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.jsonl");
        std::fs::write(&path, &bytes).expect("write");
        let mut src = JsonLinesSource::<String>::new(&path)
            .split_size(split_size)
            .chunk_size(chunk);
        let got = rt().block_on(read(&mut src, p));
        check_exactly_once(got, expected);
    }

    /// Several files, as a directory and as a glob.
    #[test]
    fn directories_and_globs_read_every_line_once(
        files in proptest::collection::vec(lines_strategy(), 1..4),
        split_size in prop_oneof![1u64..16, 16u64..4096],
        p in 1usize..=5,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut expected = Vec::new();
        for (k, (lines, final_newline)) in files.iter().enumerate() {
            let (bytes, values) = render(lines, *final_newline, &format!("f{k}-"));
            std::fs::write(dir.path().join(format!("part-{k}.jsonl")), bytes).expect("write");
            expected.extend(values);
        }
        // Neither is read: a hidden file and a subdirectory.
        std::fs::write(dir.path().join(".hidden.jsonl"), "not json\n").expect("write");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/x.jsonl"), "not json\n").expect("write");

        let mut src = JsonLinesSource::<String>::new(dir.path()).split_size(split_size);
        check_exactly_once(rt().block_on(read(&mut src, p)), expected.clone());
        let pattern = dir.path().join("*.jsonl");
        let mut src = JsonLinesSource::<String>::new(pattern).split_size(split_size);
        check_exactly_once(rt().block_on(read(&mut src, p)), expected);
    }
}

#[test]
fn the_plan_covers_every_byte_and_gives_every_instance_work() {
    let files = vec![
        FileEntry::new("a".into(), 1000),
        FileEntry::new("b".into(), 0),
        FileEntry::new("c".into(), 333),
    ];
    let plan = Plan::split(files, 4, 1);
    let shares: Vec<Vec<Split>> = (0..4).map(|i| plan.share(i)).collect();
    assert!(shares.iter().all(|s| !s.is_empty()));
    let bytes: Vec<u64> = shares
        .iter()
        .map(|s| s.iter().map(|r| r.end - r.start).sum())
        .collect();
    assert_eq!(bytes.iter().sum::<u64>(), 1333);
    assert!(bytes.iter().all(|&b| (250..=450).contains(&b)), "{bytes:?}");
    // Large minimum split: one range per file.
    let one = Plan::split(vec![FileEntry::new("a".into(), 1000)], 4, 1 << 20);
    assert_eq!((0..4).map(|i| one.share(i).len()).sum::<usize>(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_hold_at_most_batch_size_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("n.jsonl");
    let text: String = (0..5000).map(|i| format!("{{\"n\":{i}}}\n")).collect();
    std::fs::write(&path, text).expect("write");
    #[derive(serde::Deserialize)]
    struct N {
        n: u32,
    }
    let mut src = JsonLinesSource::<N>::new(&path);
    let got = read(&mut src, 1).await;
    let ns: Vec<u32> = got.into_iter().flatten().map(|v| v.n).collect();
    assert_eq!(ns, (0..5000).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_matching_file_or_a_bad_setting_is_a_config_error_from_build_naming_the_node() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Planned by build(): nothing runs, and the error names the node.
    let build = |src: JsonLinesSource<u32>| {
        let flow = brook_core::Dataflow::new("bad-input");
        flow.source("logs", src)
            .sink("out", crate::CollectSink::new());
        flow.build().expect_err("a config error")
    };
    let missing = dir.path().join("nope-*.jsonl");
    let err = build(JsonLinesSource::new(&missing));
    assert!(matches!(err, Error::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("node 'logs'") && msg.contains("nope-*.jsonl"),
        "{msg}"
    );
    let err = build(JsonLinesSource::new(dir.path()));
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("node 'logs'"), "{err}");
    std::fs::write(dir.path().join("a.jsonl"), "1\n").expect("write");
    let err = build(JsonLinesSource::new(dir.path()).split_size(0));
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("split_size"), "{err}");
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Row {
    name: String,
    n: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_split_readers_all_use_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rows.csv");
    // Columns in another order than the struct's fields: read by name.
    let mut text = String::from("n,name\r\n");
    for i in 0..200 {
        text.push_str(&format!("{i},\"row, {i}\"\r\n"));
        if i % 50 == 0 {
            text.push_str("\r\n");
        }
    }
    std::fs::write(&path, text).expect("write");
    for p in 1..=4 {
        let mut src = CsvSource::<Row>::new(&path).split_size(1);
        let got = read(&mut src, p).await;
        assert!(got.iter().all(|share| !share.is_empty()));
        let mut rows: Vec<Row> = got.into_iter().flatten().collect();
        rows.sort_by_key(|r| r.n);
        let expected: Vec<Row> = (0..200)
            .map(|n| Row {
                name: format!("row, {n}"),
                n,
            })
            .collect();
        assert_eq!(rows, expected);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_without_headers_and_with_another_delimiter() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, "a;1\nb;2\n\"c;d\";3").expect("write");
    let mut src = CsvSource::<(String, u32)>::new(&path)
        .has_headers(false)
        .delimiter(b';')
        .split_size(2);
    let mut got: Vec<(String, u32)> = read(&mut src, 3).await.into_iter().flatten().collect();
    got.sort();
    let expected = vec![("a".into(), 1), ("b".into(), 2), ("c;d".into(), 3)];
    assert_eq!(got, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_line_numbers_count_the_header() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, "name,n\na,1\nb,2,extra\nc,3\n").expect("write");
    let mut src = CsvSource::<Row>::new(&path);
    let results = read_with(&mut src, &contexts(1)).await;
    let err = results
        .into_iter()
        .next()
        .expect("one")
        .expect_err("bad row");
    let Error::BadRecord { location, reason } = &err else {
        panic!("not a bad record: {err}");
    };
    assert_eq!(location, &format!("{}:3", path.display()));
    assert!(reason.contains("3 fields"), "{reason}");
}

#[test]
fn public_handles_are_send_and_sync() {
    fn send<T: Send>() {}
    fn sync<T: Sync>() {}
    send::<JsonLinesSource<String>>();
    send::<CsvSource<Row>>();
    send::<BadRecordPolicy>();
    sync::<BadRecordPolicy>();
    send::<DeadLetter>();
    sync::<DeadLetter>();
}

#[test]
fn the_instances_of_a_source_read_about_four_mib_at_once_in_all() {
    use super::reader::chunk_for;
    assert_eq!(chunk_for(1), CHUNK_SIZE);
    assert_eq!(chunk_for(4), CHUNK_SIZE);
    assert_eq!(chunk_for(8), 512 << 10);
    assert_eq!(chunk_for(16), 256 << 10);
    assert_eq!(chunk_for(64), 256 << 10);
    assert_eq!(chunk_for(0), CHUNK_SIZE);
}
