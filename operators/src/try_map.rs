//! `try_map`: a fallible map. By default an error fails the job, naming the
//! node; `try_map_with_errors` routes failing records, with their error, to
//! a side output instead.

use std::sync::Arc;

use brook_core::metrics::NodeMetrics;
use brook_core::{
    Batch, BoxError, Collector, Error, Operator, OperatorContext, OutputTag, Record, Result,
};
use serde::{Deserialize, Serialize};

/// Applies a fallible closure to every value; the first error fails the job.
#[derive(Clone)]
pub struct TryMap<F>(pub F);

impl<In, Out, E, F> Operator<In, Out> for TryMap<F>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Into<BoxError>,
    F: FnMut(In) -> std::result::Result<Out, E> + Clone + Send + 'static,
{
    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()> {
        for r in batch {
            let value = (self.0)(r.value).map_err(Error::user)?;
            out.emit_record(Record::new(r.timestamp, value));
        }
        Ok(())
    }
}

/// A record a fallible map could not map, with why: what
/// [`StreamExt::try_map_with_errors`](crate::StreamExt::try_map_with_errors)
/// sends to its side output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed<T> {
    /// The record, as it came in.
    pub record: T,
    /// The error the closure returned, as text.
    pub error: String,
}

/// Applies a fallible closure to every value; a value it refuses goes, with
/// the error, to the side output `errors` (a [`Failed`]), counted in the
/// node's `dead_lettered` counter, and the job goes on. With no stream made
/// of that side output, the value is counted as `dropped`.
pub struct TryMapRouted<F> {
    f: F,
    errors: &'static str,
    metrics: Option<Arc<NodeMetrics>>,
}

impl<F: Clone> Clone for TryMapRouted<F> {
    fn clone(&self) -> Self {
        TryMapRouted {
            f: self.f.clone(),
            errors: self.errors,
            metrics: self.metrics.clone(),
        }
    }
}

impl<F> TryMapRouted<F> {
    /// `f`, routing what it refuses to the side output `errors`.
    pub fn new<In>(f: F, errors: OutputTag<Failed<In>>) -> Self {
        TryMapRouted {
            f,
            errors: errors.name(),
            metrics: None,
        }
    }
}

impl<In, Out, E, F> Operator<In, Out> for TryMapRouted<F>
where
    In: Send + 'static,
    Out: Send + 'static,
    E: Into<BoxError>,
    F: FnMut(&In) -> std::result::Result<Out, E> + Clone + Send + 'static,
{
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.metrics = Some(ctx.metrics_handle());
        Ok(())
    }

    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()> {
        let tag = OutputTag::<Failed<In>>::new(self.errors);
        for r in batch {
            match (self.f)(&r.value) {
                Ok(value) => out.emit(r.timestamp, value),
                Err(e) => {
                    let failed = Failed {
                        record: r.value,
                        error: e.into().to_string(),
                    };
                    let routed = out.emit_side(&tag, r.timestamp, failed);
                    if let Some(m) = &self.metrics {
                        if routed {
                            m.add_dead_lettered(1);
                        } else {
                            m.add_dropped(1);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stops_at_the_first_error() {
        let mut op = TryMap(|v: i32| {
            if v < 2 {
                Ok(v)
            } else {
                Err(format!("{v} is too big"))
            }
        });
        let mut out = Collector::default();
        let batch: Batch<i32> = (0..4).map(Record::untimed).collect();
        let err = op.process(batch, &mut out).expect_err("fails on 2");
        assert_eq!(err.to_string(), "2 is too big");
        assert_eq!(out.len(), 2);
    }
}
