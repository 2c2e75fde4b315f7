//! The log-analysis job on Kafka: log events from a topic → the
//! logs-window query of `benches/workload/README.md` → window results as
//! Parquet files in a directory (as `log_analysis` writes them), and alerts
//! (windows whose count of 5xx responses reaches a threshold) to a topic.
//!
//! Event times and watermarks come from the source, per partition (2 s of
//! bounded out-of-orderness), so a partition read ahead of another never
//! makes the other's records late.
//!
//! Against the local broker of `scripts/kafka-broker.sh`:
//!
//! ```text
//! scripts/kafka-broker.sh install && scripts/kafka-broker.sh start
//! scripts/kafka-broker.sh create-topic logs 4
//! scripts/kafka-broker.sh create-topic alerts 1
//! cargo run --release -p brook-workload -- gen-logs --events 200000 --seed 1 --out /tmp/logs.jsonl
//! python3 scripts/kafka-feed.py /tmp/logs.jsonl logs          # needs scripts/setup.sh --python
//! cargo run --release --features kafka --example kafka_logs -- --brokers 127.0.0.1:9092 --topic logs \
//!     --out /tmp/stats --bounded --alerts-topic alerts
//! cargo run --release -p brook-workload -- check --input /tmp/logs.jsonl --out /tmp/stats
//! scripts/kafka-broker.sh stop
//! ```
//!
//! Without `--bounded` the job runs until Ctrl-C, which fires the open
//! windows and writes them. Meanwhile Parquet files are published as they
//! roll (at most a minute apart), so `brook sql` can query the directory
//! while the job runs.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use brook::job::JobArgs;
use brook::kafka::{
    Delivery, KafkaSink, KafkaSinkConfig, KafkaSource, KafkaSourceConfig, StartPosition,
};
use brook::prelude::*;
use brook_workload::logs::{self, LogEvent, WindowStats};
use clap::Parser;

/// Runs the logs-window query over a Kafka topic.
#[derive(Parser, Debug)]
#[command(about)]
struct Args {
    /// Bootstrap brokers, `host:port[,host:port...]`.
    #[arg(long)]
    brokers: String,
    /// The topic of JSON log lines.
    #[arg(long)]
    topic: String,
    /// Directory for the window results (Parquet files, as `log_analysis`
    /// writes them; published as they roll, at most a minute apart).
    #[arg(long, default_value = "brook-out/kafka-stats")]
    out: PathBuf,
    /// Stop at the end offsets seen at start, instead of running until Ctrl-C.
    #[arg(long)]
    bounded: bool,
    /// Topic for alerts: windows whose 5xx count reaches `--alert-5xx`.
    #[arg(long)]
    alerts_topic: Option<String>,
    /// The 5xx count in one window of one service and level that alerts.
    #[arg(long, default_value_t = 10)]
    alert_5xx: u64,
    /// The consumer group (for its committed offsets).
    #[arg(long, default_value = "brook-kafka-logs")]
    group: String,
    /// The standard job flags: parallelism, checkpoints (which make the
    /// alerts exactly once), the admin server (on 127.0.0.1:8686 by
    /// default), logging.
    #[command(flatten)]
    job: JobArgs,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    args.job.init_logging()?;
    let config = args.job.config();

    let mut source_config = KafkaSourceConfig::new(&args.brokers, &[&args.topic], &args.group);
    source_config.start = StartPosition::Earliest;
    source_config.bounded = args.bounded;
    source_config.startup_timeout = Some(Duration::from_secs(30));
    let source = KafkaSource::<LogEvent>::json(source_config)?
        .event_time(|e| e.ts)
        .watermarks(Watermarks::bounded(logs::MAX_OUT_OF_ORDERNESS));

    let mut flow = Dataflow::with_config("kafka-logs", config);
    args.job.configure(&mut flow)?;
    let events = flow.source("logs", source);
    let stats = logs::window_stats_timed(&events);
    stats.sink("parquet", ParquetSink::<WindowStats>::new(&args.out));
    if let Some(topic) = &args.alerts_topic {
        let threshold = args.alert_5xx;
        // With checkpoints, each checkpoint's alerts are one transaction:
        // exactly once for read_committed consumers.
        let delivery = if args.job.checkpoint_dir.is_some() {
            Delivery::ExactlyOnce
        } else {
            Delivery::AtLeastOnce
        };
        let mut sink_config = KafkaSinkConfig::new(&args.brokers, topic);
        sink_config.delivery = delivery;
        let sink = KafkaSink::<WindowStats>::json(sink_config)?
            .key(|w| Some(w.service.clone().into_bytes()));
        stats
            .filter("alerts", move |w| w.count_5xx >= threshold)
            .sink("alerts-out", sink);
    }
    let job = flow.build()?;
    println!("{}", job.describe());

    let started = Instant::now();
    let metrics = job.metrics();
    // Ctrl-C or SIGTERM stops reading (with checkpoints, at a stop
    // checkpoint); the admin server serves the output as the table stats.
    let outcome = args
        .job
        .run_serving(job, vec![("stats".to_string(), args.out.clone())])
        .await
        .with_context(|| format!("running the job on topic {}", args.topic))?;
    if outcome == brook::RunOutcome::Aborted {
        eprintln!("Aborted: files in progress were left unpublished.");
        std::process::exit(outcome.exit_code());
    }

    let elapsed = started.elapsed().as_secs_f64();
    let snapshot = metrics.snapshot();
    let count = |node: &str, f: fn(&brook::core::Counters) -> u64| {
        snapshot.node(node).map_or(0, |n| f(&n.total))
    };
    let read = count("logs", |c| c.records_out);
    println!(
        "read {read} events in {elapsed:.2} s ({:.2} M events/s); wrote {} window rows to {}; \
         {} alerts; {} late, {} bad messages dropped",
        read as f64 / elapsed / 1e6,
        count("parquet", |c| c.records_in),
        args.out.display(),
        count("alerts-out", |c| c.records_in),
        count("stats", |c| c.late),
        count("logs", |c| c.dropped),
    );
    Ok(())
}
