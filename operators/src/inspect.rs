//! `inspect`: sees every value and passes it on unchanged.

use brook_core::{Batch, Collector, Operator, Result};

/// Calls a closure on every value (for logging or debugging) and passes the
/// batch on unchanged.
#[derive(Clone)]
pub struct Inspect<F>(pub F);

impl<T, F> Operator<T, T> for Inspect<F>
where
    T: Send + 'static,
    F: FnMut(&T) + Clone + Send + 'static,
{
    fn process(&mut self, batch: Batch<T>, out: &mut Collector<T>) -> Result<()> {
        batch.values().for_each(&mut self.0);
        out.emit_batch(batch);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use brook_core::Record;
    use std::sync::{Arc, Mutex};

    #[test]
    fn sees_everything_and_changes_nothing() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let mut op = Inspect(move |v: &i32| s.lock().expect("lock").push(*v));
        let mut out = Collector::default();
        op.process((0..3).map(Record::untimed).collect(), &mut out)
            .expect("inspect");
        assert_eq!(out.len(), 3);
        assert_eq!(*seen.lock().expect("lock"), vec![0, 1, 2]);
    }
}
