//! The engine's own threads: every part of a query (parsing, planning,
//! running, and dropping its plans) runs on a Tokio runtime of its own
//! whose threads have large stacks, so that a deeply nested query (a `1+1+…` of
//! thousands of terms, thousands of `UNION ALL`s) has the stack that
//! DataFusion's recursive code needs, and a panic inside DataFusion or
//! Parquet ends one task with an error instead of the caller's thread.

use std::any::Any;
use std::future::Future;

use tokio::runtime::{Handle, Runtime};
use tokio::task::JoinHandle;

use super::SqlError;

/// The prefix of the names of the engine's threads. A program that turns
/// panics into errors may recognise the engine's threads by it (`brook sql`
/// keeps the default panic message off the terminal for them, since the
/// panic reaches the user as an error).
pub const THREAD_NAME_PREFIX: &str = "brook-sql";

/// The stack of each of the engine's threads. Only the pages a query
/// touches are ever backed by memory; the rest is address space.
/// [`MAX_QUERY_TOKENS`](super::MAX_QUERY_TOKENS) keeps the deepest query
/// within it.
pub(crate) const STACK_SIZE: usize = 1 << 30;

/// The most threads the engine's runtime starts for blocking work (file
/// reads), each with a [`STACK_SIZE`] stack.
const MAX_BLOCKING_THREADS: usize = 32;

/// A Tokio runtime of large-stack threads, shut down without waiting when
/// dropped (from any context, async or not): its threads end as soon as
/// the work on them returns.
#[derive(Debug)]
pub(crate) struct Workers {
    runtime: Option<Runtime>,
    handle: Handle,
}

impl Workers {
    /// One worker per available core, and blocking threads as Tokio makes
    /// them, all with [`STACK_SIZE`] stacks.
    pub(crate) fn new() -> std::io::Result<Self> {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_stack_size(STACK_SIZE)
            // File reads: a few at a time is plenty for local files.
            .max_blocking_threads(MAX_BLOCKING_THREADS)
            .thread_name(THREAD_NAME_PREFIX)
            .enable_all()
            .build()?;
        let handle = runtime.handle().clone();
        Ok(Workers {
            runtime: Some(runtime),
            handle,
        })
    }

    /// Runs `future` on the engine's threads.
    pub(crate) fn spawn<F>(&self, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.handle.spawn(future)
    }

    /// Runs `future` on the engine's threads and waits for it; a panic in
    /// it becomes [`SqlError::Panicked`].
    pub(crate) async fn run<T, F>(&self, future: F) -> Result<T, SqlError>
    where
        F: Future<Output = Result<T, SqlError>> + Send + 'static,
        T: Send + 'static,
    {
        let task = AbortOnDrop(self.spawn(future));
        joined(task.join().await)
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A task that is aborted when its handle is dropped: a caller that stops
/// waiting (a timeout, a dropped future) stops the work too.
#[derive(Debug)]
pub(crate) struct AbortOnDrop<T>(pub(crate) JoinHandle<T>);

impl<T> AbortOnDrop<T> {
    /// Waits for the task.
    pub(crate) async fn join(mut self) -> Result<T, tokio::task::JoinError> {
        (&mut self.0).await
    }

    /// Aborts the task now.
    pub(crate) fn abort(&self) {
        self.0.abort();
    }
}

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A joined task's result, with a panic turned into [`SqlError::Panicked`].
pub(crate) fn joined<T>(
    result: Result<Result<T, SqlError>, tokio::task::JoinError>,
) -> Result<T, SqlError> {
    match result {
        Ok(result) => result,
        Err(e) if e.is_panic() => Err(SqlError::Panicked {
            message: panic_message(e.into_panic().as_ref()),
        }),
        Err(_) => Err(SqlError::Panicked {
            message: "the query's task was cancelled".to_string(),
        }),
    }
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}
