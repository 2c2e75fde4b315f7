//! Helpers the connectors' unit tests share.

use brook_core::{Batch, Error, Record, Sink, SinkContext};

/// The I/O error at the root of `e`, with its text.
pub(crate) fn io_error(e: &Error) -> String {
    assert!(
        matches!(e.root(), Error::Io { .. }),
        "not an I/O error: {e}"
    );
    e.to_string()
}

/// A writer of instance 0 of 1 of `sink`, as node `node`, opened outside a
/// job.
pub(crate) fn open_writer<T, S: Sink<T>>(sink: &mut S, node: &str) -> S::Writer {
    sink.open(&SinkContext::standalone(node, 0, 1))
        .expect("open")
}

/// `values` as a batch of records without event time.
pub(crate) fn untimed<T: Clone>(values: &[T]) -> Batch<T> {
    values.iter().cloned().map(Record::untimed).collect()
}
