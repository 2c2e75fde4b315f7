//! How event `i` is made: Nexmark's model as a pure function of the config
//! and `i`.
//!
//! The model (event kinds by index, id assignment, hot sellers, bidders and
//! auctions, auction lengths, prices, channels and the static name tables)
//! is ported from the `nexmark` crate 0.2 (risingwavelabs/nexmark-rs,
//! `src/event.rs`, `src/config.rs`, `src/utils.rs`; Copyright 2023
//! Singularity Data), itself a port of Apache Beam's Nexmark generator
//! (`sdks/java/testing/nexmark`, `NexmarkUtils` and the `model`
//! generators), both under the Apache License 2.0. What differs, for
//! speed: the randomness (a SplitMix64 stream keyed by the seed and the
//! index instead of `SmallRng`), integer event times (no `f32`), `extra`
//! strings left empty, and text from static tables borrowed, not copied.

use std::borrow::Cow;
use std::sync::LazyLock;

use super::config::NexmarkConfig;
use super::event::{Auction, Bid, Event, Person, Text};
use crate::generator::rng::mix64;

/// One hot seller, bidder and auction per this many persons or auctions
/// (Beam's `HOT_*_RATIO` constants in the model generators).
const HOT_GROUP: u64 = 100;

/// Beam's `US_STATES`.
const US_STATES: [&str; 6] = ["AZ", "CA", "ID", "OR", "WA", "WY"];
/// Beam's `US_CITIES`.
const US_CITIES: [&str; 10] = [
    "Phoenix",
    "Los Angeles",
    "San Francisco",
    "Boise",
    "Portland",
    "Bend",
    "Redmond",
    "Seattle",
    "Kent",
    "Cheyenne",
];
/// Beam's `FIRST_NAMES`.
const FIRST_NAMES: [&str; 11] = [
    "Peter", "Paul", "Luke", "John", "Saul", "Vicky", "Kate", "Julie", "Sarah", "Deiter", "Walter",
];
/// Beam's `LAST_NAMES`.
const LAST_NAMES: [&str; 9] = [
    "Shultz", "Abrams", "Spencer", "White", "Bartels", "Walton", "Smith", "Jones", "Noris",
];
/// Beam's `HOT_CHANNELS`.
const HOT_CHANNELS: [&str; 4] = ["Google", "Facebook", "Baidu", "Apple"];
/// The channels besides the hot ones (`CHANNEL_NUMBER` in nexmark-rs).
const CHANNELS: usize = 10_000;

/// The strings events borrow: made once per process.
struct Tables {
    /// Every "First Last", first name major.
    names: Vec<String>,
    /// The hot channels' URLs.
    hot_urls: Vec<String>,
    /// `channel-N` and its URL, for N in `0..CHANNELS`.
    channels: Vec<(String, String)>,
}

static TABLES: LazyLock<Tables> = LazyLock::new(|| Tables {
    names: FIRST_NAMES
        .iter()
        .flat_map(|f| LAST_NAMES.iter().map(move |l| format!("{f} {l}")))
        .collect(),
    hot_urls: (0..HOT_CHANNELS.len() as u64).map(base_url).collect(),
    channels: (0..CHANNELS as u64)
        .map(|i| {
            let mut url = base_url(i);
            // Nine channels in ten carry their id in the URL.
            if Draws::new(0x6368_616e, i).below(10) > 0 {
                let id = i64::from((i as i32).reverse_bits()).abs();
                url.push_str(&format!("&channel_id={id}"));
            }
            (format!("channel-{i}"), url)
        })
        .collect(),
});

/// A made-up item URL, as Beam's `getBaseUrl`: three path parts of 3 or 4
/// letters, some of them `_`.
fn base_url(seed: u64) -> String {
    let mut d = Draws::new(0x7572_6c73, seed);
    let mut part = || -> String {
        let len = 3 + d.below(2) as usize;
        (0..len)
            .map(|_| {
                if d.below(13) == 0 {
                    '_'
                } else {
                    char::from(b'a' + d.below(26) as u8)
                }
            })
            .collect()
    };
    let (a, b, c) = (part(), part(), part());
    format!("https://www.nexmark.com/{a}/{b}/{c}/item.htm?query=1")
}

/// The random draws of one event: a SplitMix64 stream started at a point
/// given by the seed and the index.
struct Draws(u64);

impl Draws {
    const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    fn new(key: u64, index: u64) -> Self {
        Draws(mix64(key ^ mix64(index.wrapping_add(Self::GAMMA))))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        mix64(self.0)
    }

    /// Uniform in `0..n` (`n > 0`), by Lemire's multiply-shift.
    fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// `n` random lowercase letters, eight per draw.
    fn letters(&mut self, n: usize) -> String {
        let mut s = String::with_capacity(n);
        let mut x = 0u64;
        for i in 0..n {
            if i % 8 == 0 {
                x = self.next();
            }
            let m = u128::from(x) * 26;
            s.push(char::from(b'a' + (m >> 64) as u8));
            x = m as u64;
        }
        s
    }

    /// A price in cents, log-uniform from $1 to $1,000,000 (Beam's
    /// `nextPrice`).
    fn price(&mut self) -> i64 {
        (10f64.powf(self.unit() * 6.0) * 100.0).round() as i64
    }
}

/// Everything event `i` depends on besides `i`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Model {
    cfg: NexmarkConfig,
    key: u64,
    denominator: u64,
}

impl Model {
    pub(crate) fn new(cfg: NexmarkConfig) -> Self {
        Model {
            key: mix64(cfg.seed ^ 0x6e65_786d_6172_6b00), // "nexmark"
            denominator: cfg.proportion_denominator().max(1),
            cfg,
        }
    }

    pub(crate) fn config(&self) -> &NexmarkConfig {
        &self.cfg
    }

    /// The event time of event `i`: a fixed rate from the base time.
    pub(crate) fn date_time(&self, i: u64) -> i64 {
        let ms = u128::from(i) * 1000 / u128::from(self.cfg.events_per_second.max(1));
        self.cfg
            .base_time_ms
            .saturating_add(i64::try_from(ms).unwrap_or(i64::MAX))
    }

    /// Event `i`.
    pub(crate) fn event(&self, i: u64) -> Event {
        let time = self.date_time(i);
        let mut d = Draws::new(self.key, i);
        let rem = i % self.denominator;
        if rem < self.cfg.person_proportion {
            Event::Person(self.person(i, time, &mut d))
        } else if rem < self.cfg.person_proportion + self.cfg.auction_proportion {
            Event::Auction(self.auction(i, time, &mut d))
        } else {
            Event::Bid(self.bid(i, time, &mut d))
        }
    }

    fn person(&self, i: u64, time: i64, d: &mut Draws) -> Person {
        let t = &*TABLES;
        let name = &t.names[d.below(t.names.len() as u64) as usize];
        let email = format!("{}@{}.com", d.letters(7), d.letters(5));
        let card = format!(
            "{:04} {:04} {:04} {:04}",
            d.below(10_000),
            d.below(10_000),
            d.below(10_000),
            d.below(10_000)
        );
        Person {
            id: self.cfg.first_person_id + self.last_person(i) as i64,
            name: Cow::Borrowed(name.as_str()),
            email_address: Cow::Owned(email),
            credit_card: Cow::Owned(card),
            city: Cow::Borrowed(US_CITIES[d.below(US_CITIES.len() as u64) as usize]),
            state: Cow::Borrowed(US_STATES[d.below(US_STATES.len() as u64) as usize]),
            date_time: time,
            extra: Text::Borrowed(""),
        }
    }

    fn auction(&self, i: u64, time: i64, d: &mut Draws) -> Auction {
        let c = &self.cfg;
        let item_name = d.letters(20);
        let description = d.letters(100);
        let initial_bid = d.price();
        let reserve = initial_bid + d.price();
        // Auctions last about as long as it takes `in_flight_auctions`
        // more of them to open (nexmark-rs' `next_length`).
        let ahead = c.in_flight_auctions * self.denominator / c.auction_proportion;
        let horizon = (self.date_time(i + ahead) - time).max(0) as u64;
        let expires = time + 1 + d.below((2 * horizon).max(1)) as i64;
        let seller = if d.below(c.hot_seller_ratio) > 0 {
            (self.last_person(i) / HOT_GROUP) * HOT_GROUP
        } else {
            self.random_person(i, d)
        };
        Auction {
            id: c.first_auction_id + self.last_auction(i) as i64,
            item_name: Cow::Owned(item_name),
            description: Cow::Owned(description),
            initial_bid,
            reserve,
            date_time: time,
            expires,
            seller: c.first_person_id + seller as i64,
            category: c.first_category_id + d.below(c.num_categories) as i64,
            extra: Text::Borrowed(""),
        }
    }

    fn bid(&self, i: u64, time: i64, d: &mut Draws) -> Bid {
        let c = &self.cfg;
        let auction = if d.below(c.hot_auction_ratio) > 0 {
            (self.last_auction(i) / HOT_GROUP) * HOT_GROUP
        } else {
            self.random_auction(i, d)
        };
        // The second person of a group, so hot bidders are not hot sellers.
        let bidder = if d.below(c.hot_bidder_ratio) > 0 {
            (self.last_person(i) / HOT_GROUP) * HOT_GROUP + 1
        } else {
            self.random_person(i, d)
        };
        let price = d.price();
        let t = &*TABLES;
        let (channel, url) = if d.below(c.hot_channel_ratio) > 0 {
            let k = d.below(HOT_CHANNELS.len() as u64) as usize;
            (HOT_CHANNELS[k], t.hot_urls[k].as_str())
        } else {
            let (channel, url) = &t.channels[d.below(CHANNELS as u64) as usize];
            (channel.as_str(), url.as_str())
        };
        Bid {
            auction: c.first_auction_id + auction as i64,
            bidder: c.first_person_id + bidder as i64,
            price,
            channel: Cow::Borrowed(channel),
            url: Cow::Borrowed(url),
            date_time: time,
            extra: Text::Borrowed(""),
        }
    }

    /// The id (from 0) of the latest person at event `i`: the one event `i`
    /// makes, if it makes one.
    fn last_person(&self, i: u64) -> u64 {
        let c = &self.cfg;
        let epoch = i / self.denominator;
        let offset = (i % self.denominator).min(c.person_proportion.saturating_sub(1));
        epoch * c.person_proportion + offset
    }

    /// The id (from 0) of the latest auction at event `i`: the one event
    /// `i` makes, if it makes one.
    fn last_auction(&self, i: u64) -> u64 {
        let c = &self.cfg;
        let mut epoch = i / self.denominator;
        let mut offset = i % self.denominator;
        if offset < c.person_proportion {
            // Before this group's auctions: the last of the previous group.
            epoch = epoch.saturating_sub(1);
            offset = c.auction_proportion.saturating_sub(1);
        } else if c.person_proportion + c.auction_proportion <= offset {
            offset = c.auction_proportion.saturating_sub(1);
        } else {
            offset -= c.person_proportion;
        }
        epoch * c.auction_proportion + offset
    }

    /// A random active person (from 0), or one soon to register.
    fn random_person(&self, i: u64, d: &mut Draws) -> u64 {
        let people = self.last_person(i) + 1;
        let active = people.min(self.cfg.active_people);
        people - active + d.below(active + self.cfg.person_id_lead)
    }

    /// A random in-flight auction (from 0), or one soon to open.
    fn random_auction(&self, i: u64, d: &mut Draws) -> u64 {
        let max = self.last_auction(i);
        let min = max.saturating_sub(self.cfg.in_flight_auctions);
        min + d.below(max - min + 1 + self.cfg.auction_id_lead)
    }
}
