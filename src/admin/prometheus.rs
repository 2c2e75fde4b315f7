//! `/metrics`: a job's metrics in the Prometheus text format, through a
//! registry of the job's own (no process-global recorder), whose collector
//! reads the job's counters at each scrape.

use std::sync::{Arc, RwLock};

use brook_core::metrics::{Counters, JobMetrics};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use super::status::JobStatus;

/// A job's registry: counters read from the job at each scrape, rates
/// from the newest status the sampler computed.
pub(crate) fn registry(metrics: JobMetrics, status: Arc<RwLock<Option<JobStatus>>>) -> Registry {
    let mut registry = Registry::with_prefix("brook");
    registry.register_collector(Box::new(JobCollector { metrics, status }));
    registry
}

/// Encodes `registry` as Prometheus text.
pub(crate) fn encode(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, registry)?;
    Ok(out)
}

#[derive(Debug)]
struct JobCollector {
    metrics: JobMetrics,
    status: Arc<RwLock<Option<JobStatus>>>,
}

type Labels = Vec<(&'static str, String)>;

/// One metric family: a name, its help, its type and one value per label
/// set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: impl IntoIterator<Item = (Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in values {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for JobCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = self.metrics.snapshot();
        let mut instances: Vec<(Labels, Counters)> = Vec::new();
        for n in &snap.nodes {
            for (i, c) in n.instances.iter().enumerate() {
                let labels = vec![
                    ("job", snap.job.clone()),
                    ("node", n.name.clone()),
                    ("kind", n.kind.name().to_string()),
                    ("instance", i.to_string()),
                ];
                instances.push((labels, *c));
            }
        }
        let counter = |f: fn(&Counters) -> u64| {
            instances
                .iter()
                .map(move |(l, c)| (l.clone(), ConstCounter::new(f(c))))
        };
        let e = &mut encoder;
        family(
            e,
            "node_records_in",
            "Records received.",
            MetricType::Counter,
            counter(|c| c.records_in),
        )?;
        family(
            e,
            "node_records_out",
            "Records emitted.",
            MetricType::Counter,
            counter(|c| c.records_out),
        )?;
        family(
            e,
            "node_late_records",
            "Records past their windows' allowed lateness.",
            MetricType::Counter,
            counter(|c| c.late),
        )?;
        family(
            e,
            "node_dropped_records",
            "Records dropped by a policy.",
            MetricType::Counter,
            counter(|c| c.dropped),
        )?;
        family(
            e,
            "node_dead_lettered_records",
            "Records sent to a dead-letter sink.",
            MetricType::Counter,
            counter(|c| c.dead_lettered),
        )?;
        family(
            e,
            "node_rejected_records",
            "Records refused for their event time.",
            MetricType::Counter,
            counter(|c| c.rejected),
        )?;
        let seconds = |f: fn(&Counters) -> f64| {
            instances
                .iter()
                .map(move |(l, c)| (l.clone(), ConstCounter::new(f(c))))
        };
        family(
            e,
            "node_busy_seconds",
            "Time spent in the node's own code.",
            MetricType::Counter,
            seconds(|c| c.busy.as_secs_f64()),
        )?;
        family(
            e,
            "node_backpressure_seconds",
            "Time blocked on a full downstream channel.",
            MetricType::Counter,
            seconds(|c| c.blocked.as_secs_f64()),
        )?;
        let gauge = instances
            .iter()
            .map(|(l, c)| (l.clone(), ConstGauge::new(c.queue_len as i64)));
        family(
            e,
            "node_queue_length",
            "Messages waiting in the input channel (chain heads).",
            MetricType::Gauge,
            gauge,
        )?;
        let watermarks = instances
            .iter()
            .filter(|(_, c)| c.watermark != i64::MIN)
            .map(|(l, c)| (l.clone(), ConstGauge::new(c.watermark)));
        family(
            e,
            "node_watermark_milliseconds",
            "The newest watermark, in milliseconds since the epoch.",
            MetricType::Gauge,
            watermarks,
        )?;
        let now = brook_core::time::now_ms();
        let lags = instances
            .iter()
            .filter(|(_, c)| c.watermark != i64::MIN && c.watermark != i64::MAX)
            .map(|(l, c)| (l.clone(), ConstGauge::new(now.saturating_sub(c.watermark))));
        family(
            e,
            "node_watermark_lag_milliseconds",
            "How far the watermark is behind the wall clock.",
            MetricType::Gauge,
            lags,
        )?;

        let backlog = snap.nodes.iter().flat_map(|n| {
            n.backlog.iter().map(|(split, records)| {
                let labels: Labels = vec![
                    ("job", snap.job.clone()),
                    ("node", n.name.clone()),
                    ("split", split.clone()),
                ];
                (labels, ConstGauge::new(*records))
            })
        });
        family(
            e,
            "source_backlog_records",
            "Records of a source split not yet read (a Kafka partition's consumer lag).",
            MetricType::Gauge,
            backlog,
        )?;

        // Rates over the sampler's last interval.
        let status = self
            .status
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(s) = &status {
            let per_instance = |f: fn(&super::status::InstanceStatus) -> Option<f64>| {
                s.nodes.iter().flat_map(move |n| {
                    n.instances.iter().filter_map(move |i| {
                        let labels: Labels = vec![
                            ("job", s.job.clone()),
                            ("node", n.name.clone()),
                            ("kind", n.kind.to_string()),
                            ("instance", i.instance.to_string()),
                        ];
                        f(i).map(|v| (labels, ConstGauge::new(v)))
                    })
                })
            };
            family(
                e,
                "node_arrival_rate",
                "lambda: records per second into the instance (a source: out), over the last interval.",
                MetricType::Gauge,
                per_instance(|i| Some(i.lambda)),
            )?;
            family(
                e,
                "node_service_rate",
                "mu: records per busy second, over the last interval.",
                MetricType::Gauge,
                per_instance(|i| i.mu),
            )?;
            family(
                e,
                "node_utilisation",
                "rho = lambda / mu: the share of the last interval spent in the node's code.",
                MetricType::Gauge,
                per_instance(|i| Some(i.rho)),
            )?;
            if let Some(a) = &s.advice {
                let labels: Labels = vec![("job", s.job.clone()), ("node", a.node.clone())];
                family(
                    e,
                    "bottleneck_utilisation",
                    "The busiest task's utilisation, named by its busiest node.",
                    MetricType::Gauge,
                    [(labels.clone(), ConstGauge::new(a.rho))],
                )?;
                family(
                    e,
                    "bottleneck_suggested_parallelism",
                    "The parallelism that would bring the bottleneck under 0.7.",
                    MetricType::Gauge,
                    [(labels, ConstGauge::new(a.suggested_parallelism as i64))],
                )?;
            }
        }
        let job: Labels = vec![("job", snap.job.clone())];
        let c = &snap.checkpoints;
        family(
            e,
            "checkpoints_completed",
            "Checkpoints completed.",
            MetricType::Counter,
            [(job.clone(), ConstCounter::new(c.completed))],
        )?;
        family(
            e,
            "checkpoints_failed",
            "Checkpoints that failed.",
            MetricType::Counter,
            [(job.clone(), ConstCounter::new(c.failed))],
        )?;
        if c.last_id.is_some() {
            family(
                e,
                "checkpoint_duration_seconds",
                "How long the newest checkpoint took.",
                MetricType::Gauge,
                [(job.clone(), ConstGauge::new(c.last_duration.as_secs_f64()))],
            )?;
            family(
                e,
                "checkpoint_size_bytes",
                "The newest checkpoint's state size.",
                MetricType::Gauge,
                [(job, ConstGauge::new(c.last_bytes as i64))],
            )?;
        }
        Ok(())
    }
}
