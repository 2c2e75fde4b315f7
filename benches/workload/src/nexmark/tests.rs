//! Tests of the Nexmark source and the oracle: determinism, the same
//! events at every parallelism, resuming, the model's mix, and SQL that
//! finds rows for every query on a small set.

use std::collections::HashSet;

use brook_core::{PlanContext, Source, SourceContext, SourceEvent, SourceSplit, open_instance};
use futures::TryStreamExt;

use super::{Event, NexmarkConfig, NexmarkSource, oracle};

/// Each instance's events, in order, as `open` makes them outside a job.
async fn instances(source: &mut NexmarkSource, p: usize) -> Vec<Vec<Event>> {
    let mut out = Vec::new();
    for k in 0..p {
        let stream = open_instance(source, "nexmark", k, p).expect("open");
        let events: Vec<SourceEvent<Event>> = stream.try_collect().await.expect("read");
        let mut values = Vec::new();
        for batch in events.into_iter().map(|e| e.into_batch().expect("batches")) {
            for r in batch {
                assert_eq!(r.timestamp, r.value.date_time(), "event time is date_time");
                values.push(r.value);
            }
        }
        out.push(values);
    }
    out
}

fn sorted(events: impl IntoIterator<Item = Event>) -> Vec<String> {
    let mut v: Vec<String> = events.into_iter().map(|e| format!("{e:?}")).collect();
    v.sort_unstable();
    v
}

#[test]
fn public_types_are_send_and_sync() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<NexmarkSource>();
    send_sync::<Event>();
    send_sync::<super::NexmarkEvents>();
}

#[test]
fn events_are_a_pure_function_of_config_and_index() {
    let a: Vec<Event> = NexmarkSource::new(3_000).iter().collect();
    let b: Vec<Event> = NexmarkSource::new(3_000).iter().collect();
    assert_eq!(a, b);
    let source = NexmarkSource::new(3_000);
    assert_eq!(source.event(2_345), a[2_345]);
    assert_eq!(source.iter().nth(1_234), Some(a[1_234].clone()));
    let other: Vec<Event> = NexmarkSource::new(3_000).seed(1).iter().collect();
    assert_ne!(a, other, "another seed, other events");
    // The base time is fixed, not the wall clock.
    assert_eq!(a[0].date_time(), super::DEFAULT_BASE_TIME_MS);
}

#[tokio::test]
async fn instances_make_the_same_multiset_at_parallelism_1_2_and_3() {
    let mut source = NexmarkSource::new(10_000)
        .chunk_events(1_000)
        .batch_size(77);
    let want = sorted(source.iter());
    for p in 1..=3 {
        let parts = instances(&mut source, p).await;
        for part in &parts {
            assert!(!part.is_empty(), "p={p}: every instance has chunks");
            assert!(
                part.windows(2)
                    .all(|w| w[0].date_time() <= w[1].date_time()),
                "p={p}: event times never decrease within an instance"
            );
        }
        assert_eq!(sorted(parts.into_iter().flatten()), want, "p={p}");
    }
}

#[tokio::test]
async fn a_resumed_split_makes_the_events_from_its_position_on() {
    let mut source = NexmarkSource::new(5_000).chunk_events(2_000).batch_size(64);
    let mut splits = source
        .plan(&PlanContext::standalone("nexmark", 1))
        .expect("plan");
    assert_eq!(splits.len(), 3);
    assert_eq!(splits[1].range(), 2_000..4_000);
    splits[1].resume(3_210);
    let stream = source
        .open(&SourceContext::standalone("nexmark", 0, 1), splits)
        .expect("open");
    let events: Vec<SourceEvent<Event>> = stream.try_collect().await.expect("read");
    let got: Vec<Event> = events
        .into_iter()
        .filter_map(SourceEvent::into_batch)
        .flat_map(|b| b.into_records().into_iter().map(|r| r.value))
        .collect();
    let want: Vec<Event> = (0..2_000)
        .chain(3_210..5_000)
        .map(|i| source.event(i))
        .collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn bad_settings_are_config_errors() {
    for mut source in [
        NexmarkSource::new(10).chunk_events(0),
        NexmarkSource::new(10).batch_size(0),
        NexmarkSource::new(10).events_per_second(0),
    ] {
        let err = open_instance(&mut source, "nexmark", 0, 1).err();
        assert!(matches!(err, Some(brook_core::Error::Config(_))), "{err:?}");
    }
}

#[test]
fn the_mix_ids_and_values_follow_the_nexmark_model() {
    let cfg = NexmarkConfig::default();
    let events: Vec<Event> = NexmarkSource::new(100_000).iter().collect();
    let (mut persons, mut auctions, mut bids) = (Vec::new(), Vec::new(), Vec::new());
    for (i, e) in events.iter().enumerate() {
        match (i % 50, e) {
            (0, Event::Person(p)) => persons.push(p),
            (1..=3, Event::Auction(a)) => auctions.push(a),
            (4.., Event::Bid(b)) => bids.push(b),
            _ => panic!("event {i} is of the wrong kind: {e:?}"),
        }
        // 10 events per millisecond at the default rate.
        assert_eq!(e.date_time(), cfg.base_time_ms + i as i64 / 10);
    }
    assert_eq!(
        (persons.len(), auctions.len(), bids.len()),
        (2_000, 6_000, 92_000)
    );
    // Ids are consecutive from 1000, in order.
    assert!(
        persons
            .iter()
            .enumerate()
            .all(|(k, p)| p.id == 1000 + k as i64)
    );
    assert!(
        auctions
            .iter()
            .enumerate()
            .all(|(k, a)| a.id == 1000 + k as i64)
    );
    let states: HashSet<&str> = persons.iter().map(|p| p.state.as_ref()).collect();
    assert_eq!(states, HashSet::from(["AZ", "CA", "ID", "OR", "WA", "WY"]));
    assert!(
        persons
            .iter()
            .all(|p| p.credit_card.len() == 19 && p.email_address.ends_with(".com"))
    );
    let categories: HashSet<i64> = auctions.iter().map(|a| a.category).collect();
    assert_eq!(categories, (10..15).collect());
    for a in &auctions {
        assert!(
            a.expires > a.date_time && a.reserve > a.initial_bid,
            "{a:?}"
        );
        assert_eq!((a.item_name.len(), a.description.len()), (20, 100));
    }
    // Hot sellers: about 3 auctions in 4 are by a person whose id is a
    // multiple of 100.
    let hot = auctions.iter().filter(|a| a.seller % 100 == 0).count() as f64;
    assert!(
        (0.72..0.80).contains(&(hot / auctions.len() as f64)),
        "{hot}"
    );
    // Hot auctions: about half the bids are on a multiple of 100; hot
    // bidders about 3 in 4; hot channels about half.
    let share = |f: &dyn Fn(&super::Bid) -> bool| {
        bids.iter().filter(|b| f(b)).count() as f64 / bids.len() as f64
    };
    assert!((0.49..0.53).contains(&share(&|b| b.auction % 100 == 0)));
    assert!((0.73..0.77).contains(&share(&|b| b.bidder % 100 == 1)));
    assert!((0.48..0.52).contains(&share(&|b| !b.channel.starts_with("channel-"))));
    assert!(bids.iter().all(|b| (100..=100_000_000).contains(&b.price)));
    // Bids and sellers refer to persons and auctions that exist or are
    // about to.
    let max_auction = auctions.last().map_or(0, |a| a.id);
    assert!(bids.iter().all(|b| b.auction <= max_auction + 10));
}

#[tokio::test]
async fn every_query_of_the_oracle_finds_rows_on_a_small_set() {
    let events: Vec<Event> = NexmarkSource::new(20_000)
        .events_per_second(500)
        .iter()
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    oracle::write_parquet(&events, dir.path()).expect("write");
    let bids = events.iter().filter(|e| matches!(e, Event::Bid(_))).count();
    for (name, sql, at_least) in [
        ("q0", oracle::Q0, bids),
        ("q1", oracle::Q1, bids),
        ("q2", oracle::Q2, 10),
        ("q3", oracle::Q3, 10),
        ("q4", oracle::Q4, 5),
        ("q5", oracle::Q5, 20),
        ("q7", oracle::Q7, 4),
        ("q8", oracle::Q8, 2),
    ] {
        let rows = oracle::answer(dir.path(), sql).await.expect(name);
        assert!(rows.len() >= at_least, "{name}: {} rows", rows.len());
    }
    // q3 really filters: sellers in OR, ID or CA only.
    let q3 = oracle::answer(dir.path(), oracle::Q3).await.expect("q3");
    assert!(
        q3.iter()
            .all(|r| ["OR", "ID", "CA"].contains(&r[2].to_string().trim_matches('"')))
    );
}
