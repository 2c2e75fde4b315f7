//! Incremental aggregate functions: built-ins, composition and filtering.
//!
//! An [`AggregateFunction`] folds records into a small accumulator as they
//! arrive, so a window holds one accumulator per key, not its records.
//! Tuples of aggregates are aggregates, so one pass computes several:
//!
//! ```
//! use brook_operators::window::{AggregateExt, AggregateFunction, Avg, Count, Max};
//!
//! struct Req { latency_ms: f64, status: u16 }
//! let stats = (
//!     Count,
//!     Avg::of(|r: &Req| r.latency_ms),
//!     Max::of(|r: &Req| r.latency_ms),
//!     Count.filter(|r: &Req| r.status >= 500),
//! );
//! let mut acc = stats.create_accumulator();
//! stats.add(&mut acc, &Req { latency_ms: 10.0, status: 200 });
//! stats.add(&mut acc, &Req { latency_ms: 30.0, status: 503 });
//! assert_eq!(stats.result(&acc), (2, Some(20.0), Some(30.0), 1));
//! ```

use std::cmp::Ordering;

use serde::Serialize;
use serde::de::DeserializeOwned;

use brook_core::Data;

/// An incremental aggregate over records of type `In`, as Flink's
/// `AggregateFunction`: create an accumulator, add records to it, merge two
/// (for session windows), and read the result.
///
/// The accumulator is operator state, so it is `serde`-serializable for
/// checkpoints.
pub trait AggregateFunction<In>: Clone + Send + 'static {
    /// The running state of one window and key.
    type Acc: Clone + Send + Serialize + DeserializeOwned + 'static;
    /// What a window emits.
    type Output: Data;

    /// A fresh accumulator.
    fn create_accumulator(&self) -> Self::Acc;
    /// Adds one record.
    fn add(&self, acc: &mut Self::Acc, value: &In);
    /// Merges `other` into `acc`.
    fn merge(&self, acc: &mut Self::Acc, other: Self::Acc);
    /// The result so far. A window that fires again (a late record within
    /// the allowed lateness) reads it again.
    fn result(&self, acc: &Self::Acc) -> Self::Output;
}

/// Combinators on every aggregate.
pub trait AggregateExt<In>: AggregateFunction<In> + Sized {
    /// Adds only the records `pred` accepts (SQL's `FILTER (WHERE ...)`).
    fn filter<P>(self, pred: P) -> Filtered<Self, P>
    where
        P: Fn(&In) -> bool + Clone + Send + 'static,
    {
        Filtered { agg: self, pred }
    }

    /// Maps the result, for example a tuple of results into a struct.
    fn map_result<O: Data, G>(self, f: G) -> MapResult<Self, G>
    where
        G: Fn(Self::Output) -> O + Clone + Send + 'static,
    {
        MapResult { agg: self, f }
    }
}

impl<In, A: AggregateFunction<In>> AggregateExt<In> for A {}

/// The number of records.
#[derive(Debug, Clone, Copy, Default)]
pub struct Count;

impl<In> AggregateFunction<In> for Count {
    type Acc = u64;
    type Output = u64;
    fn create_accumulator(&self) -> u64 {
        0
    }
    #[inline]
    fn add(&self, acc: &mut u64, _: &In) {
        *acc += 1;
    }
    fn merge(&self, acc: &mut u64, other: u64) {
        *acc += other;
    }
    fn result(&self, acc: &u64) -> u64 {
        *acc
    }
}

/// Numbers [`Sum`] can add.
pub trait Summable: Copy + Send + Serialize + DeserializeOwned + 'static {
    /// The sum of nothing.
    const ZERO: Self;
    /// `self + other`.
    fn plus(self, other: Self) -> Self;
}

macro_rules! summable {
    ($($t:ty: $zero:expr),*) => {$(
        impl Summable for $t {
            const ZERO: Self = $zero;
            #[inline]
            fn plus(self, other: Self) -> Self { self + other }
        }
    )*};
}
summable!(i32: 0, i64: 0, u32: 0, u64: 0, usize: 0, f32: 0.0, f64: 0.0);

/// The sum of a field.
#[derive(Debug, Clone, Copy)]
pub struct Sum<F>(F);

impl<F> Sum<F> {
    /// Sums what `field` returns for each record.
    pub fn of<In, N>(field: F) -> Self
    where
        F: Fn(&In) -> N,
    {
        Sum(field)
    }
}

impl<In, N: Summable + Data, F> AggregateFunction<In> for Sum<F>
where
    F: Fn(&In) -> N + Clone + Send + 'static,
{
    type Acc = N;
    type Output = N;
    fn create_accumulator(&self) -> N {
        N::ZERO
    }
    #[inline]
    fn add(&self, acc: &mut N, value: &In) {
        *acc = acc.plus((self.0)(value));
    }
    fn merge(&self, acc: &mut N, other: N) {
        *acc = acc.plus(other);
    }
    fn result(&self, acc: &N) -> N {
        *acc
    }
}

/// The mean of a field; `None` for no records.
#[derive(Debug, Clone, Copy)]
pub struct Avg<F>(F);

impl<F> Avg<F> {
    /// Averages what `field` returns for each record.
    pub fn of<In>(field: F) -> Self
    where
        F: Fn(&In) -> f64,
    {
        Avg(field)
    }
}

impl<In, F> AggregateFunction<In> for Avg<F>
where
    F: Fn(&In) -> f64 + Clone + Send + 'static,
{
    type Acc = (f64, u64);
    type Output = Option<f64>;
    fn create_accumulator(&self) -> (f64, u64) {
        (0.0, 0)
    }
    #[inline]
    fn add(&self, acc: &mut (f64, u64), value: &In) {
        acc.0 += (self.0)(value);
        acc.1 += 1;
    }
    fn merge(&self, acc: &mut (f64, u64), other: (f64, u64)) {
        acc.0 += other.0;
        acc.1 += other.1;
    }
    fn result(&self, acc: &(f64, u64)) -> Option<f64> {
        (acc.1 > 0).then(|| acc.0 / acc.1 as f64)
    }
}

macro_rules! extremum {
    ($name:ident, $doc:literal, $keep:ident) => {
        #[doc = $doc]
        #[derive(Debug, Clone, Copy)]
        pub struct $name<F>(F);

        impl<F> $name<F> {
            /// Over what `field` returns for each record.
            pub fn of<In, N>(field: F) -> Self
            where
                F: Fn(&In) -> N,
            {
                $name(field)
            }
        }

        impl<In, N, F> AggregateFunction<In> for $name<F>
        where
            N: PartialOrd + Data + Serialize + DeserializeOwned,
            F: Fn(&In) -> N + Clone + Send + 'static,
        {
            type Acc = Option<N>;
            type Output = Option<N>;
            fn create_accumulator(&self) -> Option<N> {
                None
            }
            #[inline]
            fn add(&self, acc: &mut Option<N>, value: &In) {
                let v = (self.0)(value);
                match acc {
                    Some(best) if v.partial_cmp(best) != Some(Ordering::$keep) => {}
                    _ => *acc = Some(v),
                }
            }
            fn merge(&self, acc: &mut Option<N>, other: Option<N>) {
                match (acc.as_ref(), other) {
                    (_, None) => {}
                    (Some(best), Some(v)) if v.partial_cmp(best) != Some(Ordering::$keep) => {}
                    (_, v) => *acc = v,
                }
            }
            fn result(&self, acc: &Option<N>) -> Option<N> {
                acc.clone()
            }
        }
    };
}

extremum!(
    Max,
    "The largest value of a field; `None` for no records.",
    Greater
);
extremum!(
    Min,
    "The smallest value of a field; `None` for no records.",
    Less
);

/// An aggregate over the records a predicate accepts; see
/// [`AggregateExt::filter`].
#[derive(Debug, Clone, Copy)]
pub struct Filtered<A, P> {
    agg: A,
    pred: P,
}

impl<In, A, P> AggregateFunction<In> for Filtered<A, P>
where
    A: AggregateFunction<In>,
    P: Fn(&In) -> bool + Clone + Send + 'static,
{
    type Acc = A::Acc;
    type Output = A::Output;
    fn create_accumulator(&self) -> A::Acc {
        self.agg.create_accumulator()
    }
    #[inline]
    fn add(&self, acc: &mut A::Acc, value: &In) {
        if (self.pred)(value) {
            self.agg.add(acc, value);
        }
    }
    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.agg.merge(acc, other);
    }
    fn result(&self, acc: &A::Acc) -> A::Output {
        self.agg.result(acc)
    }
}

/// An aggregate with its result mapped; see [`AggregateExt::map_result`].
#[derive(Debug, Clone, Copy)]
pub struct MapResult<A, G> {
    agg: A,
    f: G,
}

impl<In, O, A, G> AggregateFunction<In> for MapResult<A, G>
where
    A: AggregateFunction<In>,
    O: Data,
    G: Fn(A::Output) -> O + Clone + Send + 'static,
{
    type Acc = A::Acc;
    type Output = O;
    fn create_accumulator(&self) -> A::Acc {
        self.agg.create_accumulator()
    }
    #[inline]
    fn add(&self, acc: &mut A::Acc, value: &In) {
        self.agg.add(acc, value);
    }
    fn merge(&self, acc: &mut A::Acc, other: A::Acc) {
        self.agg.merge(acc, other);
    }
    fn result(&self, acc: &A::Acc) -> O {
        (self.f)(self.agg.result(acc))
    }
}

macro_rules! tuple_aggregate {
    ($($a:ident $i:tt),+) => {
        impl<In, $($a: AggregateFunction<In>),+> AggregateFunction<In> for ($($a,)+) {
            type Acc = ($($a::Acc,)+);
            type Output = ($($a::Output,)+);
            fn create_accumulator(&self) -> Self::Acc {
                ($(self.$i.create_accumulator(),)+)
            }
            #[inline]
            fn add(&self, acc: &mut Self::Acc, value: &In) {
                $(self.$i.add(&mut acc.$i, value);)+
            }
            fn merge(&self, acc: &mut Self::Acc, other: Self::Acc) {
                $(self.$i.merge(&mut acc.$i, other.$i);)+
            }
            fn result(&self, acc: &Self::Acc) -> Self::Output {
                ($(self.$i.result(&acc.$i),)+)
            }
        }
    };
}

tuple_aggregate!(A 0);
tuple_aggregate!(A 0, B 1);
tuple_aggregate!(A 0, B 1, C 2);
tuple_aggregate!(A 0, B 1, C 2, D 3);
tuple_aggregate!(A 0, B 1, C 2, D 3, E 4);
tuple_aggregate!(A 0, B 1, C 2, D 3, E 4, G 5);
tuple_aggregate!(A 0, B 1, C 2, D 3, E 4, G 5, H 6);
tuple_aggregate!(A 0, B 1, C 2, D 3, E 4, G 5, H 6, I 7);

#[cfg(test)]
mod tests {
    use super::*;

    fn fold<A: AggregateFunction<i64>>(agg: &A, values: &[i64]) -> A::Acc {
        let mut acc = agg.create_accumulator();
        for v in values {
            agg.add(&mut acc, v);
        }
        acc
    }

    #[test]
    fn builtins_and_merge_agree_with_one_pass() {
        let agg = (
            Count,
            Sum::of(|v: &i64| *v),
            Min::of(|v: &i64| *v),
            Max::of(|v: &i64| *v),
            Avg::of(|v: &i64| *v as f64),
            Count.filter(|v: &i64| v % 2 == 0),
        );
        let all = [5, -3, 8, 8, 1, 0];
        let one = agg.result(&fold(&agg, &all));
        assert_eq!(one, (6, 19, Some(-3), Some(8), Some(19.0 / 6.0), 3));
        let mut left = fold(&agg, &all[..2]);
        agg.merge(&mut left, fold(&agg, &all[2..]));
        assert_eq!(agg.result(&left), one);
        let mut empty = agg.create_accumulator();
        agg.merge(&mut empty, agg.create_accumulator());
        assert_eq!(agg.result(&empty), (0, 0, None, None, None, 0));
    }

    #[test]
    fn map_result_shapes_the_output() {
        let agg = (Count, Max::of(|v: &i64| *v)).map_result(|(n, max)| format!("{n}/{max:?}"));
        assert_eq!(agg.result(&fold(&agg, &[3, 9])), "2/Some(9)");
    }
}
