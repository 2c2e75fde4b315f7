//! [`CollectSink`]: keeps every record it gets, for tests and examples.

use std::sync::{Arc, Mutex, PoisonError};

use brook_core::{Batch, Record, Result, Sink, SinkContext, SinkWriter};

/// A sink that collects every record into shared memory. Clone the
/// [`Collected`] handle before giving the sink to the dataflow, then read it
/// after (or while) the job runs.
pub struct CollectSink<T> {
    collected: Collected<T>,
}

impl<T> Default for CollectSink<T> {
    fn default() -> Self {
        CollectSink {
            collected: Collected(Arc::new(Mutex::new(Vec::new()))),
        }
    }
}

impl<T: Clone + Send + 'static> CollectSink<T> {
    /// An empty collecting sink.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle to what the sink collects.
    pub fn handle(&self) -> Collected<T> {
        self.collected.clone()
    }
}

/// What a [`CollectSink`] collected: records from every instance, each
/// instance's in the order it received them.
pub struct Collected<T>(Arc<Mutex<Vec<Record<T>>>>);

impl<T> Clone for Collected<T> {
    fn clone(&self) -> Self {
        Collected(self.0.clone())
    }
}

impl<T: Clone> Collected<T> {
    /// A copy of the records collected so far.
    pub fn records(&self) -> Vec<Record<T>> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// A copy of the values collected so far.
    pub fn values(&self) -> Vec<T> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|r| r.value.clone())
            .collect()
    }

    /// The number of records collected so far.
    pub fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether nothing was collected yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One instance of a [`CollectSink`].
pub struct CollectWriter<T>(Collected<T>);

impl<T: Clone + Send + 'static> Sink<T> for CollectSink<T> {
    type Writer = CollectWriter<T>;

    fn open(&mut self, _ctx: &SinkContext) -> Result<CollectWriter<T>> {
        Ok(CollectWriter(self.collected.clone()))
    }
}

impl<T: Send + 'static> SinkWriter<T> for CollectWriter<T> {
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        self.0
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(batch);
        Ok(())
    }
}
