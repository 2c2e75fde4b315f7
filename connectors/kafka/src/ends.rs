//! Where a bounded read ends: the end offset of each partition, seen at
//! start and confirmed by the first fetch.
//!
//! # Why a fetch must confirm the end
//! When an instance starts, it asks the brokers for each partition's end
//! offset (ListOffsets, "latest"). Some brokers answer that too low: tansu
//! 0.6 answers one past the first offset of the newest batch, not the high
//! watermark, while the high watermark in its Fetch responses is right.
//! Stopping at that answer silently loses the tail of every partition. So
//! the ListOffsets answer is a lower bound, and a partition is never done
//! on it alone, even one that looks empty:
//!
//! - The first time librdkafka's statistics report a high watermark
//!   fetched for the partition ([`FetchedHighs`]), that confirms the end,
//!   raised to it when it is larger. The partition is done once everything
//!   before that end is read (or a message at or past it arrives). The
//!   statistics come every [`STATS_INTERVAL`] in bounded mode only; they
//!   are rdkafka's only way, without unsafe code, to read the high
//!   watermark librdkafka keeps from Fetch responses.
//! - An end-of-partition event says the consumer reached the broker's high
//!   watermark, which is at or past the end at start: that partition is
//!   done. The event names only the partition's number, so this holds only
//!   when no other partition of the instance has that number (one topic);
//!   otherwise the statistics decide.
//!
//! A read that starts at the end (start position latest, or a fallback to
//! it) has nothing to read by definition, and is done at once: its start
//! and end are the same point, however stale. (Waiting there for a fetch
//! would hang on tansu, which answers nothing to a fetch from inside a
//! batch, where its stale answer points.)
//!
//! So on a broker that answers ListOffsets right, a bounded read ends where
//! it did before, give or take what was produced between its start and the
//! first fetch (and, on a partition still being written to, until the
//! statistics report it: at most [`STATS_INTERVAL`] later). A partition
//! with nothing to read ends after its first fetch answers, which a broker
//! may hold back for up to librdkafka's `fetch.wait.max.ms` (500 ms).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;

/// How often librdkafka reports statistics to a bounded source's consumer:
/// the longest a partition read to its end waits for its end to be
/// confirmed.
pub(crate) const STATS_INTERVAL: Duration = Duration::from_millis(100);

/// The first high watermark librdkafka's statistics reported for each
/// partition, fed by the consumer's context and read by the stream.
#[derive(Debug)]
pub(crate) struct FetchedHighs {
    /// By topic, then partition.
    highs: Mutex<HashMap<String, HashMap<i32, i64>>>,
    /// Woken when a partition's first high watermark arrives.
    news: Notify,
    /// Cleared once every partition's end is confirmed: later statistics
    /// are not even parsed.
    wanted: AtomicBool,
}

/// The part of a librdkafka statistics report (see its `STATISTICS.md`)
/// read here.
#[derive(serde::Deserialize)]
struct Report {
    #[serde(default)]
    topics: HashMap<String, TopicReport>,
}

#[derive(serde::Deserialize)]
struct TopicReport {
    #[serde(default)]
    partitions: HashMap<String, PartitionReport>,
}

#[derive(serde::Deserialize)]
struct PartitionReport {
    partition: i32,
    /// The high watermark of the last Fetch response, or a negative number
    /// before the first.
    hi_offset: i64,
    /// The offset after the last message handed to the application, or a
    /// negative number before the first.
    #[serde(default = "unknown")]
    app_offset: i64,
}

fn unknown() -> i64 {
    -1
}

/// Each partition's consumer lag in a statistics report: its high
/// watermark less the offset after the last message read, by
/// `topic/partition`, for the partitions that have both.
pub(crate) fn lags(stats: &[u8]) -> Vec<(String, i64)> {
    let Ok(report) = serde_json::from_slice::<Report>(stats) else {
        return Vec::new();
    };
    let mut lags = Vec::new();
    for (topic, t) in report.topics {
        for p in t.partitions.into_values() {
            if p.partition >= 0 && p.hi_offset >= 0 && p.app_offset >= 0 {
                lags.push((
                    format!("{topic}/{}", p.partition),
                    (p.hi_offset - p.app_offset).max(0),
                ));
            }
        }
    }
    lags
}

impl FetchedHighs {
    pub(crate) fn new() -> Self {
        FetchedHighs {
            highs: Mutex::new(HashMap::new()),
            news: Notify::new(),
            wanted: AtomicBool::new(true),
        }
    }

    /// Reads one statistics report (JSON) and keeps the first high
    /// watermark of each partition that has one.
    pub(crate) fn record(&self, stats: &[u8]) {
        if !self.wanted.load(Relaxed) {
            return;
        }
        let report: Report = match serde_json::from_slice(stats) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(error = %e, "Could not read librdkafka's statistics.");
                return;
            }
        };
        let mut new = false;
        {
            let mut highs = self.highs.lock().unwrap_or_else(PoisonError::into_inner);
            for (topic, t) in report.topics {
                for p in t.partitions.into_values() {
                    if p.partition < 0 || p.hi_offset < 0 {
                        continue;
                    }
                    let known = highs.entry(topic.clone()).or_default();
                    if let Entry::Vacant(v) = known.entry(p.partition) {
                        v.insert(p.hi_offset);
                        new = true;
                    }
                }
            }
        }
        if new {
            self.news.notify_one();
        }
    }

    /// The first high watermark reported for a partition, if any yet.
    pub(crate) fn high(&self, topic: &str, partition: i32) -> Option<i64> {
        self.highs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .and_then(|t| t.get(&partition))
            .copied()
    }

    /// Waits until a partition's first high watermark arrives (at once if
    /// one arrived since the last wait).
    ///
    /// # Cancellation
    /// Safe: a report that arrives while nobody waits is kept for the next
    /// wait.
    pub(crate) async fn changed(&self) {
        self.news.notified().await;
    }

    /// Every end is confirmed: stop reading reports.
    pub(crate) fn stop(&self) {
        self.wanted.store(false, Relaxed);
    }
}

/// The end of one partition in a bounded read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct End {
    /// The end offset: the ListOffsets answer at start, raised to the first
    /// fetched high watermark once that is known.
    pub(crate) offset: i64,
    /// Whether a fetched high watermark confirmed `offset`.
    pub(crate) confirmed: bool,
}

impl End {
    /// An end as ListOffsets answered it, not yet confirmed.
    pub(crate) fn listed(offset: i64) -> Self {
        End {
            offset,
            confirmed: false,
        }
    }

    /// The end of a read that starts at the end (offset `offset`, however
    /// stale): there is nothing to read, so no fetch needs to confirm it.
    pub(crate) fn at_start(offset: i64) -> Self {
        End {
            offset,
            confirmed: true,
        }
    }

    /// Confirms the end with a fetched high watermark. Returns the previous
    /// offset when `high` raised it.
    pub(crate) fn confirm(&mut self, high: i64) -> Option<i64> {
        self.confirmed = true;
        let before = self.offset;
        self.offset = before.max(high);
        (self.offset > before).then_some(before)
    }

    /// Whether a partition whose next offset to read is `position` is read
    /// to its end.
    pub(crate) fn reached(&self, position: i64) -> bool {
        self.confirmed && position >= self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A trimmed report as librdkafka writes it: the unassigned partition
    /// -1, a partition not fetched yet, and a fetched one.
    const REPORT: &str = r#"{
        "name": "c#consumer-1", "type": "consumer", "brokers": {},
        "topics": {"logs": {"topic": "logs", "partitions": {
            "-1": {"partition": -1, "hi_offset": -1001, "lo_offset": -1001},
            "0": {"partition": 0, "hi_offset": -1001, "lo_offset": -1001},
            "1": {"partition": 1, "hi_offset": 51863, "lo_offset": 0}
        }}}
    }"#;

    #[test]
    fn the_first_fetched_high_watermark_is_kept() {
        let highs = FetchedHighs::new();
        highs.record(REPORT.as_bytes());
        assert_eq!(highs.high("logs", 1), Some(51863));
        assert_eq!(highs.high("logs", 0), None, "not fetched yet");
        assert_eq!(highs.high("logs", -1), None);
        assert_eq!(highs.high("other", 1), None);
        // A later report does not move it.
        highs.record(REPORT.replace("51863", "60000").as_bytes());
        assert_eq!(highs.high("logs", 1), Some(51863));
        // Nor does anything once stopped; garbage is ignored.
        highs.stop();
        highs.record(REPORT.replace("-1001, \"lo", "7, \"lo").as_bytes());
        assert_eq!(highs.high("logs", 0), None);
        highs.record(b"not json");
    }

    #[test]
    fn news_is_kept_until_someone_waits() {
        let highs = FetchedHighs::new();
        highs.record(REPORT.as_bytes());
        let waited = futures::FutureExt::now_or_never(highs.changed());
        assert!(waited.is_some(), "the arrival before the wait counts");
        assert!(futures::FutureExt::now_or_never(highs.changed()).is_none());
    }

    #[test]
    fn an_end_is_reached_only_once_confirmed() {
        // ListOffsets said 51702; the fetch says 51863.
        let mut end = End::listed(51_702);
        assert!(!end.reached(51_702), "the answer alone is not enough");
        assert_eq!(end.confirm(51_863), Some(51_702));
        assert!(!end.reached(51_702));
        assert!(end.reached(51_863));
        // A fetched watermark below the answer keeps the answer.
        let mut end = End::listed(10);
        assert_eq!(end.confirm(4), None);
        assert!(end.reached(10) && !end.reached(9));
        // An empty partition is done once confirmed.
        let mut end = End::listed(0);
        end.confirm(0);
        assert!(end.reached(0));
        // A read that starts at the end is done at once.
        assert!(End::at_start(7).reached(7));
    }
}
