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
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc::{Receiver, error::TryRecvError};

use crate::context::TaskContext;
use crate::error::{Error, Result};
use crate::message::{Envelope, Message};
use crate::metrics::NodeMetrics;
use crate::record::EventTime;
use crate::runtime::push::BoxPush;
use crate::source::{BoxedSourceStream, SourceEvent};
use crate::time::{ProcessingTimer, now_ms};

/// Sleeps until the processing time `deadline_ms`; never wakes for `i64::MAX`.
async fn sleep_until_ms(deadline_ms: i64) {
    if deadline_ms == i64::MAX {
        return std::future::pending().await;
    }
    let wait = deadline_ms.saturating_sub(now_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
}

/// Reads a source instance's stream into its chain until the stream ends or
/// the job shuts down, then sends the final watermark and ends the chain.
pub(crate) async fn run_source<T: Send + 'static>(
    ctx: TaskContext,
    mut stream: BoxedSourceStream<T>,
    mut out: BoxPush<T>,
) -> Result<()> {
    let name = ctx.node.clone();
    let metrics = ctx.metrics.clone();
    let timer = ctx.timer.clone();
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
    let mut watermark = EventTime::MIN;
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        if let Some(now) = timer.take_due() {
            out.tick(now).await?;
        }
        let mut next = std::future::poll_fn(&mut poll_next);
        let item = match (&mut next).now_or_never() {
            Some(item) => item,
            None => {
                out.flush().await?;
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => break,
                    _ = sleep_until_ms(timer.deadline()) => continue,
                    item = next => item,
                }
            }
        };
        match item {
            None => break,
            Some(Err(e)) => return Err(e.in_node(&name)),
            Some(Ok(SourceEvent::Batch(batch))) => {
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
            Some(Ok(SourceEvent::Watermark(wm))) => {
                if wm > watermark {
                    watermark = wm;
                    out.watermark(wm).await?;
                }
            }
            Some(Ok(SourceEvent::Idle)) => out.idle().await?,
        }
    }
    tracing::debug!(node = %name, instance = ctx.instance, "Source instance finished.");
    // End of input: every event-time window downstream may fire.
    if watermark < EventTime::MAX {
        out.watermark(EventTime::MAX).await?;
    }
    out.end().await
}

/// Feeds a chain from its input channel until every sender has ended.
///
/// Watermarks are merged as the minimum over senders that are not idle
/// (an ended sender counts as at the end of time); when every sender is
/// idle, the watermark advances to the largest any of them reached and the
/// chain is told it is idle. After the last end the chain gets the final watermark, then its
/// end.
pub(crate) async fn run_input<T: Send + 'static>(
    mut rx: Receiver<Envelope<T>>,
    senders: usize,
    head: Arc<NodeMetrics>,
    timer: ProcessingTimer,
    mut out: BoxPush<T>,
) -> Result<()> {
    let mut watermarks = vec![EventTime::MIN; senders];
    let mut idle = vec![false; senders];
    let mut current = EventTime::MIN;
    let mut idle_sent = false;
    let mut ended = 0;
    while ended < senders {
        if let Some(now) = timer.take_due() {
            out.tick(now).await?;
        }
        let env = match rx.try_recv() {
            Ok(env) => env,
            Err(TryRecvError::Empty) => {
                out.flush().await?;
                tokio::select! {
                    biased;
                    env = rx.recv() => env.ok_or(Error::UpstreamClosed)?,
                    _ = sleep_until_ms(timer.deadline()) => continue,
                }
            }
            Err(TryRecvError::Disconnected) => return Err(Error::UpstreamClosed),
        };
        head.queue_len.fetch_sub(1, Relaxed);
        let from = env.from as usize;
        match env.msg {
            Message::Batch(batch) => {
                idle[from] = false;
                idle_sent = false;
                out.push(batch).await?;
                tokio::task::consume_budget().await;
                continue;
            }
            Message::Watermark(wm) => {
                idle[from] = false;
                watermarks[from] = watermarks[from].max(wm);
            }
            Message::Idle => idle[from] = true,
            // Checkpoints (barrier alignment and snapshots) are not built
            // yet, and nothing sends barriers.
            Message::Barrier(_) => continue,
            Message::End => {
                ended += 1;
                idle[from] = false;
                watermarks[from] = EventTime::MAX;
            }
        }
        if ended == senders {
            break;
        }
        let active = (0..senders).filter(|&i| !idle[i]);
        match active.map(|i| watermarks[i]).min() {
            Some(min) if min > current => {
                current = min;
                idle_sent = false;
                out.watermark(min).await?;
            }
            Some(_) => {}
            None => {
                // Every sender is idle: as Flink does, advance to the
                // largest watermark any of them reached, then pass the
                // idleness on.
                let max = watermarks.iter().copied().max().unwrap_or(EventTime::MIN);
                if max > current {
                    current = max;
                    out.watermark(max).await?;
                }
                if !idle_sent {
                    idle_sent = true;
                    out.idle().await?;
                }
            }
        }
    }
    if current < EventTime::MAX {
        out.watermark(EventTime::MAX).await?;
    }
    out.end().await
}
