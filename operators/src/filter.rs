//! `filter`: keeps the values a predicate accepts.

use brook_core::{Batch, Collector, Operator, Result};

/// Keeps the values for which the predicate is true, in order.
#[derive(Clone)]
pub struct Filter<F>(pub F);

impl<T, F> Operator<T, T> for Filter<F>
where
    T: Send + 'static,
    F: FnMut(&T) -> bool + Clone + Send + 'static,
{
    fn process(&mut self, mut batch: Batch<T>, out: &mut Collector<T>) -> Result<()> {
        batch.retain(&mut self.0);
        out.emit_batch(batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::Record;

    #[test]
    fn keeps_matching_values_in_order() {
        let mut op = Filter(|v: &i32| v % 3 == 0);
        let mut out = Collector::default();
        op.process((0..10).map(Record::untimed).collect(), &mut out)
            .expect("filter");
        let got: Vec<i32> = out.take().into_iter().map(|r| r.value).collect();
        assert_eq!(got, vec![0, 3, 6, 9]);
    }
}
