//! Follow mode: appended lines, partial lines, truncation, rotation, headers
//! that arrive late, lines that grow too long, and stopping when the stream
//! is dropped.
//!
//! The reader is driven on a [`ManualClock`]: it sleeps between polls until
//! the test advances the clock by a poll interval, and [`Reader::poll`]
//! returns what it sent by the time it is asleep again. So "nothing came"
//! means "nothing came in a whole round over the files", never "nothing came
//! in some milliseconds of a busy machine". Two tests through the source
//! check the glue (values parsed, files shared round-robin), waiting only
//! for what must come.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use brook_core::BoxedSourceStream;
use brook_core::time::ManualClock;
use futures::StreamExt;
use tokio::sync::mpsc::{self, error::TryRecvError};

use super::Row;
use crate::file::follow::follow_files_on;
use crate::file::plan::{FileEntry, Split};
use crate::file::reader::{BufferPool, CHANNEL_CAPACITY, CHUNK_SIZE, Msg, ReadOptions};
use crate::file::{CsvSource, JsonLinesSource};

pub(super) const POLL: Duration = Duration::from_millis(20);

/// How long a test waits for the reader to send or go to sleep before
/// failing: a guard against a hang, not part of any assertion.
pub(super) const GUARD: Duration = Duration::from_secs(10);

#[derive(Debug, serde::Deserialize)]
struct N {
    n: u32,
}

/// Waits until a reader's thread has ended, failing with `what` after
/// [`GUARD`].
pub(super) fn until_finished(thread: &JoinHandle<()>, what: &str) {
    let start = Instant::now();
    while !thread.is_finished() {
        assert!(start.elapsed() < GUARD, "{what}");
        std::thread::sleep(Duration::from_micros(200));
    }
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

/// A follow reader over some files, on its own thread and a manual clock.
struct Reader {
    rx: mpsc::Receiver<brook_core::Result<Msg>>,
    manual: ManualClock,
    thread: JoinHandle<()>,
}

/// Follows `paths` from their start, as one instance, with the given
/// maximum line length and read size.
fn follow_with(paths: &[&Path], has_header: bool, max_line: usize, chunk: usize) -> Reader {
    let splits = paths
        .iter()
        .map(|path| {
            let size = std::fs::metadata(path).expect("metadata").len();
            Split {
                file: Arc::new(FileEntry::new(path.to_path_buf(), size)),
                start: 0,
                end: size,
                resume: None,
            }
        })
        .collect();
    let opts = ReadOptions {
        has_header,
        max_line,
        chunk,
    };
    let manual = ManualClock::new(0);
    let clock = manual.clock();
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let thread = std::thread::spawn(move || {
        follow_files_on(splits, opts, POLL, &clock, tx, BufferPool::new(CHUNK_SIZE));
    });
    Reader { rx, manual, thread }
}

fn follow(paths: &[&Path], has_header: bool) -> Reader {
    follow_with(paths, has_header, 1 << 20, CHUNK_SIZE)
}

impl Reader {
    /// What the reader sends until it has found nothing new in a round and
    /// sleeps, as readable lines.
    fn until_idle(&mut self) -> Vec<String> {
        let start = Instant::now();
        let mut got = Vec::new();
        loop {
            match self.rx.try_recv() {
                Ok(msg) => {
                    got.push(show(msg));
                    continue;
                }
                Err(TryRecvError::Disconnected) => panic!("the reader stopped; got {got:?}"),
                Err(TryRecvError::Empty) => {}
            }
            if self.manual.sleepers() > 0 {
                // Asleep: all it sent before is in the channel.
                while let Ok(msg) = self.rx.try_recv() {
                    got.push(show(msg));
                }
                return got;
            }
            assert!(start.elapsed() < GUARD, "the reader neither sent nor slept");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// One poll interval passes: what the reader sends before it sleeps
    /// again (one round, or more while each finds something new).
    fn poll(&mut self) -> Vec<String> {
        assert_eq!(self.manual.sleepers(), 1, "the reader waits for the clock");
        self.manual.advance(POLL);
        self.until_idle()
    }
}

/// A message as a line to compare: `start 0`, `start 0 [header]`,
/// `0@17 {"n":2}\n` for a chunk at an offset, `long 0@2 777` for a long
/// line's prefix.
fn show(msg: brook_core::Result<Msg>) -> String {
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    match msg.expect("no error") {
        Msg::Start {
            slot, header: None, ..
        } => format!("start {slot}"),
        Msg::Start {
            slot,
            header: Some(h),
            ..
        } => format!("start {slot} [{}]", text(&h)),
        Msg::Chunk { slot, offset, data } => format!("{slot}@{offset} {}", text(&data)),
        Msg::LongLine {
            slot,
            offset,
            prefix,
        } => format!("long {slot}@{offset} {}", text(&prefix)),
        Msg::End { slot, next } => format!("end {slot} {next:?}"),
        Msg::Done => "done".into(),
    }
}

#[test]
fn follow_reads_appended_lines_and_a_partial_line_waits_for_its_newline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "{\"n\":0}\n{\"n\":1}\r\n").expect("write");
    let mut reader = follow(&[&path], false);
    assert_eq!(
        reader.until_idle(),
        ["start 0", "0@0 {\"n\":0}\n{\"n\":1}\r\n"]
    );
    assert_eq!(reader.poll(), Vec::<String>::new(), "nothing new");
    append(&path, "{\"n\":2}\n\n{\"n\":");
    assert_eq!(
        reader.poll(),
        ["0@17 {\"n\":2}\n\n"],
        "whole lines go, the partial one waits"
    );
    assert_eq!(reader.poll(), Vec::<String>::new(), "still waiting");
    append(&path, "3}\n");
    assert_eq!(reader.poll(), ["0@26 {\"n\":3}\n"]);
}

#[test]
fn a_followed_file_that_shrinks_is_read_again_from_its_start_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "{\"n\":0}\n{\"n\":1}\n").expect("write");
    let mut reader = follow(&[&path], false);
    assert_eq!(reader.until_idle().len(), 2);
    std::fs::write(&path, "{\"n\":10}\n").expect("truncate");
    assert_eq!(reader.poll(), ["start 0", "0@0 {\"n\":10}\n"]);
    assert_eq!(reader.poll(), Vec::<String>::new(), "read once");
    append(&path, "{\"n\":11}\n");
    assert_eq!(reader.poll(), ["0@9 {\"n\":11}\n"]);
}

#[test]
fn follow_stops_one_poll_interval_after_the_stream_is_dropped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "{\"n\":0}\n").expect("write");
    let mut reader = follow(&[&path], false);
    assert_eq!(reader.until_idle().len(), 2);
    let Reader { rx, manual, thread } = reader;
    drop(rx);
    manual.advance(POLL - Duration::from_millis(1));
    assert_eq!(manual.sleepers(), 1, "asleep until its interval ends");
    assert!(!thread.is_finished());
    manual.advance(Duration::from_millis(1));
    until_finished(&thread, "the reader went on after its interval");
    assert_eq!(manual.sleepers(), 0, "it did not sleep again");
    thread.join().expect("reader");
}

#[test]
fn follow_waits_for_a_csv_header_to_end_before_starting_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("a.csv");
    std::fs::write(&path, "na").expect("write");
    let mut reader = follow(&[&path], true);
    assert_eq!(reader.until_idle(), Vec::<String>::new());
    assert_eq!(
        reader.poll(),
        Vec::<String>::new(),
        "the header is unfinished"
    );
    append(&path, "me,n\r\na,1\nb,");
    assert_eq!(reader.poll(), ["start 0 [name,n]", "0@8 a,1\n"]);
}

#[cfg(unix)]
#[test]
fn follow_switches_to_a_file_that_replaced_the_followed_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.jsonl");
    std::fs::write(&path, "{\"n\":1}\n").expect("write");
    let mut reader = follow(&[&path], false);
    assert_eq!(reader.until_idle(), ["start 0", "0@0 {\"n\":1}\n"]);
    // Rotated while the reader sleeps: the old file's unfinished last line
    // is read and sent, then the new file from its start.
    append(&path, "{\"n\":2}");
    std::fs::rename(&path, dir.path().join("app.jsonl.1")).expect("rename");
    std::fs::write(&path, "{\"n\":3}\n{\"n\":4}\n").expect("write");
    assert_eq!(
        reader.poll(),
        ["0@8 {\"n\":2}", "start 0", "0@0 {\"n\":3}\n{\"n\":4}\n"]
    );
    assert_eq!(reader.poll(), Vec::<String>::new());
}

#[test]
fn a_followed_line_is_reported_once_it_grows_too_long_before_it_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "1\n").expect("write");
    let mut reader = follow_with(&[&path], false, 16, 8);
    assert_eq!(reader.until_idle(), ["start 0", "0@0 1\n"]);
    append(&path, &"7".repeat(100));
    let sevens = "7".repeat(16);
    assert_eq!(
        reader.poll(),
        [format!("long 0@2 {sevens}")],
        "reported while its end has not come"
    );
    assert_eq!(reader.poll(), Vec::<String>::new(), "reported once");
    append(&path, &format!("{}\n2\n", "7".repeat(100)));
    assert_eq!(reader.poll(), ["0@203 2\n"], "skipped through its newline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_source_parses_appended_lines_as_they_come() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("grow.jsonl");
    std::fs::write(&path, "{\"n\":0}\n{\"n\":1}\r\n").expect("write");
    let mut src = JsonLinesSource::<N>::new(&path)
        .follow(true)
        .poll_interval(POLL);
    let mut stream = brook_core::open_instance(&mut src, "src", 0, 1).expect("open");
    let ns = |v: Vec<N>| v.into_iter().map(|v| v.n).collect::<Vec<_>>();
    assert_eq!(ns(take(&mut stream, 2).await), vec![0, 1]);
    append(&path, "{\"n\":2}\n\n{\"n\":");
    append(&path, "3}\n");
    assert_eq!(ns(take(&mut stream, 2).await), vec![2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_followed_source_shares_files_round_robin() {
    let dir = tempfile::tempdir().expect("tempdir");
    for name in ["a.csv", "b.csv", "c.csv"] {
        std::fs::write(dir.path().join(name), format!("name,n\n{name},1\n")).expect("write");
    }
    let mut src = CsvSource::<Row>::new(dir.path())
        .follow(true)
        .poll_interval(POLL);
    let mut streams = brook_core::open_all(&mut src, "src", 2).expect("open");
    let (mut second, mut first) = (streams.pop().expect("two"), streams.pop().expect("two"));
    let names = |rows: Vec<Row>| {
        let mut names: Vec<String> = rows.into_iter().map(|r| r.name).collect();
        names.sort();
        names
    };
    assert_eq!(names(take(&mut first, 2).await), ["a.csv", "c.csv"]);
    assert_eq!(names(take(&mut second, 1).await), ["b.csv"]);
}
