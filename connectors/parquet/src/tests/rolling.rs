//! Files roll by rows, bytes, age and inactivity, also while a job idles.

use super::*;
use brook_core::SinkContext;
use brook_core::time::{Clock, ManualClock};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_roll_by_rows_and_by_bytes_keeping_every_row_in_order() {
    let input = stats(2500);
    let tmp = tempfile::tempdir().expect("tempdir");
    let (rows, bytes) = (tmp.path().join("rows"), tmp.path().join("bytes"));
    let sink = ParquetSink::<Stat>::new(&rows)
        .max_rows_per_file(1000)
        .buffer_rows(300);
    run(input.clone(), sink, 1).await.expect("run");
    // Any byte is too many: a file rolls after each write of its buffer.
    let sink = ParquetSink::<Stat>::new(&bytes)
        .max_file_bytes(1)
        .buffer_rows(700);
    run(input.clone(), sink, 1).await.expect("run");
    for (dir, counts) in [
        (rows, vec![1000, 1000, 500]),
        (bytes, vec![700, 700, 700, 400]),
    ] {
        let all = read_all(&dir);
        let seqs: Vec<u64> = all.iter().map(|(n, _)| part_name(n).2).collect();
        assert_eq!(seqs, (0..counts.len() as u64).collect::<Vec<_>>());
        let got: Vec<usize> = all.iter().map(|(_, r)| r.values.len()).collect();
        assert_eq!(got, counts, "{}", dir.display());
        let values: Vec<Stat> = all.into_iter().flat_map(|(_, r)| r.values).collect();
        assert_eq!(values, input, "{}", dir.display());
    }
}

/// A writer of instance 0 of `sink`, opened outside a job on `clock`, and
/// its context (whose processing timer the writer asks to wake it).
fn open_on<T, S: Sink<T>>(sink: &mut S, clock: &ManualClock) -> (S::Writer, SinkContext) {
    let ctx = SinkContext::standalone("parquet", 0, 1).with_clock(clock.clock());
    let writer = sink.open(&ctx).expect("open");
    (writer, ctx)
}

fn batch(stats: &[Stat]) -> Batch<Stat> {
    untimed(stats)
}

/// The files below `dir` that are published, not hidden in progress.
fn done(dir: &Path) -> Vec<String> {
    files(dir)
        .into_iter()
        .filter(|n| !n.starts_with('.') && !n.contains("/."))
        .collect()
}

#[tokio::test]
async fn files_roll_by_age_when_the_input_idles() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let manual = ManualClock::new(T0);
    let mut sink = ParquetSink::<Stat>::new(tmp.path())
        .rollover_interval(Duration::from_millis(800))
        .inactivity_interval(None)
        .buffer_rows(4);
    let (mut w, ctx) = open_on(&mut sink, &manual);
    let input = stats(15);
    w.write(batch(&input[..10])).await.expect("write");
    w.flush().await.expect("flush");
    // Written in part, but hidden until the file rolls.
    let names = files(tmp.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with(".part-") && names[0].ends_with(".parquet.inprogress"));
    // The task is asked to wake when the file is due (rounded up to the
    // next millisecond), so that it rolls though no input comes.
    let wake = ctx.processing_timer().requested().expect("a wake-up");
    assert!((T0 + 800..=T0 + 801).contains(&wake), "{wake}");
    manual.advance(Duration::from_millis(799));
    w.flush().await.expect("flush");
    assert_eq!(files(tmp.path()), names, "not rolled before 800 ms");
    manual.advance(Duration::from_millis(1));
    w.flush().await.expect("flush");
    let names = published(tmp.path());
    assert_eq!(names.len(), 1, "rolled at 800 ms: {names:?}");
    // What comes later goes to a new file.
    w.write(batch(&input[10..])).await.expect("write");
    w.close().await.expect("close");
    let all = read_all(tmp.path());
    let got: Vec<Vec<Stat>> = all.into_iter().map(|(_, r)| r.values).collect();
    assert_eq!(got, [input[..10].to_vec(), input[10..].to_vec()]);
    // Closing again changes nothing; writing after close is refused.
    w.close().await.expect("close again");
    assert!(w.write(batch(&input[..1])).await.is_err());
}

#[tokio::test]
async fn a_partition_without_new_rows_rolls_after_the_inactivity_interval() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let manual = ManualClock::new(T0);
    let mut sink = ParquetSink::<Stat>::new(tmp.path())
        .partition_by_field("service", |s: &Stat| s.service.clone())
        .rollover_interval(None)
        .inactivity_interval(Duration::from_millis(1000));
    // Contexts made while the clock is entered take it.
    let _clock = manual.clock().enter();
    let mut w = open_writer(&mut sink, "parquet");
    let input = stats(2); // svc-00 and svc-01
    w.write(batch(&input)).await.expect("write");
    manual.advance(Duration::from_millis(600));
    w.write(batch(&input[1..]))
        .await
        .expect("write svc-01 again");
    manual.advance(Duration::from_millis(399));
    w.on_watermark(0).await.expect("watermark");
    assert_eq!(
        done(tmp.path()),
        Vec::<String>::new(),
        "nothing idle for 1 s yet"
    );
    // svc-00 has had no row for 1 s; svc-01 only for 400 ms.
    manual.advance(Duration::from_millis(1));
    w.on_watermark(0).await.expect("watermark");
    let rolled = done(tmp.path());
    assert_eq!(rolled.len(), 1, "{rolled:?}");
    assert!(rolled[0].starts_with("service=svc-00/part-"), "{rolled:?}");
    // svc-01's new row reset its interval: it rolls 1 s after that row.
    manual.advance(Duration::from_millis(599));
    w.on_watermark(0).await.expect("watermark");
    assert_eq!(done(tmp.path()), rolled, "svc-01 got a row 999 ms ago");
    manual.advance(Duration::from_millis(1));
    w.on_watermark(0).await.expect("watermark");
    let rolled = published(tmp.path());
    assert_eq!(rolled.len(), 2, "{rolled:?}");
    assert!(rolled[1].starts_with("service=svc-01/part-"), "{rolled:?}");
    w.close().await.expect("close");
    let all = read_all(tmp.path());
    assert_eq!(all[1].1.values, [input[1].clone(), input[1].clone()]);
}

/// One batch, then another once the gate opens: an input that idles.
struct Gated {
    batches: Vec<Vec<Stat>>,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Source<Stat> for Gated {
    type Split = brook_core::InstanceSplit;

    fn plan(&mut self, ctx: &brook_core::PlanContext) -> Result<Vec<Self::Split>> {
        Ok(brook_core::InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        _ctx: &SourceContext,
        _splits: Vec<Self::Split>,
    ) -> Result<BoxedSourceStream<Stat>> {
        let mut batches = std::mem::take(&mut self.batches).into_iter();
        let (first, second) = (batches.next().unwrap_or_default(), batches.next());
        let gate = self.gate.take();
        let later = stream::once(async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok(SourceEvent::Batch(batch(&second.unwrap_or_default())))
        });
        Ok(stream::iter([Ok(SourceEvent::Batch(batch(&first)))])
            .chain(later)
            .boxed())
    }

    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
}

/// On tokio's paused clock, which moves only when every task waits: the
/// job's tasks take the clock entered here, so the file's age and the
/// task's wake-up are measured in the same paused time as the test's.
#[tokio::test(start_paused = true)]
async fn an_idle_job_publishes_its_file_when_the_rollover_interval_passes() {
    let _clock = Clock::tokio().enter();
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = stats(30);
    let (go, gate) = tokio::sync::oneshot::channel();
    let source = Gated {
        batches: vec![input[..20].to_vec(), input[20..].to_vec()],
        gate: Some(gate),
    };
    let mut flow = Dataflow::new("idle");
    flow.set_parallelism(1);
    flow.source("gated", source).sink(
        "parquet",
        ParquetSink::<Stat>::new(tmp.path()).rollover_interval(Duration::from_millis(200)),
    );
    let start = tokio::time::Instant::now();
    let job = flow
        .build()
        .expect("build")
        .start(Default::default())
        .expect("start");
    // No input comes: nothing is published before the interval passes...
    tokio::time::sleep(Duration::from_millis(199)).await;
    assert_eq!(done(tmp.path()), Vec::<String>::new(), "published early");
    // ...and the task wakes for the rollover and publishes.
    while done(tmp.path()).is_empty() {
        assert!(start.elapsed() < Duration::from_secs(10), "never published");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let waited = start.elapsed();
    assert!(
        (Duration::from_millis(200)..=Duration::from_millis(203)).contains(&waited),
        "published after {waited:?}"
    );
    go.send(()).expect("go");
    job.wait().await.expect("job");
    let got: Vec<Vec<Stat>> = read_all(tmp.path())
        .into_iter()
        .map(|(_, r)| r.values)
        .collect();
    assert_eq!(got, [input[..20].to_vec(), input[20..].to_vec()]);
}
