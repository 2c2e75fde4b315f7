//! (a) Runs at parallelism 1, 2 and 4 give the same multiset of outputs as a
//! plain sequential computation, on random inputs.

use std::collections::{BTreeMap, BTreeSet};

use brook::prelude::*;
use proptest::prelude::*;

use crate::support::{block_on, config, sorted};

/// Tags each record with the instance that saw it.
#[derive(Clone, Default)]
struct TagInstance(usize);

impl Operator<i64, (i64, usize)> for TagInstance {
    fn open(&mut self, ctx: &OperatorContext) -> Result<()> {
        self.0 = ctx.instance();
        Ok(())
    }
    fn process(&mut self, batch: Batch<i64>, out: &mut Collector<(i64, usize)>) -> Result<()> {
        let me = self.0;
        out.emit_batch(batch.map(|v| (v, me)));
        Ok(())
    }
}

fn sequential(input: &[i64]) -> (Vec<i64>, Vec<i64>) {
    let main: Vec<i64> = input
        .iter()
        .map(|v| v * 3 + 1)
        .filter(|v| v % 4 != 0)
        .flat_map(|v| std::iter::repeat_n(v, (v.rem_euclid(3)) as usize))
        .collect();
    let side: Vec<i64> = input.iter().filter(|v| *v % 2 == 0).copied().collect();
    let mut all = main.clone();
    all.extend(&side);
    (all, main)
}

/// source -> map -> filter -> flat_map -> key_by -> tag -> sink, with a
/// fan-out branch unioned back in.
fn run(input: Vec<i64>, parallelism: usize, chaining: bool) -> (Vec<i64>, Vec<(i64, usize)>) {
    let mut cfg = config(parallelism);
    cfg.chaining = chaining;
    let flow = Dataflow::with_config("parallel", cfg);
    let src = flow.source("numbers", MemorySource::new(input));
    let main = src
        .map("times-3-plus-1", |v| v * 3 + 1)
        .filter("not-div-4", |v| v % 4 != 0)
        .flat_map("repeat", |v: i64| {
            std::iter::repeat_n(v, v.rem_euclid(3) as usize)
        });
    let side = src.filter("even", |v| v % 2 == 0).rebalance();
    let union = main.union("merge", &[&side]);
    let all = CollectSink::new();
    let all_h = all.handle();
    union.sink("all", all);
    let tagged = CollectSink::new();
    let tagged_h = tagged.handle();
    main.key_by(|v: &i64| *v)
        .process("tag", TagInstance::default())
        .sink("tagged", tagged);
    block_on(async {
        flow.build()
            .expect("valid plan")
            .run(CancellationToken::new())
            .await
    })
    .expect("job succeeds");
    (all_h.values(), tagged_h.values())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn parallel_runs_equal_the_sequential_computation(
        input in proptest::collection::vec(-1000i64..1000, 0..600),
        chaining in any::<bool>(),
    ) {
        let (expect_all, expect_main) = sequential(&input);
        for p in [1, 2, 4] {
            let (all, tagged) = run(input.clone(), p, chaining);
            prop_assert_eq!(sorted(all), sorted(expect_all.clone()), "parallelism {}", p);
            let values: Vec<i64> = tagged.iter().map(|(v, _)| *v).collect();
            prop_assert_eq!(sorted(values), sorted(expect_main.clone()), "parallelism {}", p);
            // key_by: every key is seen by exactly one instance.
            let mut owners: BTreeMap<i64, BTreeSet<usize>> = BTreeMap::new();
            for (v, i) in tagged {
                prop_assert!(i < p);
                owners.entry(v).or_default().insert(i);
            }
            prop_assert!(owners.values().all(|o| o.len() == 1));
        }
    }
}

#[test]
fn broadcast_gives_every_instance_every_record() {
    let flow = Dataflow::with_config("broadcast", config(3));
    let out = CollectSink::new();
    let h = out.handle();
    flow.source("numbers", MemorySource::new((0..100i64).collect()))
        .parallelism(1)
        .broadcast()
        .process("tag", TagInstance::default())
        .sink("out", out);
    block_on(async {
        flow.build()
            .expect("plan")
            .run(CancellationToken::new())
            .await
    })
    .expect("run");
    let got = h.values();
    assert_eq!(got.len(), 300);
    for i in 0..3 {
        assert_eq!(got.iter().filter(|(_, inst)| *inst == i).count(), 100);
    }
}

#[test]
fn rebalance_spreads_batches_over_instances() {
    let flow = Dataflow::with_config("rebalance", config(4));
    let out = CollectSink::new();
    let h = out.handle();
    flow.source("numbers", MemorySource::from_iterator(0..10_000i64))
        .rebalance()
        .process("tag", TagInstance::default())
        .sink("out", out);
    block_on(async {
        flow.build()
            .expect("plan")
            .run(CancellationToken::new())
            .await
    })
    .expect("run");
    let got = h.values();
    assert_eq!(
        sorted(got.iter().map(|(v, _)| *v).collect()),
        (0..10_000).collect::<Vec<_>>()
    );
    for i in 0..4 {
        assert!(
            got.iter().any(|(_, inst)| *inst == i),
            "instance {i} got nothing"
        );
    }
}
