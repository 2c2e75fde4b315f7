//! The CSV and JSON-lines file sinks in a job with checkpoints: exactly
//! once. A job dropped mid-run, as a crash ends it, leaves published files
//! of completed checkpoints and hidden in-progress files; the job built
//! again publishes what its checkpoint staged, drops the rest, and writes
//! every record into exactly one published file.

use std::path::Path;
use std::time::Duration;

use brook::prelude::*;
use brook_workload::generator::{GeneratedLog, LogGenerator};

use crate::support::{block_on, checkpoints_released, config};

const EVENTS: u64 = 20_000;

/// Passes batches on after a pause, so that the job is still running when
/// the test drops it.
#[derive(Clone)]
struct Pause(Duration);

impl Operator<GeneratedLog, GeneratedLog> for Pause {
    fn process(
        &mut self,
        batch: Batch<GeneratedLog>,
        out: &mut Collector<GeneratedLog>,
    ) -> Result<()> {
        std::thread::sleep(self.0);
        out.emit_batch(batch);
        Ok(())
    }
}

/// The job, pausing `pause` per batch of 64 events.
fn job(json: &Path, csv: &Path, ck: &Path, pause: Duration) -> Job {
    let mut flow = Dataflow::with_config("file-sinks", config(2));
    flow.set_checkpoints(CheckpointConfig::new(ck).interval(Duration::from_millis(10)));
    let events = flow
        .source("logs", LogGenerator::new(EVENTS, 5).batch_size(64))
        .process("pause", Pause(pause));
    events.sink("json", JsonLinesSink::<GeneratedLog>::new(json));
    events.sink("csv", CsvSink::<GeneratedLog>::new(csv));
    flow.build().expect("build")
}

/// The published part files' names in `dir`, and whether any hidden one
/// is left.
fn published(dir: &Path) -> (Vec<String>, bool) {
    let mut names = Vec::new();
    let mut hidden = false;
    for entry in std::fs::read_dir(dir).expect("list") {
        let name = entry
            .expect("entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if name.starts_with(".part-") {
            hidden = true;
        } else if name.starts_with("part-") {
            names.push(name);
        }
    }
    names.sort();
    (names, hidden)
}

/// Every published line of `dir`, without CSV headers when `header` is set.
fn lines(dir: &Path, header: Option<&str>) -> Vec<String> {
    let mut all = Vec::new();
    for name in published(dir).0 {
        let text = std::fs::read_to_string(dir.join(&name)).expect("read");
        let mut it = text.lines();
        if let Some(h) = header {
            assert_eq!(it.next(), Some(h), "{name} starts with its header");
        }
        all.extend(it.map(String::from));
    }
    all.sort();
    all
}

#[test]
fn file_sinks_publish_every_record_once_across_a_crash() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let (json, csv, ck) = (
        tmp.path().join("json"),
        tmp.path().join("csv"),
        tmp.path().join("ck"),
    );

    // First run: dropped once three checkpoints are complete. Its input
    // would take about 3 s (20 ms per batch, 2 instances), ample for three
    // checkpoints 10 ms apart, however loaded the machine.
    block_on(async {
        let running = job(&json, &csv, &ck, Duration::from_millis(20))
            .start(CancellationToken::new())
            .expect("start");
        let metrics = running.metrics().clone();
        while metrics.snapshot().checkpoints.completed < 3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        drop(running);
    });
    checkpoints_released(&ck);
    let (before, _) = published(&json);
    assert!(!before.is_empty(), "completed checkpoints published files");
    assert!(
        lines(&json, None).len() < EVENTS as usize,
        "the job was dropped before its end"
    );

    // Second run: restores and completes.
    let second = job(&json, &csv, &ck, Duration::from_millis(1));
    assert!(second.restored_from().is_some(), "it restores");
    block_on(second.run(CancellationToken::new())).expect("the restored run");

    let mut expected: Vec<String> = LogGenerator::new(EVENTS, 5)
        .iter()
        .map(|e| serde_json::to_string(&e).expect("json"))
        .collect();
    expected.sort();
    assert_eq!(lines(&json, None), expected, "every record once, in JSON");
    let header = "ts,level,service,host,status,latency_ms,message";
    assert_eq!(
        lines(&csv, Some(header)).len(),
        EVENTS as usize,
        "every row once, in CSV"
    );
    for dir in [&json, &csv] {
        let (names, hidden) = published(dir);
        assert!(!hidden, "no in-progress file is left in {}", dir.display());
        assert!(
            names.iter().all(|n| n.matches('-').count() >= 4),
            "checkpointed files are part-<i>-<run>-<seq>: {names:?}"
        );
    }
    for name in &before {
        assert!(published(&json).0.contains(name), "{name} stays published");
    }
}
