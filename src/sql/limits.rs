//! Limits that DataFusion's memory pool does not enforce by itself: the
//! size of a query's text, and the size of what string functions make.
//!
//! - A query's nesting (a `1+1+…` chain, `AND`ed predicates, `UNION ALL`s)
//!   grows with its number of tokens, and DataFusion walks it recursively:
//!   [`check_query_size`] refuses a query of more than
//!   [`MAX_QUERY_TOKENS`] tokens, which keeps the deepest query within the
//!   stack of the engine's threads.
//! - A function whose output size comes from its arguments, not from its
//!   input (`repeat('x', 1000000000)`, `lpad(s, 1000000000)`), builds its
//!   result outside the memory pool. [`capped_functions`] replaces those
//!   built-ins with the same functions refusing to make more than a cap of
//!   bytes in one call.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{Result as DfResult, ScalarValue, exec_datafusion_err};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::interval_arithmetic::Interval;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::sort_properties::{ExprProperties, SortProperties};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Token, Tokenizer};

use super::SqlError;

/// The most tokens (words, numbers, strings, operators, punctuation; not
/// whitespace or comments) a query may have: 20,000, some 80 KB of SQL.
/// DataFusion's recursion over a query is as deep as its longest chain of
/// operators (`1+1+…`, `AND`s, `UNION ALL`s, joins), which this bounds to
/// what the engine's thread stacks hold; a chain of a few thousand links
/// plans, if slowly (DataFusion's planning time grows with the square of
/// the depth, within the time limit).
pub const MAX_QUERY_TOKENS: usize = 20_000;

/// Refuses a query of more than [`MAX_QUERY_TOKENS`] tokens.
pub(crate) fn check_query_size(sql: &str) -> Result<(), SqlError> {
    let dialect = GenericDialect {};
    let mut tokens = Vec::new();
    // A query DataFusion's tokenizer refuses is left for DataFusion to
    // refuse with its own message.
    if Tokenizer::new(&dialect, sql)
        .tokenize_with_location_into_buf(&mut tokens)
        .is_err()
    {
        return Ok(());
    }
    let count = tokens
        .iter()
        .filter(|t| !matches!(t.token, Token::Whitespace(_) | Token::EOF))
        .count();
    if count > MAX_QUERY_TOKENS {
        return Err(SqlError::TooLarge {
            tokens: count,
            limit: MAX_QUERY_TOKENS,
        });
    }
    Ok(())
}

/// How many bytes one call of a capped function may produce: a quarter of
/// the memory limit, at least 1 MiB.
pub(crate) fn function_output_cap(memory_limit: usize) -> usize {
    (memory_limit / 4).max(1 << 20)
}

/// The built-in functions whose output size is set by their arguments,
/// each wrapped to refuse a call that would make more than `cap` bytes.
/// Registering them replaces the built-ins of the same names.
pub(crate) fn capped_functions(state: &SessionState, cap: usize) -> Vec<ScalarUDF> {
    let bounds: [(&str, Bound); 5] = [
        ("repeat", repeat_bound),
        ("lpad", pad_bound),
        ("rpad", pad_bound),
        ("replace", replace_bound),
        ("regexp_replace", regexp_replace_bound),
    ];
    bounds
        .into_iter()
        .filter_map(|(name, bound)| {
            let inner = state.scalar_functions().get(name)?.clone();
            Some(ScalarUDF::new_from_impl(Capped {
                inner,
                cap,
                bound: BoundFn(bound),
            }))
        })
        .collect()
}

/// An upper bound of the bytes a call makes, from its arguments.
type Bound = fn(&[ColumnarValue], usize) -> usize;

/// A [`Bound`], compared by address (functions have no `Eq` of their own
/// that clippy accepts).
#[derive(Clone, Copy)]
struct BoundFn(Bound);

impl std::fmt::Debug for BoundFn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BoundFn")
    }
}

impl PartialEq for BoundFn {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::fn_addr_eq(self.0, other.0)
    }
}

impl Eq for BoundFn {}

impl std::hash::Hash for BoundFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (self.0 as usize).hash(state);
    }
}

/// A built-in scalar function that refuses calls whose output would pass
/// `cap` bytes; otherwise the built-in itself.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Capped {
    inner: Arc<ScalarUDF>,
    cap: usize,
    bound: BoundFn,
}

/// `ScalarUDFImpl` forwards to the built-in, except `invoke_with_args`.
impl ScalarUDFImpl for Capped {
    fn name(&self) -> &str {
        self.inner.inner().name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.inner().aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> DfResult<String> {
        self.inner.inner().schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.inner().signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.inner().return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.inner().return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.inner().is_strict()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        // All-scalar arguments make one value, not one per row.
        let rows = if args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)))
        {
            1
        } else {
            args.number_rows
        };
        let bytes = (self.bound.0)(&args.args, rows);
        if bytes > self.cap {
            return Err(exec_datafusion_err!(
                "{}() would make up to {bytes} bytes in one call, more than the {} bytes a function may make (a quarter of the memory limit)",
                self.name(),
                self.cap
            ));
        }
        self.inner.inner().invoke_with_args(args)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> DfResult<ExprSimplifyResult> {
        self.inner.inner().simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.inner().short_circuits()
    }

    fn evaluate_bounds(&self, input: &[&Interval]) -> DfResult<Interval> {
        self.inner.inner().evaluate_bounds(input)
    }

    fn propagate_constraints(
        &self,
        interval: &Interval,
        inputs: &[&Interval],
    ) -> DfResult<Option<Vec<Interval>>> {
        self.inner.inner().propagate_constraints(interval, inputs)
    }

    fn output_ordering(&self, inputs: &[ExprProperties]) -> DfResult<SortProperties> {
        self.inner.inner().output_ordering(inputs)
    }

    fn preserves_lex_ordering(&self, inputs: &[ExprProperties]) -> DfResult<bool> {
        self.inner.inner().preserves_lex_ordering(inputs)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.inner().coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.inner().documentation()
    }
}

/// Per-row byte lengths of a string argument (0 for nulls and non-strings).
fn lengths(arg: Option<&ColumnarValue>, rows: usize) -> Vec<usize> {
    match arg {
        Some(ColumnarValue::Scalar(s)) => vec![scalar_len(s); rows],
        Some(ColumnarValue::Array(a)) => {
            let n = a.len().min(rows);
            let len = |valid: bool, len: usize| if valid { len } else { 0 };
            match a.data_type() {
                DataType::Utf8 => {
                    let a = a.as_string::<i32>();
                    (0..n)
                        .map(|i| len(a.is_valid(i), a.value(i).len()))
                        .collect()
                }
                DataType::LargeUtf8 => {
                    let a = a.as_string::<i64>();
                    (0..n)
                        .map(|i| len(a.is_valid(i), a.value(i).len()))
                        .collect()
                }
                DataType::Utf8View => {
                    let a = a.as_string_view();
                    (0..n)
                        .map(|i| len(a.is_valid(i), a.value(i).len()))
                        .collect()
                }
                _ => vec![0; n],
            }
        }
        None => vec![0; rows],
    }
}

fn scalar_len(s: &ScalarValue) -> usize {
    match s {
        ScalarValue::Utf8(Some(v))
        | ScalarValue::LargeUtf8(Some(v))
        | ScalarValue::Utf8View(Some(v)) => v.len(),
        _ => 0,
    }
}

/// Per-row values of an integer argument, negatives and nulls as 0.
fn counts(arg: Option<&ColumnarValue>, rows: usize) -> Vec<usize> {
    let count = |v: i64| usize::try_from(v).unwrap_or(0);
    match arg {
        Some(ColumnarValue::Scalar(ScalarValue::Int64(Some(v)))) => vec![count(*v); rows],
        Some(ColumnarValue::Array(a)) if a.data_type() == &DataType::Int64 => {
            let a = a.as_primitive::<Int64Type>();
            (0..a.len().min(rows))
                .map(|i| if a.is_valid(i) { count(a.value(i)) } else { 0 })
                .collect()
        }
        _ => vec![0; rows],
    }
}

fn sum(values: impl Iterator<Item = usize>) -> usize {
    values.fold(0usize, usize::saturating_add)
}

/// `repeat(s, n)`: `len(s) * n` per row.
fn repeat_bound(args: &[ColumnarValue], rows: usize) -> usize {
    let strings = lengths(args.first(), rows);
    let n = counts(args.get(1), rows);
    sum(strings.iter().zip(&n).map(|(s, n)| s.saturating_mul(*n)))
}

/// `lpad(s, n [, fill])`, `rpad`: `n` characters of up to 4 bytes each.
fn pad_bound(args: &[ColumnarValue], rows: usize) -> usize {
    sum(counts(args.get(1), rows)
        .into_iter()
        .map(|n| n.saturating_mul(4)))
}

/// `replace(s, from, to)`: at most `len(s) / len(from) + 1` replacements
/// (every character boundary when `from` is empty) of `len(to)` bytes.
fn replace_bound(args: &[ColumnarValue], rows: usize) -> usize {
    let s = lengths(args.first(), rows);
    let from = lengths(args.get(1), rows);
    let to = lengths(args.get(2), rows);
    sum((0..s.len().min(from.len()).min(to.len())).map(|i| {
        let matches = s[i] / from[i].max(1) + 1;
        s[i].saturating_add(matches.saturating_mul(to[i]))
    }))
}

/// `regexp_replace(s, pattern, replacement [, flags])`: at most
/// `len(s) + 1` matches, each replaced by the replacement's text and
/// captures (which, matches being disjoint, add up to at most `len(s)` per
/// reference).
fn regexp_replace_bound(args: &[ColumnarValue], rows: usize) -> usize {
    let s = lengths(args.first(), rows);
    let replacement = lengths(args.get(2), rows);
    sum((0..s.len().min(replacement.len())).map(|i| {
        let matches = s[i].saturating_add(1);
        let references = replacement[i] / 2;
        s[i].saturating_add(matches.saturating_mul(replacement[i]))
            .saturating_add(references.saturating_mul(s[i]))
    }))
}
