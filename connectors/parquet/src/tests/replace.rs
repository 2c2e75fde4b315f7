//! A replacing sink's runs: the earlier output stays until a run succeeds,
//! only files Brook recorded are removed, and one job writes a directory
//! at a time.

use std::path::Path;

use brook_core::{InstanceSplit, PlanContext};

use super::*;
use brook_connectors::MemorySource;
use brook_connectors::output::{COMMIT_FILE, CommitRecord};

/// The published Parquet files below `dir`, relative, sorted.
fn parquet_files(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".parquet") && !f.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}

/// The hidden files below `dir` but the lock: in-progress or staged ones.
fn hidden(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|f| f.rsplit('/').next().unwrap_or("").starts_with('.'))
        .collect()
}

/// Every stat in the Parquet files named, sorted.
fn rows(dir: &Path, names: &[String]) -> Vec<Stat> {
    sorted(
        names
            .iter()
            .flat_map(|n| read::<Stat>(&dir.join(n)).values)
            .collect(),
    )
}

/// `good` stats, then a failure: a run whose input turns out bad.
struct FailsAfter(Vec<Stat>);

impl Source<Stat> for FailsAfter {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        _: &SourceContext,
        _: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<Stat>> {
        let good = std::mem::take(&mut self.0);
        let bad = Error::BadRecord {
            location: "input.jsonl:11".into(),
            reason: "expected value".into(),
        };
        Ok(stream::iter([Ok(SourceEvent::Batch(untimed(&good))), Err(bad)]).boxed())
    }

    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_replaces_the_earlier_output_only_when_it_succeeds() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let sink = || {
        ParquetSink::<Stat>::new(&out)
            .max_rows_per_file(4)
            .replace_on_success()
    };
    run(stats(10), sink(), 2).await.expect("first run");
    let first = parquet_files(&out);
    assert!(first.len() >= 3, "{first:?}");
    assert_eq!(rows(&out, &first), stats(10));
    let record = CommitRecord::read(&out).expect("read").expect("a record");
    assert_eq!(record.files, first);
    // A file another tool wrote, named much like ours.
    let foreign = "part-00000-3f2a9c1e-c000.snappy.parquet".to_string();
    std::fs::copy(out.join(&first[0]), out.join(&foreign)).expect("copy");

    // A run whose input fails at its last line.
    let flow = Dataflow::new("write");
    flow.source("values", FailsAfter(stats(7)))
        .sink("parquet", sink());
    let err = flow.build().expect("plan").run(Default::default()).await;
    assert!(err.is_err());
    // A run that cannot start: parallelism 0.
    let mut flow = Dataflow::new("write");
    flow.set_parallelism(0);
    flow.source("values", MemorySource::new(stats(3)))
        .sink("parquet", sink());
    assert!(flow.build().is_err());
    let mut left = first.clone();
    left.push(foreign.clone());
    left.sort();
    assert_eq!(parquet_files(&out), left, "a failed run changed the output");
    assert_eq!(rows(&out, &first), stats(10));

    // A run that succeeds replaces exactly the recorded files, and cleans
    // up what the failed run left hidden.
    run(stats(3), sink(), 1).await.expect("third run");
    let third = CommitRecord::read(&out)
        .expect("read")
        .expect("a record")
        .files;
    let mut expected = third.clone();
    expected.push(foreign.clone());
    expected.sort();
    assert_eq!(parquet_files(&out), expected);
    assert!(third.iter().all(|f| !first.contains(f)));
    assert_eq!(rows(&out, &third), stats(3));
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
    assert!(out.join(COMMIT_FILE).is_file());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_is_stopped_or_writes_nothing_keeps_the_earlier_output() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let sink = || ParquetSink::<Stat>::new(&out).replace_on_success();
    run(stats(6), sink(), 2).await.expect("first run");
    let first = parquet_files(&out);

    // An endless input, stopped once rows reached the sink.
    let flow = Dataflow::new("write");
    let endless = MemorySource::from_iterator((0..).map(|n| stats(1 + n % 50).remove(0)));
    flow.source("values", endless).sink("parquet", sink());
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    let running = job.start(Default::default()).expect("start");
    while metrics
        .snapshot()
        .node("parquet")
        .map_or(0, |n| n.total.records_in)
        < 5_000
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    running.shutdown();
    running.wait().await.expect("stopped cleanly");
    assert_eq!(
        parquet_files(&out),
        first,
        "a stopped run changed the output"
    );
    assert!(hidden(&out).is_empty(), "{:?}", hidden(&out));
    assert_eq!(rows(&out, &first), stats(6));

    // A run with no rows replaces nothing either.
    run(Vec::<Stat>::new(), sink(), 2).await.expect("empty run");
    assert_eq!(parquet_files(&out), first);
    assert_eq!(rows(&out, &first), stats(6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_job_into_the_same_directory_is_refused_while_the_first_holds_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let job = |name: &str| {
        let flow = Dataflow::new(name);
        flow.source("values", MemorySource::new(stats(3)))
            .sink("parquet", ParquetSink::<Stat>::new(&out));
        flow.build()
    };
    let first = job("first").expect("first job");
    let err = job("second").expect_err("a second writer");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("node 'parquet'") && msg.contains("job 'first'"),
        "{msg}"
    );
    assert!(msg.contains(&*out.to_string_lossy()), "{msg}");
    // Until the first job is gone: then the directory is free.
    first.run(Default::default()).await.expect("first runs");
    job("second").expect("free once the first job ended");
}
