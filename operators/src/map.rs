//! `map`: one output per input.

use brook_core::{Batch, Collector, Operator, Result};

/// Applies a closure to every value, keeping event times.
#[derive(Clone)]
pub struct Map<F>(pub F);

impl<In, Out, F> Operator<In, Out> for Map<F>
where
    In: Send + 'static,
    Out: Send + 'static,
    F: FnMut(In) -> Out + Clone + Send + 'static,
{
    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()> {
        out.emit_batch(batch.map(&mut self.0));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::Record;

    #[test]
    fn maps_values_and_keeps_timestamps() {
        let mut op = Map(|v: i32| v.to_string());
        let mut out = Collector::default();
        let batch: Batch<i32> = vec![Record::new(5, 1), Record::new(7, 2)].into();
        op.process(batch, &mut out).expect("map");
        let got: Vec<_> = out
            .take()
            .into_iter()
            .map(|r| (r.timestamp, r.value))
            .collect();
        assert_eq!(got, vec![(5, "1".to_string()), (7, "2".to_string())]);
    }
}
