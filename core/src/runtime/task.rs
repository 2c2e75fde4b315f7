//! The loops that drive a task: a source's, and a chain head's fed by a
//! channel.
//!
//! Both loops flush the chain whenever their input has nothing ready, so a
//! partial batch is never held back while the input is idle, and send full
//! batches without delay while it is busy.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use tokio::sync::mpsc::{Receiver, error::TryRecvError};

use crate::checkpoint::coordinator::{AckState, Acker, SourceTrigger};
use crate::context::TaskContext;
use crate::error::{Error, Result};
use crate::message::{CheckpointId, Envelope, Message};
use crate::metrics::NodeMetrics;
use crate::record::EventTime;
use crate::runtime::push::BoxPush;
use crate::source::{BoxedSourceStream, SourceEvent, SplitPosition};
use crate::time::{ProcessingTimer, now_ms};

/// Sleeps until the processing time `deadline_ms`; never wakes for `i64::MAX`.
async fn sleep_until_ms(deadline_ms: i64) {
    if deadline_ms == i64::MAX {
        return std::future::pending().await;
    }
    let wait = deadline_ms.saturating_sub(now_ms()).max(0);
    tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
}

/// The latest position of each split of a source instance.
pub(crate) trait PositionBook: Send {
    /// Records a position the stream reported.
    ///
    /// # Errors
    /// A split index out of range, or a position of another type.
    fn update(&mut self, position: SplitPosition) -> Result<()>;
    /// Every split's latest position, by split id, as JSON; remembered as
    /// checkpoint `id`'s until it completes.
    ///
    /// # Errors
    /// A position that cannot be written as JSON.
    fn snapshot(&mut self, id: CheckpointId) -> Result<Vec<(String, serde_json::Value)>>;
    /// The positions (a `Vec<Position>`) remembered for the newest
    /// checkpoint at or before `id`, forgetting those.
    fn completed(&mut self, id: CheckpointId) -> Option<Box<dyn std::any::Any + Send>>;
}

/// What a source instance needs to take part in checkpoints.
pub(crate) struct SourceCheckpoints {
    pub(crate) trigger: SourceTrigger,
    pub(crate) acker: Acker,
    pub(crate) positions: Box<dyn PositionBook>,
    /// The newest completed checkpoint handed to the stream.
    pub(crate) handed: CheckpointId,
}

impl SourceCheckpoints {
    /// Reports this instance's positions for checkpoint `id` and sends the
    /// barrier downstream, behind everything emitted so far.
    async fn take<T>(
        &mut self,
        id: CheckpointId,
        ctx: &TaskContext,
        out: &mut BoxPush<T>,
    ) -> Result<()> {
        let positions = self
            .positions
            .snapshot(id)
            .map_err(|e| e.in_node(&ctx.node))?;
        self.acker
            .ack(id, &ctx.node, ctx.instance, AckState::Source(positions));
        out.barrier(id).await
    }
}

/// Reads a source instance's stream into its chain until the stream ends or
/// the job shuts down, then sends the final watermark and ends the chain.
/// With checkpoints, it starts each checkpoint it is asked for between two
/// events of the stream.
pub(crate) async fn run_source<T: Send + 'static>(
    ctx: TaskContext,
    mut stream: BoxedSourceStream<T>,
    mut out: BoxPush<T>,
    mut checkpoints: Option<SourceCheckpoints>,
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
    let trigger = checkpoints.as_ref().map(|ck| ck.trigger.clone());
    // Whether the stream ended (rather than the job shutting down).
    let mut exhausted = false;
    let mut slice = TimeSlice::new();
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        if let Some(now) = timer.take_due() {
            out.tick(now).await?;
        }
        if let Some(ck) = &mut checkpoints {
            if let Some(id) = ck.trigger.take() {
                ck.take(id, &ctx, &mut out).await?;
            }
            // The positions of a checkpoint that completed, for the stream.
            let done = ck.trigger.completed();
            if done > ck.handed {
                ck.handed = done;
                if let (Some(positions), Some(slot)) =
                    (ck.positions.completed(done), &ctx.completed)
                {
                    slot.set(done, positions);
                }
            }
        }
        let mut next = std::future::poll_fn(&mut poll_next);
        let item = match (&mut next).now_or_never() {
            Some(item) => item,
            None => {
                out.flush().await?;
                let triggered = async {
                    match &trigger {
                        Some(t) => t.triggered().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    biased;
                    _ = ctx.shutdown.cancelled() => break,
                    () = triggered => continue,
                    _ = sleep_until_ms(timer.deadline()) => continue,
                    item = next => item,
                }
            }
        };
        match item {
            None => {
                exhausted = true;
                break;
            }
            Some(Err(e)) => return Err(e.in_node(&name)),
            Some(Ok(SourceEvent::Batch(batch))) => {
                if batch.is_empty() {
                    continue;
                }
                ctx.metrics.add_out(batch.len());
                out.push(batch).await?;
                // A source that is always ready, feeding a chain that never
                // waits, must still give its thread back now and then, or
                // cancellation, aborts and checkpoints could not reach the
                // other tasks.
                slice.give_way().await;
            }
            Some(Ok(SourceEvent::BatchAt(batch, positions))) => {
                if !batch.is_empty() {
                    ctx.metrics.add_out(batch.len());
                    out.push(batch).await?;
                }
                // Before the next checkpoint can start: the batch and
                // where it leaves its splits go into the same one.
                if let Some(ck) = &mut checkpoints {
                    for p in positions {
                        ck.positions.update(p).map_err(|e| e.in_node(&name))?;
                    }
                }
                slice.give_way().await;
            }
            Some(Ok(SourceEvent::Watermark(wm))) => {
                if wm > watermark {
                    watermark = wm;
                    ctx.metrics.set_watermark(wm);
                    out.watermark(wm).await?;
                }
            }
            Some(Ok(SourceEvent::Idle)) => out.idle().await?,
            Some(Ok(SourceEvent::Position(p))) => {
                if let Some(ck) = &mut checkpoints {
                    ck.positions.update(p).map_err(|e| e.in_node(&name))?;
                }
            }
        }
    }
    tracing::debug!(node = %name, instance = ctx.instance, exhausted, "Source instance finished.");
    if let Some(ck) = &mut checkpoints {
        if exhausted {
            // End of input: every event-time window downstream may fire.
            if watermark < EventTime::MAX {
                out.watermark(EventTime::MAX).await?;
            }
            out.end().await?;
        } else {
            // The job shuts down: nothing fires, and a stop checkpoint
            // holds where the job stopped, to resume from.
            out.stop().await?;
        }
        // The instance stays to take the checkpoints that follow, up to
        // the run's last, started once every instance is here: the final
        // checkpoint after the end of all input, whose barrier follows the
        // end, so that what the end made the sinks write is committed too
        // (a crash from now on loses and doubles nothing); or the stop
        // checkpoint of a job shutting down.
        ck.trigger.finish(!exhausted);
        loop {
            if let Some(id) = ck.trigger.take() {
                ck.take(id, &ctx, &mut out).await?;
                continue;
            }
            tokio::select! {
                biased;
                () = ck.trigger.closing() => break,
                () = ck.trigger.triggered() => {}
            }
        }
        return out.close().await;
    }
    if watermark < EventTime::MAX {
        out.watermark(EventTime::MAX).await?;
    }
    out.end().await?;
    out.close().await
}

/// A checkpoint barrier some senders have delivered and others not yet.
struct Alignment<T> {
    id: CheckpointId,
    /// Which senders delivered it.
    arrived: Vec<bool>,
    count: usize,
    /// What those senders sent after it, held until the rest deliver it.
    held: VecDeque<Envelope<T>>,
}

/// Feeds a chain from its input channel until every sender has ended.
///
/// Watermarks are merged as the minimum over senders that are not idle
/// (an ended sender counts as at the end of time); when every sender is
/// idle, the watermark advances to the largest any of them reached and the
/// chain is told it is idle. After the last end the chain gets the final watermark, then its
/// end.
///
/// Checkpoint barriers are aligned: once a sender has delivered barrier
/// `n`, what it sends next is held back until every sender has delivered
/// `n`; then the chain takes the barrier (each node reports its state)
/// and the held messages follow, in order. With checkpoints, senders
/// that ended still send barriers (up to the final checkpoint's), so the
/// loop runs until every sender has closed its side of the channel; a
/// sender that closes without a barrier (the job shutting down) releases
/// what was held for it.
pub(crate) async fn run_input<T: Send + 'static>(
    mut rx: Receiver<Envelope<T>>,
    senders: usize,
    head: Arc<NodeMetrics>,
    timer: ProcessingTimer,
    mut out: BoxPush<T>,
    checkpoints: bool,
) -> Result<()> {
    let mut watermarks = vec![EventTime::MIN; senders];
    let mut idle = vec![false; senders];
    let mut current = EventTime::MIN;
    let mut idle_sent = false;
    let mut ended = 0;
    let mut align: Option<Alignment<T>> = None;
    // Messages released by an alignment, handled before the channel.
    let mut released: VecDeque<Envelope<T>> = VecDeque::new();
    // Whether the end was passed on (with checkpoints, barriers follow).
    let mut end_sent = false;
    // Whether a sender stopped (the job stops with a checkpoint) rather
    // than ended.
    let mut stopped = false;
    loop {
        if ended == senders && !end_sent {
            end_sent = true;
            if stopped {
                // The job stops with a checkpoint: nothing fires.
                out.stop().await?;
            } else {
                if current < EventTime::MAX {
                    out.watermark(EventTime::MAX).await?;
                }
                out.end().await?;
            }
            if !checkpoints {
                break;
            }
        }
        if let Some(now) = timer.take_due() {
            out.tick(now).await?;
        }
        let env = if let Some(env) = released.pop_front() {
            env
        } else {
            let received = match rx.try_recv() {
                Ok(env) => Some(env),
                Err(TryRecvError::Empty) => {
                    out.flush().await?;
                    tokio::select! {
                        biased;
                        env = rx.recv() => env,
                        _ = sleep_until_ms(timer.deadline()) => continue,
                    }
                }
                Err(TryRecvError::Disconnected) => None,
            };
            let Some(env) = received else {
                // Every sender closed its side.
                if ended < senders {
                    return Err(Error::UpstreamClosed);
                }
                // What an unfinished alignment held goes on, without
                // its barrier: the job is shutting down.
                if let Some(a) = align.take()
                    && !a.held.is_empty()
                {
                    released = a.held;
                    continue;
                }
                break;
            };
            head.queue_len.fetch_sub(1, Relaxed);
            env
        };
        let from = env.from as usize;
        if let Some(a) = &mut align
            && a.arrived[from]
        {
            a.held.push_back(env);
            continue;
        }
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
            Message::Barrier(id) => {
                let a = align.get_or_insert_with(|| Alignment {
                    id,
                    arrived: vec![false; senders],
                    count: 0,
                    held: VecDeque::new(),
                });
                if a.id != id {
                    return Err(Error::Internal(format!(
                        "barrier {id} arrived while aligning barrier {}",
                        a.id
                    )));
                }
                a.arrived[from] = true;
                a.count += 1;
            }
            Message::End => {
                ended += 1;
                idle[from] = false;
                watermarks[from] = EventTime::MAX;
            }
            Message::Stop => {
                // Its watermark stays where it was: nothing fires.
                ended += 1;
                stopped = true;
            }
        }
        // Aligned: every sender delivered the barrier (without
        // checkpoints there are none; with them, an ended sender still
        // sends its barriers).
        if let Some(a) = &align
            && a.count == senders
            && let Some(a) = align.take()
        {
            out.barrier(a.id).await?;
            // Held messages come before anything still in the channel.
            let mut held = a.held;
            held.append(&mut released);
            released = held;
        }
        if ended == senders {
            continue;
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
    out.close().await
}

/// How long a source may run its chain before it lets the other tasks of
/// its thread run: the checkpoint coordinator's timer, the admin server,
/// cancellation. On a one-thread runtime a source whose input is always
/// ready and whose chain never waits (a file at parallelism 1) would
/// otherwise yield only when tokio's budget of 128 operations runs out:
/// a checkpoint every 20 ms came every few hundred in a debug build.
const TIME_SLICE: std::time::Duration = std::time::Duration::from_millis(1);

/// When a source last gave its thread back.
struct TimeSlice(std::time::Instant);

impl TimeSlice {
    fn new() -> Self {
        TimeSlice(std::time::Instant::now())
    }

    /// Yields once the source has run for [`TIME_SLICE`]; else spends one
    /// unit of tokio's budget (yielding when it is spent).
    async fn give_way(&mut self) {
        if self.0.elapsed() >= TIME_SLICE {
            tokio::task::yield_now().await;
            self.0 = std::time::Instant::now();
        } else {
            tokio::task::consume_budget().await;
        }
    }
}
