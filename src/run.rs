//! Running a job from a binary: until it ends or the user interrupts it.

use std::future::Future;

use brook_core::{CancellationToken, Error, Job, Result};

/// How a job run by [`run_until_ctrl_c`] ended, when it did not fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunOutcome {
    /// The job ended by itself: every source reached its end.
    Completed,
    /// Ctrl-C stopped the sources; what they had read drained through the
    /// job. Without checkpoints, windows fired and sinks flushed and
    /// closed; with checkpoints, nothing fired and a stop checkpoint was
    /// taken, to resume from. Sinks were told the job was stopped
    /// ([`JobOutcome::Stopped`](brook_core::JobOutcome)).
    Interrupted,
    /// A second Ctrl-C came while the job drained: every task was aborted
    /// at once. Sinks finished nothing; files in progress stay hidden.
    Aborted,
}

impl RunOutcome {
    /// The conventional exit status: 0 when completed, 130 (128 + SIGINT)
    /// when interrupted or aborted.
    pub fn exit_code(self) -> i32 {
        match self {
            RunOutcome::Completed => 0,
            RunOutcome::Interrupted | RunOutcome::Aborted => 130,
        }
    }
}

/// Runs `job` until it ends, or until Ctrl-C: then its sources stop and
/// what they read still flows through (windows fire, sinks flush and
/// close), and the job ends. A second Ctrl-C while it drains aborts it at
/// once.
///
/// The Ctrl-C handler is installed when this is called, not when the
/// future is first polled: call it before telling the user the job runs,
/// so that a Ctrl-C right after is never lost. Call it inside a tokio
/// runtime.
///
/// # Errors
/// The job's error, naming the node that failed; [`Error::Io`] if the
/// handler cannot be installed.
pub fn run_until_ctrl_c(job: Job) -> impl Future<Output = Result<RunOutcome>> {
    let interrupts = Interrupts::install();
    async move {
        let mut interrupts = interrupts?;
        let shutdown = CancellationToken::new();
        let run = job.run(shutdown.clone());
        tokio::pin!(run);
        tokio::select! {
            r = &mut run => return r.map(|()| RunOutcome::Completed),
            _ = interrupts.next() => {}
        }
        tracing::warn!(
            "Interrupted: stopping the sources and draining the job (Ctrl-C again to abort)."
        );
        shutdown.cancel();
        tokio::select! {
            r = &mut run => r.map(|()| RunOutcome::Interrupted),
            _ = interrupts.next() => {
                tracing::warn!("Interrupted again: aborting the job.");
                Ok(RunOutcome::Aborted)
            }
        }
    }
}

/// Ctrl-C (SIGINT), listened for from the moment it is installed.
struct Interrupts {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupts {
    #[cfg(unix)]
    fn install() -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let signal = signal(SignalKind::interrupt())
            .map_err(|e| Error::io("installing the Ctrl-C handler", e))?;
        Ok(Interrupts { signal })
    }

    #[cfg(not(unix))]
    fn install() -> Result<Self> {
        Ok(Interrupts {})
    }

    /// The next Ctrl-C.
    async fn next(&mut self) {
        #[cfg(unix)]
        {
            self.signal.recv().await;
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
