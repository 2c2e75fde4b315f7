//! Micro-benchmarks of the runtime.
//!
//! `cargo bench --bench pipeline` measures source -> map -> filter -> sink
//! in records per second, chained (one task) and unchained (four tasks and
//! three channels), against a hand-written loop doing the same work; and,
//! as `overhead-floor`, the same over bare integers, where the work per
//! record is a few instructions and what remains is Brook's own cost.

mod workload;

use std::sync::{Arc, Mutex};

use brook::core::Job;
use brook::prelude::CancellationToken;
use criterion::measurement::WallTime;
use criterion::{
    BatchSize, BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main,
};
use tokio::runtime::Runtime;

use workload::{dataflow, hand_loop, trivial_dataflow, trivial_loop};

const N: u64 = 1_000_000;

// Both sides allocate through the same allocator; Brook's binaries use it too.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benches one run of a job per iteration (built outside the timing), and
/// checks that it computed `expected` into the shared result.
fn bench_job<R: Default + PartialEq + std::fmt::Debug>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    rt: &Runtime,
    expected: &R,
    make: impl Fn(Arc<Mutex<R>>) -> Job,
) {
    g.bench_function(name, |b| {
        b.iter_batched(
            || {
                let result = Arc::new(Mutex::new(R::default()));
                (make(result.clone()), result)
            },
            |(job, result)| {
                rt.block_on(job.run(CancellationToken::new())).expect("run");
                assert_eq!(*result.lock().expect("result"), *expected);
            },
            BatchSize::PerIteration,
        )
    });
}

fn one_core() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

fn pipeline(c: &mut Criterion) {
    let expected = hand_loop(N);
    let mut g = c.benchmark_group("source-map-filter-sink");
    g.throughput(Throughput::Elements(N));
    g.sample_size(20);
    g.bench_function("hand-written loop", |b| {
        b.iter(|| std::hint::black_box(hand_loop(N)))
    });
    // Chained, on a single-threaded runtime: one core, as the loop has.
    bench_job(&mut g, "brook chained p=1", &one_core(), &expected, |t| {
        dataflow(N, true, t)
    });
    // Unchained, on two workers: every node is its own task.
    let two_cores = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    bench_job(&mut g, "brook unchained p=1", &two_cores, &expected, |t| {
        dataflow(N, false, t)
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
    bench_job(&mut g, "brook chained p=1", &one_core(), &expected, |s| {
        trivial_dataflow(n, s)
    });
    g.finish();
}

criterion_group!(benches, pipeline, overhead_floor);
criterion_main!(benches);
