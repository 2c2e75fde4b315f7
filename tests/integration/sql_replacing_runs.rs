//! SQL over a sink that replaces its output when a run succeeds: a query
//! sees one whole run at a time, never a run being written or two at once,
//! and never Parquet files the run did not record.

use std::path::Path;

use brook::parquet::ParquetSink;
use brook::prelude::*;
use brook::sql::SqlEngine;
use futures::StreamExt as _;
use serde::{Deserialize, Serialize};

use crate::support::block_on;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Row {
    n: u64,
}

/// Rows `from..to` in one batch, then, once `gate` opens, rows `to..end`.
struct Gated {
    first: std::ops::Range<u64>,
    rest: std::ops::Range<u64>,
    gate: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Source<Row> for Gated {
    type Split = InstanceSplit;

    fn plan(&mut self, ctx: &PlanContext) -> Result<Vec<InstanceSplit>> {
        Ok(InstanceSplit::per_instance(ctx))
    }

    fn open(&mut self, _: &SourceContext, _: Vec<InstanceSplit>) -> Result<BoxedSourceStream<Row>> {
        let batch = |r: std::ops::Range<u64>| -> Batch<Row> {
            r.map(|n| Record::untimed(Row { n })).collect()
        };
        let (first, rest, gate) = (
            batch(self.first.clone()),
            batch(self.rest.clone()),
            self.gate.take(),
        );
        let later = futures::stream::once(async move {
            if let Some(gate) = gate {
                let _ = gate.await;
            }
            Ok(SourceEvent::Batch(rest))
        });
        Ok(futures::stream::iter([Ok(SourceEvent::Batch(first))])
            .chain(later)
            .boxed())
    }

    fn max_parallelism(&self) -> Option<usize> {
        Some(1)
    }
}

/// `count(*)` and `sum(n)` of the table, as SQL reads it now.
async fn totals(engine: &SqlEngine) -> (i64, i64) {
    let out = engine
        .query("SELECT count(*) AS c, CAST(sum(n) AS BIGINT) AS s FROM t")
        .await
        .expect("query");
    let csv = out.format(brook::sql::OutputFormat::Csv).expect("csv");
    let line = csv.lines().nth(1).expect("a row").to_string();
    let (c, s) = line.split_once(',').expect("two columns");
    (c.parse().expect("count"), s.parse().unwrap_or(0))
}

fn hidden_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .expect("list")
        .filter(|e| {
            let name = e.as_ref().expect("entry").file_name();
            name.to_string_lossy().ends_with(".inprogress")
        })
        .count()
}

#[test]
fn sql_sees_one_whole_run_of_a_replacing_sink_at_a_time() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("t");
    let sink = || {
        ParquetSink::<Row>::new(&out)
            .max_rows_per_file(100)
            .replace_on_success()
    };
    let job = |first, rest, gate| {
        let flow = Dataflow::new("replacing");
        flow.source("rows", Gated { first, rest, gate })
            .sink("parquet", sink());
        flow.build().expect("plan")
    };
    block_on(job(0..500, 500..1000, None).run(CancellationToken::new())).expect("first run");
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        engine.register_parquet("t", &out).await.expect("register");
        let first = (1000, (0..1000).sum::<u64>() as i64);
        assert_eq!(totals(&engine).await, first);

        // A Parquet file the run did not record (another tool's, or a
        // copy) is not read.
        let some = std::fs::read_dir(&out)
            .expect("list")
            .map(|e| e.expect("entry").path())
            .find(|p| p.extension().is_some_and(|x| x == "parquet"))
            .expect("a parquet file");
        std::fs::copy(&some, out.join("part-00000-foreign.parquet")).expect("copy");
        assert_eq!(totals(&engine).await, first);

        // A second run, held half-way with files already finished: SQL
        // still sees the first run, whole.
        let (open, gate) = tokio::sync::oneshot::channel();
        let running = job(10_000..10_300, 10_300..10_450, Some(gate))
            .start(CancellationToken::new())
            .expect("start");
        while hidden_files(&out) < 3 {
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        assert_eq!(totals(&engine).await, first);
        let _ = open.send(());
        running.wait().await.expect("second run");
        // Then the second run, whole, and only it.
        assert_eq!(
            totals(&engine).await,
            (450, (10_000..10_450).sum::<u64>() as i64)
        );
        assert!(
            out.join("part-00000-foreign.parquet").exists(),
            "not Brook's: never removed"
        );
    });
}
