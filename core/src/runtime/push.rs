//! The push interface that links the nodes of a fused chain.
//!
//! A chain is a tree of `Push` objects built at start-up: each node owns the
//! pushers of its outputs (chained nodes, channel exits, or a tee of several).
//! Operators run synchronously and hand their output straight to the next
//! pusher; only the channel exits and sinks ever wait, so a pusher returns a
//! [`PushFut`] that is ready at once unless something had to wait.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use std::sync::Arc;

use futures::future::BoxFuture;

use crate::metrics::NodeMetrics;

use crate::error::Result;
use crate::message::CheckpointId;
use crate::record::{Batch, EventTime};

/// The future of one push: ready at once, or waiting on a channel or sink.
pub(crate) enum PushFut<'a> {
    Ready(Option<Result<()>>),
    Wait(BoxFuture<'a, Result<()>>),
}

impl PushFut<'_> {
    pub(crate) fn ok() -> Self {
        PushFut::Ready(Some(Ok(())))
    }

    pub(crate) fn err(e: crate::Error) -> Self {
        PushFut::Ready(Some(Err(e)))
    }
}

impl<'a> PushFut<'a> {
    pub(crate) fn wait(f: impl Future<Output = Result<()>> + Send + 'a) -> Self {
        PushFut::Wait(Box::pin(f))
    }
}

impl Future for PushFut<'_> {
    type Output = Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<()>> {
        match self.get_mut() {
            PushFut::Ready(r) => Poll::Ready(r.take().unwrap_or(Ok(()))),
            PushFut::Wait(f) => f.as_mut().poll(cx),
        }
    }
}

/// The input side of a node (or of a channel exit) inside a chain.
pub(crate) trait Push<T>: Send {
    /// Takes a batch of records.
    fn push(&mut self, batch: Batch<T>) -> PushFut<'_>;
    /// The input watermark advanced to `wm`.
    fn watermark(&mut self, wm: EventTime) -> PushFut<'_>;
    /// The task's input is idle: send on anything buffered.
    fn flush(&mut self) -> PushFut<'_>;
    /// The input stopped holding back the watermark (see `Message::Idle`).
    fn idle(&mut self) -> PushFut<'_>;
    /// A processing-time deadline of the task has come: `now` is the wall
    /// clock in milliseconds.
    fn tick(&mut self, now: i64) -> PushFut<'_>;
    /// Checkpoint barrier `id`: everything pushed before it belongs to the
    /// checkpoint. Each node reports its part of it and passes it on.
    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_>;
    /// End of input: emit what is left, then pass the end on. In a job
    /// with checkpoints, barriers still follow (up to the final
    /// checkpoint's), then [`close`](Push::close).
    fn end(&mut self) -> PushFut<'_>;
    /// The job stops with a checkpoint: nothing fires (see
    /// [`Message::Stop`](crate::Message::Stop)); barriers follow, then
    /// [`close`](Push::close).
    fn stop(&mut self) -> PushFut<'_>;
    /// The task is done: a sink of a job with checkpoints closes its writer
    /// (without checkpoints it closed at the end). Passed down the chain.
    fn close(&mut self) -> PushFut<'_> {
        PushFut::ok()
    }
}

/// A pusher boxed for the chain tree.
pub(crate) type BoxPush<T> = Box<dyn Push<T>>;

/// The node whose output a tee or an exit carries: errors and panics there
/// (a key function, a `clone` of the user's type) are reported as its own.
pub(crate) struct Feeder {
    pub(crate) node: Arc<str>,
    pub(crate) metrics: Arc<NodeMetrics>,
}

/// Clones a batch, turning a panic in the user's `clone` into an error
/// naming `node`.
pub(crate) fn guarded_clone<T: Clone>(node: &str, batch: &Batch<T>) -> crate::Result<Batch<T>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| batch.clone()))
        .map_err(|panic| crate::Error::from_panic(panic).in_node(node))
}

/// Fan-out inside a chain: every output gets every batch.
pub(crate) struct Tee<T> {
    pub(crate) outputs: Vec<BoxPush<T>>,
    pub(crate) node: Arc<str>,
}

impl<T: crate::Data> Push<T> for Tee<T> {
    fn push(&mut self, batch: Batch<T>) -> PushFut<'_> {
        PushFut::wait(async move {
            let Some((last, rest)) = self.outputs.split_last_mut() else {
                return Err(crate::Error::Internal("a tee without outputs".into()));
            };
            for out in rest {
                out.push(guarded_clone(&self.node, &batch)?).await?;
            }
            last.push(batch).await
        })
    }

    fn watermark(&mut self, wm: EventTime) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.watermark(wm).await?;
            }
            Ok(())
        })
    }

    fn flush(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.flush().await?;
            }
            Ok(())
        })
    }

    fn idle(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.idle().await?;
            }
            Ok(())
        })
    }

    fn tick(&mut self, now: i64) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.tick(now).await?;
            }
            Ok(())
        })
    }

    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.barrier(id).await?;
            }
            Ok(())
        })
    }

    fn end(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.end().await?;
            }
            Ok(())
        })
    }

    fn stop(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.stop().await?;
            }
            Ok(())
        })
    }

    fn close(&mut self) -> PushFut<'_> {
        PushFut::wait(async move {
            for out in &mut self.outputs {
                out.close().await?;
            }
            Ok(())
        })
    }
}

/// The pusher of a side output, whose record type only it knows: the
/// operator node hands it the side's batch as `Any`, and every control
/// signal of the main output.
pub(crate) trait SidePush: Send {
    /// Takes a batch of the side's type (a `Batch<S>` boxed as `Any`).
    fn push_any(&mut self, batch: Box<dyn std::any::Any + Send>) -> PushFut<'_>;
    /// As [`Push::watermark`].
    fn watermark(&mut self, wm: EventTime) -> PushFut<'_>;
    /// As [`Push::flush`].
    fn flush(&mut self) -> PushFut<'_>;
    /// As [`Push::idle`].
    fn idle(&mut self) -> PushFut<'_>;
    /// As [`Push::tick`].
    fn tick(&mut self, now: i64) -> PushFut<'_>;
    /// As [`Push::barrier`].
    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_>;
    /// As [`Push::end`].
    fn end(&mut self) -> PushFut<'_>;
    /// As [`Push::stop`].
    fn stop(&mut self) -> PushFut<'_>;
    /// As [`Push::close`].
    fn close(&mut self) -> PushFut<'_>;
}

/// A side output of record type `S`.
pub(crate) struct TypedSide<S>(pub(crate) BoxPush<S>);

impl<S: Send + 'static> SidePush for TypedSide<S> {
    fn push_any(&mut self, batch: Box<dyn std::any::Any + Send>) -> PushFut<'_> {
        match batch.downcast::<Batch<S>>() {
            Ok(batch) => self.0.push(*batch),
            Err(_) => PushFut::err(crate::Error::Internal(
                "a side output's batch of another type".into(),
            )),
        }
    }

    fn watermark(&mut self, wm: EventTime) -> PushFut<'_> {
        self.0.watermark(wm)
    }

    fn flush(&mut self) -> PushFut<'_> {
        self.0.flush()
    }

    fn idle(&mut self) -> PushFut<'_> {
        self.0.idle()
    }

    fn tick(&mut self, now: i64) -> PushFut<'_> {
        self.0.tick(now)
    }

    fn barrier(&mut self, id: CheckpointId) -> PushFut<'_> {
        self.0.barrier(id)
    }

    fn end(&mut self) -> PushFut<'_> {
        self.0.end()
    }

    fn stop(&mut self) -> PushFut<'_> {
        self.0.stop()
    }

    fn close(&mut self) -> PushFut<'_> {
        self.0.close()
    }
}
