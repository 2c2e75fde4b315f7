//! [`NexmarkSource`]: Nexmark events split over parallel instances by
//! chunks of event indexes, as [`LogGenerator`](crate::LogGenerator) does.

use std::ops::Range;
use std::time::Duration;

use brook_core::{
    Batch, BoxedSourceStream, Error, PlanContext, Result, Source, SourceContext, SourceEvent,
    Watermarks,
};
use futures::StreamExt;
use futures::stream;

use super::config::NexmarkConfig;
use super::event::Event;
use super::generate::Model;
use crate::generator::{GeneratorSplit, Share};

/// The default [`NexmarkSource::chunk_events`]: 65,536 events, 6.5 s of
/// event time at the default rate.
pub const DEFAULT_CHUNK_EVENTS: u64 = 65_536;

/// The watermark bound the queries use: zero, since event times never
/// decrease within an instance (see [`NexmarkSource`], "Event time").
pub const MAX_OUT_OF_ORDERNESS: Duration = Duration::ZERO;

/// The watermark strategy for [`NexmarkSource`] events, to put in
/// `assign_timestamps` right after the source (as the queries do, with
/// [`Event::date_time`]): bounded by [`MAX_OUT_OF_ORDERNESS`].
pub fn watermarks() -> Watermarks {
    Watermarks::bounded(MAX_OUT_OF_ORDERNESS)
}

/// A source of `events` Nexmark events ([`Event`]), made by the model of
/// a [`NexmarkConfig`] (see [the module docs](super) for the generator).
///
/// # Determinism
/// Event `i` (in `0..events`) is a pure function of the config and `i`,
/// the same on every machine and in every run: the base time is fixed
/// ([`NexmarkConfig::base_time_ms`]), not the wall clock. So a position is
/// just an index.
///
/// # Parallelism and ordering
/// Indexes are cut into chunks of [`chunk_events`](Self::chunk_events);
/// instance `k` of `n` makes chunks `k`, `k + n`, `k + 2n`, … in that
/// order, each in index order, as [`LogGenerator`](crate::LogGenerator)
/// does. The events made, as a multiset, are the same at every parallelism
/// and batch size. Each batch carries its split's position, the next index,
/// so a job restored from a checkpoint resumes where it stood.
///
/// # Event time
/// A record's event time is its event's `date_time`, which grows with the
/// index (`base_time_ms + floor(i * 1000 / events_per_second)`), and each
/// instance makes increasing indexes: within an instance event times never
/// decrease. A per-instance watermark of bounded out-of-orderness
/// ([`watermarks`], with any bound from zero on) therefore never passes a
/// later record of its instance, and downstream the watermark is the
/// minimum over instances, never ahead of any one of them: no event is
/// ever late, at any parallelism. The source yields no watermark itself;
/// the queries put `assign_timestamps` with [`watermarks`] after it.
///
/// # Examples
/// ```
/// use brook_workload::nexmark::{Event, NexmarkSource};
///
/// let source = NexmarkSource::new(100).events_per_second(1000);
/// let events: Vec<Event> = source.iter().collect();
/// assert_eq!(events.len(), 100);
/// assert!(matches!(events[0], Event::Person(_)));
/// assert_eq!(events[99].date_time() - events[0].date_time(), 99);
/// assert_eq!(events[7], source.event(7));
/// ```
#[derive(Debug, Clone)]
pub struct NexmarkSource {
    events: u64,
    chunk_events: u64,
    batch_size: Option<usize>,
    model: Model,
}

impl NexmarkSource {
    /// A source of `events` events with the default [`NexmarkConfig`].
    pub fn new(events: u64) -> Self {
        NexmarkSource {
            events,
            chunk_events: DEFAULT_CHUNK_EVENTS,
            batch_size: None,
            model: Model::new(NexmarkConfig::default()),
        }
    }

    /// Replaces the whole model.
    pub fn config(mut self, config: NexmarkConfig) -> Self {
        self.model = Model::new(config);
        self
    }

    /// Sets [`NexmarkConfig::events_per_second`].
    pub fn events_per_second(self, rate: u64) -> Self {
        let config = NexmarkConfig {
            events_per_second: rate,
            ..*self.model.config()
        };
        self.config(config)
    }

    /// Sets [`NexmarkConfig::seed`].
    pub fn seed(self, seed: u64) -> Self {
        let config = NexmarkConfig {
            seed,
            ..*self.model.config()
        };
        self.config(config)
    }

    /// Sets [`NexmarkConfig::base_time_ms`].
    pub fn base_time_ms(self, ms: i64) -> Self {
        let config = NexmarkConfig {
            base_time_ms: ms,
            ..*self.model.config()
        };
        self.config(config)
    }

    /// Events per chunk, the unit of work instances share round-robin
    /// (default [`DEFAULT_CHUNK_EVENTS`]). Smaller chunks spread a small
    /// input over every instance; it does not change which events are
    /// made.
    pub fn chunk_events(mut self, n: u64) -> Self {
        self.chunk_events = n;
        self
    }

    /// The most events per batch (default: the job's batch size). It does
    /// not change which events are made.
    pub fn batch_size(mut self, n: usize) -> Self {
        self.batch_size = Some(n);
        self
    }

    /// The number of events the source makes, over all its instances.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// The model.
    pub fn nexmark_config(&self) -> &NexmarkConfig {
        self.model.config()
    }

    /// Event `index`, as the source makes it (whether or not `index` is
    /// below [`events`](Self::events)).
    pub fn event(&self, index: u64) -> Event {
        self.model.event(index)
    }

    /// All the events in index order, on the calling thread: for an
    /// oracle, a test, or a file.
    pub fn iter(&self) -> NexmarkEvents {
        NexmarkEvents {
            model: self.model,
            next: 0..self.events,
        }
    }

    fn chunk_range(&self, chunk: u64) -> Range<u64> {
        let start = chunk.saturating_mul(self.chunk_events).min(self.events);
        start..start.saturating_add(self.chunk_events).min(self.events)
    }
}

impl Source<Event> for NexmarkSource {
    type Split = GeneratorSplit;

    /// One split per chunk of [`chunk_events`](Self::chunk_events)
    /// indexes; dealt round-robin, instance `k` of `n` makes chunks `k`,
    /// `k + n`, …
    ///
    /// # Errors
    /// [`Error::Config`] when the batch size or chunk size is 0, or the
    /// model is invalid ([`NexmarkConfig::validate`]).
    fn plan(&mut self, _ctx: &PlanContext) -> Result<Vec<GeneratorSplit>> {
        if self.batch_size == Some(0) || self.chunk_events == 0 {
            return Err(Error::Config(
                "nexmark source: batch_size and chunk_events must be at least 1".into(),
            ));
        }
        self.model.config().validate()?;
        let chunks = self.events.div_ceil(self.chunk_events);
        Ok((0..chunks)
            .map(|c| GeneratorSplit::of(self.chunk_range(c)))
            .collect())
    }

    /// Opens an instance: a stream making its chunks in batches, on the
    /// task that polls it. It does no I/O.
    ///
    /// # Cancellation
    /// Dropping the stream drops everything it holds.
    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<GeneratorSplit>,
    ) -> Result<BoxedSourceStream<Event>> {
        let size = self.batch_size.unwrap_or(ctx.batch_size()).max(1);
        let share = Share::of(splits.iter().map(GeneratorSplit::rest).collect());
        let model = self.model;
        // Each batch with the position of its split: the index after it.
        Ok(stream::unfold(share, move |mut share| async move {
            let (split, range) = share.take(size)?;
            let mut batch = Batch::with_capacity(range.end.saturating_sub(range.start) as usize);
            for i in range.clone() {
                let e = model.event(i);
                batch.push(e.date_time(), e);
            }
            let event = SourceEvent::batch_at(batch, [(split, range.end)]);
            Some((Ok(event), share))
        })
        .boxed())
    }
}

/// The events of a [`NexmarkSource`] in index order; from
/// [`NexmarkSource::iter`].
#[derive(Debug, Clone)]
pub struct NexmarkEvents {
    model: Model,
    next: Range<u64>,
}

impl Iterator for NexmarkEvents {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        self.next.next().map(|i| self.model.event(i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.next.size_hint()
    }

    fn nth(&mut self, n: usize) -> Option<Event> {
        self.next.nth(n).map(|i| self.model.event(i))
    }
}

impl ExactSizeIterator for NexmarkEvents {}
