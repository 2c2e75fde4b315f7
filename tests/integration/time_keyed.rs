//! Keyed process functions and dedup in running jobs: cart threshold alerts
//! against a sequential computation, duplicates within and beyond the
//! horizon, and event-time and processing-time timers (on tokio's paused
//! clock).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use brook::core::time::Clock;
use brook::operators::AssignTimestamps;
use brook::prelude::*;
use futures::StreamExt as _;
use futures::stream;
use serde::{Deserialize, Serialize};

use crate::support::{block_on, config, sorted};

/// The out-of-orderness bound of every shuffled input here.
const BOUND_MS: i64 = 2_000;

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

/// Puts `(time, value)` pairs in an arrival order where each arrives up to
/// `BOUND_MS` after its time: none is more than the bound behind the latest
/// seen before it, so none is late for a `bounded(BOUND_MS)` watermark.
fn shuffle_within_bound<T>(items: Vec<(i64, T)>, rng: &mut Rng) -> Vec<T> {
    let mut arrivals: Vec<(i64, usize, T)> = items
        .into_iter()
        .enumerate()
        .map(|(i, (time, v))| (time + rng.between(0, BOUND_MS), i, v))
        .collect();
    arrivals.sort_by_key(|(arrival, i, _)| (*arrival, *i));
    arrivals.into_iter().map(|(_, _, v)| v).collect()
}

/// Event times with bounded watermarks emitted after every batch, so timers
/// also fire while the job runs, not only at the final watermark.
fn eager_timestamps<T, F>(extract: F) -> AssignTimestamps<F>
where
    F: FnMut(&T) -> EventTime + Clone + Send + 'static,
{
    AssignTimestamps::new(
        extract,
        Watermarks::bounded(Duration::from_millis(BOUND_MS as u64)),
    )
    .with_interval(Duration::ZERO)
}

// ---------------------------------------------------------------------------
// Cart threshold alerts: a copy of examples/threshold_alerts.rs's logic.

const THRESHOLD: i64 = 10;
const ABANDON_MS: i64 = 30 * 60_000;

#[derive(Debug, Clone)]
struct CartEvent {
    cart_id: u64,
    event_id: u64,
    delta: i64,
    time: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Alert {
    at: i64,
    cart_id: u64,
    quantity: i64,
    event_id: u64,
}

/// Applies each cart's updates in event-time order once the watermark
/// passes them; alerts once per cart; clears a cart idle for `ABANDON_MS`.
#[derive(Clone)]
struct CartThreshold;

#[derive(Default, Clone, Serialize, Deserialize)]
struct CartState {
    pending: MapState<i64, Vec<(u64, i64)>>,
    quantity: ValueState<i64>,
    notified: ValueState<bool>,
    last_update: ValueState<i64>,
}

impl KeyedProcessFunction<u64, CartEvent, Alert> for CartThreshold {
    type State = CartState;

    fn process_element(
        &mut self,
        e: CartEvent,
        ctx: &mut KeyedContext<'_, u64, CartState, Alert>,
    ) -> Result<()> {
        let time = ctx.timestamp();
        ctx.state()
            .pending
            .entry_or_insert_with(time, Vec::new)
            .push((e.event_id, e.delta));
        ctx.register_event_time_timer(time);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, u64, CartState, Alert>,
    ) -> Result<()> {
        if !ctx.has_state() {
            return Ok(());
        }
        let (now, cart_id) = (timer.time, *ctx.key());
        let mut alert = None;
        let s = ctx.state();
        if s.last_update
            .value()
            .is_some_and(|&l| now - l >= ABANDON_MS)
        {
            s.quantity.clear();
            s.notified.clear();
            s.last_update.clear();
        }
        let applied = s.pending.remove(&now).map(|mut updates| {
            updates.sort_unstable();
            for (event_id, delta) in updates {
                let quantity = s.quantity.get_or_insert_with(|| 0);
                *quantity += delta;
                if *quantity >= THRESHOLD && s.notified.value() != Some(&true) {
                    let quantity = *quantity;
                    alert = Some(Alert {
                        at: now,
                        cart_id,
                        quantity,
                        event_id,
                    });
                    s.notified.update(true);
                }
            }
            s.last_update.update(now);
        });
        let abandoned = s.last_update.is_empty() && s.pending.is_empty();
        if applied.is_some() {
            ctx.register_event_time_timer(now + ABANDON_MS);
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

/// The same rule as a plain loop over the distinct updates in time order.
fn sequential_alerts(events: &[CartEvent]) -> Vec<Alert> {
    let mut seen = HashSet::new();
    let mut unique: Vec<&CartEvent> = events.iter().filter(|e| seen.insert(e.event_id)).collect();
    unique.sort_by_key(|e| (e.time, e.event_id));
    // (quantity, notified, last update) per cart.
    let mut carts: HashMap<u64, (i64, bool, i64)> = HashMap::new();
    let mut alerts = Vec::new();
    for e in unique {
        let c = carts.entry(e.cart_id).or_insert((0, false, e.time));
        if e.time - c.2 >= ABANDON_MS {
            *c = (0, false, e.time);
        }
        c.0 += e.delta;
        c.2 = e.time;
        if c.0 >= THRESHOLD && !c.1 {
            c.1 = true;
            alerts.push(Alert {
                at: e.time,
                cart_id: e.cart_id,
                quantity: c.0,
                event_id: e.event_id,
            });
        }
    }
    sorted(alerts)
}

/// Cart updates with duplicates (same event id, same time) injected, in an
/// arrival order shuffled within the bound; and the number of duplicates.
/// Updates are often at equal times, and gaps often abandon a cart.
fn cart_deliveries(seed: u64) -> (Vec<CartEvent>, usize) {
    let mut rng = Rng(seed);
    let mut events = Vec::new();
    for cart_id in 0..60 {
        let mut time = rng.between(0, 3_600_000);
        for _ in 0..rng.between(1, 12) {
            let delta = rng.between(-2, 4);
            events.push((time, cart_id, delta));
            time += match rng.between(0, 9) {
                0 => 0,
                1 | 2 => rng.between(ABANDON_MS - 1, ABANDON_MS + 60_000),
                _ => rng.between(1, 5 * 60_000),
            };
        }
    }
    events.sort_unstable();
    let mut timed = Vec::new();
    let mut duplicates = 0;
    for (event_id, (time, cart_id, delta)) in events.into_iter().enumerate() {
        let e = CartEvent {
            cart_id,
            event_id: event_id as u64,
            delta,
            time,
        };
        for _ in 0..(rng.between(0, 5) - 3).max(0) {
            timed.push((time, e.clone()));
            duplicates += 1;
        }
        timed.push((time, e));
    }
    (shuffle_within_bound(timed, &mut rng), duplicates)
}

/// Runs the alert pipeline; returns the sorted alerts and dedup's `dropped`.
fn run_alerts(input: Vec<CartEvent>, parallelism: usize, eager: bool) -> (Vec<Alert>, u64) {
    let flow = Dataflow::with_config("cart-alerts", config(parallelism));
    let source = flow.source("carts", MemorySource::new(input));
    let timed = if eager {
        source.process("carts.timestamps", eager_timestamps(|e: &CartEvent| e.time))
    } else {
        let bound = Watermarks::bounded(Duration::from_millis(BOUND_MS as u64));
        source.assign_timestamps(|e| e.time, bound)
    };
    let sink = CollectSink::new();
    let alerts = sink.handle();
    timed
        .dedup("dedup", |e| e.event_id, Duration::from_secs(600))
        .key_by(|e| e.cart_id)
        .keyed_process("alerts", CartThreshold)
        .sink("alerts-out", sink);
    let job = flow.build().expect("plan");
    let metrics = job.metrics();
    block_on(job.run(CancellationToken::new())).expect("run");
    let snapshot = metrics.snapshot();
    let dropped = snapshot.node("dedup").expect("dedup node").total.dropped;
    (sorted(alerts.values()), dropped)
}

#[test]
fn threshold_alerts_equal_a_sequential_computation() {
    for seed in 1..=3 {
        let (input, duplicates) = cart_deliveries(seed);
        let expected = sequential_alerts(&input);
        assert!(duplicates > 0 && expected.len() > 5, "a meaningful input");
        for p in [1, 2, 4] {
            for eager in [false, true] {
                let (alerts, dropped) = run_alerts(input.clone(), p, eager);
                let run = format!("seed {seed}, parallelism {p}, eager watermarks {eager}");
                assert_eq!(alerts, expected, "{run}");
                assert_eq!(dropped, duplicates as u64, "{run}");
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Dedup at job level.

#[test]
fn dedup_drops_exactly_the_duplicates_within_the_horizon() {
    // 300 ids at distinct times; some re-delivered up to 3 times, at the
    // same time or up to 900 ms later (the horizon is 1 s), anywhere in
    // the input, so copies meet from different source instances. Nothing
    // expires before the end: the source sends no watermark until then.
    let mut rng = Rng(7);
    let mut records = Vec::new();
    let mut duplicates = 0u64;
    for id in 0..300u32 {
        let time = i64::from(id) * 10_000;
        records.push(Record::new(time, (id, time)));
        for _ in 0..(rng.between(0, 6) - 3).max(0) {
            let later = time + rng.between(0, 900);
            records.push(Record::new(later, (id, later)));
            duplicates += 1;
        }
    }
    for i in (1..records.len()).rev() {
        records.swap(i, rng.between(0, i as i64) as usize);
    }
    for p in [1, 2, 4] {
        let flow = Dataflow::with_config("dedup-within", config(p));
        let sink = CollectSink::new();
        let out = sink.handle();
        flow.source("ids", MemorySource::from_records(records.clone()))
            .dedup("dedup", |v: &(u32, i64)| v.0, Duration::from_secs(1))
            .sink("out", sink);
        let job = flow.build().expect("plan");
        let metrics = job.metrics();
        block_on(job.run(CancellationToken::new())).expect("run");
        let ids: Vec<u32> = out.values().into_iter().map(|(id, _)| id).collect();
        assert_eq!(sorted(ids), (0..300).collect::<Vec<_>>(), "p {p}");
        let node = metrics.snapshot().node("dedup").expect("node").total;
        assert_eq!(node.dropped, duplicates, "p {p}");
        assert_eq!(node.records_out + node.dropped, node.records_in, "p {p}");
    }
}

/// Yields a fixed script of batches and watermarks from instance 0.
struct Script(Vec<SourceEvent<(u32, i64)>>);

impl Source<(u32, i64)> for Script {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        ctx: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<(u32, i64)>> {
        let events = if ctx.instance() == 0 {
            std::mem::take(&mut self.0)
        } else {
            Vec::new()
        };
        Ok(stream::iter(events.into_iter().map(Ok)).boxed())
    }
}

fn ids_at(ids: std::ops::Range<u32>, time: i64) -> SourceEvent<(u32, i64)> {
    SourceEvent::Batch(ids.map(|id| Record::new(time, (id, time))).collect())
}

#[test]
fn dedup_lets_an_id_pass_again_once_the_watermark_passes_its_horizon() {
    // Horizon 1000: ids 0..50 seen at 0 are forgotten at watermark 1000,
    // ids 50..100 seen at 500 at watermark 1500.
    let script = || {
        Script(vec![
            ids_at(0..50, 0),
            ids_at(50..100, 500),
            ids_at(0..10, 999), // within the horizon: dropped
            SourceEvent::Watermark(1_000),
            ids_at(0..100, 1_001), // 0..50 pass again, 50..100 dropped
            SourceEvent::Watermark(1_500),
            ids_at(0..100, 1_600), // 50..100 pass again, 0..50 dropped
        ])
    };
    let mut expected: Vec<(u32, i64)> = Vec::new();
    expected.extend((0..50).flat_map(|id| [(id, 0), (id, 1_001)]));
    expected.extend((50..100).flat_map(|id| [(id, 500), (id, 1_600)]));
    for p in [1, 2, 4] {
        let flow = Dataflow::with_config("dedup-horizon", config(p));
        let sink = CollectSink::new();
        let out = sink.handle();
        // One source instance, so its watermarks alone drive every dedup
        // instance, in order with its records.
        flow.source("script", script())
            .parallelism(1)
            .dedup("dedup", |v: &(u32, i64)| v.0, Duration::from_millis(1_000))
            .sink("out", sink);
        let job = flow.build().expect("plan");
        let metrics = job.metrics();
        block_on(job.run(CancellationToken::new())).expect("run");
        assert_eq!(sorted(out.values()), sorted(expected.clone()), "p {p}");
        let node = metrics.snapshot().node("dedup").expect("node").total;
        assert_eq!(node.dropped, 10 + 50 + 50, "p {p}");
    }
}

// ---------------------------------------------------------------------------
// Event-time timers.

const TIMER_DELAY: i64 = 100;

/// What an event-time timer saw when it fired.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fired {
    key: u32,
    time: i64,
    watermark: EventTime,
    /// How many of the key's records with time at or below the timer's
    /// had arrived.
    seen_up_to_time: usize,
}

/// Sets an event-time timer `TIMER_DELAY` after each record's time; emits
/// a [`Fired`] for each timer.
#[derive(Clone)]
struct EchoTimers;

impl KeyedProcessFunction<u32, (u32, i64), Fired> for EchoTimers {
    type State = ListState<i64>;

    fn process_element(
        &mut self,
        (_, time): (u32, i64),
        ctx: &mut KeyedContext<'_, u32, ListState<i64>, Fired>,
    ) -> Result<()> {
        ctx.state().add(time);
        ctx.register_event_time_timer(time + TIMER_DELAY);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, u32, ListState<i64>, Fired>,
    ) -> Result<()> {
        assert_eq!(timer.domain, TimeDomain::EventTime);
        assert_eq!(ctx.timestamp(), timer.time);
        let fired = Fired {
            key: *ctx.key(),
            time: timer.time,
            watermark: ctx.current_watermark(),
            seen_up_to_time: ctx
                .state()
                .get()
                .iter()
                .filter(|&&t| t <= timer.time)
                .count(),
        };
        ctx.emit(fired);
        Ok(())
    }
}

/// Tags each record with the instance that emitted it.
#[derive(Clone, Default)]
struct TagInstance(usize);

impl<T: Data> Operator<T, (usize, T)> for TagInstance {
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.0 = ctx.instance();
        Ok(())
    }

    fn process(&mut self, batch: Batch<T>, out: &mut Collector<(usize, T)>) -> Result<()> {
        let me = self.0;
        out.emit_batch(batch.map(|v| (me, v)));
        Ok(())
    }
}

#[test]
fn event_time_timers_fire_in_time_order_and_all_by_end_of_input() {
    // 24 keys, 40 records each at distinct times, shuffled within the bound.
    let mut rng = Rng(11);
    let mut input = Vec::new();
    for key in 0..24u32 {
        let mut time = rng.between(0, 5_000);
        for _ in 0..40 {
            input.push((time, (key, time)));
            time += rng.between(1, 400);
        }
    }
    let mut times: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
    for (t, (k, _)) in &input {
        times.entry(*k).or_default().push(*t);
    }
    let input = shuffle_within_bound(input, &mut rng);
    for p in [1, 2, 4] {
        let flow = Dataflow::with_config("event-timers", config(p));
        let sink = CollectSink::new();
        let out = sink.handle();
        flow.source("records", MemorySource::new(input.clone()))
            .process("records.timestamps", eager_timestamps(|v: &(u32, i64)| v.1))
            .key_by(|v| v.0)
            .keyed_process("timers", EchoTimers)
            .process("tag", TagInstance::default())
            .sink("out", sink);
        block_on(flow.build().expect("plan").run(CancellationToken::new())).expect("run");

        let records = out.records();
        let mut by_instance: BTreeMap<usize, Vec<i64>> = BTreeMap::new();
        let mut by_key: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        let mut owner: HashMap<u32, usize> = HashMap::new();
        for r in &records {
            let (instance, f) = &r.value;
            assert_eq!(r.timestamp, f.time, "output carries the timer's time");
            assert!(f.watermark >= f.time, "fired before the watermark: {f:?}");
            let expected_seen = times[&f.key].iter().filter(|&&t| t <= f.time).count();
            assert_eq!(
                f.seen_up_to_time, expected_seen,
                "p {p}: a record at or before the timer arrived after it: {f:?}"
            );
            by_instance.entry(*instance).or_default().push(f.time);
            by_key.entry(f.key).or_default().push(f.time);
            assert_eq!(*owner.entry(f.key).or_insert(*instance), *instance);
        }
        for (instance, fired) in &by_instance {
            assert!(
                fired.is_sorted(),
                "p {p}: instance {instance} fired out of event-time order"
            );
        }
        for (key, ts) in &times {
            let due: Vec<i64> = ts.iter().map(|t| t + TIMER_DELAY).collect();
            assert_eq!(
                by_key.get(key),
                Some(&sorted(due)),
                "p {p}: key {key}: every timer once, in order"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Processing-time timers.

/// How long after a record its processing-time timer is due.
const PROCESSING_DELAY_MS: i64 = 50;

/// Sets a processing-time timer `PROCESSING_DELAY_MS` from now per record;
/// emits the key, the timer and the processing time when it fired.
#[derive(Clone)]
struct WallClockTimers;

impl KeyedProcessFunction<u32, u32, (u32, Timer, i64)> for WallClockTimers {
    type State = ValueState<i64>;

    fn process_element(
        &mut self,
        _: u32,
        ctx: &mut KeyedContext<'_, u32, ValueState<i64>, (u32, Timer, i64)>,
    ) -> Result<()> {
        let at = ctx.current_processing_time() + PROCESSING_DELAY_MS;
        ctx.state().update(at);
        ctx.register_processing_time_timer(at);
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, u32, ValueState<i64>, (u32, Timer, i64)>,
    ) -> Result<()> {
        assert_eq!(ctx.state().value(), Some(&timer.time));
        let (key, now) = (*ctx.key(), ctx.current_processing_time());
        ctx.emit((key, timer, now));
        ctx.clear_state();
        Ok(())
    }
}

/// Each instance emits its share of `keys` at once, then keeps the job
/// running until `stop` is cancelled: processing-time timers do not fire
/// after the end of input.
struct KeepRunning {
    keys: u32,
    stop: CancellationToken,
}

impl Source<u32> for KeepRunning {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(
        &mut self,
        ctx: &SourceContext,
        _splits: Vec<InstanceSplit>,
    ) -> Result<BoxedSourceStream<u32>> {
        let (me, n) = (ctx.instance() as u32, ctx.parallelism() as u32);
        let batch: Batch<u32> = (0..self.keys)
            .filter(|k| k % n == me)
            .map(Record::untimed)
            .collect();
        let stopped = self.stop.clone().cancelled_owned();
        Ok(stream::iter([Ok(SourceEvent::Batch(batch))])
            .chain(stream::once(stopped).filter_map(|()| async { None }))
            .boxed())
    }
}

/// The job runs on tokio's paused clock, which moves only when every task
/// waits: every record is handled at the start time `t0`, and the test's
/// own sleeps say exactly how much processing time has passed.
#[test]
fn processing_time_timers_fire_when_the_clock_reaches_them_in_a_running_job() {
    for p in [1, 2, 4] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("tokio runtime");
        rt.block_on(async {
            // The job's tasks take the clock entered on this thread.
            let clock = Clock::tokio();
            let _clock = clock.enter();
            let t0 = clock.now_ms();
            let keys = 12;
            let stop = CancellationToken::new();
            let flow = Dataflow::with_config("processing-timers", config(p));
            let sink = CollectSink::new();
            let out = sink.handle();
            flow.source(
                "keys",
                KeepRunning {
                    keys,
                    stop: stop.clone(),
                },
            )
            .key_by(|k| *k)
            .keyed_process("timers", WallClockTimers)
            .sink("out", sink);
            let job = flow
                .build()
                .expect("plan")
                .start(CancellationToken::new())
                .expect("start");
            tokio::time::sleep(Duration::from_millis(PROCESSING_DELAY_MS as u64 - 1)).await;
            assert_eq!(out.len(), 0, "p {p}: a timer fired before it was due");
            while out.len() < keys as usize {
                assert!(
                    clock.now_ms() - t0 < 10_000,
                    "p {p}: timers still pending 10 s on"
                );
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            stop.cancel();
            tokio::time::timeout(Duration::from_secs(60), job.wait())
                .await
                .expect("the job hung")
                .expect("run");
            let records = out.records();
            let fired: Vec<u32> = records.iter().map(|r| r.value.0).collect();
            assert_eq!(
                sorted(fired),
                (0..keys).collect::<Vec<_>>(),
                "p {p}: each key's timer fired once while the job ran"
            );
            for r in &records {
                let (key, timer, now) = r.value;
                assert_eq!(timer.domain, TimeDomain::ProcessingTime, "key {key}");
                assert_eq!(timer.time, t0 + PROCESSING_DELAY_MS, "p {p}, key {key}");
                assert_eq!(
                    now, timer.time,
                    "p {p}: key {key} fired when due, not later"
                );
                assert_eq!(r.timestamp, NO_TIMESTAMP, "key {key}");
            }
        });
    }
}
