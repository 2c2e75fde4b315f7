//! File sources run inside jobs: parallel reads, bad-line policies and
//! follow mode.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use brook::prelude::*;

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
struct Event {
    id: u32,
    user: String,
}

/// Writes `n` events, one per line, with a blank line now and then and
/// every `bad`-th line broken (none when `bad` is 0). Returns the good ids
/// and the number of bad lines.
fn write_events(path: &Path, n: u32, bad: u32) -> (Vec<u32>, usize) {
    let (mut text, mut good, mut bad_lines) = (String::new(), Vec::new(), 0);
    for id in 0..n {
        if bad > 0 && id % bad == bad - 1 {
            text.push_str(&format!("{{\"id\": {id}, \"user\": \n"));
            bad_lines += 1;
        } else {
            text.push_str(&format!("{{\"id\":{id},\"user\":\"u{}\"}}\n", id % 7));
            good.push(id);
        }
        if id % 100 == 0 {
            text.push('\n');
        }
    }
    std::fs::write(path, text).expect("write");
    (good, bad_lines)
}

fn events_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("events.jsonl")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reads_every_line_once_at_any_parallelism() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    let (expected, _) = write_events(&path, 10_000, 0);
    for p in [1, 2, 4] {
        let mut flow = Dataflow::new("read");
        flow.set_parallelism(p);
        let out = CollectSink::new();
        let got = out.handle();
        flow.source("src", JsonLinesSource::<Event>::new(&path).split_size(4096))
            .sink("collect", out);
        let job = flow.build().expect("build");
        assert_eq!(job.parallelism_of("src"), Some(p));
        job.run(CancellationToken::new()).await.expect("run");
        let mut ids: Vec<u32> = got.values().into_iter().map(|e| e.id).collect();
        ids.sort();
        assert_eq!(ids, expected, "parallelism {p}");
        assert!(got.records().iter().all(|r| r.timestamp == NO_TIMESTAMP));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_line_fails_the_job_naming_the_source_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    // One bad line, id 699, in the second instance's half: line 707, after
    // the blank lines that follow ids 0, 100, .., 600.
    write_events(&path, 1000, 700);
    let mut flow = Dataflow::new("fail");
    flow.set_parallelism(2);
    flow.source("src", JsonLinesSource::<Event>::new(&path).split_size(1024))
        .map("ids", |e| e.id)
        .sink("collect", CollectSink::new());
    let err = flow
        .build()
        .expect("build")
        .run(CancellationToken::new())
        .await
        .expect_err("the job fails");
    assert_eq!(err.node(), Some("src"));
    let message = err.to_string();
    assert!(
        message.contains(&format!("{}:707", path.display())),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_lines_are_counted_in_the_job_metrics() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    let (good, bad) = write_events(&path, 5000, 9);
    let mut flow = Dataflow::new("drop");
    flow.set_parallelism(4);
    let out = CollectSink::new();
    let got = out.handle();
    let src = JsonLinesSource::<Event>::new(&path)
        .split_size(1024)
        .on_bad_line(BadRecordPolicy::Drop);
    flow.source("src", src).sink("collect", out);
    let job = flow.build().expect("build");
    let metrics = job.metrics();
    job.run(CancellationToken::new()).await.expect("run");
    let snapshot = metrics.snapshot();
    let total = snapshot.node("src").expect("src metrics").total;
    assert_eq!(total.dropped as usize, bad);
    assert_eq!(got.len(), good.len());
    assert_eq!(got.len() + total.dropped as usize, 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_lines_go_to_a_dead_letter_sink() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    let (good, bad) = write_events(&path, 5000, 4);
    let mut flow = Dataflow::new("dead-letter");
    flow.set_parallelism(3);
    let out = CollectSink::new();
    let got = out.handle();
    let dead = CollectSink::<DeadLetter>::new();
    let letters = dead.handle();
    let src = JsonLinesSource::<Event>::new(&path)
        .split_size(1024)
        .on_bad_line(BadRecordPolicy::dead_letter(dead));
    flow.source("src", src).sink("collect", out);
    let job = flow.build().expect("build");
    let metrics = job.metrics();
    job.run(CancellationToken::new()).await.expect("run");
    let letters = letters.values();
    assert_eq!(letters.len(), bad);
    let source = path.display().to_string();
    for letter in &letters {
        assert_eq!(letter.source, source);
        assert!(letter.raw.starts_with("{\"id\": "), "{letter:?}");
        assert!(!letter.reason.is_empty());
    }
    let total = metrics.snapshot().node("src").expect("src metrics").total;
    assert_eq!(total.dead_lettered as usize, bad);
    assert_eq!(got.len(), good.len());
    assert_eq!(got.len() + letters.len(), 5000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_follow_job_reads_appended_lines_until_cancelled() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    write_events(&path, 10, 0);
    let mut flow = Dataflow::new("follow");
    flow.set_parallelism(2);
    let out = CollectSink::new();
    let got = out.handle();
    let src = JsonLinesSource::<Event>::new(&path)
        .follow(true)
        .poll_interval(Duration::from_millis(20));
    flow.source("src", src).sink("collect", out);
    let job = flow.build().expect("build");
    let token = CancellationToken::new();

    let drive = async {
        let wait_for = |n: usize| {
            let got = got.clone();
            async move {
                // A deadline, not a count of polls: a loaded machine polls
                // less often.
                let deadline = std::time::Instant::now() + Duration::from_secs(30);
                while std::time::Instant::now() < deadline {
                    if got.len() >= n {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                panic!("only {} of {n} records arrived", got.len());
            }
        };
        wait_for(10).await;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open");
        for id in 10..20 {
            let line = format!("{{\"id\":{id},\"user\":\"late\"}}\n");
            file.write_all(line.as_bytes()).expect("append");
        }
        // A line written in two parts arrives once, whole.
        file.write_all(b"{\"id\":20,").expect("append");
        file.flush().expect("flush");
        tokio::time::sleep(Duration::from_millis(100)).await;
        file.write_all(b"\"user\":\"split\"}\n").expect("append");
        wait_for(21).await;
        token.cancel();
    };
    let (result, ()) = tokio::join!(job.run(token.clone()), drive);
    result.expect("the job ends cleanly when cancelled");
    let mut ids: Vec<u32> = got.values().into_iter().map(|e| e.id).collect();
    ids.sort();
    assert_eq!(ids, (0..21).collect::<Vec<_>>());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_long_lines_are_bad_lines_in_a_job() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = events_path(&dir);
    let (good, _) = write_events(&path, 2000, 0);
    // Two lines far over the limit, one of them the unfinished last line.
    let long = format!("{{\"id\":9999,\"user\":\"{}\"}}", "z".repeat(10_000));
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .expect("open");
    write!(file, "{long}\n{long}").expect("append");
    drop(file);

    let run = |policy: BadRecordPolicy| {
        let mut flow = Dataflow::new("long-lines");
        flow.set_parallelism(2);
        let out = CollectSink::new();
        let got = out.handle();
        let src = JsonLinesSource::<Event>::new(&path)
            .split_size(4096)
            .max_line_length(256)
            .on_bad_line(policy);
        flow.source("src", src).sink("collect", out);
        let job = flow.build().expect("build");
        (job, got)
    };
    let (job, got) = run(BadRecordPolicy::Drop);
    let metrics = job.metrics();
    job.run(CancellationToken::new()).await.expect("run");
    let total = metrics.snapshot().node("src").expect("src metrics").total;
    assert_eq!(total.dropped, 2);
    assert_eq!(got.len(), good.len());

    let (job, _) = run(BadRecordPolicy::Fail);
    let err = job
        .run(CancellationToken::new())
        .await
        .expect_err("the job fails");
    let message = err.to_string();
    // 2000 events and 20 blank lines before it.
    assert!(
        message.contains(&format!("{}:2021", path.display())),
        "{message}"
    );
    assert!(message.contains("256 bytes"), "{message}");
}
