//! Helpers the connector crates' tests share (feature `test-utils`).

use brook_core::{Batch, Dataflow, Error, Record, Result, Sink, SinkContext};

use crate::MemorySource;

/// The I/O error at the root of `e`, with its text.
pub fn io_error(e: &Error) -> String {
    assert!(
        matches!(e.root(), Error::Io { .. }),
        "not an I/O error: {e}"
    );
    e.to_string()
}

/// A writer of instance 0 of 1 of `sink`, as node `node`, opened outside a
/// job.
pub fn open_writer<T, S: Sink<T>>(sink: &mut S, node: &str) -> S::Writer {
    sink.open(&SinkContext::standalone(node, 0, 1))
        .expect("open")
}

/// `values` as a batch of records without event time.
pub fn untimed<T: Clone>(values: &[T]) -> Batch<T> {
    values.iter().cloned().map(Record::untimed).collect()
}

/// Runs `values` into `sink`, a node named `node`, at parallelism `p`, in
/// batches of 100.
pub async fn run_into<T, S>(values: Vec<T>, sink: S, node: &str, p: usize) -> Result<()>
where
    T: Clone + Send + 'static,
    S: Sink<T>,
{
    let mut flow = Dataflow::new("write");
    flow.set_parallelism(p).set_batch_size(100);
    flow.source("values", MemorySource::new(values))
        .sink(node, sink);
    flow.build()?.run(Default::default()).await
}
