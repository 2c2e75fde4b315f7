//! Nexmark q3, q4 and q8: the queries that join streams, with the joins of
//! `brook_operators::join`, and their row types.

use std::time::Duration;

use brook_core::state::ValueState;
use brook_core::{Result, Stream};
use brook_operators::StreamExt;
use brook_operators::join::{JoinExt, JoinInput};
use brook_operators::keyed::{KeyedContext, KeyedProcessExt, KeyedProcessFunction, Timer};
use brook_operators::window::{Tumbling, Window};
use serde::{Deserialize, Serialize};

use super::event::{Event, Text};
use super::source::watermarks;
use super::value::{QueryRow, Row};

/// q3's auction category.
pub const Q3_CATEGORY: i64 = 10;
/// q3's seller states.
pub const Q3_STATES: [&str; 3] = ["OR", "ID", "CA"];
/// q8's tumbling window: 10 s.
pub const Q8_WINDOW: Duration = Duration::from_secs(10);

/// q3's row: a seller in one of [`Q3_STATES`] and an auction of theirs in
/// category [`Q3_CATEGORY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q3Row {
    /// The seller's name.
    pub name: Text,
    /// The seller's city.
    pub city: Text,
    /// The seller's state.
    pub state: Text,
    /// The auction.
    pub id: i64,
}

impl QueryRow for Q3Row {
    fn to_row(&self) -> Row {
        vec![
            self.name.as_ref().into(),
            self.city.as_ref().into(),
            self.state.as_ref().into(),
            self.id.into(),
        ]
    }
}

/// A q3 seller: (id, name, city, state).
type Seller = (i64, Text, Text, Text);

/// q3, local item suggestion: the auctions of category [`Q3_CATEGORY`]
/// with their sellers from [`Q3_STATES`]. An updating join without
/// windows (the standard query's regular join): both sides are kept, each
/// new auction or person joins the other side's records of the same
/// person. Nodes: `q3.auctions`, `q3.persons`, `q3.join`.
pub fn q3(events: &Stream<Event>) -> Stream<Q3Row> {
    let events = events.assign_timestamps(|e: &Event| e.date_time(), watermarks());
    let auctions = events.flat_map("q3.auctions", |e: Event| {
        e.into_auction()
            .filter(|a| a.category == Q3_CATEGORY)
            .map(|a| (a.id, a.seller))
    });
    let persons = events.flat_map("q3.persons", |e: Event| {
        e.into_person()
            .filter(|p| Q3_STATES.contains(&p.state.as_ref()))
            .map(|p| (p.id, p.name, p.city, p.state))
    });
    auctions
        .key_by(|a: &(i64, i64)| a.1)
        .connect(&persons.key_by(|p: &Seller| p.0))
        .join("q3.join", None, |_, a: &(i64, i64), p: &Seller| Q3Row {
            name: p.1.clone(),
            city: p.2.clone(),
            state: p.3.clone(),
            id: a.0,
        })
}

/// q4's row: a category's average winning price so far. q4 is an updating
/// query: each closed auction updates its category's average, and the
/// latest row of a category (the one with the most `auctions`) is its
/// current answer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Q4Row {
    /// The category.
    pub category: i64,
    /// The mean of the winning bids of its closed auctions.
    pub avg_price: f64,
    /// The closed auctions with bids it averages over.
    pub auctions: u64,
}

impl QueryRow for Q4Row {
    fn to_row(&self) -> Row {
        vec![self.category.into(), self.avg_price.into()]
    }

    /// A category's row updates its earlier ones; the one over the most
    /// auctions is the latest.
    fn update(&self) -> Option<(Row, u64)> {
        Some((vec![self.category.into()], self.auctions))
    }
}

/// An auction closed with its winning bid: (category, price).
type Closed = (i64, i64);

/// q4, average price per category: each auction's winning bid (the highest
/// made while it was open, `date_time <= bid <= expires`), once the
/// watermark passes its expiry, then the running mean per category. Nodes:
/// `q4.auctions`, `q4.bids`, `q4.winning` (auctions and
/// bids keyed by auction), `q4.average` (keyed by category).
pub fn q4(events: &Stream<Event>) -> Stream<Q4Row> {
    let events = events.assign_timestamps(|e: &Event| e.date_time(), watermarks());
    let auctions = events.flat_map("q4.auctions", |e: Event| {
        e.into_auction().map(|a| AuctionSpan {
            id: a.id,
            category: a.category,
            opened: a.date_time,
            expires: a.expires,
        })
    });
    let bids = events.flat_map("q4.bids", |e: Event| {
        e.into_bid().map(|b| (b.auction, b.price))
    });
    auctions
        .key_by(|a: &AuctionSpan| a.id)
        .connect(&bids.key_by(|b: &(i64, i64)| b.0))
        .process("q4.winning", Winning)
        .key_by(|c: &Closed| c.0)
        .keyed_process("q4.average", Average)
}

/// What q4 keeps of an auction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct AuctionSpan {
    id: i64,
    category: i64,
    opened: i64,
    expires: i64,
}

/// q4's per-auction state: the auction once seen, the highest bid in its
/// span, and the bids that came before it (they may still be in its span).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Bids {
    auction: Option<AuctionSpan>,
    highest: Option<i64>,
    /// (event time, price) of bids seen before their auction.
    early: Vec<(i64, i64)>,
}

/// q4's first step: each auction's winning bid, when it closes.
#[derive(Debug, Clone, Copy)]
struct Winning;

impl KeyedProcessFunction<i64, JoinInput<AuctionSpan, (i64, i64)>, Closed> for Winning {
    type State = Bids;

    fn process_element(
        &mut self,
        value: JoinInput<AuctionSpan, (i64, i64)>,
        ctx: &mut KeyedContext<'_, i64, Bids, Closed>,
    ) -> Result<()> {
        let ts = ctx.timestamp();
        match value {
            JoinInput::Left(a) => {
                let s = ctx.state();
                let early = std::mem::take(&mut s.early);
                let highest = early
                    .iter()
                    .filter(|(t, _)| (a.opened..=a.expires).contains(t))
                    .map(|b| b.1)
                    .max();
                s.highest = s.highest.max(highest);
                s.auction = Some(a);
                ctx.register_event_time_timer(a.expires);
            }
            JoinInput::Right((_, price)) => {
                let s = ctx.state();
                match s.auction {
                    Some(a) if (a.opened..=a.expires).contains(&ts) => {
                        s.highest = s.highest.max(Some(price));
                    }
                    Some(_) => {}
                    None => {
                        // Its auction opened no later than the bid: once the
                        // watermark passes the bid without it, it never
                        // comes.
                        s.early.push((ts, price));
                        ctx.register_event_time_timer(ts);
                    }
                }
            }
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, i64, Bids, Closed>,
    ) -> Result<()> {
        let Some(s) = ctx.existing_state() else {
            return Ok(());
        };
        match s.auction {
            Some(a) if a.expires <= timer.time => {
                if let Some(price) = s.highest {
                    ctx.emit_at(a.expires, (a.category, price));
                }
                ctx.clear_state();
            }
            Some(_) => {}
            None => {
                s.early.retain(|b| b.0 > timer.time);
                if s.early.is_empty() {
                    ctx.clear_state();
                }
            }
        }
        Ok(())
    }
}

/// q4's second step: the running mean per category.
#[derive(Debug, Clone, Copy)]
struct Average;

impl KeyedProcessFunction<i64, Closed, Q4Row> for Average {
    /// (sum, count) of the winning prices.
    type State = ValueState<(i64, u64)>;

    fn process_element(
        &mut self,
        (category, price): Closed,
        ctx: &mut KeyedContext<'_, i64, Self::State, Q4Row>,
    ) -> Result<()> {
        let (sum, n) = ctx.state().get_or_insert_with(|| (0, 0));
        *sum += price;
        *n += 1;
        let row = Q4Row {
            category,
            avg_price: *sum as f64 / *n as f64,
            auctions: *n,
        };
        ctx.emit(row);
        Ok(())
    }
}

/// q8's row: a person who opened an auction in the window they registered
/// in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Q8Row {
    /// The person.
    pub id: i64,
    /// Their name.
    pub name: Text,
    /// The window's start (it ends [`Q8_WINDOW`] later).
    pub starttime: i64,
}

impl QueryRow for Q8Row {
    fn to_row(&self) -> Row {
        vec![
            self.id.into(),
            self.name.as_ref().into(),
            self.starttime.into(),
        ]
    }
}

/// q8, monitor new users: the persons who opened an auction in the same
/// [`Q8_WINDOW`] tumbling window as they registered: a window join of
/// persons and auctions by person (a cogroup, so each person shows once
/// per window however many auctions they opened). Nodes:
/// `q8.persons`, `q8.sellers`, `q8.join`.
pub fn q8(events: &Stream<Event>) -> Stream<Q8Row> {
    let events = events.assign_timestamps(|e: &Event| e.date_time(), watermarks());
    let persons = events.flat_map("q8.persons", |e: Event| {
        e.into_person().map(|p| (p.id, p.name))
    });
    let sellers = events.flat_map("q8.sellers", |e: Event| e.into_auction().map(|a| a.seller));
    persons
        .key_by(|p: &(i64, Text)| p.0)
        .connect(&sellers.key_by(|s: &i64| *s))
        .window_cogroup(
            "q8.join",
            Tumbling::of(Q8_WINDOW),
            |_, w: Window, persons: &[(i64, Text)], sellers: &[i64], out: &mut Vec<Q8Row>| {
                if !sellers.is_empty() {
                    out.extend(persons.iter().map(|p| Q8Row {
                        id: p.0,
                        name: p.1.clone(),
                        starttime: w.start,
                    }));
                }
            },
        )
}
