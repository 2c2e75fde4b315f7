//! How event `i` is made: the workload's fields and mix, after
//! the workload's reference Python generator, as a pure function of (seed, start, i).

use std::sync::Arc;

use super::event::{GeneratedLog, Level};
use super::rng::{EventDraws, SplitMix64, key_of, mix64};

/// Events per millisecond of event time (100,000 per second).
pub(crate) const EVENTS_PER_MS: u64 = 100;
/// The share of events that are delayed.
pub(crate) const DELAY_PROB: f64 = 0.25;
/// The largest delay: strictly below a 2 s watermark bound.
pub(crate) const MAX_DELAY_MS: i64 = 1999;
/// Services `svc-00` to `svc-49`.
pub(crate) const N_SERVICES: usize = 50;
/// Hosts `host-000` to `host-199`.
pub(crate) const N_HOSTS: usize = 200;
/// Distinct message texts per seed.
pub(crate) const N_MESSAGES: usize = 512;

const VERBS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const RESOURCES: [&str; 12] = [
    "orders",
    "users",
    "carts",
    "items",
    "payments",
    "sessions",
    "invoices",
    "search",
    "reviews",
    "stock",
    "shipments",
    "tokens",
];
const OUTCOMES: [&str; 12] = [
    "ok",
    "done",
    "completed",
    "served from cache",
    "retried once",
    "slow upstream",
    "timeout talking to db",
    "not found",
    "validation failed",
    "rate limited",
    "connection reset",
    "upstream returned error",
];

/// Draw slots of an event (see [`EventDraws`]).
mod slot {
    pub(super) const DELAYED: u64 = 0;
    pub(super) const DELAY: u64 = 1;
    pub(super) const LEVEL: u64 = 2;
    pub(super) const DETAIL: u64 = 3;
    pub(super) const JITTER: u64 = 4;
    pub(super) const SERVICE: u64 = 5;
    pub(super) const HOST: u64 = 6;
    pub(super) const MESSAGE: u64 = 7;
}

/// The strings events are made of, fixed per seed.
#[derive(Debug)]
struct Tables {
    services: Vec<String>,
    hosts: Vec<String>,
    messages: Vec<String>,
}

/// Everything event `i` depends on besides `i`: cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Recipe {
    key: u64,
    start_ms: i64,
    tables: Arc<Tables>,
}

impl Recipe {
    pub(crate) fn new(seed: u64, start_ms: i64) -> Self {
        let key = key_of(seed);
        Recipe {
            key,
            start_ms,
            tables: Arc::new(Tables {
                services: (0..N_SERVICES).map(|i| format!("svc-{i:02}")).collect(),
                hosts: (0..N_HOSTS).map(|i| format!("host-{i:03}")).collect(),
                messages: messages(key),
            }),
        }
    }

    /// Event `i`: the same for the same (seed, start, i), on any machine.
    pub(crate) fn event(&self, i: u64) -> GeneratedLog {
        let d = EventDraws::new(self.key, i);
        let mut ts = self.start_ms.wrapping_add((i / EVENTS_PER_MS) as i64);
        if d.unit(slot::DELAYED) < DELAY_PROB {
            ts -= pick(d.unit(slot::DELAY), MAX_DELAY_MS as usize + 1) as i64;
        }
        let (r, r2) = (d.unit(slot::LEVEL), d.unit(slot::DETAIL));
        // The same conditional mix as gen_logs.py: status and latency by level.
        let (level, status, latency) = if r < 0.40 {
            let status = if r2 < 0.97 { 200 } else { 404 };
            (Level::Debug, status, 0.2 + 40.0 * r2 * r2)
        } else if r < 0.85 {
            let status = if r2 < 0.97 { 200 } else { 404 };
            (Level::Info, status, 1.0 + 249.0 * r2 * r2 * r2)
        } else if r < 0.95 {
            let status = if r2 < 0.60 {
                200
            } else if r2 < 0.95 {
                404
            } else {
                503
            };
            (Level::Warn, status, 50.0 + 950.0 * r2 * r2)
        } else {
            let status = if r2 < 0.60 {
                500
            } else if r2 < 0.90 {
                503
            } else {
                200
            };
            (Level::Error, status, 5.0 + 2995.0 * r2)
        };
        // Jitter decorrelates latency from status; then 3 decimals.
        let latency = latency + d.unit(slot::JITTER);
        let t = &*self.tables;
        GeneratedLog {
            ts,
            level,
            service: t.services[pick(d.unit(slot::SERVICE), N_SERVICES)].clone(),
            host: t.hosts[pick(d.unit(slot::HOST), N_HOSTS)].clone(),
            status,
            latency_ms: (latency * 1000.0).round() / 1000.0,
            message: t.messages[pick(d.unit(slot::MESSAGE), N_MESSAGES)].clone(),
        }
    }
}

/// `floor(u * n)` for a uniform `u` in `[0, 1)`: an index in `0..n`.
fn pick(u: f64, n: usize) -> usize {
    ((u * n as f64) as usize).min(n - 1)
}

/// The message pool of a seed: request summaries of 20 to 60 characters,
/// made as gen_logs.py makes its pool.
fn messages(key: u64) -> Vec<String> {
    let mut rng = SplitMix64::new(mix64(key ^ 0x6d65_7373_6167_6573)); // "messages"
    (0..N_MESSAGES)
        .map(|_| {
            let verb = VERBS[rng.below(VERBS.len())];
            let resource = RESOURCES[rng.below(RESOURCES.len())];
            let ident = rng.below(100_000);
            let outcome = OUTCOMES[rng.below(OUTCOMES.len())];
            let version = 1 + rng.below(3);
            let mut msg = format!("{verb} /api/v{version}/{resource}/{ident} {outcome}");
            if msg.len() < 20 {
                msg.push_str(" request handled");
                msg.truncate(20);
            }
            msg.truncate(60);
            msg
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_20_to_60_plain_ascii_chars() {
        for seed in 0..20 {
            for m in messages(key_of(seed)) {
                assert!((20..=60).contains(&m.len()), "{m:?}");
                assert!(
                    m.bytes()
                        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\'),
                    "{m:?}"
                );
            }
        }
    }

    #[test]
    fn latencies_have_3_decimals() {
        let r = Recipe::new(3, 0);
        for i in 0..10_000 {
            let l = r.event(i).latency_ms;
            assert_eq!(((l * 1000.0).round() / 1000.0), l);
            assert_eq!(format!("{l:.3}").parse::<f64>().expect("float"), l);
        }
    }
}
