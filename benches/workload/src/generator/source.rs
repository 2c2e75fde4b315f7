//! [`LogGenerator`]: a source of deterministic log events, split over
//! parallel instances by chunks of event indexes.

use std::ops::Range;

use brook_core::{
    Batch, BoxedSourceStream, Error, PlanContext, Result, Source, SourceContext, SourceEvent,
    SourceSplit, SplitId,
};
use futures::StreamExt;
use futures::stream;

use super::event::GeneratedLog;
use super::recipe::Recipe;

/// The default [`LogGenerator::start_ms`]: 2023-11-14T22:13:20Z, as
/// `gen_logs.py --start-ms`.
pub const DEFAULT_START_MS: i64 = 1_700_000_000_000;

/// Events per chunk: the unit of work the parallel instances of a
/// [`LogGenerator`] share, round-robin (655 ms of event time).
pub const CHUNK_EVENTS: u64 = 65_536;

/// A source of `events` deterministic log events in the shape and mix of the
/// "logs-window" workload (`benches/workload/README.md`), like
/// `gen_logs.py --events N --seed S` but made in memory, with no file.
///
/// # Determinism
/// Event `i` (in `0..events`) is a pure function of the seed, the start time
/// and `i` (a counter-based SplitMix64), the same on every machine. It is
/// not the event `gen_logs.py` makes for the same seed (that one follows
/// Python's `random`), but it has the same fields and the same mix:
/// - `ts` is `start_ms + i / 100` (1 ms of event time per 100 events); about
///   25% of events are then delayed by 0 to 1999 ms;
/// - levels DEBUG 40%, INFO 45%, WARN 10%, ERROR 5%; status and latency
///   depend on the level as in `gen_logs.py` (DEBUG and INFO: 97% 200,
///   else 404; WARN: 60% 200, 35% 404, 5% 503; ERROR: 60% 500, 30% 503,
///   10% 200); latency in ms with 3 decimals;
/// - services `svc-00`..`svc-49`, hosts `host-000`..`host-199`, and
///   messages from a pool of 512 per seed, 20 to 60 characters.
///
/// Records carry `ts` as their event time. The source yields no watermark:
/// put `assign_timestamps` with `Watermarks::bounded` of 2 s after it, as
/// `brook_workload::logs::window_stats` does.
///
/// # Parallelism and ordering
/// Indexes are cut into chunks of [`CHUNK_EVENTS`]; instance `k` of `n`
/// makes chunks `k`, `k + n`, `k + 2n`, … in that order, each in index
/// order. So the events made, as a multiset, are the same at every
/// parallelism and batch size, and the instances stay within about one
/// chunk per instance of each other in event time, which keeps the windows
/// a job holds open (between the slowest instance's watermark and the
/// fastest one's events) few.
///
/// # Bounded disorder
/// An event's `ts` is at least `start_ms + i / 100 - 1999`, and every event
/// before it in any instance's output has a smaller index, so a `ts` of at
/// most `start_ms + i / 100`. Each instance's output is therefore strictly
/// less than 2 s behind the largest `ts` before it, as `gen_logs.py`'s file
/// is; with a 2 s bounded watermark per instance, merged downstream as the
/// minimum over instances, no event is ever late.
///
/// # Progress
/// The total is known: the source node's `records_out` counter (in
/// `Job::metrics()`, summed over instances) reaches [`events`](Self::events)
/// when the source is done.
///
/// # Examples
/// ```
/// use brook_workload::generator::LogGenerator;
///
/// let logs = LogGenerator::new(1_000, 7).start_ms(0);
/// let all: Vec<_> = logs.iter().collect();
/// assert_eq!(all.len(), 1_000);
/// assert_eq!(all[500], logs.event(500));
/// assert!(all.iter().all(|e| e.ts > -2_000 && e.ts < 10));
/// ```
#[derive(Debug, Clone)]
pub struct LogGenerator {
    events: u64,
    seed: u64,
    batch_size: Option<usize>,
    /// Events per second of wall-clock time, over all instances.
    rate: Option<u64>,
    recipe: Recipe,
}

impl LogGenerator {
    /// A source of `events` events from `seed`, starting at
    /// [`DEFAULT_START_MS`].
    pub fn new(events: u64, seed: u64) -> Self {
        LogGenerator {
            events,
            seed,
            batch_size: None,
            rate: None,
            recipe: Recipe::new(seed, DEFAULT_START_MS),
        }
    }

    /// The event time of the first event before any delay, epoch
    /// milliseconds (default: [`DEFAULT_START_MS`]).
    pub fn start_ms(mut self, ms: i64) -> Self {
        self.recipe = Recipe::new(self.seed, ms);
        self
    }

    /// The most events per batch (default: the job's batch size). It does
    /// not change which events are made.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// Makes at most `events_per_second` events per second of wall-clock
    /// time, over all instances (each makes its share): a steady load, to
    /// measure latency below peak throughput. Each instance makes its
    /// batches on a schedule from the moment it starts, `size / rate`
    /// apart; when it falls behind (the job is slower than the rate), it
    /// makes the next at once, never a burst to catch up with more than
    /// one batch. Default: as fast as the job takes them.
    pub fn rate_limit(mut self, events_per_second: u64) -> Self {
        self.rate = Some(events_per_second.max(1));
        self
    }

    /// The number of events the source makes, over all its instances.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Event `index`, as the source makes it (whether or not `index` is
    /// below [`events`](Self::events)).
    pub fn event(&self, index: u64) -> GeneratedLog {
        self.recipe.event(index)
    }

    /// All the events in index order, on the calling thread: to write a
    /// JSON-lines file (with [`GeneratedLog::write_json_line`]) or to
    /// compute an expected answer.
    pub fn iter(&self) -> GeneratedLogs {
        GeneratedLogs {
            recipe: self.recipe.clone(),
            next: 0..self.events,
        }
    }
}

/// A split of a [`LogGenerator`] (or of a
/// [`NexmarkSource`](crate::nexmark::NexmarkSource)): one chunk of event
/// indexes, [`CHUNK_EVENTS`] of them for a `LogGenerator` (the last may be
/// shorter).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratorSplit {
    range: Range<u64>,
    /// The next index to generate: `range.start` unless resumed.
    next: u64,
}

impl GeneratorSplit {
    /// The split of the indexes `range`, from its start.
    pub(crate) fn of(range: Range<u64>) -> Self {
        GeneratorSplit {
            next: range.start,
            range,
        }
    }

    /// The indexes of the events of this split.
    pub fn range(&self) -> Range<u64> {
        self.range.clone()
    }

    /// The indexes still to make: from the resumed position on.
    pub(crate) fn rest(&self) -> Range<u64> {
        self.next..self.range.end
    }
}

impl SourceSplit for GeneratorSplit {
    /// The index of the next event to make.
    type Position = u64;

    fn id(&self) -> SplitId {
        SplitId::new(format!("events[{}..{})", self.range.start, self.range.end))
    }

    fn start(&self) -> u64 {
        self.range.start
    }

    const RESUMABLE: bool = true;

    fn resume(&mut self, position: u64) {
        self.next = position.clamp(self.range.start, self.range.end);
    }
}

impl Source<GeneratedLog> for LogGenerator {
    type Split = GeneratorSplit;

    /// One split per chunk of [`CHUNK_EVENTS`] indexes; dealt round-robin,
    /// instance `k` of `n` makes chunks `k`, `k + n`, …
    ///
    /// # Errors
    /// [`Error::Config`] when the batch size is 0.
    fn plan(&mut self, _ctx: &PlanContext) -> Result<Vec<GeneratorSplit>> {
        if self.batch_size == Some(0) {
            return Err(Error::Config(
                "log generator: batch_size must be at least 1".into(),
            ));
        }
        let chunks = self.events.div_ceil(CHUNK_EVENTS);
        Ok((0..chunks)
            .map(|c| GeneratorSplit::of(Share::chunk_range(self.events, c)))
            .collect())
    }

    /// Opens an instance: a stream making its chunks in batches, on the
    /// task that polls it (about 65 ns of CPU per event in release builds,
    /// 15 million events per second per core; it does no I/O).
    ///
    /// # Cancellation
    /// Dropping the stream drops everything it holds.
    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<GeneratorSplit>,
    ) -> Result<BoxedSourceStream<GeneratedLog>> {
        let size = self.batch_size.unwrap_or(ctx.batch_size()).max(1);
        let share = Share::of(splits.iter().map(GeneratorSplit::rest).collect());
        let recipe = self.recipe.clone();
        // This instance's share of the rate: the time between batches.
        let gap = self.rate.map(|rate| {
            let per_instance = rate as f64 / ctx.parallelism().max(1) as f64;
            std::time::Duration::from_secs_f64(size as f64 / per_instance)
        });
        // Each batch with the position of its split: the index after it.
        Ok(stream::unfold(
            (share, recipe, None::<tokio::time::Instant>),
            move |(mut share, recipe, mut next_at)| async move {
                if let Some(gap) = gap {
                    let now = tokio::time::Instant::now();
                    let at = next_at.map_or(now, |t: tokio::time::Instant| t.max(now));
                    tokio::time::sleep_until(at).await;
                    next_at = Some(at + gap);
                }
                let (split, range) = share.take(size)?;
                let mut batch =
                    Batch::with_capacity(range.end.saturating_sub(range.start) as usize);
                for i in range.clone() {
                    let e = recipe.event(i);
                    batch.push(e.ts, e);
                }
                let event = SourceEvent::batch_at(batch, [(split, range.end)]);
                Some((Ok(event), (share, recipe, next_at)))
            },
        )
        .boxed())
    }
}

/// The events of a [`LogGenerator`] in index order; from
/// [`LogGenerator::iter`].
#[derive(Debug, Clone)]
pub struct GeneratedLogs {
    recipe: Recipe,
    next: Range<u64>,
}

impl Iterator for GeneratedLogs {
    type Item = GeneratedLog;

    fn next(&mut self) -> Option<GeneratedLog> {
        self.next.next().map(|i| self.recipe.event(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.next.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<GeneratedLog> {
        self.next.nth(n).map(|i| self.recipe.event(i))
    }
}

impl ExactSizeIterator for GeneratedLogs {}

/// The indexes one instance makes: its chunks, in order.
#[derive(Debug, Clone)]
pub(crate) struct Share {
    /// The ranges left, each with the index of its split.
    chunks: std::iter::Enumerate<std::vec::IntoIter<Range<u64>>>,
    /// The split being generated and what is left of it.
    rest: (usize, Range<u64>),
}

impl Share {
    #[cfg(test)]
    pub(crate) fn new(total: u64, instance: usize, parallelism: usize) -> Self {
        let chunks = (instance as u64..total.div_ceil(CHUNK_EVENTS))
            .step_by(parallelism.max(1))
            .map(|c| Self::chunk_range(total, c))
            .collect();
        Self::of(chunks)
    }

    /// The share of these ranges, one per split, in order.
    pub(crate) fn of(chunks: Vec<Range<u64>>) -> Self {
        Share {
            chunks: chunks.into_iter().enumerate(),
            rest: (0, 0..0),
        }
    }

    fn chunk_range(total: u64, chunk: u64) -> Range<u64> {
        let start = chunk.saturating_mul(CHUNK_EVENTS).min(total);
        start..start.saturating_add(CHUNK_EVENTS).min(total)
    }

    /// The next at most `max` indexes, all of one split, with that split's
    /// index; `None` when the share is done.
    pub(crate) fn take(&mut self, max: usize) -> Option<(usize, Range<u64>)> {
        while self.rest.1.is_empty() {
            self.rest = self.chunks.next()?;
        }
        let (split, rest) = &mut self.rest;
        let start = rest.start;
        let end = start.saturating_add(max as u64).min(rest.end);
        rest.start = end;
        Some((*split, start..end))
    }
}
