//! `flat_map`: any number of outputs per input.

use brook_core::{Batch, Collector, Operator, Result};

/// Replaces every value with the values the closure returns; they all get
/// the input's event time.
#[derive(Clone)]
pub struct FlatMap<F>(pub F);

impl<In, Out, I, F> Operator<In, Out> for FlatMap<F>
where
    In: Send + 'static,
    Out: Send + 'static,
    I: IntoIterator<Item = Out>,
    F: FnMut(In) -> I + Clone + Send + 'static,
{
    fn process(&mut self, batch: Batch<In>, out: &mut Collector<Out>) -> Result<()> {
        for r in batch {
            for v in (self.0)(r.value) {
                out.emit(r.timestamp, v);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::Record;

    #[test]
    fn splits_and_keeps_timestamps() {
        let mut op = FlatMap(|s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>());
        let mut out = Collector::default();
        let batch: Batch<String> =
            vec![Record::new(1, "a b".into()), Record::new(2, String::new())].into();
        op.process(batch, &mut out).expect("flat_map");
        let got: Vec<_> = out
            .take()
            .into_iter()
            .map(|r| (r.timestamp, r.value))
            .collect();
        assert_eq!(
            got,
            vec![(1, "a".into()), (1, "b".into()), (2, String::new())]
        );
    }
}
