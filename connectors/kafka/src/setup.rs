//! Planning a source, once, when the dataflow is built ([`plan`]): check
//! the consumer's options, wait for the brokers and list the partitions.
//! Starting one source instance, on a blocking thread ([`start`]): create
//! the consumer, wait for the brokers, resolve where each of the
//! instance's partitions starts (and, when bounded, where ListOffsets says
//! it ends: a lower bound the first fetch confirms, see
//! [`ends`](super::ends)), and assign them.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use brook_core::{Error, Result, RetryHint};
use rdkafka::ClientConfig;
use rdkafka::Offset;
use rdkafka::config::FromClientConfigAndContext;
use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::metadata::Metadata;
use rdkafka::topic_partition_list::TopicPartitionList;

use crate::client::{BrookContext, kafka_error};
use crate::config::{KafkaSourceConfig, OffsetReset, StartPosition};
use crate::ends::{End, FetchedHighs, STATS_INTERVAL};
use crate::source::KafkaSplit;

/// The consumer of one source instance.
pub(crate) type SourceConsumer = StreamConsumer<BrookContext>;

/// How long one metadata request may wait for the brokers.
const ATTEMPT: Duration = Duration::from_secs(5);
/// The least time between two attempts to reach the brokers, so that
/// brokers that refuse at once are not asked in a busy loop.
const MIN_RETRY: Duration = Duration::from_secs(1);
/// How long other requests of the setup (offsets, watermarks) may take.
const REQUEST: Duration = Duration::from_secs(30);

/// One partition an instance reads.
#[derive(Debug, Clone)]
pub(crate) struct Assigned {
    pub(crate) topic: Arc<str>,
    pub(crate) partition: i32,
    /// The first offset to read, when known (for bounded mode).
    pub(crate) start: Option<i64>,
    /// In bounded mode, where the partition ends.
    pub(crate) end: Option<End>,
}

/// A started instance: its consumer and partitions, assigned.
pub(crate) struct Started {
    pub(crate) consumer: Arc<SourceConsumer>,
    pub(crate) parts: Vec<Assigned>,
    /// In bounded mode, the fetched high watermarks that confirm the ends.
    pub(crate) fetched: Option<Arc<FetchedHighs>>,
}

/// The librdkafka config of a source instance's consumer.
pub(crate) fn consumer_config(cfg: &KafkaSourceConfig, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("client.id", client_id);
    cfg.librdkafka_options.apply(&mut c);
    let reset = match cfg.start {
        StartPosition::Latest
        | StartPosition::Committed {
            fallback: OffsetReset::Latest,
        } => "latest",
        _ => "earliest",
    };
    c.set("bootstrap.servers", cfg.bootstrap_servers.trim())
        .set("group.id", cfg.group_id.trim())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set(
            "enable.partition.eof",
            if cfg.bounded { "true" } else { "false" },
        )
        .set("auto.offset.reset", reset)
        .set(
            "queued.max.messages.kbytes",
            (cfg.max_buffered_bytes / 1024).max(1).to_string(),
        );
    if cfg.bounded {
        // The statistics report the fetched high watermarks that confirm
        // the ends; this overrides a value among the options.
        c.set(
            "statistics.interval.ms",
            STATS_INTERVAL.as_millis().to_string(),
        );
    } else if c.get("statistics.interval.ms").is_none() {
        // Each partition's consumer lag, for the job's metrics.
        c.set(
            "statistics.interval.ms",
            LAG_INTERVAL.as_millis().to_string(),
        );
    }
    c
}

/// How often an unbounded source's consumer reports its partitions' lag,
/// unless its options say otherwise.
const LAG_INTERVAL: Duration = Duration::from_secs(1);

/// Plans a source: creates a client with the consumer config its
/// instances use (so librdkafka refuses a bad option here), waits for the
/// brokers within the startup timeout (forever without one), and lists the
/// partitions of the configured topics, sorted by topic and number.
pub(crate) fn plan(
    cfg: &KafkaSourceConfig,
    client_id: &str,
    node: &str,
) -> Result<Vec<(String, i32)>> {
    let what = format!("kafka source '{node}'");
    let context = if cfg.bounded {
        // The config asks for statistics, for the instances' ends; this
        // client has no use for them.
        let ignored = Arc::new(FetchedHighs::new());
        ignored.stop();
        BrookContext::with_fetched_highs(node, ignored)
    } else {
        BrookContext::new(node)
    };
    let client: BaseConsumer<BrookContext> =
        BaseConsumer::from_config_and_context(&consumer_config(cfg, client_id), context)
            .map_err(|e| kafka_error(format!("{what}: creating the consumer"), e))?;
    let one_topic = match (cfg.topics.as_slice(), &cfg.topic_pattern) {
        ([only], None) => Some(only.as_str()),
        _ => None,
    };
    // Serves the client's queued events (errors, statistics) while it
    // waits, so they do not pile up; the client is never assigned anything.
    let serve = || {
        for _ in 0..1_000 {
            if client.poll(Duration::ZERO).is_none() {
                break;
            }
        }
    };
    let metadata = connect(
        &client,
        cfg,
        one_topic,
        &what,
        &AtomicBool::new(false),
        serve,
    )?;
    let partitions = list_partitions(&metadata, cfg, &what)?;
    tracing::info!(
        node,
        partitions = partitions.len(),
        "Kafka source listed its partitions."
    );
    Ok(partitions)
}

/// Starts instance `instance` of a source, to read `splits`. `abandoned`
/// is set when the stream is dropped, to stop waiting for the brokers.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start(
    cfg: &KafkaSourceConfig,
    client_id: &str,
    node: &str,
    instance: usize,
    splits: &[KafkaSplit],
    abandoned: &AtomicBool,
    metrics: Arc<brook_core::NodeMetrics>,
) -> Result<Started> {
    let what = format!("kafka source '{node}'");
    let fetched = cfg.bounded.then(|| Arc::new(FetchedHighs::new()));
    let context = match &fetched {
        Some(f) => BrookContext::with_fetched_highs(node, f.clone()),
        None => BrookContext::new(node),
    }
    .with_lag(metrics);
    let consumer =
        SourceConsumer::from_config_and_context(&consumer_config(cfg, client_id), context)
            .map_err(|e| kafka_error(format!("{what}: creating the consumer"), e))?;
    let mut parts: Vec<Assigned> = splits
        .iter()
        .map(|s| Assigned {
            topic: s.topic_arc(),
            partition: s.partition(),
            start: None,
            end: None,
        })
        .collect();
    if let Some(first) = parts.first() {
        // Nothing below needs the brokers when there is nothing to read.
        let topic = first.topic.clone();
        connect(&consumer, cfg, Some(&*topic), &what, abandoned, || ())?;
    }
    let mut offsets = start_offsets(&consumer, cfg, &parts, &what)?;
    // A checkpoint's offsets win over the configured start.
    for (offset, split) in offsets.iter_mut().zip(splits) {
        if let Some(at) = split.resumed() {
            *offset = Offset::Offset(at);
        }
    }
    if cfg.bounded {
        for (p, start) in parts.iter_mut().zip(&offsets) {
            let (low, high) = consumer
                .fetch_watermarks(&p.topic, p.partition, REQUEST)
                .map_err(|e| {
                    kafka_error(
                        format!(
                            "{what}: reading the end offset of {}/{}",
                            p.topic, p.partition
                        ),
                        e,
                    )
                })?;
            let (first, end) = match start {
                Offset::Beginning => (low, End::listed(high)),
                // Starting at the end, there is nothing to read.
                Offset::End => (high, End::at_start(high)),
                Offset::Offset(n) => ((*n).max(low), End::listed(high)),
                _ => (low, End::listed(high)),
            };
            p.start = Some(first);
            p.end = Some(end);
        }
    }
    let mut tpl = TopicPartitionList::new();
    for (p, offset) in parts.iter().zip(offsets) {
        tpl.add_partition_offset(&p.topic, p.partition, offset)
            .map_err(|e| {
                kafka_error(format!("{what}: assigning {}/{}", p.topic, p.partition), e)
            })?;
    }
    consumer
        .assign(&tpl)
        .map_err(|e| kafka_error(format!("{what}: assigning partitions"), e))?;
    tracing::info!(
        node,
        instance,
        partitions = %parts.iter().map(|p| format!("{}/{}", p.topic, p.partition)).collect::<Vec<_>>().join(","),
        "Kafka source instance assigned its partitions."
    );
    Ok(Started {
        consumer: Arc::new(consumer),
        parts,
        fetched,
    })
}

/// Waits for the brokers to answer a metadata request (for `topic`, or for
/// every topic), within the startup timeout, or forever when there is
/// none, calling `serve` after each failed attempt.
fn connect<C: Consumer<BrookContext>>(
    consumer: &C,
    cfg: &KafkaSourceConfig,
    topic: Option<&str>,
    what: &str,
    abandoned: &AtomicBool,
    serve: impl Fn(),
) -> Result<Metadata> {
    let started = Instant::now();
    let mut attempts = 0u32;
    loop {
        let left = cfg
            .startup_timeout
            .map(|t| t.saturating_sub(started.elapsed()));
        let wait = left.map_or(ATTEMPT, |l| l.min(ATTEMPT));
        let attempt = Instant::now();
        attempts += 1;
        match consumer.fetch_metadata(topic, wait) {
            Ok(m) => return Ok(m),
            Err(e) => {
                serve();
                let last = consumer.context().last_error();
                let why = last.map_or_else(|| e.to_string(), |l| format!("{e}; last error: {l}"));
                if abandoned.load(Relaxed) {
                    return Err(Error::Internal(format!("{what}: stopped while starting")));
                }
                if left.is_some_and(|l| l <= wait) {
                    return Err(Error::External {
                        source: format!(
                            "{what}: the Kafka brokers at '{}' did not answer within {:?} \
                             ({attempts} attempts): {why}",
                            cfg.bootstrap_servers,
                            started.elapsed()
                        )
                        .into(),
                        retry: RetryHint::Retriable,
                    });
                }
                tracing::warn!(
                    brokers = %cfg.bootstrap_servers,
                    attempts,
                    error = %why,
                    "Waiting for the Kafka brokers to answer."
                );
                std::thread::sleep(MIN_RETRY.saturating_sub(attempt.elapsed()));
            }
        }
    }
}

/// Every partition of the configured topics, sorted.
fn list_partitions(
    metadata: &Metadata,
    cfg: &KafkaSourceConfig,
    what: &str,
) -> Result<Vec<(String, i32)>> {
    let pattern = cfg.pattern()?;
    let mut out = Vec::new();
    let mut seen = Vec::new();
    for t in metadata.topics() {
        let wanted = match &pattern {
            Some(re) => !t.name().starts_with("__") && re.is_match(t.name()),
            None => cfg.topics.iter().any(|n| n == t.name()),
        };
        if !wanted {
            continue;
        }
        if let Some(err) = t.error() {
            return Err(Error::External {
                source: format!("{what}: topic '{}' cannot be read: {err:?}", t.name()).into(),
                retry: RetryHint::Fatal,
            });
        }
        seen.push(t.name().to_string());
        out.extend(
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id())),
        );
    }
    if pattern.is_none()
        && let Some(missing) = cfg.topics.iter().find(|n| !seen.contains(n))
    {
        return Err(Error::External {
            source: format!("{what}: topic '{missing}' does not exist on the brokers").into(),
            retry: RetryHint::Fatal,
        });
    }
    if out.is_empty() && pattern.is_some() {
        tracing::warn!(pattern = ?cfg.topic_pattern, "No topic matches the Kafka source's pattern.");
    }
    out.sort();
    out.dedup();
    Ok(out)
}

/// Where each partition starts, by the configured start position.
fn start_offsets(
    consumer: &SourceConsumer,
    cfg: &KafkaSourceConfig,
    parts: &[Assigned],
    what: &str,
) -> Result<Vec<Offset>> {
    let list = |offset: Offset| -> Result<TopicPartitionList> {
        let mut tpl = TopicPartitionList::new();
        for p in parts {
            tpl.add_partition_offset(&p.topic, p.partition, offset)
                .map_err(|e| kafka_error(what, e))?;
        }
        Ok(tpl)
    };
    if parts.is_empty() {
        return Ok(Vec::new());
    }
    let resolved = match cfg.start {
        StartPosition::Earliest => return Ok(vec![Offset::Beginning; parts.len()]),
        StartPosition::Latest => return Ok(vec![Offset::End; parts.len()]),
        StartPosition::Committed { .. } => consumer
            .committed_offsets(list(Offset::Invalid)?, REQUEST)
            .map_err(|e| {
                kafka_error(format!("{what}: reading the group's committed offsets"), e)
            })?,
        StartPosition::Timestamp(ts) => consumer
            .offsets_for_times(list(Offset::Offset(ts))?, REQUEST)
            .map_err(|e| kafka_error(format!("{what}: finding the offsets at time {ts}"), e))?,
    };
    let fallback = match cfg.start {
        StartPosition::Committed {
            fallback: OffsetReset::Latest,
        }
        | StartPosition::Timestamp(_) => Offset::End,
        _ => Offset::Beginning,
    };
    parts
        .iter()
        .map(|p| {
            let e = resolved.find_partition(&p.topic, p.partition);
            if let Some(Err(err)) = e.as_ref().map(|e| e.error()) {
                return Err(kafka_error(
                    format!("{what}: the start offset of {}/{}", p.topic, p.partition),
                    err,
                ));
            }
            Ok(match e.map(|e| e.offset()) {
                Some(Offset::Offset(n)) if n >= 0 => Offset::Offset(n),
                Some(Offset::Beginning) => Offset::Beginning,
                _ => fallback,
            })
        })
        .collect()
}
