//! The window join and cogroup: both inputs' records of a key held per
//! window until it fires.

use serde::{Deserialize, Serialize};

use brook_core::{OutputTag, Result};

use super::{JoinInput, JoinValue, late};
use crate::keyed::{KeyedContext, KeyedProcessFunction, Timer};
use crate::window::{Window, WindowAssigner, WindowKey};

/// One open window of one key: the records of each input in it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Pane<L, R> {
    window: Window,
    left: Vec<L>,
    right: Vec<R>,
}

/// The open windows of one key.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Panes<L, R>(Vec<Pane<L, R>>);

impl<L, R> Default for Panes<L, R> {
    fn default() -> Self {
        Panes(Vec::new())
    }
}

/// Runs a window join or cogroup as a keyed process function on the
/// tagged inputs.
#[derive(Clone)]
pub(crate) struct WindowJoin<L, R, W, F, Out> {
    assigner: W,
    f: F,
    late: Option<OutputTag<JoinInput<L, R>>>,
    /// Scratch: the windows of the record being handled.
    windows: Vec<Window>,
    /// Scratch: what `f` returned for the window being fired.
    out: Vec<Out>,
}

impl<L, R, W, F, Out> WindowJoin<L, R, W, F, Out> {
    pub(crate) fn new(assigner: W, f: F, late: Option<OutputTag<JoinInput<L, R>>>) -> Self {
        WindowJoin {
            assigner,
            f,
            late,
            windows: Vec::new(),
            out: Vec::new(),
        }
    }
}

impl<K, L, R, W, F, Out> KeyedProcessFunction<K, JoinInput<L, R>, Out>
    for WindowJoin<L, R, W, F, Out>
where
    K: WindowKey,
    L: JoinValue,
    R: JoinValue,
    W: WindowAssigner,
    Out: Clone + Send + 'static,
    F: FnMut(&K, Window, &[L], &[R], &mut Vec<Out>) + Clone + Send + 'static,
{
    type State = Panes<L, R>;

    fn process_element(
        &mut self,
        value: JoinInput<L, R>,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        let watermark = ctx.current_watermark();
        self.windows.clear();
        let windows = &mut self.windows;
        self.assigner.assign(ctx.timestamp(), |w| {
            // A window the watermark has passed has fired: too late for it.
            if w.max_timestamp() > watermark {
                windows.push(w);
            }
        });
        if self.windows.is_empty() {
            late(ctx, self.late.as_ref(), value);
            return Ok(());
        }
        let merging = self.assigner.is_merging();
        let last = self.windows.len() - 1;
        let mut value = Some(value);
        for i in 0..=last {
            let mut window = self.windows[i];
            let panes = &mut ctx.state().0;
            let mut pane = if merging {
                // Sessions that touch the new one merge with it, across
                // both inputs.
                let mut merged = Pane {
                    window,
                    left: Vec::new(),
                    right: Vec::new(),
                };
                let mut retired = Vec::new();
                let mut j = 0;
                while j < panes.len() {
                    if panes[j].window.touches(&merged.window) {
                        let p = panes.swap_remove(j);
                        merged.window = merged.window.cover(&p.window);
                        merged.left.extend(p.left);
                        merged.right.extend(p.right);
                        retired.push(p.window);
                    } else {
                        j += 1;
                    }
                }
                window = merged.window;
                for w in retired {
                    if w.max_timestamp() != window.max_timestamp() {
                        ctx.delete_event_time_timer(w.max_timestamp());
                    }
                }
                merged
            } else {
                match panes.iter().position(|p| p.window == window) {
                    Some(j) => panes.swap_remove(j),
                    None => Pane {
                        window,
                        left: Vec::new(),
                        right: Vec::new(),
                    },
                }
            };
            // A copy for each window but the last, which takes the record.
            let record = if i == last {
                value.take()
            } else {
                value.clone()
            };
            match record {
                Some(JoinInput::Left(l)) => pane.left.push(l),
                Some(JoinInput::Right(r)) => pane.right.push(r),
                None => {}
            }
            ctx.state().0.push(pane);
            ctx.register_event_time_timer(window.max_timestamp());
        }
        Ok(())
    }

    fn on_timer(
        &mut self,
        timer: Timer,
        ctx: &mut KeyedContext<'_, K, Self::State, Out>,
    ) -> Result<()> {
        let Some(panes) = ctx.existing_state() else {
            return Ok(());
        };
        let mut due = Vec::new();
        let mut j = 0;
        while j < panes.0.len() {
            if panes.0[j].window.max_timestamp() <= timer.time {
                due.push(panes.0.swap_remove(j));
            } else {
                j += 1;
            }
        }
        if panes.0.is_empty() {
            ctx.clear_state();
        }
        due.sort_by_key(|p| p.window);
        for pane in due {
            (self.f)(
                ctx.key(),
                pane.window,
                &pane.left,
                &pane.right,
                &mut self.out,
            );
            for out in self.out.drain(..) {
                ctx.emit_at(pane.window.max_timestamp(), out);
            }
        }
        Ok(())
    }
}
