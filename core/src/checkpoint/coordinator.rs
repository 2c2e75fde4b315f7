//! The checkpoint coordinator: triggers numbered checkpoints at the
//! sources, collects every node instance's acknowledgement, and completes
//! a checkpoint by writing its state and manifest and telling the sinks to
//! commit.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use crate::checkpoint::manifest::{Manifest, NodeState, StateFile, VERSION};
use crate::checkpoint::storage::Storage;
use crate::error::{Error, Result};
use crate::message::CheckpointId;
use crate::metrics::NodeKind;
use crate::runtime::erased::ErasedSink;
use crate::time::now_ms;

/// What one node instance reports for a checkpoint.
#[derive(Debug)]
pub(crate) enum AckState {
    /// A source's position in each of its splits, by split id.
    Source(Vec<(String, serde_json::Value)>),
    /// An operator's snapshot, if it has state.
    Operator(Option<Vec<u8>>),
    /// What a sink pre-committed (files to publish when the checkpoint
    /// completes), if anything.
    Sink(Option<Vec<u8>>),
}

/// One node instance's acknowledgement of a checkpoint.
#[derive(Debug)]
pub(crate) struct Ack {
    pub(crate) id: CheckpointId,
    pub(crate) node: Arc<str>,
    pub(crate) instance: usize,
    pub(crate) state: AckState,
}

/// How a node instance acknowledges checkpoints.
#[derive(Debug, Clone)]
pub(crate) struct Acker {
    tx: mpsc::UnboundedSender<Ack>,
}

impl Acker {
    /// Reports this node instance's part of checkpoint `id`. A coordinator
    /// that is gone (the job is ending) is no error.
    pub(crate) fn ack(&self, id: CheckpointId, node: &Arc<str>, instance: usize, state: AckState) {
        let _ = self.tx.send(Ack {
            id,
            node: node.clone(),
            instance,
            state,
        });
    }
}

/// The trigger state of every source instance of a job.
#[derive(Debug, Default)]
struct TriggerState {
    /// The checkpoint each instance has yet to start, if any.
    pending: Vec<Option<CheckpointId>>,
    /// Whether each instance has read all its input, or stopped reading
    /// because the job shuts down (it still takes checkpoints, until the
    /// final or stop checkpoint).
    finished: Vec<bool>,
    /// Whether each instance stopped reading because the job shuts down.
    stopped: Vec<bool>,
}

#[derive(Debug)]
struct TriggerShared {
    state: Mutex<TriggerState>,
    /// The newest checkpoint completed (0: none yet).
    completed: std::sync::atomic::AtomicU64,
    /// Set with a pending trigger: a cheap check for the source loop.
    flags: Vec<AtomicBool>,
    wake: Vec<Notify>,
    /// Told when a source instance has read all its input.
    finished: Notify,
    /// Cancelled once the run's last checkpoint (final or stop) is
    /// committed: the source instances, all finished, may end.
    closing: CancellationToken,
    /// Cancelled once the job's final checkpoint is committed: its output
    /// is complete.
    final_done: CancellationToken,
}

/// Where the coordinator triggers checkpoints, shared with every source
/// instance.
#[derive(Debug, Clone)]
pub(crate) struct Triggers(Arc<TriggerShared>);

impl Triggers {
    /// Triggers for `n` source instances.
    pub(crate) fn new(n: usize) -> Self {
        Triggers(Arc::new(TriggerShared {
            state: Mutex::new(TriggerState {
                pending: vec![None; n],
                finished: vec![false; n],
                stopped: vec![false; n],
            }),
            completed: std::sync::atomic::AtomicU64::new(0),
            flags: (0..n).map(|_| AtomicBool::new(false)).collect(),
            wake: (0..n).map(|_| Notify::new()).collect(),
            finished: Notify::new(),
            closing: CancellationToken::new(),
            final_done: CancellationToken::new(),
        }))
    }

    /// Whether every source instance has read all its input or stopped:
    /// the next checkpoint is the last of the run, and `Some(true)` when
    /// every one read all its input (the job's final checkpoint), else
    /// `Some(false)` (a stop checkpoint, to resume from).
    fn all_finished(&self) -> Option<bool> {
        let state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        (!state.finished.is_empty() && state.finished.iter().all(|&f| f))
            .then(|| !state.stopped.iter().any(|&s| s))
    }

    /// Waits until a source instance may have finished its input.
    async fn finished_changed(&self) {
        self.0.finished.notified().await;
    }

    /// The final checkpoint is committed: the source instances end.
    fn close(&self) {
        self.0.closing.cancel();
    }

    /// Cancelled once the job's final checkpoint is committed: the job
    /// then completed, even if a shutdown comes while its tasks close.
    pub(crate) fn final_committed(&self) -> CancellationToken {
        self.0.final_done.clone()
    }

    /// The trigger of source instance `slot`.
    pub(crate) fn slot(&self, slot: usize) -> SourceTrigger {
        SourceTrigger {
            shared: self.0.clone(),
            slot,
        }
    }

    /// Asks every source instance to start checkpoint `id`; false if the
    /// job has none.
    fn trigger(&self, id: CheckpointId) -> bool {
        let mut state = self.0.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.pending.is_empty() {
            return false;
        }
        for p in &mut state.pending {
            *p = Some(id);
        }
        drop(state);
        for (flag, wake) in self.0.flags.iter().zip(&self.0.wake) {
            flag.store(true, Ordering::Release);
            wake.notify_one();
        }
        true
    }
}

/// One source instance's end of [`Triggers`].
#[derive(Debug, Clone)]
pub(crate) struct SourceTrigger {
    shared: Arc<TriggerShared>,
    slot: usize,
}

impl SourceTrigger {
    /// The checkpoint to start now, if one was triggered.
    pub(crate) fn take(&self) -> Option<CheckpointId> {
        if !self.shared.flags[self.slot].load(Ordering::Acquire) {
            return None;
        }
        self.shared.flags[self.slot].store(false, Ordering::Release);
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pending[self.slot].take()
    }

    /// The newest checkpoint that completed (0: none yet).
    pub(crate) fn completed(&self) -> CheckpointId {
        self.shared.completed.load(Ordering::Acquire)
    }

    /// Waits for a trigger.
    pub(crate) async fn triggered(&self) {
        self.shared.wake[self.slot].notified().await;
    }

    /// This instance has read all its input (or, if `stopped`, stops
    /// reading as the job shuts down); it goes on taking checkpoints until
    /// the last one is committed ([`closing`](Self::closing)).
    pub(crate) fn finish(&self, stopped: bool) {
        let mut state = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        state.finished[self.slot] = true;
        state.stopped[self.slot] |= stopped;
        drop(state);
        self.shared.finished.notify_one();
    }

    /// Waits until the final checkpoint is committed.
    pub(crate) async fn closing(&self) {
        self.shared.closing.cancelled().await;
    }
}

/// A node the coordinator expects acknowledgements from.
#[derive(Debug, Clone)]
pub(crate) struct Expected {
    pub(crate) name: Arc<str>,
    pub(crate) kind: NodeKind,
    pub(crate) parallelism: usize,
}

/// A checkpoint started and not yet complete.
struct InFlight {
    id: CheckpointId,
    /// Whether it is the final checkpoint, taken once every source
    /// instance has read all its input.
    last: bool,
    /// Whether it is the run's last (final or stop): the sources end once
    /// it is committed.
    closing: bool,
    started: Instant,
    acks: HashMap<(Arc<str>, usize), AckState>,
}

/// The sinks of a running job, shared by the coordinator (which commits
/// them) and the job (which finishes them).
pub(crate) type SharedSinks = Arc<Mutex<Vec<(String, Box<dyn ErasedSink>)>>>;

/// Triggers checkpoints at an interval and completes them.
pub(crate) struct Coordinator {
    pub(crate) job: Arc<str>,
    pub(crate) storage: Storage,
    pub(crate) interval: Duration,
    pub(crate) retain: usize,
    pub(crate) next_id: CheckpointId,
    pub(crate) expected: Vec<Expected>,
    pub(crate) triggers: Triggers,
    pub(crate) acks: mpsc::UnboundedReceiver<Ack>,
    pub(crate) sinks: SharedSinks,
    /// Cancelled when every task has ended without error: the checkpoint
    /// in flight completes if every acknowledgement is in, then the
    /// coordinator ends.
    pub(crate) stop: CancellationToken,
    /// Cancelled when the job failed or was dropped: nothing more completes.
    pub(crate) abandon: CancellationToken,
    /// Where completed checkpoints are counted.
    pub(crate) metrics: crate::metrics::JobMetrics,
}

/// Makes the channel node instances acknowledge on.
pub(crate) fn ack_channel() -> (Acker, mpsc::UnboundedReceiver<Ack>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (Acker { tx }, rx)
}

impl Coordinator {
    /// How many acknowledgements make a checkpoint complete.
    fn expected_acks(&self) -> usize {
        self.expected.iter().map(|e| e.parallelism).sum()
    }

    /// Runs until stopped: a checkpoint starts every interval when none is
    /// in flight.
    ///
    /// When the tasks have all ended, every source instance took the last
    /// checkpoint triggered before it ended, so that checkpoint's
    /// acknowledgements are all in: it completes before the coordinator
    /// ends, and the sinks publish what they pre-committed for it.
    ///
    /// # Errors
    /// A checkpoint that could not complete (its state or manifest could
    /// not be written, a sink could not commit): the job fails with it, as
    /// Flink's does by default. Going on would leave pre-committed output
    /// that no checkpoint holds.
    pub(crate) async fn run(mut self) -> Result<()> {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut in_flight: Option<InFlight> = None;
        // Once every source instance has read its input (or stopped, as the
        // job shuts down), the run's last checkpoint starts at once.
        let mut final_started = false;
        loop {
            let start_final = in_flight.is_none() && !final_started;
            tokio::select! {
                biased;
                () = self.abandon.cancelled() => break,
                () = self.stop.cancelled() => {
                    while let Ok(ack) = self.acks.try_recv() {
                        self.on_ack(&mut in_flight, ack).await?;
                    }
                    break;
                }
                ack = self.acks.recv() => {
                    let Some(ack) = ack else { break };
                    self.on_ack(&mut in_flight, ack).await?;
                }
                () = self.triggers.finished_changed(), if start_final => {
                    if let Some(last) = self.triggers.all_finished() {
                        final_started = self.start(&mut in_flight, Some(last));
                    }
                }
                _ = ticker.tick(), if in_flight.is_none() && !final_started => {
                    let last = self.triggers.all_finished();
                    if self.start(&mut in_flight, last) {
                        final_started = last.is_some();
                    }
                }
            }
        }
        Ok(())
    }

    /// Starts the next checkpoint: the run's last if `last` is set (the
    /// job's final one if it is `Some(true)`); false if a source instance
    /// has ended, when none can start.
    fn start(&mut self, in_flight: &mut Option<InFlight>, last: Option<bool>) -> bool {
        let id = self.next_id;
        if !self.triggers.trigger(id) {
            return false;
        }
        self.next_id += 1;
        tracing::debug!(job = %self.job, checkpoint = id, last, "Checkpoint triggered.");
        *in_flight = Some(InFlight {
            id,
            last: last == Some(true),
            closing: last.is_some(),
            started: Instant::now(),
            acks: HashMap::new(),
        });
        true
    }

    /// Notes an acknowledgement; completes the checkpoint when it is the
    /// last one.
    async fn on_ack(&mut self, in_flight: &mut Option<InFlight>, ack: Ack) -> Result<()> {
        let Some(flight) = in_flight.as_mut().filter(|f| f.id == ack.id) else {
            return Ok(());
        };
        flight
            .acks
            .insert((ack.node.clone(), ack.instance), ack.state);
        if flight.acks.len() == self.expected_acks()
            && let Some(flight) = in_flight.take()
        {
            let (id, closing, last) = (flight.id, flight.closing, flight.last);
            match self.complete(flight).await {
                Ok((duration, bytes)) => {
                    self.metrics.checkpoint_completed(id, duration, bytes);
                    self.triggers.0.completed.store(id, Ordering::Release);
                    if last {
                        self.triggers.0.final_done.cancel();
                    }
                    if closing {
                        self.triggers.close();
                    }
                }
                Err(e) if self.abandon.is_cancelled() => {
                    tracing::debug!(job = %self.job, checkpoint = id, error = %e, "Checkpoint abandoned.");
                }
                Err(e) => {
                    self.metrics.checkpoint_failed();
                    return Err(Error::Internal(format!("checkpoint {id} failed: {e}")));
                }
            }
        }
        Ok(())
    }

    /// Writes a checkpoint whose every acknowledgement is in, then commits
    /// the sinks and drops old checkpoints.
    async fn complete(&mut self, flight: InFlight) -> Result<(Duration, u64)> {
        let storage = self.storage.clone();
        let expected = self.expected.clone();
        let job = self.job.clone();
        let sinks = self.sinks.clone();
        let retain = self.retain;
        let started = flight.started;
        let id = flight.id;
        let stop = self.abandon.clone();
        tokio::task::spawn_blocking(move || {
            let (manifest, pre_committed) =
                write(&storage, &job, &expected, flight, started, &stop)?;
            if manifest.last {
                super::failpoint::hit("after-final-manifest");
            }
            let bytes = manifest.state_bytes();
            let duration = manifest.duration_ms;
            // The checkpoint is durable: the sinks may publish what they
            // pre-committed for it.
            let mut sinks = sinks.lock().unwrap_or_else(|p| p.into_inner());
            if stop.is_cancelled() {
                return Err(Error::Internal(format!(
                    "checkpoint {id}: the job failed before its sinks committed"
                )));
            }
            for (name, sink) in sinks.iter_mut() {
                let pre = pre_committed.get(name.as_str()).map_or(&[][..], Vec::as_slice);
                sink.commit(name, id, pre)?;
            }
            drop(sinks);
            super::failpoint::hit("after-commit");
            storage.retain(retain)?;
            tracing::info!(job = %job, checkpoint = id, bytes, duration_ms = duration, "Checkpoint complete.");
            Ok((started.elapsed(), bytes))
        })
        .await
        .map_err(|e| Error::Internal(format!("completing checkpoint {id}: {e}")))?
    }
}

/// What each sink's writers pre-committed, by sink name.
type PreCommitted = HashMap<String, Vec<Vec<u8>>>;

/// Writes the state files of a checkpoint and then its manifest; returns
/// it with the sinks' pre-commits.
fn write(
    storage: &Storage,
    job: &str,
    expected: &[Expected],
    mut flight: InFlight,
    started: Instant,
    stop: &CancellationToken,
) -> Result<(Manifest, PreCommitted)> {
    let id = flight.id;
    let mut nodes = BTreeMap::new();
    let mut pre_committed = PreCommitted::new();
    for e in expected {
        let mut node = NodeState {
            kind: e.kind,
            parallelism: e.parallelism,
            positions: BTreeMap::new(),
            instances: Vec::new(),
        };
        for i in 0..e.parallelism {
            let state = flight.acks.remove(&(e.name.clone(), i)).ok_or_else(|| {
                Error::Internal(format!("checkpoint {id}: no ack from {}#{i}", e.name))
            })?;
            let bytes = match state {
                AckState::Source(positions) => {
                    node.positions.extend(positions);
                    None
                }
                AckState::Operator(bytes) | AckState::Sink(bytes) => bytes,
            };
            if e.kind == NodeKind::Sink
                && let Some(bytes) = &bytes
            {
                pre_committed
                    .entry(e.name.to_string())
                    .or_default()
                    .push(bytes.clone());
            }
            if e.kind != NodeKind::Source {
                node.instances.push(match bytes {
                    Some(bytes) => Some(StateFile {
                        file: storage.write_state(id, &e.name, i, &bytes)?,
                        bytes: bytes.len() as u64,
                    }),
                    None => None,
                });
            }
        }
        nodes.insert(e.name.to_string(), node);
    }
    let manifest = Manifest {
        version: VERSION,
        id,
        job: job.to_string(),
        completed_ms: now_ms(),
        duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        last: flight.last,
        nodes,
    };
    // A job dropped meanwhile (no longer running) completes nothing more.
    if stop.is_cancelled() {
        return Err(Error::Internal(format!(
            "checkpoint {id} abandoned: the job was dropped"
        )));
    }
    super::failpoint::hit("before-manifest");
    storage.write_manifest(&manifest)?;
    super::failpoint::hit("after-manifest");
    Ok((manifest, pre_committed))
}
