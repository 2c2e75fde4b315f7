//! `try_map`: a fallible map; an error fails the job, naming the node.

use brook_core::{Batch, BoxError, Collector, Error, Operator, Record, Result};

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
