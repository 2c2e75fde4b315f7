//! Normalized rows, as both Brook's output and the oracle's answer become
//! to be compared: [`Value`], [`Row`], [`QueryRow`] and [`compare`].

use std::cmp::Ordering;
use std::fmt;

use brook_core::Data;

/// One value of a row, normalized: every integer an `i64`, every float an
/// `f64`, every string owned.
#[derive(Debug, Clone)]
pub enum Value {
    /// An integer (ids, prices in cents, times, counts).
    Int(i64),
    /// A float (`0.908 * price`, averages).
    Float(f64),
    /// A string.
    Str(String),
    /// SQL's NULL.
    Null,
}

/// A row: its values in the query's column order.
pub type Row = Vec<Value>;

impl Value {
    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Int(_) => 1,
            Value::Float(_) => 2,
            Value::Str(_) => 3,
        }
    }

    /// Whether two values are the same answer: exactly for integers and
    /// strings, within 1e-9 relative for floats.
    pub fn matches(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Float(a), Value::Float(b)) => {
                a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
            }
            _ => self == other,
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Value {}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// A total order, for sorting rows: by kind (NULL first), then by value
/// (floats by [`f64::total_cmp`]).
impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Int(a), Value::Int(b)) => a.cmp(b),
            (Value::Float(a), Value::Float(b)) => a.total_cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v:?}"),
            Value::Str(v) => write!(f, "{v:?}"),
            Value::Null => f.write_str("NULL"),
        }
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}

impl From<u64> for Value {
    /// As an `i64`, saturating (counts never come near it).
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_string())
    }
}

/// A query's output row type: converts to the normalized [`Row`] the
/// oracle's answer is compared with, in the column order of the query's
/// SQL.
pub trait QueryRow: Data {
    /// The row's values, in the SQL's column order.
    fn to_row(&self) -> Row;

    /// For an updating query (q4), whose rows replace earlier rows of the
    /// same result: the result's key and the row's version. The row of
    /// the highest version per key is the query's answer so far (see
    /// [`latest`]). `None`, the default: every row is a result.
    fn update(&self) -> Option<(Row, u64)> {
        None
    }
}

/// The answer of a query's rows, each with its [`QueryRow::update`]: the
/// rows without one, and of those with one the highest version per key
/// (the first of equal versions).
pub fn latest(rows: impl IntoIterator<Item = (Row, Option<(Row, u64)>)>) -> Vec<Row> {
    let mut answer = Vec::new();
    let mut updated: std::collections::BTreeMap<Row, (u64, Row)> = Default::default();
    for (row, update) in rows {
        match update {
            None => answer.push(row),
            Some((key, version)) => match updated.entry(key) {
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert((version, row));
                }
                std::collections::btree_map::Entry::Occupied(mut e) => {
                    if version > e.get().0 {
                        e.insert((version, row));
                    }
                }
            },
        }
    }
    answer.extend(updated.into_values().map(|(_, row)| row));
    answer
}

/// Sorts rows into the order [`compare`] expects.
pub fn sort_rows(mut rows: Vec<Row>) -> Vec<Row> {
    rows.sort_unstable();
    rows
}

/// How two sorted sets of rows differ; its `Display` is a readable diff.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.report())]
pub struct Mismatch {
    /// Rows expected (the oracle's).
    pub expected: usize,
    /// Rows got (Brook's).
    pub got: usize,
    /// The first rows that differ, at most 10: (index, expected, got).
    pub first: Vec<(usize, Option<Row>, Option<Row>)>,
    /// How many positions differ in all.
    pub differing: usize,
}

impl Mismatch {
    fn report(&self) -> String {
        let show = |r: &Option<Row>| match r {
            None => "(none)".to_string(),
            Some(r) => {
                let v: Vec<String> = r.iter().map(Value::to_string).collect();
                format!("({})", v.join(", "))
            }
        };
        let mut s = format!(
            "{} rows expected, {} got, {} positions differ; the first:",
            self.expected, self.got, self.differing
        );
        for (i, e, g) in &self.first {
            s.push_str(&format!(
                "\n  row {i}:\n    expected {}\n    got      {}",
                show(e),
                show(g)
            ));
        }
        s
    }
}

/// Compares two sets of rows, each sorted by [`sort_rows`]: position by
/// position, integers and strings exactly, floats within 1e-9 relative.
///
/// # Errors
/// A [`Mismatch`] when the counts or any row differ.
pub fn compare(expected: &[Row], got: &[Row]) -> Result<(), Mismatch> {
    let same = |e: &Row, g: &Row| e.len() == g.len() && e.iter().zip(g).all(|(a, b)| a.matches(b));
    let mut first = Vec::new();
    let mut differing = 0;
    for i in 0..expected.len().max(got.len()) {
        let (e, g) = (expected.get(i), got.get(i));
        let ok = matches!((e, g), (Some(e), Some(g)) if same(e, g));
        if !ok {
            differing += 1;
            if first.len() < 10 {
                first.push((i, e.cloned(), g.cloned()));
            }
        }
    }
    if differing == 0 {
        Ok(())
    } else {
        Err(Mismatch {
            expected: expected.len(),
            got: got.len(),
            first,
            differing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_match_within_1e9_relative_and_the_diff_names_rows() {
        assert!(Value::Float(1.0).matches(&Value::Float(1.0 + 1e-12)));
        assert!(!Value::Float(1.0).matches(&Value::Float(1.0 + 1e-6)));
        assert!(!Value::Int(1).matches(&Value::Float(1.0)));
        let a = sort_rows(vec![
            vec![2i64.into(), "x".into()],
            vec![1i64.into(), "y".into()],
        ]);
        assert_eq!(a[0][0], Value::Int(1));
        assert_eq!(compare(&a, &a), Ok(()));
        let b = vec![a[0].clone()];
        let err = compare(&a, &b).expect_err("differs");
        assert_eq!((err.expected, err.got, err.differing), (2, 1, 1));
        let text = err.to_string();
        assert!(text.contains("row 1") && text.contains("\"x\""), "{text}");
    }
}
