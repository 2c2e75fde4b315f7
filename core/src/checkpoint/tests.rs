//! Checkpoints end to end in one process: a job is dropped mid-run (as a
//! crash would end it) after some checkpoints completed, and a job built
//! again from the same directory resumes: every record reaches the sink
//! exactly once, and operator state continues where it was.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use futures::stream;

use crate::prelude::*;
use crate::state::{RestoredState, Snapshot};
use crate::{CheckpointConfig, CheckpointId, Restore};

/// Numbers `0..n`, in splits of 100, each resumable at its next number.
#[derive(Clone)]
struct Numbers {
    n: u64,
    /// A pause after each batch, so the job is still running when dropped.
    pause: Duration,
}

#[derive(Debug, Clone)]
struct Range {
    start: u64,
    end: u64,
    next: u64,
}

impl SourceSplit for Range {
    type Position = u64;

    fn id(&self) -> SplitId {
        SplitId::new(format!("{}..{}", self.start, self.end))
    }

    fn start(&self) -> u64 {
        self.start
    }

    const RESUMABLE: bool = true;

    fn resume(&mut self, position: u64) {
        self.next = position;
    }
}

impl Source<u64> for Numbers {
    type Split = Range;

    fn plan(&mut self, _ctx: &PlanContext) -> Result<Vec<Range>> {
        Ok((0..self.n.div_ceil(100))
            .map(|i| Range {
                start: i * 100,
                end: ((i + 1) * 100).min(self.n),
                next: i * 100,
            })
            .collect())
    }

    fn open(&mut self, _ctx: &SourceContext, splits: Vec<Range>) -> Result<BoxedSourceStream<u64>> {
        let pause = self.pause;
        let events = splits.into_iter().enumerate().flat_map(move |(i, s)| {
            (s.next..s.end).step_by(10).map(move |from| {
                let to = (from + 10).min(s.end);
                let batch: Batch<u64> = (from..to).map(|v| Record::new(v as i64, v)).collect();
                SourceEvent::batch_at(batch, [(i, to)])
            })
        });
        Ok(stream::iter(events)
            .then(move |e| async move {
                tokio::time::sleep(pause).await;
                Ok(e)
            })
            .boxed())
    }
}

/// Keeps the odd numbers, or the even ones.
#[derive(Clone)]
struct Parity(u64);

impl Operator<u64, u64> for Parity {
    fn process(&mut self, batch: Batch<u64>, out: &mut Collector<u64>) -> Result<()> {
        for r in batch {
            if r.value % 2 == self.0 {
                out.emit(r.timestamp, r.value);
            }
        }
        Ok(())
    }
}

/// What reaches the sink: the numbers, and each tally instance's count at
/// its end.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum Out {
    Value(u64),
    Count(u64),
}

/// Passes numbers on and counts them; its count is its state.
#[derive(Clone, Default)]
struct Tally(u64);

impl Operator<u64, Out> for Tally {
    fn process(&mut self, batch: Batch<u64>, out: &mut Collector<Out>) -> Result<()> {
        for r in batch {
            self.0 += 1;
            out.emit(r.timestamp, Out::Value(r.value));
        }
        Ok(())
    }

    fn snapshot(&self) -> Result<Option<Snapshot>> {
        Snapshot::new().instance(&self.0).map(Some)
    }

    fn restore(&mut self, state: &RestoredState) -> Result<()> {
        // The tests restore at the same parallelism: one count, its own.
        self.0 = state.instances::<u64>()?.into_iter().sum();
        Ok(())
    }

    fn on_end(&mut self, out: &mut Collector<Out>) -> Result<()> {
        out.emit(NO_TIMESTAMP, Out::Count(self.0));
        Ok(())
    }
}

/// What the two-phase sink published, shared with the test.
#[derive(Debug, Default)]
struct Published {
    values: Vec<Out>,
    /// Written after the last checkpoint, published by `finish`.
    last: Vec<Out>,
    commits: Vec<CheckpointId>,
}

/// A sink that publishes what its writers pre-committed when a checkpoint
/// completes.
#[derive(Clone, Default)]
struct TwoPhase(Arc<Mutex<Published>>);

struct TwoPhaseWriter {
    buf: Vec<Out>,
    shared: Arc<Mutex<Published>>,
}

impl Sink<Out> for TwoPhase {
    type Writer = TwoPhaseWriter;

    fn open(&mut self, _ctx: &SinkContext) -> Result<TwoPhaseWriter> {
        Ok(TwoPhaseWriter {
            buf: Vec::new(),
            shared: self.0.clone(),
        })
    }

    fn commit(&mut self, checkpoint: CheckpointId, pre: &[Vec<u8>]) -> Result<()> {
        let mut p = self.0.lock().expect("lock");
        p.commits.push(checkpoint);
        for bytes in pre {
            p.values.extend(crate::state::decode::<Vec<Out>>(bytes)?);
        }
        Ok(())
    }

    fn restore(&mut self, checkpoint: CheckpointId, pre: &[Vec<u8>]) -> Result<()> {
        // Published unless the commit ran before the crash.
        if self.0.lock().expect("lock").commits.contains(&checkpoint) {
            return Ok(());
        }
        self.commit(checkpoint, pre)
    }

    fn finish(&mut self, outcome: JobOutcome) -> Result<()> {
        let mut p = self.0.lock().expect("lock");
        if outcome == JobOutcome::Completed {
            let last = std::mem::take(&mut p.last);
            p.values.extend(last);
        }
        Ok(())
    }
}

impl SinkWriter<Out> for TwoPhaseWriter {
    async fn write(&mut self, batch: Batch<Out>) -> Result<()> {
        self.buf.extend(batch.into_iter().map(|r| r.value));
        Ok(())
    }

    async fn checkpoint(&mut self, _id: CheckpointId) -> Result<Option<Vec<u8>>> {
        let buf = std::mem::take(&mut self.buf);
        (!buf.is_empty())
            .then(|| crate::state::encode(&buf))
            .transpose()
    }

    async fn close(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.buf);
        self.shared.lock().expect("lock").last.extend(buf);
        Ok(())
    }
}

fn job(dir: &std::path::Path, sink: TwoPhase, n: u64, restore: Restore) -> Job {
    try_job(dir, sink, n, restore).expect("build")
}

fn try_job(dir: &std::path::Path, sink: TwoPhase, n: u64, restore: Restore) -> Result<Job> {
    try_job_at(
        CheckpointConfig::new(dir)
            .interval(Duration::from_millis(15))
            .retain(2)
            .restore(restore),
        sink,
        n,
    )
}

fn try_job_at(checkpoints: CheckpointConfig, sink: TwoPhase, n: u64) -> Result<Job> {
    let mut flow = Dataflow::with_config(
        "checkpointed",
        JobConfig {
            parallelism: 2,
            batch_size: 16,
            channel_capacity: 4,
            chaining: true,
        },
    );
    flow.set_checkpoints(checkpoints);
    let numbers = flow.source(
        "numbers",
        Numbers {
            n,
            pause: Duration::from_millis(1),
        },
    );
    // A union of two branches (alignment over several inputs), a keyed
    // exchange to three instances, state in `tally`.
    let odd = numbers.process("odd", Parity(1));
    let even = numbers.process("even", Parity(0));
    odd.union("both", &[&even])
        .key_by(|v| *v % 7)
        .process("tally", Tally::default())
        .parallelism(3)
        .sink("out", sink);
    flow.build()
}

/// The complete checkpoints in `dir`.
fn complete(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.path().join(super::storage::MANIFEST).is_file())
                .count()
        })
        .unwrap_or(0)
}

/// Runs a job from `dir` until `more` checkpoints completed, then drops
/// it, as a crash would end it.
async fn crash_after(dir: &std::path::Path, sink: &TwoPhase, n: u64, more: usize) {
    crash_job_after(
        job(dir, sink.clone(), n, Restore::Latest),
        Some(dir),
        sink,
        n,
        more,
    )
    .await;
}

/// Waits until no job holds `dir`'s checkpoint lock: a dropped job's tasks
/// end, and a checkpoint it was writing finishes, after the drop returns
/// (a process that died would write nothing more).
async fn released(dir: &std::path::Path) {
    tokio::time::timeout(Duration::from_secs(30), async {
        while super::in_use(dir).expect("probe") {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("the dropped job let go of its checkpoint directory");
}

/// Runs `job` until `more` checkpoints completed, then drops it, and
/// waits for what it was still doing to end: until it lets go of its
/// local checkpoint directory `dir`, or 100 ms in an object store (which
/// has no lock to watch).
async fn crash_job_after(
    job: Job,
    dir: Option<&std::path::Path>,
    sink: &TwoPhase,
    n: u64,
    more: usize,
) {
    let commits = sink.0.lock().expect("lock").commits.len();
    let running = job.start(CancellationToken::new()).expect("start");
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while sink.0.lock().expect("lock").commits.len() < commits + more {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "no {more} checkpoints in 30 s");
    drop(running);
    match dir {
        Some(dir) => released(dir).await,
        None => tokio::time::sleep(Duration::from_millis(100)).await,
    }
    let mut p = sink.0.lock().expect("lock");
    assert!(
        p.values.len() < n as usize,
        "the job ended before the crash"
    );
    // What the crash left unpublished is lost with the process.
    p.last.clear();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_dropped_mid_run_twice_resumes_with_every_record_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ck");
    let n = 4_000;
    let sink = TwoPhase::default();
    // Twice: the second run's checkpoints must keep the positions of
    // splits it did not touch (finished before the first crash).
    crash_after(&dir, &sink, n, 2).await;
    crash_after(&dir, &sink, n, 2).await;

    let second = job(&dir, sink.clone(), n, Restore::Latest);
    run_restored(second, &sink, n).await;
    // A completed job leaves nothing to resume.
    assert_eq!(complete(&dir), 0);
}

/// Runs a restored job to its end and checks that the sink published
/// every number once and the tallies add up.
async fn run_restored(job: Job, sink: &TwoPhase, n: u64) {
    let restored = job.restored_from().expect("restores");
    tokio::time::timeout(Duration::from_secs(60), job.run(CancellationToken::new()))
        .await
        .expect("the restored job hung")
        .expect("the restored job");
    let p = sink.0.lock().expect("lock");
    let mut values: Vec<u64> = p
        .values
        .iter()
        .filter_map(|o| match o {
            Out::Value(v) => Some(*v),
            Out::Count(_) => None,
        })
        .collect();
    values.sort_unstable();
    if values != (0..n).collect::<Vec<_>>() {
        let mut dups = values.clone();
        dups.dedup();
        let missing: Vec<u64> = (0..n)
            .filter(|v| values.binary_search(v).is_err())
            .collect();
        panic!(
            "restored from {restored} (commits {:?}): {} values, {} distinct, missing {:?}",
            p.commits,
            values.len(),
            dups.len(),
            &missing[..missing.len().min(20)]
        );
    }
    // Each tally instance's count went on from its restored state: they add
    // up to every number once.
    let counts: u64 = p
        .values
        .iter()
        .filter_map(|o| match o {
            Out::Count(c) => Some(*c),
            Out::Value(_) => None,
        })
        .sum();
    assert_eq!(counts, n);
}

/// Checkpoints in an object store (`object_store`'s in-memory store, as
/// S3 would hold them): the layout is the directory's, a job dropped
/// mid-run resumes from the store's newest checkpoint with every record
/// once, and a completed job leaves none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_in_an_object_store_resume_a_dropped_job_exactly() {
    use futures::TryStreamExt;
    use object_store::ObjectStore;

    let store: Arc<dyn ObjectStore> = Arc::new(object_store::memory::InMemory::new());
    let prefix = object_store::path::Path::from("jobs/numbers");
    let at = || {
        CheckpointConfig::object_store(store.clone(), "jobs/numbers")
            .interval(Duration::from_millis(15))
            .retain(2)
    };
    let listed = || async {
        store
            .list(Some(&prefix))
            .map_ok(|o| o.location.to_string())
            .try_collect::<Vec<_>>()
            .await
            .expect("lists")
    };
    let n = 4_000;
    let sink = TwoPhase::default();
    crash_job_after(
        try_job_at(at(), sink.clone(), n).expect("build"),
        None,
        &sink,
        n,
        2,
    )
    .await;
    let objects = listed().await;
    assert!(
        objects
            .iter()
            .any(|p| p.starts_with("jobs/numbers/chk-") && p.ends_with("/_manifest.json")),
        "{objects:?}"
    );
    assert!(
        objects.iter().any(|p| p.ends_with("/tally/2")),
        "each instance's state at <node>/<instance>: {objects:?}"
    );
    let second = try_job_at(at(), sink.clone(), n).expect("build");
    run_restored(second, &sink, n).await;
    let left = listed().await;
    assert!(
        left.iter().all(|p| !p.contains("/chk-")),
        "a completed job leaves no checkpoint: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_checkpoints_are_skipped_and_a_named_one_must_exist() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ck");
    let sink = TwoPhase::default();
    let running = job(&dir, sink.clone(), 4_000, Restore::Latest)
        .start(CancellationToken::new())
        .expect("start");
    tokio::time::timeout(Duration::from_secs(30), async {
        while complete(&dir) < 2 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    })
    .await
    .expect("two checkpoints");
    drop(running);
    released(&dir).await;
    let mut ids: Vec<u64> = std::fs::read_dir(&dir)
        .expect("dir")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join(super::storage::MANIFEST).is_file())
        .filter_map(|e| e.file_name().to_str()?.strip_prefix("chk-")?.parse().ok())
        .collect();
    ids.sort_unstable();
    let (older, newest) = (ids[ids.len() - 2], ids[ids.len() - 1]);
    // Damage the newest: its manifest no longer parses.
    let manifest = dir
        .join(format!("chk-{newest:06}"))
        .join(super::storage::MANIFEST);
    std::fs::write(&manifest, b"{ not json").expect("damage");
    let again = job(&dir, TwoPhase::default(), 4_000, Restore::Latest);
    assert_eq!(again.restored_from(), Some(older));
    drop(again);
    // A state file cut short is damage too.
    let tally = dir.join(format!("chk-{older:06}")).join("tally").join("0");
    assert!(tally.is_file(), "tally's state file");
    std::fs::write(&tally, b"").expect("truncate");
    let err = try_job(&dir, TwoPhase::default(), 4_000, Restore::Checkpoint(older))
        .expect_err("a damaged named checkpoint fails the build");
    assert!(err.to_string().contains("tally"), "{err}");
    // The one named must exist.
    let err = try_job(&dir, TwoPhase::default(), 4_000, Restore::Checkpoint(999))
        .expect_err("no checkpoint 999");
    assert!(err.to_string().contains("999"), "{err}");
    // Starting fresh ignores them, numbering new ones after.
    let fresh = job(&dir, TwoPhase::default(), 4_000, Restore::Fresh);
    assert_eq!(fresh.restored_from(), None);
}

#[test]
fn a_checkpoint_directory_is_in_use_while_a_job_holds_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("ck");
    assert!(!super::in_use(&dir).expect("no directory yet"));
    let held = job(&dir, TwoPhase::default(), 10, Restore::Latest);
    assert!(super::in_use(&dir).expect("probe"));
    // Probing takes nothing: a second probe sees the same.
    assert!(super::in_use(&dir).expect("probe"));
    drop(held);
    assert!(!super::in_use(&dir).expect("probe"));
    let again = job(&dir, TwoPhase::default(), 10, Restore::Latest);
    assert!(super::in_use(&dir).expect("probe"));
    drop(again);
}
