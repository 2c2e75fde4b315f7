//! The hand-over between a reader thread and its stream: a reader whose
//! channel is full waits until the stream has taken everything in it, then
//! sends chunks in a row (a wake-up per [`CHANNEL_CAPACITY`] chunks, not per
//! chunk); and it ends when the stream goes away while it waits.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::follow::{GUARD, until_finished};
use crate::file::DEFAULT_MAX_LINE_LENGTH;
use crate::file::plan::{FileEntry, Split};
use crate::file::reader::{BufferPool, CHANNEL_CAPACITY, Msg, ReadOptions, read_splits};

/// Every line is this long, with its `\n`; the reader reads one at a time.
const LINE: usize = 9;

type Rx = mpsc::Receiver<brook_core::Result<Msg>>;

/// A reader on its own thread over a file of `lines` lines, reading one
/// line per chunk, and its buffer pool (which counts its waits for room).
fn reader(lines: usize) -> (tempfile::TempDir, Rx, BufferPool, JoinHandle<()>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("lines.txt");
    let text: String = (0..lines).map(|i| format!("line-{i:03}\n")).collect();
    assert_eq!(text.len(), lines * LINE);
    std::fs::write(&path, &text).expect("write");
    let split = Split {
        file: Arc::new(FileEntry::new(path, text.len() as u64)),
        start: 0,
        end: text.len() as u64,
        resume: None,
    };
    let opts = ReadOptions {
        has_header: false,
        max_line: DEFAULT_MAX_LINE_LENGTH,
        chunk: LINE,
    };
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let pool = BufferPool::new(LINE);
    let thread = {
        let pool = pool.clone();
        std::thread::spawn(move || read_splits(vec![split], opts, tx, pool))
    };
    (dir, rx, pool, thread)
}

/// Waits until the reader has found its channel full `n` times: from then
/// on it waits until the channel is empty before it sends again.
fn until_waits(pool: &BufferPool, n: usize) {
    let start = Instant::now();
    while pool.waits.load(SeqCst) < n {
        assert!(
            start.elapsed() < GUARD,
            "the reader waited {} times of {n}",
            pool.waits.load(SeqCst)
        );
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// The next message, which must be a chunk of one line.
fn chunk(rx: &mut Rx) -> String {
    match rx.try_recv().expect("a message").expect("no error") {
        Msg::Chunk { data, .. } => String::from_utf8(data).expect("text"),
        other => panic!("expected a chunk, got {other:?}"),
    }
}

#[test]
fn a_full_channel_is_refilled_only_once_the_stream_took_everything_in_it() {
    assert_eq!(CHANNEL_CAPACITY, 2, "the test takes two messages per round");
    let (_dir, mut rx, pool, thread) = reader(100);
    // The start of the range and the first chunk fill the channel; the
    // reader holds the second chunk.
    until_waits(&pool, 1);
    assert_eq!(rx.len(), 2);
    assert!(matches!(
        rx.try_recv().expect("a message").expect("no error"),
        Msg::Start { slot: 0, .. }
    ));
    // One slot is free; a reader that took it at once would be woken per
    // chunk. It waits for the other one (this sleep only gives a wrong
    // reader the time to show itself).
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rx.len(), 1, "the reader sent into a half-empty channel");
    assert_eq!(chunk(&mut rx), "line-000\n");
    // Empty: the reader sends the chunk it held and the next in a row.
    until_waits(&pool, 2);
    assert_eq!(rx.len(), 2);
    assert_eq!(chunk(&mut rx), "line-001\n");
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(rx.len(), 1, "the reader sent into a half-empty channel");
    assert_eq!(chunk(&mut rx), "line-002\n");
    until_waits(&pool, 3);
    assert_eq!(chunk(&mut rx), "line-003\n");
    assert_eq!(chunk(&mut rx), "line-004\n");
    drop(rx);
    thread.join().expect("reader");
}

#[test]
fn a_reader_waiting_for_room_ends_when_the_stream_is_dropped() {
    let (_dir, mut rx, pool, thread) = reader(100);
    until_waits(&pool, 1);
    assert!(matches!(
        rx.try_recv().expect("a message").expect("no error"),
        Msg::Start { .. }
    ));
    // The reader waits for the stream to take the other message too.
    drop(rx);
    until_finished(&thread, "the reader went on without its stream");
    thread.join().expect("reader");
}
