//! The stream of one source instance: consumes its partitions into batches,
//! applies the bad-message policy, tracks per-partition event time, and
//! commits offsets only for what the next task has taken.
//!
//! # Commits
//! The runtime polls a source stream for its next event only after it has
//! pushed the previous one downstream. So when the stream is polled, every
//! message consumed before has been taken by the next task (or dropped or
//! dead-lettered by the policy, with its dead letter acknowledged), and its
//! offset may be committed. The stream commits then, at most once per
//! commit interval, and also when it has waited that long for messages with
//! offsets left to commit; a bounded stream commits synchronously at its
//! end. Commits are asynchronous otherwise: a failed one is logged and its
//! offsets are sent again with the next.
//!
//! # The end of a bounded read
//! A partition is done once read to its end, which a fetch must confirm
//! (see [`ends`](super::ends)); done partitions are paused. When every
//! partition is done, the stream commits and ends (returns `None`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use brook_core::time::{Watermarks, now_ms};
use brook_core::{
    Batch, BoxedSourceStream, Error, EventTime, NO_TIMESTAMP, Result, SourceEvent, TaskContext,
};
use futures::{FutureExt, StreamExt};
use rdkafka::consumer::Consumer;
use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::bad_message::{BadMessages, Dead};
use crate::client::{fatal, kafka_error};
use crate::config::KafkaSourceConfig;
use crate::ends::{End, FetchedHighs};
use crate::format::{KafkaMessage, ReadFn, Reading};
use crate::setup::{self, SourceConsumer, Started};
use crate::source::KafkaSplit;
use crate::watermark::PartitionClocks;

mod commit;

/// Turns a value into its event time.
pub(crate) type EventTimeFn<T> = dyn Fn(&T) -> EventTime + Send + Sync;

/// What every instance of a source shares.
pub(crate) struct Shared<T> {
    pub(crate) config: KafkaSourceConfig,
    /// What to do with a message that cannot be read.
    pub(crate) bad: brook_connectors::BadRecordPolicy,
    /// How messages become values.
    pub(crate) reading: Reading<T>,
    pub(crate) event_time: Option<Arc<EventTimeFn<T>>>,
    pub(crate) watermarks: Option<Watermarks>,
}

/// How long to wait after a consumer error before asking again.
const ERROR_BACKOFF: Duration = Duration::from_millis(200);

/// One partition an instance reads.
struct Part {
    topic: Arc<str>,
    partition: i32,
    /// The offset after the last message consumed.
    next: Option<i64>,
    committed: Option<i64>,
    /// Bounded mode: the first offset to read, resolved at start.
    start: Option<i64>,
    /// Bounded mode: where the partition ends.
    end: Option<End>,
    done: bool,
}

impl Part {
    /// Bounded mode: whether everything before the confirmed end is read.
    fn read_to_end(&self) -> bool {
        match (self.next.or(self.start), self.end) {
            (Some(position), Some(end)) => end.reached(position),
            _ => false,
        }
    }
}

/// A started instance.
struct Running {
    consumer: Arc<SourceConsumer>,
    parts: Vec<Part>,
    index: HashMap<Arc<str>, HashMap<i32, usize>>,
    clocks: PartitionClocks,
    bad: BadMessages,
    /// Partitions not yet done.
    live: usize,
    last_commit: Instant,
    /// Bounded mode: the fetched high watermarks that confirm the ends.
    fetched: Option<Arc<FetchedHighs>>,
    /// The partitions whose next offset moved since positions were last
    /// reported.
    moved: Vec<usize>,
    /// Whether the job checkpoints: offsets are then not committed to the
    /// group (the checkpoint holds them).
    checkpoints: bool,
}

/// What a round of consuming gave.
enum Filled<T> {
    Batch(Batch<T>),
    /// No record: only bad messages, ends of partitions, or idle events
    /// (added to the pending ones).
    Nothing,
}

/// The state of one instance's stream.
pub(crate) struct KafkaStream<T> {
    shared: Arc<Shared<T>>,
    /// This instance's reader of messages.
    read: ReadFn<T>,
    ctx: TaskContext,
    /// The partitions this instance reads, taken when it starts.
    splits: Vec<KafkaSplit>,
    /// Set when the stream is dropped, to stop a setup waiting for brokers.
    abandoned: Arc<AtomicBool>,
    run: Option<Running>,
    /// Events to emit next (the watermark after a batch, idle marks).
    pending: VecDeque<SourceEvent<T>>,
    done: bool,
}

impl<T> Drop for KafkaStream<T> {
    fn drop(&mut self) {
        self.abandoned.store(true, Relaxed);
    }
}

impl<T: Send + 'static> KafkaStream<T> {
    pub(crate) fn new(shared: Arc<Shared<T>>, ctx: TaskContext, splits: Vec<KafkaSplit>) -> Self {
        KafkaStream {
            read: shared.reading.instance(),
            shared,
            ctx,
            splits,
            abandoned: Arc::new(AtomicBool::new(false)),
            run: None,
            pending: VecDeque::new(),
            done: false,
        }
    }

    /// The stream of events. Dropping it drops the consumer.
    pub(crate) fn into_stream(self) -> BoxedSourceStream<T> {
        futures::stream::unfold(self, |mut s| async move {
            match s.next_event().await {
                Ok(Some(event)) => Some((Ok(event), s)),
                Ok(None) => None,
                Err(e) => {
                    s.done = true;
                    Some((Err(e), s))
                }
            }
        })
        .boxed()
    }

    /// The next event, or `None` at the end of a bounded read.
    async fn next_event(&mut self) -> Result<Option<SourceEvent<T>>> {
        if self.done {
            return Ok(None);
        }
        let run = match &mut self.run {
            Some(run) => run,
            None => {
                let run = self.start().await?;
                let run = self.run.insert(run);
                if run.parts.is_empty() && !self.shared.config.bounded {
                    // Nothing to read: downstream must not wait for us.
                    run.clocks.events(now_ms(), &mut self.pending);
                }
                run
            }
        };
        // Everything consumed so far has been taken downstream. With
        // checkpoints, the checkpoint holds the offsets: the group gets
        // those of a checkpoint once it completed (for lag), never more.
        if !run.checkpoints {
            run.commit(&self.shared.config, false);
        } else if let Some((_, offsets)) = self.ctx.take_completed_positions::<i64>() {
            run.commit_checkpointed(&offsets);
        }
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(Some(event));
            }
            if self.shared.config.bounded && run.live == 0 {
                if !run.checkpoints {
                    run.final_commit(&self.ctx).await;
                }
                self.done = true;
                return Ok(None);
            }
            if run.parts.is_empty() {
                // Unbounded with no partitions: wait for the job to stop.
                std::future::pending::<()>().await;
            }
            match run
                .fill(&self.ctx, &self.shared, &mut self.read, &mut self.pending)
                .await?
            {
                Filled::Batch(batch) => {
                    run.clocks.events(now_ms(), &mut self.pending);
                    let positions = run.positions();
                    return Ok(Some(SourceEvent::batch_at(batch, positions)));
                }
                Filled::Nothing => {
                    // Past messages that made no record (dead letters).
                    for (i, next) in run.positions() {
                        self.pending.push_back(SourceEvent::position(i, next));
                    }
                    tokio::task::consume_budget().await;
                }
            }
        }
    }

    /// Starts the consumer on a blocking thread, assigning it this
    /// instance's partitions.
    async fn start(&mut self) -> Result<Running> {
        let shared = self.shared.clone();
        let ctx = self.ctx.clone();
        let splits = std::mem::take(&mut self.splits);
        let abandoned = self.abandoned.clone();
        let client_id = format!(
            "brook-{}-{}-{}",
            ctx.job_name(),
            ctx.node_name(),
            ctx.instance()
        );
        let bad = BadMessages::new(&shared.bad, &ctx)?;
        let metrics = ctx.metrics_handle();
        let started = tokio::task::spawn_blocking(move || {
            setup::start(
                &shared.config,
                &client_id,
                ctx.node_name(),
                ctx.instance(),
                &splits,
                &abandoned,
                metrics,
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("starting the kafka consumer: {e}")))??;
        let checkpoints = self.ctx.checkpoints_enabled();
        Ok(Running::new(
            started,
            bad,
            self.shared.watermarks.as_ref(),
            checkpoints,
        ))
    }
}

impl Running {
    fn new(
        started: Started,
        bad: BadMessages,
        watermarks: Option<&Watermarks>,
        checkpoints: bool,
    ) -> Self {
        let Started {
            consumer,
            parts,
            fetched,
        } = started;
        let mut index: HashMap<Arc<str>, HashMap<i32, usize>> = HashMap::new();
        for (i, p) in parts.iter().enumerate() {
            index
                .entry(p.topic.clone())
                .or_default()
                .insert(p.partition, i);
        }
        let n = parts.len();
        let mut run = Running {
            consumer,
            parts: parts
                .into_iter()
                .map(|a| Part {
                    topic: a.topic,
                    partition: a.partition,
                    next: None,
                    committed: None,
                    start: a.start,
                    end: a.end,
                    done: false,
                })
                .collect(),
            index,
            clocks: PartitionClocks::new(n, watermarks, now_ms()),
            bad,
            live: n,
            last_commit: Instant::now(),
            fetched,
            moved: Vec::new(),
            checkpoints,
        };
        // Bounded: a partition that starts at the end is done at once; one
        // that only looks empty waits for a fetch to confirm its end.
        for i in 0..n {
            if run.parts[i].read_to_end() {
                run.finish(i);
            }
        }
        run
    }

    /// Consumes at least one message (or the end of a partition, or until
    /// a partition turns idle, adding the events that follow to `pending`)
    /// and then whatever is ready, up to a batch.
    async fn fill<T: Send + 'static>(
        &mut self,
        ctx: &TaskContext,
        shared: &Shared<T>,
        read: &mut ReadFn<T>,
        pending: &mut VecDeque<SourceEvent<T>>,
    ) -> Result<Filled<T>> {
        let consumer = self.consumer.clone();
        let fetched = self.fetched.clone();
        let max = ctx.batch_size().max(1);
        let mut batch = Batch::new();
        let first = loop {
            let idle = self.clocks.next_idle_deadline();
            let commit = self.commit_deadline(&shared.config);
            let wake = match (idle, commit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let r = tokio::select! {
                r = consumer.recv() => r,
                () = sleep_until(wake) => {
                    self.commit(&shared.config, false);
                    self.clocks.events(now_ms(), pending);
                    if !pending.is_empty() {
                        return Ok(Filled::Nothing);
                    }
                    continue;
                }
                () = news(fetched.as_deref()) => {
                    self.confirm_ends();
                    if self.live == 0 {
                        return Ok(Filled::Nothing);
                    }
                    continue;
                }
            };
            match r {
                Ok(m) => break m,
                Err(e) => {
                    if self.on_error(ctx, e)? {
                        tokio::time::sleep(ERROR_BACKOFF).await;
                    }
                    if self.live == 0 && shared.config.bounded {
                        return Ok(Filled::Nothing);
                    }
                }
            }
        };
        let now = now_ms();
        self.take(ctx, shared, read, &first, &mut batch, now)
            .await?;
        drop(first);
        while batch.len() < max {
            match consumer.recv().now_or_never() {
                Some(Ok(m)) => self.take(ctx, shared, read, &m, &mut batch, now).await?,
                Some(Err(e)) => {
                    if self.on_error(ctx, e)? {
                        break;
                    }
                }
                None => break,
            }
        }
        // Dead letters are acknowledged before their offsets can be
        // committed, at the next poll.
        self.bad.settle().await?;
        Ok(if batch.is_empty() {
            Filled::Nothing
        } else {
            Filled::Batch(batch)
        })
    }

    /// Takes one message into the batch, or through the bad-message policy.
    async fn take<T: Send + 'static>(
        &mut self,
        ctx: &TaskContext,
        shared: &Shared<T>,
        read: &mut ReadFn<T>,
        m: &BorrowedMessage<'_>,
        batch: &mut Batch<T>,
        now: i64,
    ) -> Result<()> {
        let Some(&i) = self
            .index
            .get(m.topic())
            .and_then(|parts| parts.get(&m.partition()))
        else {
            return Ok(());
        };
        let offset = m.offset();
        self.confirm(i);
        let part = &self.parts[i];
        if part.done {
            return Ok(());
        }
        if part.end.is_some_and(|end| end.reached(offset)) {
            // Past the end: left for the next read.
            self.finish(i);
            return Ok(());
        }
        let view = KafkaMessage {
            topic: m.topic(),
            partition: m.partition(),
            offset,
            key: m.key(),
            payload: m.payload(),
            timestamp: m.timestamp().to_millis(),
            headers: m.headers(),
        };
        match read(&view) {
            Ok(value) => {
                let ts = match &shared.event_time {
                    Some(f) => f(&value),
                    None => view.timestamp.unwrap_or(NO_TIMESTAMP),
                };
                match self.clocks.observe(i, ts, now) {
                    Ok(()) => batch.push(ts, value),
                    // A time the watermark strategy refuses is a bad
                    // message: it must not move the watermark.
                    Err(refusal) => {
                        ctx.metrics().add_rejected(1);
                        let dead = Dead::copy(&view, self.bad.needs_raw());
                        self.bad.handle(ctx, i, dead, Box::new(refusal)).await?;
                    }
                }
            }
            Err(e) => {
                let dead = Dead::copy(&view, self.bad.needs_raw());
                self.bad.handle(ctx, i, dead, e).await?;
                let _ = self.clocks.observe(i, NO_TIMESTAMP, now);
            }
        }
        let part = &mut self.parts[i];
        part.next = Some(offset + 1);
        if !self.moved.contains(&i) {
            self.moved.push(i);
        }
        if self.parts[i].read_to_end() {
            self.finish(i);
        }
        Ok(())
    }

    /// The positions of the partitions read since the last call: split
    /// index (partitions are in split order) and next offset.
    fn positions(&mut self) -> Vec<(usize, i64)> {
        let parts = &self.parts;
        self.moved
            .drain(..)
            .filter_map(|i| parts[i].next.map(|next| (i, next)))
            .collect()
    }

    /// Handles an error from the consumer: the end of a partition in
    /// bounded mode, a fatal error, or a transient one (logged). Returns
    /// whether to wait a little before receiving again, so that a repeated
    /// error is no busy loop.
    fn on_error(&mut self, ctx: &TaskContext, e: KafkaError) -> Result<bool> {
        match e {
            KafkaError::PartitionEOF(partition) => {
                self.at_partition_eof(partition);
                Ok(false)
            }
            e if fatal(&e) => Err(kafka_error(
                format!("kafka source '{}': consuming", ctx.node_name()),
                e,
            )),
            e => {
                tracing::warn!(node = ctx.node_name(), error = %e, "Kafka consumer error; receiving again shortly.");
                Ok(true)
            }
        }
    }

    /// Bounded mode: the consumer reached the broker's high watermark of a
    /// partition numbered `partition`, which is at or past its end at
    /// start. The event names no topic: the partition is done only if it
    /// is the instance's one partition with that number; otherwise its
    /// confirmed end decides.
    fn at_partition_eof(&mut self, partition: i32) {
        let mut same = self
            .parts
            .iter()
            .enumerate()
            .filter(|(_, p)| p.partition == partition);
        if let (Some((i, p)), None) = (same.next(), same.next())
            && p.end.is_some()
        {
            self.finish(i);
        }
    }

    /// Bounded mode: confirms the end of partition `i` once its first
    /// fetched high watermark is known, and finishes the partition if it is
    /// read to that end.
    fn confirm(&mut self, i: usize) {
        let Some(fetched) = &self.fetched else {
            return;
        };
        let p = &mut self.parts[i];
        let Some(end) = &mut p.end else {
            return;
        };
        if p.done || end.confirmed {
            return;
        }
        let Some(high) = fetched.high(&p.topic, p.partition) else {
            return;
        };
        if let Some(listed) = end.confirm(high) {
            tracing::debug!(
                topic = %p.topic,
                partition = p.partition,
                listed,
                end = end.offset,
                "The first fetch put a partition's end past what ListOffsets said."
            );
        }
        if p.read_to_end() {
            self.finish(i);
        }
    }

    /// Bounded mode: confirms every end whose fetched high watermark is
    /// known; once all are, stops reading librdkafka's statistics.
    fn confirm_ends(&mut self) {
        for i in 0..self.parts.len() {
            self.confirm(i);
        }
        let all = self
            .parts
            .iter()
            .all(|p| p.done || p.end.is_none_or(|e| e.confirmed));
        if all && let Some(fetched) = &self.fetched {
            fetched.stop();
        }
    }

    /// Partition `i` is read to its end (bounded mode): pause it.
    fn finish(&mut self, i: usize) {
        let p = &mut self.parts[i];
        if p.done {
            return;
        }
        p.done = true;
        self.live -= 1;
        self.clocks.finish(i);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&p.topic, p.partition);
        if let Err(e) = self.consumer.pause(&tpl) {
            tracing::debug!(topic = %p.topic, partition = p.partition, error = %e, "Could not pause a finished partition.");
        }
    }
}

/// Sleeps until the wall-clock time `at_ms`, or forever.
async fn sleep_until(at_ms: Option<i64>) {
    match at_ms {
        Some(at) => {
            let wait = at.saturating_sub(now_ms()).max(0);
            tokio::time::sleep(Duration::from_millis(wait.unsigned_abs())).await;
        }
        None => std::future::pending().await,
    }
}

/// Waits for a newly fetched high watermark, or forever when unbounded.
async fn news(fetched: Option<&FetchedHighs>) {
    match fetched {
        Some(f) => f.changed().await,
        None => std::future::pending().await,
    }
}
