//! Threshold alerts on shopping carts: keyed state, event-time timers and
//! deduplication.
//!
//! Generates a day of cart updates in-process (no files, no broker): each
//! update adds items to a cart or takes some out. The upstream delivers at
//! least once, so some updates arrive twice, and out of order by up to
//! five seconds. The pipeline
//!
//! 1. sets event times and bounded-out-of-orderness watermarks
//!    (`assign_timestamps`),
//! 2. drops re-delivered updates by their event id (`dedup`; its `dropped`
//!    counter is the number of duplicates removed),
//! 3. keys by cart and runs [`CartThreshold`], a keyed process function that
//!    keeps each cart's quantity in `ValueState` and alerts once when it
//!    reaches the threshold,
//!
//! then checks the alerts against a plain sequential computation over the
//! same updates and exits non-zero if they differ.
//!
//! ```text
//! cargo run --release --example threshold_alerts -- [--parallelism P]
//! ```

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use brook::prelude::*;
use serde::{Deserialize, Serialize};

/// Alert when a cart holds this many items.
const THRESHOLD: i64 = 10;
/// A cart without updates for this long (event time) is abandoned.
const ABANDON_AFTER: Duration = Duration::from_secs(30 * 60);
/// How late an update may arrive behind the latest one seen.
const OUT_OF_ORDERNESS: Duration = Duration::from_secs(5);
/// How long an event id is remembered for deduplication.
const DEDUP_HORIZON: Duration = Duration::from_secs(10 * 60);
/// 2023-11-15 08:00:00 UTC, in milliseconds since the epoch.
const OPENING: i64 = 1_700_035_200_000;
const CARTS: u64 = 200;
const ALERTS_SHOWN: usize = 15;

/// One update of a cart, as the upstream delivers it.
#[derive(Debug, Clone)]
struct CartEvent {
    cart_id: u64,
    /// Unique per update; a re-delivered update keeps it.
    event_id: u64,
    item: &'static str,
    /// Items added (positive) or removed (negative).
    quantity_delta: i64,
    /// Event time, in milliseconds since the epoch.
    time: i64,
}

/// A cart reached the threshold.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Alert {
    /// Event time of the update that reached the threshold.
    at: i64,
    cart_id: u64,
    /// The cart's quantity after that update.
    quantity: i64,
    event_id: u64,
}

/// Alerts once when a cart's quantity reaches `threshold`.
///
/// **Notify once per cart**: a cart that drops below the threshold and rises
/// again is not alerted twice. A cart untouched for `abandon_after` of event
/// time is abandoned: an event-time timer clears its state, so memory holds
/// only live carts, and an update after that starts a new cart, which may
/// alert again.
///
/// Updates arrive out of order (up to the watermark bound), and "first
/// reaches the threshold" depends on order. So each update waits in
/// `pending` until the watermark passes its event time (a timer at that
/// time), and updates are applied in event-time order, ties by event id:
/// the result is the same for every arrival order and parallelism. The
/// price is latency: an alert leaves once the watermark passes the update
/// that caused it. Updates later than the bound would be applied at the
/// next watermark, out of order; size the bound for the source.
#[derive(Clone)]
struct CartThreshold {
    threshold: i64,
    abandon_after_ms: i64,
}

/// What [`CartThreshold`] keeps per cart.
#[derive(Default, Clone, Serialize, Deserialize)]
struct CartState {
    /// Updates waiting for the watermark: (event id, delta) by event time.
    pending: MapState<i64, Vec<(u64, i64)>>,
    /// Items in the cart.
    quantity: ValueState<i64>,
    /// Whether this cart was alerted.
    notified: ValueState<bool>,
    /// Event time of the last update applied.
    last_update: ValueState<i64>,
}

impl KeyedProcessFunction<u64, CartEvent, Alert> for CartThreshold {
    type State = CartState;

    fn process_element(
        &mut self,
        event: CartEvent,
        ctx: &mut KeyedContext<'_, u64, CartState, Alert>,
    ) -> Result<()> {
        let time = ctx.timestamp();
        ctx.state()
            .pending
            .entry_or_insert_with(time, Vec::new)
            .push((event.event_id, event.quantity_delta));
        ctx.register_event_time_timer(time);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, u64, CartState, Alert>,
    ) -> Result<()> {
        // A stale expiry timer of a cart already cleared.
        if !ctx.has_state() {
            return Ok(());
        }
        let now = timer.time;
        let cart_id = *ctx.key();
        let mut alert = None;
        let s = ctx.state();
        if s.last_update
            .value()
            .is_some_and(|&last| now - last >= self.abandon_after_ms)
        {
            // Abandoned: whatever comes next is a new cart.
            s.quantity.clear();
            s.notified.clear();
            s.last_update.clear();
        }
        let applied = if let Some(mut updates) = s.pending.remove(&now) {
            updates.sort_unstable();
            for (event_id, delta) in updates {
                let quantity = s.quantity.get_or_insert_with(|| 0);
                *quantity += delta;
                if *quantity >= self.threshold && s.notified.value() != Some(&true) {
                    alert = Some(Alert {
                        at: now,
                        cart_id,
                        quantity: *quantity,
                        event_id,
                    });
                    s.notified.update(true);
                }
            }
            s.last_update.update(now);
            true
        } else {
            false
        };
        let abandoned = s.last_update.is_empty() && s.pending.is_empty();
        if applied {
            // Expires the cart unless another update comes first; an
            // earlier expiry timer, now stale, finds the cart active.
            ctx.register_event_time_timer(now + self.abandon_after_ms);
        }
        if abandoned {
            ctx.clear_state();
        }
        if let Some(alert) = alert {
            ctx.emit(alert);
        }
        Ok(())
    }
}

/// The same rule as [`CartThreshold`], as a plain loop over the updates in
/// event-time order, without duplicates.
fn expected_alerts(events: &[CartEvent], threshold: i64, abandon_after_ms: i64) -> Vec<Alert> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&CartEvent> = events.iter().filter(|e| seen.insert(e.event_id)).collect();
    unique.sort_by_key(|e| (e.time, e.event_id));
    #[derive(Default)]
    struct Cart {
        quantity: i64,
        notified: bool,
        last_update: Option<i64>,
    }
    let mut carts: HashMap<u64, Cart> = HashMap::new();
    let mut alerts = Vec::new();
    for e in unique {
        let cart = carts.entry(e.cart_id).or_default();
        if cart
            .last_update
            .is_some_and(|last| e.time - last >= abandon_after_ms)
        {
            *cart = Cart::default();
        }
        cart.quantity += e.quantity_delta;
        cart.last_update = Some(e.time);
        if cart.quantity >= threshold && !cart.notified {
            cart.notified = true;
            alerts.push(Alert {
                at: e.time,
                cart_id: e.cart_id,
                quantity: cart.quantity,
                event_id: e.event_id,
            });
        }
    }
    alerts.sort();
    alerts
}

/// A small deterministic random number generator (SplitMix64).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `lo..=hi`.
    fn between(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % (hi - lo + 1) as u64) as i64
    }
}

const ITEMS: [&str; 8] = [
    "apples", "bread", "coffee", "eggs", "milk", "pasta", "rice", "tea",
];

/// Every cart's updates, in event-time order, with unique event ids. Carts
/// open during two hours and get 1 to 20 updates minutes apart; one gap in
/// five is long enough to abandon the cart, whose next update starts anew.
fn generate(carts: u64, rng: &mut Rng) -> Vec<CartEvent> {
    let mut events = Vec::new();
    for cart_id in 0..carts {
        let mut time = OPENING + rng.between(0, 2 * 3_600_000);
        let mut quantity = 0;
        for _ in 0..rng.between(1, 20) {
            let delta = if quantity > 0 && rng.between(0, 3) == 0 {
                -rng.between(1, quantity.min(3))
            } else {
                rng.between(1, 3)
            };
            quantity += delta;
            events.push(CartEvent {
                cart_id,
                event_id: 0,
                item: ITEMS[rng.between(0, ITEMS.len() as i64 - 1) as usize],
                quantity_delta: delta,
                time,
            });
            time += if rng.between(0, 4) == 0 {
                rng.between(35 * 60_000, 60 * 60_000)
            } else {
                rng.between(10_000, 10 * 60_000)
            };
        }
    }
    events.sort_by_key(|e| (e.time, e.cart_id));
    for (id, e) in events.iter_mut().enumerate() {
        e.event_id = id as u64;
    }
    events
}

/// The updates in delivery order: each arrives up to `max_delay_ms` after
/// its event time, and one in `dup_every` is delivered a second time (also
/// within that delay). Returns the deliveries and the number of duplicates.
fn deliver(
    events: &[CartEvent],
    max_delay_ms: i64,
    dup_every: i64,
    rng: &mut Rng,
) -> (Vec<CartEvent>, usize) {
    let mut arrivals = Vec::with_capacity(events.len() * 2);
    for e in events {
        arrivals.push((e.time + rng.between(0, max_delay_ms), e.clone()));
        if rng.between(1, dup_every) == 1 {
            arrivals.push((e.time + rng.between(0, max_delay_ms), e.clone()));
        }
    }
    let duplicates = arrivals.len() - events.len();
    // Arriving at most `max_delay_ms` late, no update is more than that
    // behind the latest seen before it: none is late for the watermark.
    arrivals.sort_by_key(|(arrival, e)| (*arrival, e.event_id));
    (arrivals.into_iter().map(|(_, e)| e).collect(), duplicates)
}

/// `HH:MM:SS` (UTC) of an event time.
fn clock(time: i64) -> String {
    let s = (time / 1000).rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut rng = Rng(42);
    let events = generate(CARTS, &mut rng);
    let max_delay = i64::try_from(OUT_OF_ORDERNESS.as_millis())?;
    let (deliveries, duplicates) = deliver(&events, max_delay, 10, &mut rng);
    let abandon_after_ms = i64::try_from(ABANDON_AFTER.as_millis())?;
    let expected = expected_alerts(&deliveries, THRESHOLD, abandon_after_ms);
    let items: HashMap<u64, &str> = events.iter().map(|e| (e.event_id, e.item)).collect();

    let mut flow = Dataflow::new("threshold-alerts");
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--parallelism") {
        let p = args.get(i + 1).context("--parallelism needs a value")?;
        flow.set_parallelism(p.parse().with_context(|| format!("--parallelism {p}"))?);
    }
    let sink = CollectSink::new();
    let alerts = sink.handle();
    flow.source("cart-events", MemorySource::new(deliveries.clone()))
        .assign_timestamps(|e| e.time, Watermarks::bounded(OUT_OF_ORDERNESS))
        .dedup("dedup", |e| e.event_id, DEDUP_HORIZON)
        .key_by(|e| e.cart_id)
        .keyed_process(
            "alerts",
            CartThreshold {
                threshold: THRESHOLD,
                abandon_after_ms,
            },
        )
        .sink("collect", sink);
    let job = flow.build()?;
    println!("Plan:\n{}", job.describe());
    let metrics = job.metrics();
    job.run(CancellationToken::new()).await?;

    let mut got = alerts.values();
    got.sort();
    println!(
        "{} updates to {CARTS} carts, {} delivered ({duplicates} twice); threshold {THRESHOLD} items\n",
        events.len(),
        deliveries.len(),
    );
    println!("{} alerts, first {ALERTS_SHOWN}:", got.len());
    for a in got.iter().take(ALERTS_SHOWN) {
        println!(
            "  {}  cart {:>3} reached {:>2} items (update {}, {})",
            clock(a.at),
            a.cart_id,
            a.quantity,
            a.event_id,
            items.get(&a.event_id).copied().unwrap_or("?"),
        );
    }
    let mut per_cart: HashMap<u64, usize> = HashMap::new();
    got.iter()
        .for_each(|a| *per_cart.entry(a.cart_id).or_default() += 1);
    println!(
        "{} carts alerted twice: abandoned ({} min without updates) after the first alert, \
         then filled again as new carts",
        per_cart.values().filter(|&&n| n > 1).count(),
        ABANDON_AFTER.as_secs() / 60
    );
    println!(
        "\n{:<24} {:>11} {:>11} {:>8}",
        "node", "records in", "records out", "dropped"
    );
    let snapshot = metrics.snapshot();
    for n in &snapshot.nodes {
        let t = n.total;
        println!(
            "{:<24} {:>11} {:>11} {:>8}",
            format!("{} x{}", n.name, n.parallelism),
            t.records_in,
            t.records_out,
            t.dropped
        );
    }

    let dropped = snapshot.node("dedup").map_or(0, |n| n.total.dropped);
    anyhow::ensure!(
        dropped == duplicates as u64,
        "dedup dropped {dropped} updates, but {duplicates} were duplicates"
    );
    if got != expected {
        let missing: Vec<_> = expected.iter().filter(|a| !got.contains(a)).collect();
        let extra: Vec<_> = got.iter().filter(|a| !expected.contains(a)).collect();
        anyhow::bail!(
            "the job's alerts differ from the sequential computation:\n  \
             missing {missing:?}\n  unexpected {extra:?}"
        );
    }
    println!(
        "\nOK: {} alerts, as the sequential computation; {dropped} duplicates dropped.",
        got.len()
    );
    Ok(())
}
