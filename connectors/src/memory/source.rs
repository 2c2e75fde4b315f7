//! [`MemorySource`]: records from a `Vec` or an iterator.

use std::ops::Range;

use brook_core::{
    Batch, BoxedSourceStream, PlanContext, Record, Result, Source, SourceContext, SourceEvent,
    SourceSplit, SplitId,
};
use futures::StreamExt;
use futures::stream;

enum Input<T> {
    /// Records not yet planned.
    Vec(Vec<Record<T>>),
    /// The records of each planned split, taken as its instance opens.
    Split(Vec<Option<Vec<Record<T>>>>),
    Iter(Option<NextBatch<T>>),
}

/// A split of a [`MemorySource`]: a contiguous range of a `Vec`'s records,
/// or the whole of an iterator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemorySplit {
    index: usize,
    /// The range of records, `None` for an iterator.
    range: Option<Range<usize>>,
}

impl SourceSplit for MemorySplit {
    /// The number of records of the split already emitted.
    type Position = u64;

    fn id(&self) -> SplitId {
        match &self.range {
            Some(r) => SplitId::new(format!("records[{}..{})", r.start, r.end)),
            None => SplitId::new("iterator"),
        }
    }

    fn start(&self) -> u64 {
        0
    }
}

/// Takes the next batch of at most `n` records. Boxed once per source, it is
/// called once per batch, so the iterator itself is never called through a
/// `dyn` per record.
type NextBatch<T> = Box<dyn FnMut(usize) -> Batch<T> + Send>;

fn batches<T, I: Iterator<Item = Record<T>> + Send + 'static>(mut it: I) -> NextBatch<T> {
    Box::new(move |n| it.by_ref().take(n).collect())
}

/// A source of records held in memory, for tests and examples.
///
/// From a `Vec`, the records are split into contiguous shares, one per
/// parallel instance; from an iterator, one instance reads them all.
pub struct MemorySource<T> {
    input: Input<T>,
}

impl<T: Send + 'static> MemorySource<T> {
    /// Values without event time.
    pub fn new(values: Vec<T>) -> Self {
        Self::from_records(values.into_iter().map(Record::untimed).collect())
    }

    /// Values with their event times.
    pub fn from_records(records: Vec<Record<T>>) -> Self {
        MemorySource {
            input: Input::Vec(records),
        }
    }

    /// Values from an iterator, which may be endless; one instance reads it.
    pub fn from_iterator<I>(iter: I) -> Self
    where
        I: IntoIterator<Item = T>,
        I::IntoIter: Send + 'static,
    {
        MemorySource {
            input: Input::Iter(Some(batches(iter.into_iter().map(Record::untimed)))),
        }
    }
}

impl<T: Send + 'static> Source<T> for MemorySource<T> {
    type Split = MemorySplit;

    /// Cuts a `Vec` into one contiguous range per instance; an iterator is
    /// one split.
    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<MemorySplit>> {
        if let Input::Iter(_) = self.input {
            return Ok(vec![MemorySplit {
                index: 0,
                range: None,
            }]);
        }
        let records = match &mut self.input {
            Input::Vec(records) => std::mem::take(records),
            // Planned again: the records not yet opened, in split order.
            Input::Split(parts) => parts
                .iter_mut()
                .flat_map(|p| p.take().unwrap_or_default())
                .collect(),
            Input::Iter(_) => Vec::new(),
        };
        let p = ctx.parallelism().max(1);
        let share = records.len().div_ceil(p).max(1);
        let (mut splits, mut parts, mut it) = (Vec::new(), Vec::new(), records.into_iter());
        let mut start = 0;
        for index in 0..p {
            let part: Vec<Record<T>> = it.by_ref().take(share).collect();
            splits.push(MemorySplit {
                index,
                range: Some(start..start + part.len()),
            });
            start += part.len();
            parts.push(Some(part));
        }
        self.input = Input::Split(parts);
        Ok(splits)
    }

    fn open(
        &mut self,
        ctx: &SourceContext,
        splits: Vec<MemorySplit>,
    ) -> Result<BoxedSourceStream<T>> {
        let size = ctx.batch_size();
        let next: NextBatch<T> = match &mut self.input {
            Input::Split(parts) => {
                let records: Vec<Record<T>> = splits
                    .iter()
                    .flat_map(|s| {
                        parts
                            .get_mut(s.index)
                            .and_then(Option::take)
                            .unwrap_or_default()
                    })
                    .collect();
                batches(records.into_iter())
            }
            Input::Iter(next) if !splits.is_empty() => {
                next.take().unwrap_or_else(|| batches(std::iter::empty()))
            }
            Input::Iter(_) | Input::Vec(_) => batches(std::iter::empty()),
        };
        Ok(stream::unfold(next, move |mut next| async move {
            let batch = next(size);
            (!batch.is_empty()).then_some((Ok(SourceEvent::Batch(batch)), next))
        })
        .boxed())
    }

    fn max_parallelism(&self) -> Option<usize> {
        match self.input {
            Input::Iter(_) => Some(1),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt;

    async fn read_all(src: &mut MemorySource<u32>, p: usize) -> Vec<Vec<u32>> {
        let splits = src.plan(&PlanContext::standalone("mem", p)).expect("plan");
        let shares = src.assign(splits, p);
        let mut out = Vec::new();
        for (i, share) in shares.into_iter().enumerate() {
            let s = src
                .open(&SourceContext::standalone("mem", i, p), share)
                .expect("open");
            let events: Vec<SourceEvent<u32>> = s.try_collect().await.expect("read");
            let batches: Vec<Batch<u32>> = events
                .into_iter()
                .filter_map(SourceEvent::into_batch)
                .collect();
            out.push(
                batches
                    .into_iter()
                    .flat_map(|b| b.into_iter().map(|r| r.value))
                    .collect(),
            );
        }
        out
    }

    #[tokio::test]
    async fn splits_a_vec_into_contiguous_shares() {
        let mut src = MemorySource::new((0..10).collect());
        let splits = src.plan(&PlanContext::standalone("mem", 3)).expect("plan");
        let ids: Vec<String> = splits.iter().map(|s| s.id().to_string()).collect();
        assert_eq!(ids, ["records[0..4)", "records[4..8)", "records[8..10)"]);
        let shares = read_all(&mut src, 3).await;
        assert_eq!(shares, vec![vec![0, 1, 2, 3], vec![4, 5, 6, 7], vec![8, 9]]);
    }

    #[tokio::test]
    async fn an_iterator_is_read_by_one_instance() {
        let mut src = MemorySource::from_iterator(0..5u32);
        assert_eq!(src.max_parallelism(), Some(1));
        assert_eq!(read_all(&mut src, 1).await, vec![vec![0, 1, 2, 3, 4]]);
    }
}
