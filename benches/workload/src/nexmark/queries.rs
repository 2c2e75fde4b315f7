//! Nexmark q0, q1, q2, q5 and q7 as Brook pipelines, and their row types.
//! Each query is a function from the stream of events to its stream of
//! rows, so that the caller attaches its own sink.

use std::time::Duration;

use brook_core::Stream;
use brook_core::state::ValueState;
use brook_operators::StreamExt;
use brook_operators::keyed::{KeyedContext, KeyedProcessExt, KeyedProcessFunction, Timer};
use brook_operators::window::{Count, KeyedWindowExt, Sliding, WindowResult};
use serde::{Deserialize, Serialize};

use super::event::{Bid, Event, Text};
use super::source::watermarks;
use super::value::{QueryRow, Row};
use brook_core::Result;

/// q2 keeps the bids on auctions whose id is a multiple of this.
pub const Q2_AUCTION_MODULUS: i64 = 123;
/// q5's window size: 10 s.
pub const Q5_WINDOW: Duration = Duration::from_secs(10);
/// q5's window slide: 2 s.
pub const Q5_SLIDE: Duration = Duration::from_secs(2);
/// q7's tumbling window size: 10 s.
pub const Q7_WINDOW: Duration = Duration::from_secs(10);

/// q0's row: a bid passed through (`auction, bidder, price, date_time,
/// extra`).
impl QueryRow for Bid {
    fn to_row(&self) -> Row {
        vec![
            self.auction.into(),
            self.bidder.into(),
            self.price.into(),
            self.date_time.into(),
            self.extra.as_ref().into(),
        ]
    }
}

/// q1's row: a bid with its price in euros.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q1Row {
    /// The auction.
    pub auction: i64,
    /// The bidder.
    pub bidder: i64,
    /// `0.908 * price`, as a double.
    pub price: f64,
    /// The bid's time.
    pub date_time: i64,
    /// The bid's `extra`.
    pub extra: Text,
}

impl QueryRow for Q1Row {
    fn to_row(&self) -> Row {
        vec![
            self.auction.into(),
            self.bidder.into(),
            self.price.into(),
            self.date_time.into(),
            self.extra.as_ref().into(),
        ]
    }
}

/// q2's row: a bid's auction and price.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q2Row {
    /// The auction, a multiple of [`Q2_AUCTION_MODULUS`].
    pub auction: i64,
    /// The price.
    pub price: i64,
}

impl QueryRow for Q2Row {
    fn to_row(&self) -> Row {
        vec![self.auction.into(), self.price.into()]
    }
}

/// q5's row: an auction with the most bids in a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q5Row {
    /// The auction.
    pub auction: i64,
    /// Its bids in the window: the most of any auction's.
    pub num: u64,
    /// The window's start (it ends [`Q5_WINDOW`] later).
    pub window_start: i64,
}

impl QueryRow for Q5Row {
    fn to_row(&self) -> Row {
        vec![
            self.auction.into(),
            self.num.into(),
            self.window_start.into(),
        ]
    }
}

/// q7's row: a bid with the highest price of its window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Q7Row {
    /// The auction.
    pub auction: i64,
    /// The price: the window's highest.
    pub price: i64,
    /// The bidder.
    pub bidder: i64,
    /// The bid's time.
    pub date_time: i64,
    /// The bid's `extra`.
    pub extra: Text,
}

impl QueryRow for Q7Row {
    fn to_row(&self) -> Row {
        vec![
            self.auction.into(),
            self.price.into(),
            self.bidder.into(),
            self.date_time.into(),
            self.extra.as_ref().into(),
        ]
    }
}

/// q0, pass-through: every bid. Node `q0`.
pub fn q0(events: &Stream<Event>) -> Stream<Bid> {
    events.flat_map("q0", Event::into_bid)
}

/// q1, currency conversion: every bid with its price in euros. Node `q1`.
pub fn q1(events: &Stream<Event>) -> Stream<Q1Row> {
    events.flat_map("q1", |e: Event| {
        e.into_bid().map(|b| Q1Row {
            auction: b.auction,
            bidder: b.bidder,
            price: 0.908 * b.price as f64,
            date_time: b.date_time,
            extra: b.extra,
        })
    })
}

/// q2, selection: the bids on auctions whose id is a multiple of
/// [`Q2_AUCTION_MODULUS`]. Node `q2`.
pub fn q2(events: &Stream<Event>) -> Stream<Q2Row> {
    events.flat_map("q2", |e: Event| match e {
        Event::Bid(b) if b.auction % Q2_AUCTION_MODULUS == 0 => Some(Q2Row {
            auction: b.auction,
            price: b.price,
        }),
        _ => None,
    })
}

/// q5, hot items: per sliding window of [`Q5_WINDOW`] every [`Q5_SLIDE`],
/// the auctions with the most bids (all of them on a tie). Nodes:
/// `q5.bids` (bids as `(auction, date_time)`), `q5.bids.timestamps`
/// (watermarks), `q5.counts` (bids per auction and window, keyed by
/// auction), `q5.hottest` (the most per window, keyed by window start).
pub fn q5(events: &Stream<Event>) -> Stream<Q5Row> {
    events
        .flat_map("q5.bids", |e: Event| {
            e.into_bid().map(|b| (b.auction, b.date_time))
        })
        .assign_timestamps(|(_, t): &(i64, i64)| *t, watermarks())
        .key_by(|(auction, _): &(i64, i64)| *auction)
        .window(Sliding::of(Q5_WINDOW, Q5_SLIDE))
        .aggregate("q5.counts", Count)
        .key_by(|r: &WindowResult<i64, u64>| r.window.start)
        .keyed_process("q5.hottest", Hottest)
}

/// q5's last step: per window, the auctions with the highest count, once
/// the watermark has passed the window.
#[derive(Debug, Clone, Copy)]
struct Hottest;

impl KeyedProcessFunction<i64, WindowResult<i64, u64>, Q5Row> for Hottest {
    /// The highest count so far and its auctions.
    type State = ValueState<(u64, Vec<i64>)>;

    fn process_element(
        &mut self,
        r: WindowResult<i64, u64>,
        ctx: &mut KeyedContext<'_, i64, Self::State, Q5Row>,
    ) -> Result<()> {
        // Results carry their window's last millisecond as event time: the
        // window is complete once the watermark reaches it.
        ctx.register_event_time_timer(r.window.max_timestamp());
        let (max, auctions) = ctx.state().get_or_insert_with(|| (0, Vec::new()));
        if r.value > *max {
            *max = r.value;
            auctions.clear();
        }
        if r.value == *max {
            auctions.push(r.key);
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _timer: Timer,
        ctx: &mut KeyedContext<'_, i64, Self::State, Q5Row>,
    ) -> Result<()> {
        let window_start = *ctx.key();
        if let Some((num, auctions)) = ctx.state().value().cloned() {
            for auction in auctions {
                ctx.emit(Q5Row {
                    auction,
                    num,
                    window_start,
                });
            }
        }
        ctx.clear_state();
        Ok(())
    }
}

/// The start of the [`Q7_WINDOW`] tumbling window holding `t`.
fn q7_window_start(t: i64) -> i64 {
    let size = Q7_WINDOW.as_millis() as i64;
    t - t.rem_euclid(size)
}

/// q7, highest bid: per tumbling window of [`Q7_WINDOW`], the bids with
/// the window's highest price. Nodes: `q7.bids`, `q7.bids.timestamps`,
/// `q7.highest` (keyed by window start).
pub fn q7(events: &Stream<Event>) -> Stream<Q7Row> {
    events
        .flat_map("q7.bids", Event::into_bid)
        .assign_timestamps(|b: &Bid| b.date_time, watermarks())
        .key_by(|b: &Bid| q7_window_start(b.date_time))
        .keyed_process("q7.highest", Highest)
}

/// q7's step: per window, the bids at the highest price so far; emitted
/// once the watermark has passed the window.
#[derive(Debug, Clone, Copy)]
struct Highest;

impl KeyedProcessFunction<i64, Bid, Q7Row> for Highest {
    /// The highest price so far and its bids.
    type State = ValueState<(i64, Vec<Q7Row>)>;

    fn process_element(
        &mut self,
        b: Bid,
        ctx: &mut KeyedContext<'_, i64, Self::State, Q7Row>,
    ) -> Result<()> {
        let end = *ctx.key() + Q7_WINDOW.as_millis() as i64;
        ctx.register_event_time_timer(end - 1);
        let (max, bids) = ctx.state().get_or_insert_with(|| (i64::MIN, Vec::new()));
        if b.price > *max {
            *max = b.price;
            bids.clear();
        }
        if b.price == *max {
            bids.push(Q7Row {
                auction: b.auction,
                price: b.price,
                bidder: b.bidder,
                date_time: b.date_time,
                extra: b.extra,
            });
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        _timer: Timer,
        ctx: &mut KeyedContext<'_, i64, Self::State, Q7Row>,
    ) -> Result<()> {
        if let Some((_, bids)) = ctx.state().take() {
            for row in bids {
                ctx.emit(row);
            }
        }
        ctx.clear_state();
        Ok(())
    }
}
