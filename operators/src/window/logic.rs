//! What a window does with its records: aggregate them as they come, or
//! keep them for a function over the whole window.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use brook_core::{Collector, Data, Result};

use super::aggregate::AggregateFunction;
use super::assigner::Window;

/// The result of an aggregate over one window of one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowResult<K, R> {
    /// The key.
    pub key: K,
    /// The window, `[start, end)`.
    pub window: Window,
    /// The aggregate's result.
    pub value: R,
}

/// A function over all records of one window of one key, as Flink's
/// `ProcessWindowFunction`. Closures `FnMut(&K, &Window, &[T]) -> O` are
/// one, emitting one output per window.
pub trait ProcessWindowFunction<K, T, O>: Clone + Send + 'static {
    /// Called when a window fires (again, for a late record within the
    /// allowed lateness), with its records in arrival order (a merged
    /// session has those of each session it absorbed, one after another).
    ///
    /// # Errors
    /// Fails the job, naming the node.
    fn process(&mut self, key: &K, window: &Window, records: &[T], out: &mut Vec<O>) -> Result<()>;
}

impl<K, T, O, F> ProcessWindowFunction<K, T, O> for F
where
    F: FnMut(&K, &Window, &[T]) -> O + Clone + Send + 'static,
{
    fn process(&mut self, key: &K, window: &Window, records: &[T], out: &mut Vec<O>) -> Result<()> {
        out.push(self(key, window, records));
        Ok(())
    }
}

/// The per-window work of a window operator.
pub(crate) trait WindowLogic<K, T>: Clone + Send + 'static {
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    type Out: Data;
    fn create(&self) -> Self::Acc;
    fn add(&self, acc: &mut Self::Acc, value: &T);
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// How many of the user's records `value` stands for (a partial
    /// aggregate stands for several), for the node's counts.
    fn records(&self, _value: &T) -> u64 {
        1
    }
    fn emit(
        &mut self,
        key: &K,
        window: Window,
        acc: &Self::Acc,
        out: &mut Collector<Self::Out>,
    ) -> Result<()>;
}

/// Windows folded by an [`AggregateFunction`].
#[derive(Clone)]
pub(crate) struct Aggregate<A>(pub(crate) A);

impl<K: Data, T, A: AggregateFunction<T>> WindowLogic<K, T> for Aggregate<A> {
    type Acc = A::Acc;
    type Out = WindowResult<K, A::Output>;

    fn create(&self) -> A::Acc {
        self.0.create_accumulator()
    }

    #[inline]
    fn add(&self, acc: &mut A::Acc, value: &T) {
        self.0.add(acc, value);
    }

    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.0.merge(acc, other);
    }

    fn emit(
        &mut self,
        key: &K,
        window: Window,
        acc: &A::Acc,
        out: &mut Collector<Self::Out>,
    ) -> Result<()> {
        let result = WindowResult {
            key: key.clone(),
            window,
            value: self.0.result(acc),
        };
        out.emit(window.max_timestamp(), result);
        Ok(())
    }
}

/// Windows kept whole for a [`ProcessWindowFunction`].
#[derive(Clone)]
pub(crate) struct Process<F, O> {
    pub(crate) f: F,
    pub(crate) buf: Vec<O>,
}

impl<K, T, O, F> WindowLogic<K, T> for Process<F, O>
where
    T: Data + Serialize + DeserializeOwned,
    O: Data,
    F: ProcessWindowFunction<K, T, O>,
{
    type Acc = Vec<T>;
    type Out = O;

    fn create(&self) -> Vec<T> {
        Vec::new()
    }

    fn add(&self, acc: &mut Vec<T>, value: &T) {
        acc.push(value.clone());
    }

    fn merge(&self, acc: &mut Vec<T>, mut other: Vec<T>) {
        acc.append(&mut other);
    }

    fn emit(
        &mut self,
        key: &K,
        window: Window,
        acc: &Vec<T>,
        out: &mut Collector<O>,
    ) -> Result<()> {
        self.f.process(key, &window, acc, &mut self.buf)?;
        for o in self.buf.drain(..) {
            out.emit(window.max_timestamp(), o);
        }
        Ok(())
    }
}
