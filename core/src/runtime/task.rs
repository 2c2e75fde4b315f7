//! The loops that drive a task: a source's, and a chain head's fed by a
//! channel.
//!
//! Both loops flush the chain whenever their input has nothing ready, so a
//! partial batch is never held back while the input is idle, and send full
//! batches without delay while it is busy.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Instant;

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc::{Receiver, error::TryRecvError};

use crate::context::TaskContext;
use crate::error::{Error, Result};
use crate::message::{Envelope, Message};
use crate::metrics::NodeMetrics;
use crate::record::EventTime;
use crate::runtime::push::BoxPush;
use crate::source::BoxedBatchStream;

/// Reads a source instance's stream into its chain until the stream ends or
/// the job shuts down, then ends the chain.
pub(crate) async fn run_source<T: Send + 'static>(
    ctx: TaskContext,
    mut stream: BoxedBatchStream<T>,
    mut out: BoxPush<T>,
) -> Result<()> {
    let name = ctx.node.clone();
    let metrics = ctx.metrics.clone();
    // Polls the stream once, timing the poll and catching a panic in it.
    let mut poll_next = |cx: &mut std::task::Context<'_>| {
        let start = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| stream.poll_next_unpin(cx)));
        metrics.add_busy(start.elapsed());
        match r {
            Ok(p) => p,
            Err(panic) => Poll::Ready(Some(Err(Error::from_panic(panic)))),
        }
    };
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let mut next = std::future::poll_fn(&mut poll_next);
        let item = match (&mut next).now_or_never() {
            Some(item) => item,
            None => {
                out.flush().await?;
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => break,
                    item = next => item,
                }
            }
        };
        match item {
            None => break,
            Some(Err(e)) => return Err(e.in_node(&name)),
            Some(Ok(batch)) => {
                if batch.is_empty() {
                    continue;
                }
                ctx.metrics.add_out(batch.len());
                out.push(batch).await?;
                // A source that is always ready, feeding a chain that never
                // waits, must still give its thread back now and then, or
                // cancellation and aborts could not reach the other tasks.
                tokio::task::consume_budget().await;
            }
        }
    }
    tracing::debug!(node = %name, instance = ctx.instance, "Source instance finished.");
    out.end().await
}

/// Feeds a chain from its input channel until every sender has ended.
///
/// Watermarks are merged as the minimum over senders; a sender that ended
/// no longer holds the watermark back.
pub(crate) async fn run_input<T: Send + 'static>(
    mut rx: Receiver<Envelope<T>>,
    senders: usize,
    head: Arc<NodeMetrics>,
    mut out: BoxPush<T>,
) -> Result<()> {
    let mut watermarks = vec![EventTime::MIN; senders];
    let mut current = EventTime::MIN;
    let mut ended = 0;
    while ended < senders {
        let env = match rx.try_recv() {
            Ok(env) => env,
            Err(TryRecvError::Empty) => {
                out.flush().await?;
                rx.recv().await.ok_or(Error::UpstreamClosed)?
            }
            Err(TryRecvError::Disconnected) => return Err(Error::UpstreamClosed),
        };
        head.queue_len.fetch_sub(1, Relaxed);
        let from = env.from as usize;
        let advanced = match env.msg {
            Message::Batch(batch) => {
                out.push(batch).await?;
                tokio::task::consume_budget().await;
                continue;
            }
            Message::Watermark(wm) => {
                watermarks[from] = watermarks[from].max(wm);
                true
            }
            // Checkpoints (barrier alignment and snapshots) are not built
            // yet, and nothing sends barriers.
            Message::Barrier(_) => false,
            Message::End => {
                ended += 1;
                watermarks[from] = EventTime::MAX;
                true
            }
        };
        if advanced && ended < senders {
            let min = watermarks.iter().copied().min().unwrap_or(EventTime::MIN);
            if min > current {
                current = min;
                out.watermark(min).await?;
            }
        }
    }
    out.end().await
}
