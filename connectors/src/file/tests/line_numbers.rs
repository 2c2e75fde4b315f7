//! Line numbers of readers that start mid-file: counted only from the
//! nearest point already known, and not at all under `Drop`.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

use brook_core::TaskContext;

use super::{contexts, counter, read_with};
use crate::CollectSink;
use crate::file::{BadRecordPolicy, DeadLetter, JsonLinesSource};

#[derive(Debug, serde::Deserialize)]
struct N {
    #[allow(dead_code)]
    n: u32,
}

/// Writes a file with a bad line every ten and a blank line now and then;
/// returns its path and `(line, offset)` of each bad line.
fn write(dir: &Path) -> (PathBuf, Vec<(u64, u64)>) {
    let (mut text, mut bad) = (String::new(), Vec::new());
    for i in 0..900u32 {
        if i % 10 == 7 {
            bad.push((u64::from(i) + 1, text.len() as u64));
            text.push_str("{\"n\": oops}\n");
        } else if i % 13 == 0 {
            text.push('\n');
        } else {
            text.push_str(&format!("{{\"n\":{i}}}\r\n"));
        }
    }
    let path = dir.join("n.jsonl");
    std::fs::write(&path, text).expect("write");
    (path, bad)
}

/// Bytes read to count lines, over every reader of the source's file.
fn counted(src: &JsonLinesSource<N>) -> u64 {
    let split = src.planned_share(0).into_iter().next().expect("a range");
    split.file.lines.counted.load(Relaxed)
}

/// Reads with the instances in `order`, each to its end before the next
/// starts; returns `(line, offset)` of every dead letter, the bytes counted
/// and where each instance's range starts.
async fn dead_letters(path: &Path, order: &[usize]) -> (Vec<(u64, u64)>, u64, Vec<u64>) {
    let sink = CollectSink::<DeadLetter>::new();
    let letters = sink.handle();
    let mut src = JsonLinesSource::<N>::new(path)
        .split_size(1)
        .on_bad_line(BadRecordPolicy::dead_letter(sink));
    let ctxs = contexts(order.len());
    let ordered: Vec<TaskContext> = order.iter().map(|&i| ctxs[i].clone()).collect();
    for result in read_with(&mut src, &ordered).await {
        result.expect("read");
    }
    let mut got: Vec<(u64, u64)> = letters
        .values()
        .iter()
        .map(|d| (d.line, d.offset))
        .collect();
    got.sort();
    let starts = (0..order.len())
        .map(|i| src.planned_share(i).first().map_or(0, |s| s.start))
        .collect();
    (got, counted(&src), starts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_starting_where_another_stopped_counts_no_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, bad) = write(dir.path());
    // In order: each range starts where the one before ended, with its
    // count known.
    let (got, read, _) = dead_letters(&path, &[0, 1, 2]).await;
    assert_eq!(got, bad);
    assert_eq!(read, 0, "lines counted although known");
    // Backwards: the last instance counts from the start, and so does the
    // middle one, as the only point known is past it; each once, up to its
    // first line (less than a line past its range's start).
    let (got, read, starts) = dead_letters(&path, &[2, 1, 0]).await;
    assert_eq!(got, bad);
    let most = starts[1] + starts[2] + 2 * 16;
    assert!(
        read >= starts[1] + starts[2] && read <= most,
        "{read} bytes counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_counts_no_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (path, bad) = write(dir.path());
    let mut src = JsonLinesSource::<N>::new(&path)
        .split_size(1)
        .on_bad_line(BadRecordPolicy::Drop);
    // The last instance first: its first bad line is the file's first
    // warning, logged with its offset rather than a counted line.
    let ctxs = contexts(3);
    let ordered = [ctxs[2].clone(), ctxs[1].clone(), ctxs[0].clone()];
    for result in read_with(&mut src, &ordered).await {
        result.expect("read");
    }
    let dropped: u64 = ctxs.iter().map(|c| counter(c, "dropped")).sum();
    assert_eq!(dropped as usize, bad.len());
    assert_eq!(counted(&src), 0);
}
