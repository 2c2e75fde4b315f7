//! Bad-line policies: fail, drop and dead-letter, with the counts adding up.

use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Batch, Error, Result, Sink, SinkContext, SinkWriter};

use super::{contexts, counter, read_with};
use crate::CollectSink;
use crate::file::{BadRecordPolicy, DeadLetter, JsonLinesSource};

#[derive(Debug, serde::Deserialize)]
struct N {
    n: u32,
}

/// A JSON-lines file with blank lines, mixed line endings and bad lines.
struct Sample {
    text: String,
    good: Vec<u32>,
    /// `(line, offset, raw)` of every bad line.
    bad: Vec<(u64, u64, String)>,
    non_blank: usize,
}

fn sample(n: u32, is_bad: impl Fn(u32) -> bool) -> Sample {
    let mut s = Sample {
        text: String::new(),
        good: Vec::new(),
        bad: Vec::new(),
        non_blank: 0,
    };
    for i in 0..n {
        let offset = s.text.len() as u64;
        let line = if i % 7 == 3 {
            String::new()
        } else if is_bad(i) {
            let raw = format!("{{\"n\": bad{i}");
            s.bad.push((u64::from(i) + 1, offset, raw.clone()));
            raw
        } else {
            s.good.push(i);
            format!("{{\"n\":{i}}}")
        };
        s.non_blank += usize::from(!line.is_empty());
        s.text.push_str(&line);
        s.text.push_str(if i % 2 == 0 { "\r\n" } else { "\n" });
    }
    s
}

fn write(dir: &Path, s: &Sample) -> std::path::PathBuf {
    let path = dir.join("mixed.jsonl");
    std::fs::write(&path, &s.text).expect("write");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fail_names_the_file_and_absolute_line_in_a_later_split() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sample(60, |i| i == 46);
    let path = write(dir.path(), &s);
    let mut src = JsonLinesSource::<N>::new(&path).split_size(1);
    let results = read_with(&mut src, &contexts(3)).await;
    let failed: Vec<usize> = (0..3).filter(|&i| results[i].is_err()).collect();
    // The bad line is read by an instance whose range starts mid-file.
    assert_eq!(failed.len(), 1);
    assert_ne!(failed[0], 0);
    let Some(Err(err)) = results.into_iter().nth(failed[0]) else {
        panic!("no error");
    };
    let Error::BadRecord { location, reason } = &err else {
        panic!("not a bad record: {err}");
    };
    assert_eq!(location, &format!("{}:47", path.display()));
    assert!(!reason.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_skips_and_counts_bad_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sample(3000, |i| i % 10 == 5);
    let path = write(dir.path(), &s);
    let ctxs = contexts(2);
    let mut src = JsonLinesSource::<N>::new(&path)
        .split_size(1)
        .on_bad_line(BadRecordPolicy::Drop);
    let results = read_with(&mut src, &ctxs).await;
    let mut good: Vec<u32> = results
        .into_iter()
        .flat_map(|r| r.expect("read"))
        .map(|v| v.n)
        .collect();
    good.sort();
    assert_eq!(good, s.good);
    let dropped: u64 = ctxs.iter().map(|c| counter(c, "dropped")).sum();
    assert_eq!(dropped as usize, s.bad.len());
    assert_eq!(good.len() + dropped as usize, s.non_blank);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_carry_the_raw_line_and_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    // More bad lines than a batch holds.
    let s = sample(5000, |i| i % 2 == 1);
    assert!(s.bad.len() > 2 * brook_core::dataflow::DEFAULT_BATCH_SIZE);
    let path = write(dir.path(), &s);
    let ctxs = contexts(3);
    let sink = CollectSink::<DeadLetter>::new();
    let letters = sink.handle();
    let mut src = JsonLinesSource::<N>::new(&path)
        .split_size(1)
        .on_bad_line(BadRecordPolicy::dead_letter(sink));
    let results = read_with(&mut src, &ctxs).await;
    let good: usize = results.into_iter().map(|r| r.expect("read").len()).sum();
    assert_eq!(good, s.good.len());

    let mut dead = letters.values();
    dead.sort_by_key(|d| d.line);
    let got: Vec<(u64, u64, String)> = dead
        .iter()
        .map(|d| (d.line, d.offset, d.raw.clone()))
        .collect();
    assert_eq!(got, s.bad);
    let source = path.display().to_string();
    assert!(
        dead.iter()
            .all(|d| d.source == source && !d.reason.is_empty())
    );
    let counted: u64 = ctxs.iter().map(|c| counter(c, "dead_lettered")).sum();
    assert_eq!(counted as usize, dead.len());
    assert_eq!(good + dead.len(), s.non_blank);
}

/// Counts the writers opened and closed.
#[derive(Clone, Default)]
struct Lifecycle(Arc<Mutex<(usize, usize, usize)>>);

impl Lifecycle {
    fn get(&self) -> (usize, usize, usize) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Sink<DeadLetter> for Lifecycle {
    type Writer = Lifecycle;
    fn open(&mut self, _ctx: &SinkContext) -> Result<Lifecycle> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).0 += 1;
        Ok(self.clone())
    }
}

impl SinkWriter<DeadLetter> for Lifecycle {
    async fn write(&mut self, batch: Batch<DeadLetter>) -> Result<()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).1 += batch.len();
        Ok(())
    }

    async fn close(&mut self) -> Result<()> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).2 += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_instance_opens_and_closes_its_dead_letter_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = sample(100, |i| i % 3 == 0);
    let path = write(dir.path(), &s);
    let sink = Lifecycle::default();
    let mut src = JsonLinesSource::<N>::new(&path)
        .split_size(1)
        .on_bad_line(BadRecordPolicy::dead_letter(sink.clone()));
    let results = read_with(&mut src, &contexts(4)).await;
    assert!(results.iter().all(Result::is_ok));
    assert_eq!(sink.get(), (4, s.bad.len(), 4));
}

/// A line that is not UTF-8 is bad alone: the lines around it, non-ASCII
/// text included, read as they are, whether a chunk holds many lines or
/// one, and whether it is checked for UTF-8 as a whole or line by line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_utf8_is_bad_alone() {
    #[derive(Debug, serde::Deserialize)]
    struct S {
        s: String,
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("text.jsonl");
    let (mut bytes, mut good, mut bad) = (Vec::new(), Vec::new(), 0);
    for i in 0..400 {
        if i % 37 == 5 {
            bytes.extend_from_slice(b"{\"s\":\"caf\xff\"}\n");
            bad += 1;
        } else {
            let s = format!("caf\u{e9}-{i}-\u{df}\u{1f600}");
            bytes.extend_from_slice(format!("{{\"s\":\"{s}\"}}\n").as_bytes());
            good.push(s);
        }
    }
    std::fs::write(&path, &bytes).expect("write");
    good.sort();
    for chunk in [1 << 20, 64, 7] {
        let ctxs = contexts(2);
        let mut src = JsonLinesSource::<S>::new(&path)
            .chunk_size(chunk)
            .on_bad_line(BadRecordPolicy::Drop);
        let mut got: Vec<String> = read_with(&mut src, &ctxs)
            .await
            .into_iter()
            .flat_map(|r| r.expect("read"))
            .map(|v| v.s)
            .collect();
        got.sort();
        assert_eq!(got, good, "chunks of {chunk} bytes");
        let dropped: u64 = ctxs.iter().map(|c| counter(c, "dropped")).sum();
        assert_eq!(dropped, bad, "chunks of {chunk} bytes");

        let mut src = JsonLinesSource::<S>::new(&path).chunk_size(chunk);
        let results = read_with(&mut src, &contexts(1)).await;
        let Some(Err(Error::BadRecord { location, reason })) = results.into_iter().next() else {
            panic!("the line that is not UTF-8 was read (chunks of {chunk} bytes)");
        };
        assert_eq!(location, format!("{}:6", path.display()));
        assert!(reason.contains("invalid utf-8"), "{reason}");
    }
}

/// Counts the lines a text decoder is given as bytes and as text.
#[derive(Clone, Default)]
struct CountingText(Arc<Mutex<(usize, usize)>>);

impl crate::codec::Decoder<String> for CountingText {
    type State = ();

    fn start(&self, _header: Option<&[u8]>) -> std::result::Result<(), brook_core::BoxError> {
        Ok(())
    }

    fn decode(
        &self,
        _: &mut (),
        bytes: &[u8],
    ) -> std::result::Result<String, brook_core::BoxError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).0 += 1;
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }

    fn is_text(&self) -> bool {
        true
    }

    fn decode_text(
        &self,
        _: &mut (),
        text: &str,
    ) -> std::result::Result<String, brook_core::BoxError> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).1 += 1;
        Ok(text.to_owned())
    }
}

/// The lines of a chunk that is all UTF-8 reach `decode_text`, unchecked
/// again; only those of a chunk that is not go to `decode`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_chunks_are_decoded_as_text() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("text.txt");
    let lines: Vec<String> = (0..100).map(|i| format!("line {i} \u{e9}")).collect();
    let text = lines.join("\n") + "\n";
    // One line that is not UTF-8 at the end the second time: with a line
    // per chunk, it alone goes to `decode`, and fails there.
    for (bad, chunk, calls) in [(false, 1 << 20, (0, 100)), (true, 1, (1, 100))] {
        let mut bytes = text.clone().into_bytes();
        if bad {
            bytes.extend_from_slice(b"\xff\n");
        }
        std::fs::write(&path, bytes).expect("write");
        let codec = CountingText::default();
        let mut src = crate::file::FileSource::with_codec(&path, codec.clone())
            .chunk_size(chunk)
            .on_bad_line(BadRecordPolicy::Drop);
        let got: usize = read_with(&mut src, &contexts(2))
            .await
            .into_iter()
            .map(|r| r.expect("read").len())
            .sum();
        assert_eq!(got, 100);
        let counted = *codec.0.lock().unwrap_or_else(PoisonError::into_inner);
        assert_eq!(counted, calls, "decode and decode_text calls");
    }
}
