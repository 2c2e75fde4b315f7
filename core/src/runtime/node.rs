//! The pushers that run user code: operators and sinks.
//!
//! Each call into user code is timed (busy time), counted, and guarded:
//! an error or a panic becomes an [`Error::Node`] naming the node.

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;

use crate::checkpoint::coordinator::{AckState, Acker};
use crate::error::{Error, Result};
use crate::message::CheckpointId;
use crate::metrics::NodeMetrics;
use crate::operator::{Collector, Operator};
use crate::record::{Batch, EventTime};
use crate::runtime::push::{BoxPush, Push, PushFut, SidePush};
use crate::sink::SinkWriter;

/// An [`Operator`] inside a chain.
pub(crate) struct OperatorNode<In, Out, O> {
    pub(crate) name: Arc<str>,
    pub(crate) op: O,
    pub(crate) out: Collector<Out>,
    pub(crate) next: BoxPush<Out>,
    /// The side outputs with consumers, in the collector's slot order.
    pub(crate) sides: Vec<Box<dyn SidePush>>,
    pub(crate) metrics: Arc<NodeMetrics>,
    /// The last watermark sent on: output watermarks never go back.
    pub(crate) last_watermark: EventTime,
    /// This instance's index and where it acknowledges checkpoints, when
    /// the job takes them.
    pub(crate) instance: usize,
    pub(crate) acker: Option<Acker>,
    pub(crate) _in: PhantomData<fn(In)>,
}

impl<In, Out, O> OperatorNode<In, Out, O>
where
    In: Send + 'static,
    Out: Send + 'static,
    O: Operator<In, Out>,
{
    /// Runs user code, timing it and turning errors and panics into node errors.
    fn call(&mut self, f: impl FnOnce(&mut O, &mut Collector<Out>) -> Result<()>) -> Result<()> {
        let start = Instant::now();
        let r = catch_unwind(AssertUnwindSafe(|| f(&mut self.op, &mut self.out)));
        self.metrics.add_busy(start.elapsed());
        match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.in_node(&self.name)),
            Err(panic) => Err(Error::from_panic(panic).in_node(&self.name)),
        }
    }

    /// Takes the collected output, counting it.
    fn take_output(&mut self) -> Option<Batch<Out>> {
        let out = self.out.take();
        if out.is_empty() {
            return None;
        }
        self.metrics.add_out(out.len());
        Some(out)
    }

    /// Sends on what the last call collected: side records, records, then
    /// the watermark (to every output) if it advanced, then the idle mark.
    fn emit(&mut self) -> PushFut<'_> {
        let out = self.take_output();
        let wm = self
            .out
            .take_watermark()
            .filter(|&wm| wm > self.last_watermark);
        let idle = self.out.take_idle();
        let sides: Vec<_> = if self.sides.is_empty() {
            Vec::new()
        } else {
            self.out.take_sides().collect()
        };
        match (out, wm, idle, sides.is_empty()) {
            (None, None, false, true) => PushFut::ok(),
            (Some(out), None, false, true) => self.next.push(out),
            (out, wm, idle, _) => {
                if let Some(wm) = wm {
                    self.last_watermark = wm;
                }
                PushFut::wait(async move {
                    for (i, batch) in sides {
                        if let Some(side) = self.sides.get_mut(i) {
                            side.push_any(batch).await?;
                        }
                    }
                    if let Some(out) = out {
                        self.next.push(out).await?;
                    }
                    if let Some(wm) = wm {
                        self.next.watermark(wm).await?;
                        for side in &mut self.sides {
                            side.watermark(wm).await?;
                        }
                    }
                    if idle {
                        self.next.idle().await?;
                        for side in &mut self.sides {
                            side.idle().await?;
                        }
                    }
                    Ok(())
                })
            }
        }
    }
}

impl<In, Out, O> Push<In> for OperatorNode<In, Out, O>
where
    In: Send + 'static,
    Out: Send + 'static,
    O: Operator<In, Out>,
{
    fn push(&mut self, batch: Batch<In>) -> PushFut<'_> {
        self.metrics.add_in(batch.len());
        if let Err(e) = self.call(|op, out| op.process(batch, out)) {
            return PushFut::err(e);
        }
        self.emit()
    }

    fn watermark(&mut self, wm: EventTime) -> PushFut<'_> {
        self.metrics.set_watermark(wm);
        if let Err(e) = self.call(|op, out| op.on_watermark(wm, out)) {
            return PushFut::err(e);
        }
        self.emit()
    }

    fn flush(&mut self) -> PushFut<'_> {
        if self.sides.is_empty() {
            return self.next.flush();
        }
        PushFut::wait(async move {
            self.next.flush().await?;
            for side in &mut self.sides {
                side.flush().await?;
            }
            Ok(())
        })
    }

    fn idle(&mut self) -> PushFut<'_> {
        self.out.mark_idle();
        self.emit()
    }

    fn tick(&mut self, now: i64) -> PushFut<'_> {
        if let Err(e) = self.call(|op, out| op.on_processing_time(now, out)) {
            return PushFut::err(e);
        }
        PushFut::wait(async move {
            self.emit().await?;
            self.next.tick(now).await?;
            for side in &mut self.sides {
                side.tick(now).await?;
            }
            Ok(())
        })
    }

    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_> {
        if let Err(e) = self.call(|op, out| op.on_barrier(out)) {
            return PushFut::err(e);
        }
        PushFut::wait(async move {
            // What the operator let go of goes ahead of the barrier.
            self.emit().await?;
            if let Some(acker) = &self.acker {
                let start = Instant::now();
                let state = catch_unwind(AssertUnwindSafe(|| {
                    self.op.snapshot()?.map(|s| s.to_bytes()).transpose()
                }));
                self.metrics.add_busy(start.elapsed());
                let state = match state {
                    Ok(Ok(state)) => state,
                    Ok(Err(e)) => return Err(e.in_node(&self.name)),
                    Err(panic) => return Err(Error::from_panic(panic).in_node(&self.name)),
                };
                acker.ack(id, &self.name, self.instance, AckState::Operator(state));
                crate::checkpoint::failpoint::hit("after-snapshot");
            }
            self.next.barrier(id).await?;
            for side in &mut self.sides {
                side.barrier(id).await?;
            }
            Ok(())
        })
    }

    fn end(&mut self) -> PushFut<'_> {
        if let Err(e) = self.call(|op, out| op.on_end(out)) {
            return PushFut::err(e);
        }
        PushFut::wait(async move {
            self.emit().await?;
            self.next.end().await?;
            for side in &mut self.sides {
                side.end().await?;
            }
            Ok(())
        })
    }

    fn stop(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            self.next.stop().await?;
            for side in &mut self.sides {
                side.stop().await?;
            }
            Ok(())
        })
    }

    fn close(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            self.next.close().await?;
            for side in &mut self.sides {
                side.close().await?;
            }
            Ok(())
        })
    }
}

/// A [`SinkWriter`] at the end of a chain.
pub(crate) struct SinkNode<T, W> {
    pub(crate) name: Arc<str>,
    pub(crate) writer: W,
    pub(crate) metrics: Arc<NodeMetrics>,
    /// This instance's index and where it acknowledges checkpoints.
    pub(crate) instance: usize,
    pub(crate) acker: Option<Acker>,
    pub(crate) _t: PhantomData<fn(T)>,
}

impl<T: Send + 'static, W: SinkWriter<T>> SinkNode<T, W> {
    /// Calls the writer and awaits it, timing the call and turning errors
    /// and panics (in making the future or in running it) into node errors.
    async fn guarded<'w, F, R>(
        name: &str,
        metrics: &NodeMetrics,
        writer: &'w mut W,
        call: impl FnOnce(&'w mut W) -> F,
    ) -> Result<R>
    where
        F: std::future::Future<Output = Result<R>> + 'w,
    {
        let start = Instant::now();
        let r = match catch_unwind(AssertUnwindSafe(|| call(writer))) {
            Ok(fut) => AssertUnwindSafe(fut).catch_unwind().await,
            Err(panic) => Err(panic),
        };
        metrics.add_busy(start.elapsed());
        match r {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(e.in_node(name)),
            Err(panic) => Err(Error::from_panic(panic).in_node(name)),
        }
    }
}

impl<T: Send + 'static, W: SinkWriter<T>> Push<T> for SinkNode<T, W> {
    fn push(&mut self, batch: Batch<T>) -> PushFut<'_> {
        self.metrics.add_in(batch.len());
        let (name, metrics) = (&self.name, &self.metrics);
        PushFut::wait(Self::guarded(name, metrics, &mut self.writer, move |w| {
            w.write(batch)
        }))
    }

    fn watermark(&mut self, wm: EventTime) -> PushFut<'_> {
        self.metrics.set_watermark(wm);
        let (name, metrics) = (&self.name, &self.metrics);
        PushFut::wait(Self::guarded(name, metrics, &mut self.writer, move |w| {
            w.on_watermark(wm)
        }))
    }

    fn flush(&mut self) -> PushFut<'_> {
        let (name, metrics) = (&self.name, &self.metrics);
        PushFut::wait(Self::guarded(name, metrics, &mut self.writer, |w| {
            w.flush()
        }))
    }

    fn idle(&mut self) -> PushFut<'_> {
        PushFut::ok()
    }

    fn tick(&mut self, _now: i64) -> PushFut<'_> {
        PushFut::ok()
    }

    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_> {
        PushFut::wait(async move {
            let (name, metrics) = (&self.name, &self.metrics);
            let state =
                Self::guarded(name, metrics, &mut self.writer, |w| w.checkpoint(id)).await?;
            if let Some(acker) = &self.acker {
                acker.ack(id, &self.name, self.instance, AckState::Sink(state));
                crate::checkpoint::failpoint::hit("after-pre-commit");
            }
            Ok(())
        })
    }

    /// Flushes; without checkpoints, closes the writer too. With
    /// checkpoints, the final checkpoint's barrier comes after the end, to
    /// pre-commit what the writer holds, and the writer closes after it.
    fn end(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            let (name, metrics) = (&self.name, &self.metrics);
            Self::guarded(name, metrics, &mut self.writer, |w| w.flush()).await?;
            if self.acker.is_none() {
                Self::guarded(name, metrics, &mut self.writer, |w| w.close()).await?;
            }
            Ok(())
        })
    }

    /// Flushes: the writer closes after the stop checkpoint's barrier.
    fn stop(&mut self) -> PushFut<'_> {
        let (name, metrics) = (&self.name, &self.metrics);
        PushFut::wait(Self::guarded(name, metrics, &mut self.writer, |w| {
            w.flush()
        }))
    }

    fn close(&mut self) -> PushFut<'_> {
        if self.acker.is_none() {
            return PushFut::ok();
        }
        PushFut::wait(async move {
            let (name, metrics) = (&self.name, &self.metrics);
            Self::guarded(name, metrics, &mut self.writer, |w| w.close()).await
        })
    }
}
