//! [`Query`]: the Nexmark queries with a Brook pipeline, by name, and the
//! dispatch that builds one onto a stream of events.

use std::fmt;
use std::str::FromStr;

use brook_core::{Error, Stream};

use super::event::Event;
use super::joins;
use super::oracle;
use super::queries;
use super::value::QueryRow;

/// What to do with a query's rows: its typed output stream is handed to
/// [`attach`](Self::attach), which puts a sink on it (a counting sink in
/// the runner; a map to [`Row`](super::Row) and a collecting sink in the
/// tests). A visitor, so that each query keeps its own row type and a
/// benchmark pays nothing to normalize rows.
pub trait QueryOutput {
    /// Ends `rows` in a sink (or anything else).
    fn attach<R: QueryRow>(&mut self, rows: &Stream<R>);
}

/// A Nexmark query Brook runs: [`Query::build`] puts its pipeline on a
/// stream of events, [`Query::sql`] is its standard SQL for the oracle.
///
/// q3, q4 and q8 join streams, with the joins of `brook_operators::join`
/// ([`joins`](super::joins)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Query {
    /// Pass-through: every bid ([`queries::q0`]).
    Q0,
    /// Currency conversion: bids with prices in euros ([`queries::q1`]).
    Q1,
    /// Selection: bids on every 123rd auction ([`queries::q2`]).
    Q2,
    /// Local item suggestion: auctions of category 10 with their sellers
    /// from three states, an updating join ([`joins::q3`]).
    Q3,
    /// Average price per category: each auction's winning bid as it
    /// closes, then the running mean per category, an updating query
    /// ([`joins::q4`]).
    Q4,
    /// Hot items: the most-bid auctions per sliding window
    /// ([`queries::q5`]).
    Q5,
    /// Highest bid per tumbling window ([`queries::q7`]).
    Q7,
    /// New users: persons who opened an auction in the window they
    /// registered in, a window join ([`joins::q8`]).
    Q8,
}

impl Query {
    /// Every query, in order.
    pub const ALL: &'static [Query] = &[
        Query::Q0,
        Query::Q1,
        Query::Q2,
        Query::Q3,
        Query::Q4,
        Query::Q5,
        Query::Q7,
        Query::Q8,
    ];

    /// The query's name: `q0`, `q1`, …
    pub fn name(self) -> &'static str {
        match self {
            Query::Q0 => "q0",
            Query::Q1 => "q1",
            Query::Q2 => "q2",
            Query::Q3 => "q3",
            Query::Q4 => "q4",
            Query::Q5 => "q5",
            Query::Q7 => "q7",
            Query::Q8 => "q8",
        }
    }

    /// The query's SQL for the oracle ([`oracle::answer`]), over tables
    /// `person`, `auction` and `bid`, in the column order of its rows.
    pub fn sql(self) -> &'static str {
        match self {
            Query::Q0 => oracle::Q0,
            Query::Q1 => oracle::Q1,
            Query::Q2 => oracle::Q2,
            Query::Q3 => oracle::Q3,
            Query::Q4 => oracle::Q4,
            Query::Q5 => oracle::Q5,
            Query::Q7 => oracle::Q7,
            Query::Q8 => oracle::Q8,
        }
    }

    /// Builds the query's pipeline on `events` (straight from a
    /// [`NexmarkSource`](super::NexmarkSource): the windowed queries assign
    /// their own timestamps and watermarks) and hands its rows to `out`.
    pub fn build(self, events: &Stream<Event>, out: &mut impl QueryOutput) {
        match self {
            Query::Q0 => out.attach(&queries::q0(events)),
            Query::Q1 => out.attach(&queries::q1(events)),
            Query::Q2 => out.attach(&queries::q2(events)),
            Query::Q3 => out.attach(&joins::q3(events)),
            Query::Q4 => out.attach(&joins::q4(events)),
            Query::Q5 => out.attach(&queries::q5(events)),
            Query::Q7 => out.attach(&queries::q7(events)),
            Query::Q8 => out.attach(&joins::q8(events)),
        }
    }
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Query {
    type Err = Error;

    /// A query by its [`name`](Query::name).
    ///
    /// # Errors
    /// [`Error::Config`] for a name no query has.
    fn from_str(s: &str) -> Result<Query, Error> {
        Query::ALL
            .iter()
            .copied()
            .find(|q| q.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                let names: Vec<&str> = Query::ALL.iter().map(|q| q.name()).collect();
                Error::Config(format!(
                    "no Nexmark query '{s}': the queries are {}",
                    names.join(", ")
                ))
            })
    }
}
