//! [`MemorySource`]: records from a `Vec` or an iterator.

use brook_core::{Batch, BoxedSourceStream, Record, Result, Source, SourceContext, SourceEvent};
use futures::StreamExt;
use futures::stream;

enum Input<T> {
    /// Records not yet split over the instances.
    Vec(Vec<Record<T>>),
    /// One contiguous share per instance, taken as each opens.
    Split(Vec<Option<Vec<Record<T>>>>),
    Iter(Option<NextBatch<T>>),
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
    fn open(&mut self, ctx: &SourceContext) -> Result<BoxedSourceStream<T>> {
        let size = ctx.batch_size();
        if let Input::Vec(records) = &mut self.input {
            let records = std::mem::take(records);
            let p = ctx.parallelism();
            let share = records.len().div_ceil(p).max(1);
            let mut it = records.into_iter();
            let shares = (0..p)
                .map(|_| Some(it.by_ref().take(share).collect()))
                .collect();
            self.input = Input::Split(shares);
        }
        let next: NextBatch<T> = match &mut self.input {
            Input::Split(shares) => batches(
                shares
                    .get_mut(ctx.instance())
                    .and_then(Option::take)
                    .unwrap_or_default()
                    .into_iter(),
            ),
            Input::Iter(next) => next.take().unwrap_or_else(|| batches(std::iter::empty())),
            Input::Vec(_) => batches(std::iter::empty()),
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
        let mut out = Vec::new();
        for i in 0..p {
            let s = src
                .open(&SourceContext::standalone("mem", i, p))
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
