//! Helpers shared by the integration tests.

#[cfg(feature = "admin")]
pub(crate) mod admin;

use std::future::Future;
use std::time::Duration;

use brook::prelude::*;

/// Runs `fut` on a fresh two-worker runtime, failing the test if it takes
/// longer than a minute (a hang is a bug, never a slow machine).
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(60), fut)
            .await
            .expect("the job hung")
    })
}

/// Waits until no job holds checkpoint directory `dir`'s lock: a dropped
/// job lets go of it once its tasks have ended and a checkpoint it was
/// writing has finished, shortly after the drop.
pub(crate) fn checkpoints_released(dir: &std::path::Path) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while brook::core::checkpoint::in_use(dir).expect("probe") {
        assert!(
            std::time::Instant::now() < deadline,
            "the dropped job kept {}",
            dir.display()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A config with the given default parallelism and small batches, so that
/// even small inputs cross several batches and channels.
pub(crate) fn config(parallelism: usize) -> JobConfig {
    JobConfig {
        parallelism,
        batch_size: 16,
        channel_capacity: 2,
        chaining: true,
    }
}

/// Sorts values so outputs of parallel runs compare as multisets.
pub(crate) fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// A sink that sleeps for `delay` per batch.
pub(crate) struct SlowSink {
    pub(crate) delay: Duration,
}

/// One instance of a [`SlowSink`].
pub(crate) struct SlowWriter(Duration);

impl<T: Send + 'static> Sink<T> for SlowSink {
    type Writer = SlowWriter;
    fn open(&mut self, _ctx: &SinkContext) -> Result<SlowWriter> {
        Ok(SlowWriter(self.delay))
    }
}

impl<T: Send + 'static> SinkWriter<T> for SlowWriter {
    async fn write(&mut self, _batch: Batch<T>) -> Result<()> {
        tokio::time::sleep(self.0).await;
        Ok(())
    }
}

/// Waits for `child` at most `secs` seconds (killing it and failing the
/// test past that: a hang is a bug), then collects its output.
pub(crate) fn wait_within(mut child: std::process::Child, secs: u64) -> std::process::Output {
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("wait");
                panic!(
                    "the process did not end within {secs} s\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }
    child.wait_with_output().expect("wait")
}
