//! [`NexmarkConfig`]: the generator's model, Nexmark's defaults.

use brook_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The default [`NexmarkConfig::base_time_ms`]: 2015-07-15T00:00:00Z, the
/// base time of Beam's Nexmark suite. Fixed, not the wall clock, so that
/// event `i` is the same in every run.
pub const DEFAULT_BASE_TIME_MS: i64 = 1_436_918_400_000;

/// The model the generator follows: Nexmark's parameters, with the
/// defaults of Beam's and Flink's generators (and of the `nexmark` crate).
///
/// Only the constant rate of the standard generator is modelled (no sine
/// or square rate shape), and no out-of-order groups: event times never
/// decrease with the event index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NexmarkConfig {
    /// Keys the random draws; event `i` is a pure function of the config
    /// and `i`. Default 0.
    pub seed: u64,
    /// The event time of event 0, epoch milliseconds. Default
    /// [`DEFAULT_BASE_TIME_MS`].
    pub base_time_ms: i64,
    /// Events per second of event time: event `i` happens at
    /// `base_time_ms + floor(i * 1000 / events_per_second)`. Default
    /// 10,000, the standard generator's `firstEventRate`.
    pub events_per_second: u64,
    /// Persons in each group of `person + auction + bid` proportion
    /// events. Default 1.
    pub person_proportion: u64,
    /// Auctions in each group. Default 3.
    pub auction_proportion: u64,
    /// Bids in each group. Default 46.
    pub bid_proportion: u64,
    /// How many of the latest persons may sell or bid. Default 1000.
    pub active_people: u64,
    /// How many of the latest auctions take bids. Default 100.
    pub in_flight_auctions: u64,
    /// One auction in this many is by a random active person, the others
    /// by the hot seller of the time. Default 4.
    pub hot_seller_ratio: u64,
    /// One bid in this many is on a random in-flight auction, the others
    /// on the hot auction of the time. Default 2.
    pub hot_auction_ratio: u64,
    /// One bid in this many is by a random active person, the others by
    /// the hot bidder of the time. Default 4.
    pub hot_bidder_ratio: u64,
    /// One bid in this many comes through a random one of 10,000 channels,
    /// the others through one of the 4 hot ones. Default 2.
    pub hot_channel_ratio: u64,
    /// Categories, numbered from `first_category_id`. Default 5.
    pub num_categories: u64,
    /// The first person's id. Default 1000.
    pub first_person_id: i64,
    /// The first auction's id. Default 1000.
    pub first_auction_id: i64,
    /// The first category's id. Default 10.
    pub first_category_id: i64,
    /// How far beyond the latest person a random person id may go (a
    /// person not yet registered). Default 10.
    pub person_id_lead: u64,
    /// How far beyond the latest auction a random auction id may go.
    /// Default 10.
    pub auction_id_lead: u64,
}

impl Default for NexmarkConfig {
    fn default() -> Self {
        NexmarkConfig {
            seed: 0,
            base_time_ms: DEFAULT_BASE_TIME_MS,
            events_per_second: 10_000,
            person_proportion: 1,
            auction_proportion: 3,
            bid_proportion: 46,
            active_people: 1000,
            in_flight_auctions: 100,
            hot_seller_ratio: 4,
            hot_auction_ratio: 2,
            hot_bidder_ratio: 4,
            hot_channel_ratio: 2,
            num_categories: 5,
            first_person_id: 1000,
            first_auction_id: 1000,
            first_category_id: 10,
            person_id_lead: 10,
            auction_id_lead: 10,
        }
    }
}

impl NexmarkConfig {
    /// Checks that every ratio, proportion and count is usable.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first field that is 0.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("events_per_second", self.events_per_second),
            ("person_proportion", self.person_proportion),
            ("auction_proportion", self.auction_proportion),
            ("bid_proportion", self.bid_proportion),
            ("active_people", self.active_people),
            ("hot_seller_ratio", self.hot_seller_ratio),
            ("hot_auction_ratio", self.hot_auction_ratio),
            ("hot_bidder_ratio", self.hot_bidder_ratio),
            ("hot_channel_ratio", self.hot_channel_ratio),
            ("num_categories", self.num_categories),
        ];
        match positive.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(Error::Config(format!("nexmark: {name} must be at least 1"))),
            None => Ok(()),
        }
    }

    /// Events in each group of proportions (50 by default).
    pub fn proportion_denominator(&self) -> u64 {
        self.person_proportion + self.auction_proportion + self.bid_proportion
    }
}
