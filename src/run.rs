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
    /// SIGTERM stopped the job, as [`Interrupted`](Self::Interrupted)
    /// does: a service manager's stop ([`run_until_signal`]).
    Terminated,
    /// A second signal came while the job drained: every task was aborted
    /// at once. Sinks finished nothing; files in progress stay hidden.
    Aborted,
}

impl RunOutcome {
    /// The conventional exit status: 0 when completed or stopped by
    /// SIGTERM (a clean stop for a service manager), 130 (128 + SIGINT)
    /// when interrupted or aborted.
    pub fn exit_code(self) -> i32 {
        match self {
            RunOutcome::Completed | RunOutcome::Terminated => 0,
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
    run_until(job, Interrupts::install(false))
}

/// As [`run_until_ctrl_c`], stopping on SIGTERM too (as a service manager
/// stops a job), which ends as [`RunOutcome::Terminated`].
pub fn run_until_signal(job: Job) -> impl Future<Output = Result<RunOutcome>> {
    run_until(job, Interrupts::install(true))
}

pub(crate) async fn run_until(job: Job, interrupts: Result<Interrupts>) -> Result<RunOutcome> {
    {
        let mut interrupts = interrupts?;
        let shutdown = CancellationToken::new();
        let run = job.run(shutdown.clone());
        tokio::pin!(run);
        let stopped = tokio::select! {
            r = &mut run => return r.map(|()| RunOutcome::Completed),
            how = interrupts.next() => how,
        };
        tracing::warn!(
            "{}: stopping the sources and draining the job (again to abort).",
            match stopped {
                RunOutcome::Terminated => "Terminated",
                _ => "Interrupted",
            }
        );
        shutdown.cancel();
        tokio::select! {
            r = &mut run => r.map(|()| stopped),
            _ = interrupts.next() => {
                tracing::warn!("Stopped again: aborting the job.");
                Ok(RunOutcome::Aborted)
            }
        }
    }
}

/// Ctrl-C (SIGINT), and SIGTERM if asked for, listened for from the
/// moment they are installed.
pub(crate) struct Interrupts {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Interrupts {
    /// Listens for SIGINT, and SIGTERM if `terminate`, from now on.
    #[cfg(unix)]
    pub(crate) fn install(terminate: bool) -> Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt())
            .map_err(|e| Error::io("installing the Ctrl-C handler", e))?;
        let terminate = terminate
            .then(|| signal(SignalKind::terminate()))
            .transpose()
            .map_err(|e| Error::io("installing the SIGTERM handler", e))?;
        Ok(Interrupts {
            interrupt,
            terminate,
        })
    }

    /// Listens for Ctrl-C.
    #[cfg(not(unix))]
    pub(crate) fn install(_terminate: bool) -> Result<Self> {
        Ok(Interrupts {})
    }

    /// The next signal: `Interrupted` for SIGINT, `Terminated` for SIGTERM.
    async fn next(&mut self) -> RunOutcome {
        #[cfg(unix)]
        {
            let terminate = async {
                match &mut self.terminate {
                    Some(t) => t.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.interrupt.recv() => RunOutcome::Interrupted,
                _ = terminate => RunOutcome::Terminated,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            RunOutcome::Interrupted
        }
    }
}
