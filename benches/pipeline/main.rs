//! Micro-benchmarks of the runtime.
//!
//! `cargo bench --bench pipeline` measures source -> map -> filter -> sink
//! in records per second, chained (one task) and unchained (four tasks and
//! three channels), against a hand-written loop doing the same work; and,
//! as `overhead-floor`, the same over bare integers, where the work per
//! record is a few instructions and what remains is Brook's own cost.

mod workload;

use std::sync::{Arc, Mutex};

use brook::prelude::CancellationToken;
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use workload::{Totals, dataflow, hand_loop, trivial_dataflow, trivial_loop};

const N: u64 = 1_000_000;

// Both sides allocate through the same allocator; Brook's binaries use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn pipeline(c: &mut Criterion) {
    let expected = hand_loop(N);
    let mut g = c.benchmark_group("source-map-filter-sink");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);

    g.bench_function("hand-written loop", |b| {
        b.iter(|| std::hint::black_box(hand_loop(N)))
    });

    // Chained, on a single-threaded runtime: one core, as the loop has.
    let one_core = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("brook chained p=1", |b| {
        b.iter_batched(
            || {
                let totals = Arc::new(Mutex::new(Totals::default()));
                (dataflow(N, true, totals.clone()), totals)
            },
            |(job, totals)| {
                one_core
                    .block_on(job.run(CancellationToken::new()))
                    .expect("run");
                assert_eq!(*totals.lock().expect("totals"), expected);
            },
            BatchSize::PerIteration,
        )
    });

    // Unchained, on two workers: every node is its own task.
    let two_cores = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("brook unchained p=1", |b| {
        b.iter_batched(
            || {
                let totals = Arc::new(Mutex::new(Totals::default()));
                (dataflow(N, false, totals.clone()), totals)
            },
            |(job, totals)| {
                two_cores
                    .block_on(job.run(CancellationToken::new()))
                    .expect("run");
                assert_eq!(*totals.lock().expect("totals"), expected);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

/// The per-record cost of Brook itself: bare integers, almost no work.
fn overhead_floor(c: &mut Criterion) {
    let n = 10 * N;
    let expected = trivial_loop(n);
    let mut g = c.benchmark_group("overhead-floor");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    g.bench_function("hand-written loop", |b| {
        b.iter(|| std::hint::black_box(trivial_loop(n)))
    });
    let one_core = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    g.bench_function("brook chained p=1", |b| {
        b.iter_batched(
            || {
                let sum = Arc::new(Mutex::new(0));
                (trivial_dataflow(n, sum.clone()), sum)
            },
            |(job, sum)| {
                one_core
                    .block_on(job.run(CancellationToken::new()))
                    .expect("run");
                assert_eq!(*sum.lock().expect("sum"), expected);
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, pipeline, overhead_floor);
criterion_main!(benches);
