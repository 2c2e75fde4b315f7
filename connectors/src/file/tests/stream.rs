//! The stream: state only for the files being read, yielding on lines that
//! make no records, readers that stop early, and dead letters kept when the
//! stream fails.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use brook_core::dataflow::DEFAULT_BATCH_SIZE;
use brook_core::{Error, Result, TaskContext};
use futures::StreamExt;
use tokio::sync::mpsc;

use super::counter;
use crate::CollectSink;
use crate::file::bad_line::Mode;
use crate::file::plan::{FileEntry, Split};
use crate::file::reader::{
    BufferPool, CHANNEL_CAPACITY, CHUNK_SIZE, Msg, ReadOptions, Tx, read_splits,
};
use crate::file::stream::LineStream;
use crate::file::{BadRecordPolicy, DEFAULT_MAX_LINE_LENGTH, DeadLetter, Json, JsonLinesSource};

/// A stream of JSON numbers over what `reader` sends.
fn stream_of(reader: impl FnOnce(Tx, BufferPool) + Send + 'static) -> LineStream<u32, Json> {
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let pool = BufferPool::new(CHUNK_SIZE);
    let reader = {
        let pool = pool.clone();
        Box::new(move || reader(tx, pool))
    };
    let ctx = TaskContext::standalone("src", 0, 1);
    let (format, max) = (Arc::new(Json), DEFAULT_MAX_LINE_LENGTH);
    LineStream::new(format, ctx, Mode::Fail, max, reader, rx, pool)
}

/// A whole file as one range.
fn whole(path: &Path, text: &str) -> Split {
    std::fs::write(path, text).expect("write");
    let size = text.len() as u64;
    Split {
        file: Arc::new(FileEntry::new(path.to_path_buf(), size)),
        start: 0,
        end: size,
        resume: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_holds_state_only_for_the_files_it_is_reading() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A batch per file: the stream is looked at once per file.
    let text = "1\n".repeat(DEFAULT_BATCH_SIZE);
    let splits: Vec<Split> = (0..40)
        .map(|k| whole(&dir.path().join(format!("f{k:02}.jsonl")), &text))
        .collect();
    let opts = ReadOptions {
        has_header: false,
        max_line: DEFAULT_MAX_LINE_LENGTH,
        chunk: CHUNK_SIZE,
    };
    let mut stream = stream_of(move |tx, pool| read_splits(splits, opts, tx, pool));
    let (mut records, mut most) = (0, 0);
    while let Some(batch) = stream.next_batch().await.expect("batch") {
        records += batch.len();
        most = most.max(stream.live_slots());
    }
    assert_eq!(records, 40 * DEFAULT_BATCH_SIZE);
    assert!(most <= 1, "the state of {most} files held at once");
    assert_eq!(stream.live_slots(), 0);
}

#[tokio::test(flavor = "current_thread")]
async fn lines_that_make_no_records_do_not_keep_other_tasks_waiting() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.jsonl");
    // Bad and blank lines, one read chunk of them, then one record.
    let bad = 60_000;
    let mut text = "x\n\n \r\n".repeat(bad as usize);
    text.push_str("7\n");
    std::fs::write(&path, text).expect("write");
    let ctx = TaskContext::standalone("src", 0, 1);
    let mut src = JsonLinesSource::<u32>::new(&path).on_bad_line(BadRecordPolicy::Drop);
    let mut stream = brook_core::open_in_context(&mut src, &ctx).expect("open");

    // A task that notes how far the source is each time it gets to run.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    tasks.spawn({
        let (seen, stop, ctx) = (seen.clone(), stop.clone(), ctx.clone());
        async move {
            while !stop.load(Relaxed) {
                let dropped = counter(&ctx, "dropped");
                seen.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(dropped);
                tokio::task::yield_now().await;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(60), stream.next())
        .await
        .expect("in time")
        .expect("a batch")
        .expect("no error");
    let first = first.into_batch().expect("a batch");
    assert_eq!(first.into_iter().map(|r| r.value).collect::<Vec<_>>(), [7]);
    assert_eq!(counter(&ctx, "dropped"), bad);
    stop.store(true, Relaxed);
    tasks.join_all().await;
    let seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    let midway: BTreeSet<u64> = seen.iter().copied().filter(|&d| d > 0 && d < bad).collect();
    assert!(
        midway.len() >= 2,
        "the other task ran only with {midway:?} lines dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_written_before_an_error_ends_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("a.jsonl"), "bad\n".repeat(100)).expect("write");
    let gone = dir.path().join("b.jsonl");
    std::fs::write(&gone, "1\n").expect("write");
    let sink = CollectSink::<DeadLetter>::new();
    let letters = sink.handle();
    let ctx = TaskContext::standalone("src", 0, 1);
    let mut src =
        JsonLinesSource::<u32>::new(dir.path()).on_bad_line(BadRecordPolicy::dead_letter(sink));
    let mut stream = brook_core::open_in_context(&mut src, &ctx).expect("open");
    // Listed, then gone before it is read.
    std::fs::remove_file(&gone).expect("remove");
    let mut failed = None;
    while let Some(batch) = stream.next().await {
        if let Err(e) = batch {
            failed = Some(e);
            break;
        }
    }
    let err = failed.expect("b.jsonl cannot be opened");
    assert!(err.to_string().contains("b.jsonl"), "{err}");
    assert_eq!(letters.len(), 100);
    assert_eq!(counter(&ctx, "dead_lettered"), 100);
}

/// Reads a stream to its end or first error.
async fn drain(stream: &mut LineStream<u32, Json>) -> (Vec<u32>, Result<()>) {
    let mut values = Vec::new();
    loop {
        match stream.next_batch().await {
            Ok(Some(batch)) => values.extend(batch.into_iter().map(|r| r.value)),
            Ok(None) => return (values, Ok(())),
            Err(e) => return (values, Err(e)),
        }
    }
}

/// Sends the start of `file` and a chunk of its lines.
fn start(tx: &Tx, file: &Arc<FileEntry>, lines: &str) {
    let start = Msg::Start {
        slot: 0,
        file: file.clone(),
        header: None,
        lines_before: Some(0),
    };
    let chunk = Msg::Chunk {
        slot: 0,
        offset: 0,
        data: lines.as_bytes().to_vec(),
    };
    for msg in [start, chunk] {
        tx.blocking_send(Ok(msg)).expect("stream is there");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_stops_early_fails_the_stream_naming_the_file() {
    let file = Arc::new(FileEntry::new("logs/app.jsonl".into(), 100));
    // Without `Msg::Done`: it returned early.
    let early = file.clone();
    let mut stream = stream_of(move |tx, _| start(&tx, &early, "1\n2\n"));
    let (values, result) = drain(&mut stream).await;
    assert_eq!(values, [1, 2]);
    let err = result.expect_err("not a normal end");
    assert!(matches!(err, Error::Internal(_)), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("logs/app.jsonl") && message.contains("early"),
        "{message}"
    );

    // It panicked.
    let mut stream = stream_of(move |tx, _| {
        start(&tx, &file, "3\n");
        panic!("reader bug");
    });
    let (values, result) = drain(&mut stream).await;
    assert_eq!(values, [3]);
    let message = result.expect_err("not a normal end").to_string();
    assert!(
        message.contains("logs/app.jsonl") && message.contains("panicked: reader bug"),
        "{message}"
    );

    // With it: a normal end.
    let mut stream = stream_of(move |tx, _| {
        tx.blocking_send(Ok(Msg::Done)).expect("stream is there");
    });
    let (values, result) = drain(&mut stream).await;
    assert!(values.is_empty());
    result.expect("a normal end");
}
