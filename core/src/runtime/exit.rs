//! Channel exits: where a chain hands records to the tasks of the next chain.
//!
//! An exit buffers records per target instance and sends full batches;
//! partial batches go out when the task's input is idle (`flush`) and before
//! any control message, so control never overtakes data. A send first tries
//! without waiting; only when the channel is full does it wait, and that
//! wait is counted as time blocked on backpressure.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use tokio::sync::mpsc::{Sender, error::TrySendError};

use crate::error::{Error, Result};
use crate::message::{CheckpointId, Envelope, Message};
use crate::metrics::NodeMetrics;
use crate::partition::instance_for_hash;
use crate::record::{Batch, EventTime, Record};
use crate::runtime::push::{Feeder, Push, PushFut};

/// A function from a record's value to the hash of its key.
pub(crate) type KeyHashFn<T> = Arc<dyn Fn(&T) -> u64 + Send + Sync>;

/// How an exit picks the target instance of a record.
pub(crate) enum Route<T> {
    /// One target: the instance with the same index.
    Forward,
    /// Whole batches, to each target in turn.
    Rebalance { next: usize },
    /// Each record to the instance that owns its key.
    Hash(KeyHashFn<T>),
    /// Every record to every target.
    Broadcast,
}

/// One downstream instance.
pub(crate) struct Target<T> {
    pub(crate) tx: Sender<Envelope<T>>,
    /// The metrics of the downstream chain head, whose queue gauge we raise.
    pub(crate) head: Arc<NodeMetrics>,
}

/// The exit of one chain instance along one edge.
pub(crate) struct Exit<T> {
    pub(crate) targets: Vec<Target<T>>,
    pub(crate) route: Route<T>,
    pub(crate) bufs: Vec<Vec<Record<T>>>,
    pub(crate) batch_size: usize,
    pub(crate) from: u32,
    /// The node that feeds this exit (errors, blocked time).
    pub(crate) feeder: Feeder,
}

impl<T: crate::Data> Exit<T> {
    pub(crate) fn new(
        targets: Vec<Target<T>>,
        route: Route<T>,
        batch_size: usize,
        from: u32,
        feeder: Feeder,
    ) -> Self {
        let n = match route {
            Route::Broadcast => 1,
            _ => targets.len(),
        };
        Exit {
            bufs: (0..n).map(|_| Vec::new()).collect(),
            targets,
            route,
            batch_size: batch_size.max(1),
            from,
            feeder,
        }
    }

    /// Appends `batch` to buffer `i`, returning the buffer if it is full.
    fn buffer(&mut self, i: usize, batch: Batch<T>) -> Option<Vec<Record<T>>> {
        let buf = &mut self.bufs[i];
        if buf.is_empty() && batch.len() >= self.batch_size / 2 {
            return Some(batch.into_records());
        }
        if buf.is_empty() {
            buf.reserve(self.batch_size);
        }
        buf.extend(batch);
        (buf.len() >= self.batch_size).then(|| std::mem::take(buf))
    }

    /// Sorts a batch into the buffers, returning what is ready to send as
    /// (target, records) pairs.
    fn route(&mut self, batch: Batch<T>) -> Vec<(usize, Vec<Record<T>>)> {
        let mut ready = Vec::new();
        match &mut self.route {
            Route::Forward => ready.extend(self.buffer(0, batch).map(|b| (0, b))),
            Route::Rebalance { next } => {
                let i = *next;
                if let Some(b) = self.buffer(i, batch) {
                    ready.push((i, b));
                    if let Route::Rebalance { next } = &mut self.route {
                        *next = (i + 1) % self.targets.len();
                    }
                }
            }
            Route::Broadcast => {
                if let Some(b) = self.buffer(0, batch) {
                    ready.extend(self.broadcast(b));
                }
            }
            // One target takes every key: no key to compute, no hash.
            Route::Hash(_) if self.targets.len() == 1 => {
                ready.extend(self.buffer(0, batch).map(|b| (0, b)));
            }
            Route::Hash(f) => {
                let (f, n, size) = (f.clone(), self.targets.len(), self.batch_size);
                for r in batch {
                    let t = instance_for_hash(f(&r.value), n);
                    let buf = &mut self.bufs[t];
                    if buf.is_empty() {
                        buf.reserve(size);
                    }
                    buf.push(r);
                    if buf.len() >= size {
                        ready.push((t, std::mem::take(buf)));
                    }
                }
            }
        }
        ready
    }

    fn broadcast(&self, b: Vec<Record<T>>) -> Vec<(usize, Vec<Record<T>>)> {
        let n = self.targets.len();
        let mut out: Vec<_> = (0..n - 1).map(|t| (t, b.clone())).collect();
        out.push((n - 1, b));
        out
    }

    /// Everything still buffered, as (target, records) pairs.
    fn drain(&mut self) -> Vec<(usize, Vec<Record<T>>)> {
        let mut ready = Vec::new();
        for i in 0..self.bufs.len() {
            if !self.bufs[i].is_empty() {
                let b = std::mem::take(&mut self.bufs[i]);
                match self.route {
                    Route::Broadcast => ready.extend(self.broadcast(b)),
                    _ => ready.push((i, b)),
                }
            }
        }
        // A trickle of partial batches must still rotate over the targets.
        if let Route::Rebalance { next } = &mut self.route
            && !ready.is_empty()
        {
            *next = (*next + 1) % self.targets.len();
        }
        ready
    }

    /// Sends batches without waiting while there is room; waits only for
    /// what does not fit.
    fn send_all(&mut self, ready: Vec<(usize, Vec<Record<T>>)>) -> PushFut<'_> {
        let mut pending = Vec::new();
        let mut iter = ready.into_iter();
        for (t, recs) in iter.by_ref() {
            let env = Envelope {
                from: self.from,
                msg: Message::Batch(recs.into()),
            };
            match self.try_send(t, env) {
                Ok(None) => {}
                Ok(Some(env)) => {
                    pending.push((t, env));
                    break;
                }
                Err(e) => return PushFut::err(e),
            }
        }
        if pending.is_empty() {
            return PushFut::ok();
        }
        for (t, recs) in iter {
            pending.push((
                t,
                Envelope {
                    from: self.from,
                    msg: Message::Batch(recs.into()),
                },
            ));
        }
        PushFut::wait(async move {
            for (t, env) in pending {
                self.send(t, env).await?;
            }
            Ok(())
        })
    }

    /// Tries to send without waiting; hands the envelope back if the
    /// channel is full.
    fn try_send(&self, t: usize, env: Envelope<T>) -> Result<Option<Envelope<T>>> {
        let target = &self.targets[t];
        match target.tx.try_send(env) {
            Ok(()) => {
                target.head.queue_len.fetch_add(1, Relaxed);
                Ok(None)
            }
            Err(TrySendError::Full(env)) => Ok(Some(env)),
            Err(TrySendError::Closed(_)) => Err(Error::DownstreamClosed),
        }
    }

    /// Sends, waiting for room; the wait is counted as blocked time.
    async fn send(&mut self, t: usize, env: Envelope<T>) -> Result<()> {
        let Some(env) = self.try_send(t, env)? else {
            return Ok(());
        };
        let target = &self.targets[t];
        let start = Instant::now();
        let r = target.tx.send(env).await;
        self.feeder.metrics.add_blocked(start.elapsed());
        r.map_err(|_| Error::DownstreamClosed)?;
        target.head.queue_len.fetch_add(1, Relaxed);
        Ok(())
    }

    /// Runs routing, which calls user code (key functions, `clone`),
    /// turning a panic into an error naming the node that feeds the exit.
    fn guarded<R>(&mut self, f: impl FnOnce(&mut Self) -> R) -> Result<R> {
        catch_unwind(AssertUnwindSafe(|| f(self)))
            .map_err(|panic| Error::from_panic(panic).in_node(&self.feeder.node))
    }

    /// Flushes the buffers, then sends a control message to every target.
    async fn control(&mut self, msg: Message<T>) -> Result<()> {
        let ready = self.guarded(Self::drain)?;
        self.send_all(ready).await?;
        for t in 0..self.targets.len() {
            let env = Envelope {
                from: self.from,
                msg: msg.clone(),
            };
            self.send(t, env).await?;
        }
        Ok(())
    }
}

impl<T: crate::Data> Push<T> for Exit<T> {
    fn push(&mut self, batch: Batch<T>) -> PushFut<'_> {
        let ready = match self.guarded(|exit| exit.route(batch)) {
            Ok(ready) => ready,
            Err(e) => return PushFut::err(e),
        };
        if ready.is_empty() {
            return PushFut::ok();
        }
        self.send_all(ready)
    }

    fn watermark(&mut self, wm: EventTime) -> PushFut<'_> {
        PushFut::wait(self.control(Message::Watermark(wm)))
    }

    fn flush(&mut self) -> PushFut<'_> {
        let ready = match self.guarded(Self::drain) {
            Ok(ready) => ready,
            Err(e) => return PushFut::err(e),
        };
        if ready.is_empty() {
            return PushFut::ok();
        }
        self.send_all(ready)
    }

    fn idle(&mut self) -> PushFut<'_> {
        PushFut::wait(self.control(Message::Idle))
    }

    fn tick(&mut self, _now: i64) -> PushFut<'_> {
        PushFut::ok()
    }

    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_> {
        PushFut::wait(self.control(Message::Barrier(id)))
    }

    fn end(&mut self) -> PushFut<'_> {
        PushFut::wait(self.control(Message::End))
    }

    fn stop(&mut self) -> PushFut<'_> {
        PushFut::wait(self.control(Message::Stop))
    }
}
