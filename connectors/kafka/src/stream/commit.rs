//! How a source instance commits offsets to its consumer group: on the
//! commit interval, at a completed checkpoint, and at the end of a bounded
//! read (see the parent module's "Commits").

use std::time::Instant;

use brook_core::TaskContext;
use brook_core::time::now_ms;
use rdkafka::consumer::{CommitMode, Consumer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use super::Running;
use crate::config::KafkaSourceConfig;

impl Running {
    /// When offsets are left to commit, the time to commit them.
    pub(super) fn commit_deadline(&self, cfg: &KafkaSourceConfig) -> Option<i64> {
        let dirty = self
            .parts
            .iter()
            .any(|p| p.next.is_some() && p.next != p.committed);
        dirty.then(|| {
            let since = i64::try_from(self.last_commit.elapsed().as_millis()).unwrap_or(i64::MAX);
            let interval = i64::try_from(cfg.commit_interval.as_millis()).unwrap_or(i64::MAX);
            now_ms().saturating_add(interval.saturating_sub(since).max(0))
        })
    }

    /// The offsets consumed and not yet committed (all consumed ones after a
    /// failed commit).
    fn uncommitted(&self, all: bool) -> TopicPartitionList {
        let mut tpl = TopicPartitionList::new();
        for p in &self.parts {
            if let Some(n) = p.next
                && (all || p.committed != Some(n))
            {
                // Cannot fail for a valid offset.
                let _ = tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(n));
            }
        }
        tpl
    }

    /// Commits asynchronously what was consumed, if the interval has passed
    /// (or `force`).
    pub(super) fn commit(&mut self, cfg: &KafkaSourceConfig, force: bool) {
        let failed = self.consumer.context().take_commit_failed();
        if !force && !failed && self.last_commit.elapsed() < cfg.commit_interval {
            return;
        }
        let tpl = self.uncommitted(failed);
        if tpl.count() == 0 {
            return;
        }
        self.last_commit = Instant::now();
        match self.consumer.commit(&tpl, CommitMode::Async) {
            Ok(()) => self.mark_committed(),
            Err(e) => {
                tracing::warn!(error = %e, "Could not commit offsets; they are sent again with the next commit.")
            }
        }
    }

    /// Commits asynchronously the offsets a completed checkpoint holds
    /// (one per partition, in split order; a partition nothing was read
    /// from has none).
    pub(super) fn commit_checkpointed(&mut self, offsets: &[i64]) {
        let mut tpl = TopicPartitionList::new();
        for (p, &offset) in self.parts.iter_mut().zip(offsets) {
            if offset < 0 || p.committed == Some(offset) {
                continue;
            }
            // Cannot fail for a valid offset.
            let _ = tpl.add_partition_offset(&p.topic, p.partition, Offset::Offset(offset));
            p.committed = Some(offset);
        }
        if tpl.count() == 0 {
            return;
        }
        if let Err(e) = self.consumer.commit(&tpl, CommitMode::Async) {
            tracing::warn!(error = %e, "Could not commit a checkpoint's offsets to the group; the next checkpoint's go instead.");
        }
    }

    fn mark_committed(&mut self) {
        for p in &mut self.parts {
            p.committed = p.next;
        }
    }

    /// At the end of a bounded read: commits synchronously. A failure is
    /// logged, not raised: every record was delivered, and a restart reads
    /// the uncommitted ones again (at least once).
    pub(super) async fn final_commit(&mut self, ctx: &TaskContext) {
        let tpl = self.uncommitted(true);
        if tpl.count() == 0 {
            return;
        }
        let consumer = self.consumer.clone();
        let r = tokio::task::spawn_blocking(move || consumer.commit(&tpl, CommitMode::Sync)).await;
        match r {
            Ok(Ok(())) => self.mark_committed(),
            Ok(Err(e)) => tracing::warn!(
                node = ctx.node_name(),
                error = %e,
                "Could not commit the final offsets of a bounded read; a restart reads the last records again."
            ),
            Err(e) => tracing::warn!(
                node = ctx.node_name(),
                error = %e,
                "Could not commit the final offsets of a bounded read; a restart reads the last records again."
            ),
        }
    }
}
