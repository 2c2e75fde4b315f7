//! Follow mode: appended lines, partial lines, truncation, headers that
//! arrive late, and stopping when the stream is dropped.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use brook_core::BoxedSourceStream;
use futures::StreamExt;

use super::Row;
use crate::file::{CsvSource, JsonLinesSource};

pub(super) const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, serde::Deserialize)]
struct N {
    n: u32,
}

pub(super) fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(path)
        .expect("open");
    f.write_all(text.as_bytes()).expect("append");
}

/// The next `k` values, failing after a few seconds.
pub(super) async fn take<T>(stream: &mut BoxedSourceStream<T>, k: usize) -> Vec<T> {
    let mut out = Vec::new();
    while out.len() < k {
        let next = tokio::time::timeout(Duration::from_secs(5), stream.next()).await;
        let batch = next
            .expect("timed out")
            .expect("stream ended")
            .expect("batch")
            .into_batch()
            .expect("only batches");
        out.extend(batch.into_iter().map(|r| r.value));
    }
    assert_eq!(out.len(), k, "more values than expected");
    out
}

/// Asserts that nothing comes for a few poll intervals.
async fn quiet<T: std::fmt::Debug>(stream: &mut BoxedSourceStream<T>) {
    let next = tokio::time::timeout(POLL * 8, stream.next()).await;
    assert!(next.is_err(), "unexpected {next:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reads_appended_lines_and_stops_when_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "{\"n\":0}\n{\"n\":1}\r\n").expect("write");
    let mut src = JsonLinesSource::<N>::new(&path)
        .follow(true)
        .poll_interval(POLL);
    let mut stream = brook_core::open_instance(&mut src, "src", 0, 1).expect("open");
    let ns = |v: Vec<N>| v.into_iter().map(|v| v.n).collect::<Vec<_>>();
    assert_eq!(ns(take(&mut stream, 2).await), vec![0, 1]);

    // A partial line waits for its newline.
    append(&path, "{\"n\":2}\n\n{\"n\":");
    assert_eq!(ns(take(&mut stream, 1).await), vec![2]);
    quiet(&mut stream).await;
    append(&path, "3}\n");
    assert_eq!(ns(take(&mut stream, 1).await), vec![3]);

    // Truncated: read again from the start.
    std::fs::write(&path, "{\"n\":10}\n").expect("truncate");
    assert_eq!(ns(take(&mut stream, 1).await), vec![10]);
    quiet(&mut stream).await;

    // Dropped: the reader lets go of the file within a poll interval or so.
    let entry = src.planned_share(0).remove(0).file;
    assert!(Arc::strong_count(&entry) > 2);
    drop(stream);
    let start = Instant::now();
    while Arc::strong_count(&entry) > 2 {
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "reader still running"
        );
        tokio::time::sleep(POLL / 4).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_waits_for_a_csv_header_and_shares_files_round_robin() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.csv", "b.csv", "c.csv"] {
        std::fs::write(dir.path().join(name), "na").expect("write");
    }
    let mut src = CsvSource::<Row>::new(dir.path())
        .follow(true)
        .poll_interval(POLL);
    let mut streams = brook_core::open_all(&mut src, "src", 2).expect("open");
    let (mut second, mut first) = (streams.pop().expect("two"), streams.pop().expect("two"));
    quiet(&mut first).await;
    for name in ["a.csv", "b.csv", "c.csv"] {
        append(&dir.path().join(name), &format!("me,n\n{name},1\n"));
    }
    let mut got: Vec<String> = take(&mut first, 2)
        .await
        .into_iter()
        .map(|r| r.name)
        .collect();
    got.sort();
    assert_eq!(got, vec!["a.csv", "c.csv"]);
    let got: Vec<String> = take(&mut second, 1)
        .await
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(got, vec!["b.csv"]);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_switches_to_a_file_that_replaced_the_followed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.jsonl");
    std::fs::write(&path, "{\"n\":1}\n").expect("write");
    let mut src = JsonLinesSource::<N>::new(&path)
        .follow(true)
        .poll_interval(POLL);
    let mut stream = brook_core::open_instance(&mut src, "src", 0, 1).expect("open");
    assert_eq!(take(&mut stream, 1).await[0].n, 1);
    // Rotated: the old file's last line is finished and read, then the new
    // file from its start.
    append(&path, "{\"n\":2}");
    std::fs::rename(&path, dir.path().join("app.jsonl.1")).expect("rename");
    std::fs::write(&path, "{\"n\":3}\n{\"n\":4}\n").expect("write");
    let ns: Vec<u32> = take(&mut stream, 3)
        .await
        .into_iter()
        .map(|v| v.n)
        .collect();
    assert_eq!(ns, vec![2, 3, 4]);
}
