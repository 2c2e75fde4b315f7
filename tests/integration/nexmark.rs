//! Nexmark queries as Brook jobs, checked against an independent engine:
//! for each query, a small generated event set goes through the Brook
//! pipeline (at parallelism 1 and 2, and 3 for q3, q4 and q5) and, written as
//! Parquet, through the query's standard SQL in DataFusion
//! (`brook_workload::nexmark::oracle`); the rows must be the same, exactly
//! for integers and strings, within 1e-9 relative for floats.
//!
//! ```text
//! cargo test --test integration nexmark
//! ```

use brook::prelude::*;
use brook_workload::nexmark::{
    Event, NexmarkSource, Query, QueryOutput, QueryRow, Row, compare, latest, oracle, sort_rows,
};

use crate::support::{block_on, config};

/// Events per test: 40 s of event time at 500 events per second, so
/// that every windowed query has several windows.
const EVENTS: u64 = 20_000;

/// The test's source: small chunks, so that every instance gets several.
fn source() -> NexmarkSource {
    NexmarkSource::new(EVENTS)
        .events_per_second(500)
        .chunk_events(1_500)
}

/// A normalized row and, for an updating query, its key and version.
type Versioned = (Row, Option<(Row, u64)>);

/// Ends a query's rows in a collecting sink, normalized.
struct Collect(Collected<Versioned>);

impl QueryOutput for Collect {
    fn attach<R: QueryRow>(&mut self, rows: &Stream<R>) {
        let sink = CollectSink::new();
        self.0 = sink.handle();
        rows.map("normalize", |r: R| (r.to_row(), r.update()))
            .sink("collect", sink);
    }
}

/// Brook's rows for `query` at `parallelism`, sorted; fails if any node
/// counted a late record.
fn brook_rows(query: Query, parallelism: usize) -> Vec<Row> {
    let flow = Dataflow::with_config(format!("nexmark-{query}"), config(parallelism));
    let events = flow.source("nexmark", source());
    let mut out = Collect(CollectSink::new().handle());
    query.build(&events, &mut out);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("job");
    let late: u64 = metrics.snapshot().nodes.iter().map(|n| n.total.late).sum();
    assert_eq!(late, 0, "{query}: no event is late");
    // An updating query's answer is its latest row per key.
    sort_rows(latest(out.0.values()))
}

/// DataFusion's rows for `query` over the same events.
fn oracle_rows(query: Query) -> Vec<Row> {
    let events: Vec<Event> = source().iter().collect();
    let dir = tempfile::tempdir().expect("temp dir");
    oracle::write_parquet(&events, dir.path()).expect("write parquet");
    block_on(oracle::answer(dir.path(), query.sql())).expect("oracle")
}

fn check(query: Query, parallelisms: &[usize], at_least: usize) {
    let want = oracle_rows(query);
    assert!(
        want.len() >= at_least,
        "{query}: the oracle found {} rows, too few to test",
        want.len()
    );
    for &p in parallelisms {
        let got = brook_rows(query, p);
        if let Err(diff) = compare(&want, &got) {
            panic!("{query} at parallelism {p}: {diff}");
        }
    }
}

#[test]
fn q0_passes_every_bid_through() {
    check(Query::Q0, &[1, 2], 18_000);
}

#[test]
fn q1_converts_prices_to_euros() {
    check(Query::Q1, &[1, 2], 18_000);
}

#[test]
fn q2_selects_the_bids_on_every_123rd_auction() {
    check(Query::Q2, &[1, 2], 10);
}

#[test]
fn q5_finds_the_hottest_auctions_per_sliding_window() {
    check(Query::Q5, &[1, 2, 3], 20);
}

#[test]
fn q7_finds_the_highest_bids_per_tumbling_window() {
    check(Query::Q7, &[1, 2], 4);
}

#[test]
fn q3_joins_category_10_auctions_with_their_sellers() {
    check(Query::Q3, &[1, 2, 3], 10);
}

#[test]
fn q4_averages_the_winning_bids_per_category() {
    check(Query::Q4, &[1, 2, 3], 3);
}

#[test]
fn q8_finds_sellers_who_registered_in_the_same_window() {
    check(Query::Q8, &[1, 2], 10);
}
