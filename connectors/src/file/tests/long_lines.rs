//! The maximum line length: too-long lines go through the bad-line policy
//! wherever chunk and range cuts fall, and too-long headers fail naming the
//! file.

use std::path::Path;

use brook_core::Error;
use proptest::prelude::*;

use super::{contexts, counter, lines_strategy, read_with, render, rt};
use crate::CollectSink;
use crate::file::{BadRecordPolicy, CsvSource, DeadLetter, JsonLinesSource};

/// What reading `bytes` should give with lines longer than `max` bad: the
/// values, and `(line, offset, raw)` of each too-long line.
fn expect(bytes: &[u8], max: usize) -> (Vec<String>, Vec<(u64, u64, String)>) {
    let (mut values, mut long) = (Vec::new(), Vec::new());
    let mut offset = 0;
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if bytes.is_empty() {
        return (values, long);
    }
    for (i, line) in body.split(|&b| b == b'\n').enumerate() {
        if line.len() > max {
            let raw = String::from_utf8_lossy(&line[..max.min(1024)]).into_owned();
            long.push((i as u64 + 1, offset, raw));
        } else {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if !line.iter().all(u8::is_ascii_whitespace) {
                values.push(serde_json::from_slice(line).expect("a JSON string"));
            }
        }
        offset += line.len() as u64 + 1;
    }
    (values, long)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Any line length limit, read size, cut points and parallelism: every
    /// line is read once, and exactly the too-long ones are dead letters,
    /// with their line, offset and first bytes.
    #[test]
    fn too_long_lines_are_bad_lines_wherever_the_cuts_fall(
        (lines, final_newline) in lines_strategy(),
        max in 1usize..160,
        chunk in 4usize..300,
        split_size in prop_oneof![1u64..16, 16u64..4096],
        p in 1usize..=4,
    ) {
        let (bytes, _) = render(&lines, final_newline, "");
        let (mut values, long) = expect(&bytes, max);
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("lines.jsonl");
        std::fs::write(&path, &bytes).expect("write");
        let sink = CollectSink::<DeadLetter>::new();
        let letters = sink.handle();
        let mut src = JsonLinesSource::<String>::new(&path)
            .split_size(split_size)
            .max_line_length(max)
            .chunk_size(chunk)
            .on_bad_line(BadRecordPolicy::dead_letter(sink));
        let ctxs = contexts(p);
        let results = rt().block_on(read_with(&mut src, &ctxs));
        let mut got: Vec<String> = results.into_iter().flat_map(|r| r.expect("read")).collect();
        got.sort();
        values.sort();
        prop_assert_eq!(got, values);
        let mut dead = letters.values();
        dead.sort_by_key(|d| d.line);
        let dead_at: Vec<(u64, u64, String)> =
            dead.iter().map(|d| (d.line, d.offset, d.raw.clone())).collect();
        prop_assert_eq!(dead_at, long);
        prop_assert!(dead.iter().all(|d| d.reason.contains("truncated")));
        let counted: u64 = ctxs.iter().map(|c| counter(c, "dead_lettered")).sum();
        prop_assert_eq!(counted as usize, dead.len());
    }
}

fn long_file(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("long.jsonl");
    let long = "x".repeat(40);
    let text = format!("\"a\"\n\"bb\"\r\n\"{long}\"\n\"c\"\n\"{long}");
    std::fs::write(&path, text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_long_line_fails_naming_its_line_and_the_limit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = long_file(dir.path());
    // Found by the stream in a whole chunk, and by the reader part way.
    for chunk in [1 << 20, 4] {
        let mut src = JsonLinesSource::<String>::new(&path)
            .max_line_length(16)
            .chunk_size(chunk);
        let results = read_with(&mut src, &contexts(1)).await;
        let Some(Err(err)) = results.into_iter().next() else {
            panic!("no error");
        };
        let Error::BadRecord { location, reason } = &err else {
            panic!("not a bad record: {err}");
        };
        assert_eq!(location, &format!("{}:3", path.display()));
        assert!(
            reason.contains("exceeds") && reason.contains("16 bytes"),
            "{reason}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_lines_are_dropped_and_counted_even_without_an_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = long_file(dir.path());
    let ctxs = contexts(2);
    let mut src = JsonLinesSource::<String>::new(&path)
        .split_size(1)
        .max_line_length(16)
        .chunk_size(8)
        .on_bad_line(BadRecordPolicy::Drop);
    let results = read_with(&mut src, &ctxs).await;
    let mut got: Vec<String> = results.into_iter().flat_map(|r| r.expect("read")).collect();
    got.sort();
    assert_eq!(got, ["a", "bb", "c"]);
    let dropped: u64 = ctxs.iter().map(|c| counter(c, "dropped")).sum();
    assert_eq!(dropped, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_too_long_csv_header_fails_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("rows.csv");
    std::fs::write(&path, "name,n,and,more,columns\na,1,b,c,d\n").expect("write");
    for chunk in [1 << 20, 4] {
        let mut src = CsvSource::<super::Row>::new(&path)
            .split_size(1)
            .max_line_length(8)
            .chunk_size(chunk);
        for result in read_with(&mut src, &contexts(2)).await {
            let err = result.expect_err("header too long");
            let Error::BadRecord { location, reason } = &err else {
                panic!("not a bad record: {err}");
            };
            assert_eq!(location, &format!("{}:1", path.display()));
            assert!(
                reason.contains("header") && reason.contains("8 bytes"),
                "{reason}"
            );
        }
    }
    // The limit is for the line before its `\n`; `\r` counts.
    std::fs::write(&path, "name,n\r\nab,1\r\n").expect("write");
    let mut src = CsvSource::<super::Row>::new(&path).max_line_length(7);
    let rows = read_with(&mut src, &contexts(1)).await;
    assert_eq!(rows.into_iter().flat_map(|r| r.expect("read")).count(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zero_max_line_length_is_a_config_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.jsonl");
    std::fs::write(&path, "1\n").expect("write");
    let mut src = JsonLinesSource::<u32>::new(&path).max_line_length(0);
    let err = brook_core::open_instance(&mut src, "src", 0, 1)
        .err()
        .expect("max line length 0");
    assert!(matches!(err, Error::Config(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_line_too_long_becomes_one_dead_letter_naming_its_line_and_offset() {
    use super::follow::{POLL, append, take};
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "1\n").expect("write");
    let sink = CollectSink::<DeadLetter>::new();
    let letters = sink.handle();
    let mut src = JsonLinesSource::<u32>::new(&path)
        .follow(true)
        .poll_interval(POLL)
        .max_line_length(16)
        .chunk_size(8)
        .on_bad_line(BadRecordPolicy::dead_letter(sink));
    let mut stream = brook_core::open_instance(&mut src, "src", 0, 1).expect("open");
    assert_eq!(take(&mut stream, 1).await, [1]);
    // A line far over the limit, arriving in two parts: one dead letter
    // with its first bytes, then the reader skips through its `\n`. (That
    // it is reported before its end arrives is checked on a driven clock in
    // `follow`.)
    append(&path, &"7".repeat(100));
    append(&path, &format!("{}\n2\n", "7".repeat(100)));
    assert_eq!(take(&mut stream, 1).await, [2]);
    let dead = letters.values();
    assert_eq!(dead.len(), 1);
    assert_eq!((dead[0].line, dead[0].offset), (2, 2));
    assert_eq!(dead[0].raw, "7".repeat(16));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_never_holds_more_of_a_line_than_the_limit_and_a_read() {
    use std::sync::Arc;

    use crate::file::plan::{FileEntry, Split};
    use crate::file::reader::{BufferPool, CHUNK_SIZE, Msg, ReadOptions, read_splits};

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("long.jsonl");
    let long = "y".repeat(100_000);
    let text = format!("1\n{long}\n2\n{long}");
    std::fs::write(&path, &text).expect("write");
    let size = text.len() as u64;
    let file = Arc::new(FileEntry::new(path, size));
    let split = Split {
        file,
        start: 0,
        end: size,
        resume: None,
    };
    let (max, chunk) = (64, 32);
    let opts = ReadOptions {
        has_header: false,
        max_line: max,
        chunk,
    };
    let (tx, mut rx) = tokio::sync::mpsc::channel(2);
    let reader = tokio::task::spawn_blocking(move || {
        read_splits(vec![split], opts, tx, BufferPool::new(CHUNK_SIZE));
    });
    let (mut lines, mut long_at) = (String::new(), Vec::new());
    while let Some(msg) = rx.recv().await {
        match msg.expect("no error") {
            Msg::Chunk { data, .. } => {
                assert!(data.len() <= max + chunk, "a chunk of {}", data.len());
                lines.push_str(std::str::from_utf8(&data).expect("text"));
            }
            Msg::LongLine { offset, prefix, .. } => {
                assert_eq!(prefix, [b'y'; 64]);
                long_at.push(offset);
            }
            Msg::Start { .. } | Msg::End { .. } | Msg::Done => {}
        }
    }
    reader.await.expect("reader");
    assert_eq!(lines, "1\n2\n");
    assert_eq!(long_at, [2, 100_005]);
}
