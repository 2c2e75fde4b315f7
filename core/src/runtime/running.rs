//! [`RunningJob`]: a job whose tasks run, and how it ends: the first
//! failure aborts the rest, a success finishes the sinks, and the
//! checkpoint coordinator is stopped first either way.

use std::sync::Arc;

use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::checkpoint::coordinator::SharedSinks;
use crate::checkpoint::storage::Storage;
use crate::error::{Error, Result};
use crate::metrics::JobMetrics;
use crate::split::JobOutcome;

/// A job whose tasks are running.
pub struct RunningJob {
    pub(crate) name: Arc<str>,
    pub(crate) tasks: JoinSet<Result<()>>,
    pub(crate) names: std::collections::HashMap<tokio::task::Id, String>,
    /// Every sink node, by name, to be finished when the job succeeds
    /// (and committed at each checkpoint).
    pub(crate) sinks: SharedSinks,
    /// The checkpoint coordinator.
    pub(crate) coordinator: Option<CoordinatorHandle>,
    /// Where checkpoints are, cleared when the job completes.
    pub(crate) checkpoint_storage: Option<Storage>,
    pub(crate) metrics: JobMetrics,
    pub(crate) shutdown: CancellationToken,
}

/// A running checkpoint coordinator.
pub(crate) struct CoordinatorHandle {
    /// Its task, aborted if the set is dropped.
    pub(crate) task: JoinSet<Result<()>>,
    /// Asks it to complete what it can and end.
    pub(crate) stop: CancellationToken,
    /// Tells it to complete nothing more.
    pub(crate) abandon: CancellationToken,
    /// Cancelled once the job's final checkpoint is committed.
    pub(crate) finished: CancellationToken,
}

impl Drop for RunningJob {
    /// A job dropped before it ended (its future was dropped) takes no more
    /// checkpoints.
    fn drop(&mut self) {
        if let Some(mut c) = self.coordinator.take() {
            c.abandon.cancel();
            c.task.abort_all();
        }
    }
}

impl RunningJob {
    /// The job's metrics, readable while it runs.
    pub fn metrics(&self) -> &JobMetrics {
        &self.metrics
    }

    /// Asks the job to shut down gracefully: sources stop and the rest drains.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }

    /// Waits for the job to end.
    ///
    /// # Errors
    /// The failure that ended the job, naming the node it came from.
    ///
    /// # Cancellation
    /// Dropping the future aborts every task of the job.
    pub async fn wait(mut self) -> Result<()> {
        let mut errors = Vec::new();
        loop {
            // A checkpoint that cannot complete fails the job like a task.
            let coordinator = async {
                match self.coordinator.as_mut() {
                    Some(c) if !c.task.is_empty() => c.task.join_next().await,
                    _ => std::future::pending().await,
                }
            };
            let joined = tokio::select! {
                joined = self.tasks.join_next_with_id() => match joined {
                    Some(joined) => joined,
                    None => break,
                },
                ended = coordinator => {
                    if let Some(Ok(Err(e))) = ended {
                        if errors.is_empty() {
                            self.tasks.abort_all();
                        }
                        errors.push(e);
                    }
                    continue;
                }
            };
            let result = match joined {
                Ok((_, r)) => r,
                Err(e) if e.is_cancelled() => continue,
                Err(e) => {
                    let name = self.names.get(&e.id()).cloned().unwrap_or_default();
                    Err(match e.try_into_panic() {
                        Ok(panic) => Error::from_panic(panic).in_node(&name),
                        Err(e) => Error::Internal(e.to_string()).in_node(&name),
                    })
                }
            };
            if let Err(e) = result {
                if errors.is_empty() {
                    self.tasks.abort_all();
                }
                errors.push(e);
            }
        }
        // Stop the coordinator before the sinks are finished: after a
        // success it first completes the checkpoint the sources took last
        // (its pre-commits are then published); after a failure it
        // completes nothing more.
        // The job read all its input and committed its final checkpoint:
        // it completed, even if a shutdown came while its tasks closed.
        let mut final_committed = false;
        if let Some(mut c) = self.coordinator.take() {
            final_committed = c.finished.is_cancelled();
            if errors.is_empty() {
                c.stop.cancel();
            } else {
                // Joined, not aborted: a checkpoint being written sees the
                // flag and completes nothing more before `wait` returns.
                c.abandon.cancel();
            }
            while let Some(ended) = c.task.join_next().await {
                if let Ok(Err(e)) = ended {
                    errors.push(e);
                }
            }
        }
        // Report the cause, not an echo of it.
        let primary = errors.iter().position(|e| !e.is_secondary()).unwrap_or(0);
        if errors.is_empty() {
            let outcome = if self.shutdown.is_cancelled() && !final_committed {
                JobOutcome::Stopped
            } else {
                JobOutcome::Completed
            };
            if outcome == JobOutcome::Completed {
                crate::checkpoint::failpoint::hit("before-finish");
            }
            let sinks = std::mem::take(&mut *self.sinks.lock().unwrap_or_else(|p| p.into_inner()));
            for (name, mut sink) in sinks {
                let finished = tokio::task::spawn_blocking(move || sink.finish(&name, outcome))
                    .await
                    .map_err(|e| Error::Internal(format!("finishing a sink: {e}")))
                    .and_then(|r| r);
                if let Err(e) = finished {
                    tracing::info!(job = %self.name, error = %e, "Job failed.");
                    return Err(e);
                }
            }
            // A job that read all its input has nothing to resume: a new
            // run must start from the beginning, not from its checkpoints.
            if outcome == JobOutcome::Completed
                && let Some(storage) = &self.checkpoint_storage
            {
                let storage = storage.clone();
                tokio::task::spawn_blocking(move || storage.clear())
                    .await
                    .map_err(|e| Error::Internal(format!("clearing checkpoints: {e}")))??;
            }
            tracing::info!(job = %self.name, ?outcome, "Job finished.");
            return Ok(());
        }
        let e = errors.swap_remove(primary);
        tracing::info!(job = %self.name, error = %e, "Job failed.");
        Err(e)
    }
}
