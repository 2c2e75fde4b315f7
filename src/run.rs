//! Running a job from a binary: until it ends or the user interrupts it.

use brook_core::{CancellationToken, Job, Result};

/// Runs `job` until it ends, or until Ctrl-C: then its sources stop, what
/// they read still flows through (windows fire, sinks flush and close), and
/// the job ends normally.
///
/// # Errors
/// The job's error, naming the node that failed.
pub async fn run_until_ctrl_c(job: Job) -> Result<()> {
    let shutdown = CancellationToken::new();
    let run = job.run(shutdown.clone());
    tokio::pin!(run);
    tokio::select! {
        r = &mut run => r,
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("Interrupted: stopping the sources and draining the job.");
            shutdown.cancel();
            run.await
        }
    }
}
