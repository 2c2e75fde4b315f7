//! [`StdoutSink`]: one line per record on standard output.

use std::io::Write;
use std::sync::Arc;

use brook_core::{Batch, Error, Result, Sink, SinkContext, SinkWriter};

type Format<T> = Arc<dyn Fn(&T) -> String + Send + Sync>;

/// Writes one line per record to standard output. Each batch is written
/// under one lock, so lines of parallel instances never interleave mid-line.
pub struct StdoutSink<T> {
    format: Format<T>,
}

impl<T: std::fmt::Debug + 'static> StdoutSink<T> {
    /// Lines in `Debug` format.
    pub fn debug() -> Self {
        StdoutSink {
            format: Arc::new(|v: &T| format!("{v:?}")),
        }
    }
}

impl<T: serde::Serialize + 'static> StdoutSink<T> {
    /// Lines of JSON.
    pub fn json() -> Self {
        StdoutSink {
            format: Arc::new(|v: &T| {
                serde_json::to_string(v).unwrap_or_else(|e| format!("<unserializable: {e}>"))
            }),
        }
    }
}

impl<T> StdoutSink<T> {
    /// Lines made by `format`.
    pub fn with_format(format: impl Fn(&T) -> String + Send + Sync + 'static) -> Self {
        StdoutSink {
            format: Arc::new(format),
        }
    }
}

/// One instance of a [`StdoutSink`].
pub struct StdoutWriter<T> {
    format: Format<T>,
    buf: Vec<u8>,
}

impl<T: Send + 'static> Sink<T> for StdoutSink<T> {
    type Writer = StdoutWriter<T>;

    fn open(&mut self, _ctx: &SinkContext) -> Result<StdoutWriter<T>> {
        Ok(StdoutWriter {
            format: self.format.clone(),
            buf: Vec::new(),
        })
    }
}

impl<T: Send + 'static> SinkWriter<T> for StdoutWriter<T> {
    async fn write(&mut self, batch: Batch<T>) -> Result<()> {
        self.buf.clear();
        for v in batch.values() {
            self.buf.extend_from_slice((self.format)(v).as_bytes());
            self.buf.push(b'\n');
        }
        let mut out = std::io::stdout().lock();
        out.write_all(&self.buf)
            .and_then(|_| out.flush())
            .map_err(|e| Error::io("writing to stdout", e))
    }
}
