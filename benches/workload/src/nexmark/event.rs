//! The Nexmark event types: [`Person`], [`Auction`], [`Bid`] and the
//! [`Event`] that is one of them.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// A text field: borrowed from the generator's static tables (names,
/// cities, channels, URLs), so that most events are made and cloned with
/// no allocation, or owned (random strings, and whatever was deserialized).
pub type Text = Cow<'static, str>;

/// A person who registers to sell or bid (Nexmark's `person` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// The person's id, unique: 1000, 1001, … in order of registration.
    pub id: i64,
    /// First and last name, `"Peter Shultz"`.
    pub name: Text,
    /// A made-up address, `"abcdefg@hijkl.com"`.
    pub email_address: Text,
    /// A made-up card number, `"1234 5678 9012 3456"`.
    pub credit_card: Text,
    /// A US city, `"Boise"`.
    pub city: Text,
    /// A US state, two capitals: `"AZ"`, `"CA"`, `"ID"`, `"OR"`, `"WA"`
    /// or `"WY"`.
    pub state: Text,
    /// When the person registered, epoch milliseconds: the event time.
    pub date_time: i64,
    /// Padding in the standard generator; empty here.
    pub extra: Text,
}

/// An item put up for auction (Nexmark's `auction` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Auction {
    /// The auction's id, unique: 1000, 1001, … in order of creation.
    pub id: i64,
    /// 20 random lowercase letters.
    pub item_name: Text,
    /// 100 random lowercase letters.
    pub description: Text,
    /// The opening price, in cents.
    pub initial_bid: i64,
    /// The lowest price that sells, in cents (above `initial_bid`).
    pub reserve: i64,
    /// When the auction opened, epoch milliseconds: the event time.
    pub date_time: i64,
    /// When it closes, epoch milliseconds (after `date_time`).
    pub expires: i64,
    /// The [`Person::id`] of the seller.
    pub seller: i64,
    /// The category, from 10 on.
    pub category: i64,
    /// Padding in the standard generator; empty here.
    pub extra: Text,
}

/// A bid on an auction (Nexmark's `bid` table).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bid {
    /// The [`Auction::id`] bid on.
    pub auction: i64,
    /// The [`Person::id`] of the bidder.
    pub bidder: i64,
    /// The price offered, in cents.
    pub price: i64,
    /// Where the bid came from: `"Google"`, `"Facebook"`, `"Baidu"`,
    /// `"Apple"` or `"channel-N"`.
    pub channel: Text,
    /// The URL the bid was made on.
    pub url: Text,
    /// When the bid was made, epoch milliseconds: the event time.
    pub date_time: i64,
    /// Padding in the standard generator; empty here.
    pub extra: Text,
}

/// One Nexmark event: a person registers, an auction opens, or a bid is
/// made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A new person.
    Person(Person),
    /// A new auction.
    Auction(Auction),
    /// A new bid.
    Bid(Bid),
}

impl Event {
    /// The event time, epoch milliseconds: the `date_time` of what it holds.
    pub fn date_time(&self) -> i64 {
        match self {
            Event::Person(p) => p.date_time,
            Event::Auction(a) => a.date_time,
            Event::Bid(b) => b.date_time,
        }
    }

    /// The bid, if this event is one.
    pub fn into_bid(self) -> Option<Bid> {
        match self {
            Event::Bid(b) => Some(b),
            _ => None,
        }
    }

    /// The auction, if this event is one.
    pub fn into_auction(self) -> Option<Auction> {
        match self {
            Event::Auction(a) => Some(a),
            _ => None,
        }
    }

    /// The person, if this event is one.
    pub fn into_person(self) -> Option<Person> {
        match self {
            Event::Person(p) => Some(p),
            _ => None,
        }
    }
}
