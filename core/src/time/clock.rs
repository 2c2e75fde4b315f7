//! Clocks: where processing time comes from.
//!
//! Everything in Brook that acts on the passing of processing time (timers,
//! rolling files by age, polling a followed file) reads it from a [`Clock`]:
//! the system clock in production, and in tests a clock the test moves
//! itself ([`ManualClock`]) or tokio's clock ([`Clock::tokio`]), which a
//! paused runtime advances only when every task waits.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The system wall clock in milliseconds since the epoch: processing time
/// as [`Clock::system`] tells it.
///
/// Code whose behaviour depends on processing time should read the clock
/// of its context instead (`ctx.clock().now_ms()`, see
/// [`TaskContext::clock`](crate::TaskContext::clock)), so that tests can
/// replace it.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// How often a running job's task checks a [`ManualClock`] for a timer that
/// is not yet due, in milliseconds of real time: the task cannot be woken by
/// the clock itself.
const MANUAL_POLL_MS: i64 = 1;

/// The longest real-time nap of a blocking sleep on tokio's clock between
/// two looks at it, so that a paused clock advanced by
/// `tokio::time::advance` wakes it.
const TOKIO_BLOCKING_NAP: Duration = Duration::from_millis(10);

/// A source of processing time: the wall clock in milliseconds since the
/// epoch ([`now_ms`](Self::now_ms)), a monotonic clock
/// ([`now`](Self::now)), and a blocking sleep on that clock
/// ([`sleep_blocking`](Self::sleep_blocking)). Cheap to clone; clones
/// share their time.
///
/// Three kinds:
/// - [`Clock::system`], the default: the operating system's clocks.
/// - [`Clock::tokio`]: tokio's clock, which `tokio::time::pause` stops and
///   a paused runtime advances only when every task waits, so a whole job
///   can run on it deterministically.
/// - [`ManualClock::clock`]: a clock that moves only when the test
///   advances it.
///
/// Every [`TaskContext`](crate::TaskContext) has one
/// ([`ctx.clock()`](crate::TaskContext::clock)), shared with the task's
/// [`ProcessingTimer`](crate::time::ProcessingTimer); contexts and timers
/// take the clock [entered](Self::enter) on the thread that makes them, or
/// the system clock.
///
/// ```
/// use std::time::Duration;
/// use brook_core::time::{Clock, ManualClock};
///
/// let manual = ManualClock::new(1_000);
/// let clock: Clock = manual.clock();
/// manual.advance(Duration::from_millis(250));
/// assert_eq!(clock.now_ms(), 1_250);
/// assert!(Clock::system().now_ms() > 1_600_000_000_000);
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    kind: Kind,
}

#[derive(Clone, Default)]
enum Kind {
    #[default]
    System,
    Tokio {
        /// The wall clock when the clock was made.
        start_ms: i64,
        /// Tokio's clock when the clock was made.
        start: tokio::time::Instant,
    },
    Manual(Arc<Manual>),
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::System => f.write_str("Clock::System"),
            Kind::Tokio { start_ms, .. } => write!(f, "Clock::Tokio(started at {start_ms} ms)"),
            Kind::Manual(m) => write!(f, "Clock::Manual(at {} ms)", m.now_ms()),
        }
    }
}

thread_local! {
    /// The clock entered on this thread, if any.
    static ENTERED: RefCell<Option<Clock>> = const { RefCell::new(None) };
}

impl Clock {
    /// The operating system's clocks: [`SystemTime`] and [`Instant`].
    pub fn system() -> Self {
        Clock { kind: Kind::System }
    }

    /// Tokio's clock, starting at the wall clock's time now: processing
    /// time that `tokio::time::pause` stops and `tokio::time::advance` (or
    /// a paused runtime's auto-advance) moves. Make it inside the runtime
    /// that will advance it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use brook_core::time::Clock;
    ///
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true)
    /// #     .build().unwrap().block_on(async {
    /// let clock = Clock::tokio();
    /// let start = clock.now_ms();
    /// tokio::time::sleep(Duration::from_secs(60)).await; // instant while paused
    /// assert_eq!(clock.now_ms(), start + 60_000);
    /// # });
    /// ```
    pub fn tokio() -> Self {
        Clock {
            kind: Kind::Tokio {
                start_ms: now_ms(),
                start: tokio::time::Instant::now(),
            },
        }
    }

    /// The clock [entered](Self::enter) on this thread, or the system clock:
    /// what new [`ProcessingTimer`](crate::time::ProcessingTimer)s and task
    /// contexts get.
    pub fn current() -> Self {
        ENTERED
            .try_with(|entered| entered.borrow().clone())
            .ok()
            .flatten()
            .unwrap_or_default()
    }

    /// Makes this the [current](Self::current) clock of this thread until
    /// the guard drops: every task context and processing-time timer made
    /// on the thread meanwhile takes it, those of the tasks a job starts
    /// here ([`Job::start`](crate::Job::start), [`Job::run`](crate::Job::run))
    /// included. How a test runs a whole job on [`Clock::tokio`] or a
    /// [`ManualClock`]. Guards must drop in the reverse order of entering.
    ///
    /// ```
    /// use brook_core::TaskContext;
    /// use brook_core::time::ManualClock;
    ///
    /// let manual = ManualClock::new(42);
    /// let _clock = manual.clock().enter();
    /// assert_eq!(TaskContext::standalone("op", 0, 1).clock().now_ms(), 42);
    /// ```
    pub fn enter(&self) -> ClockGuard {
        let previous = ENTERED
            .try_with(|entered| entered.replace(Some(self.clone())))
            .ok()
            .flatten();
        ClockGuard {
            previous,
            _not_send: PhantomData,
        }
    }

    /// Processing time: milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        match &self.kind {
            Kind::System => now_ms(),
            Kind::Tokio { start_ms, start } => {
                let elapsed = tokio::time::Instant::now().saturating_duration_since(*start);
                start_ms.saturating_add(millis(elapsed))
            }
            Kind::Manual(m) => m.now_ms(),
        }
    }

    /// The monotonic clock, to measure how long something has lasted.
    pub fn now(&self) -> Instant {
        match &self.kind {
            Kind::System => Instant::now(),
            Kind::Tokio { .. } => tokio::time::Instant::now().into_std(),
            Kind::Manual(m) => m.now(),
        }
    }

    /// Blocks the thread until `duration` has passed on this clock: a
    /// [`ManualClock`] must be advanced past it (or dropped); tokio's clock
    /// is looked at every 10 ms of real time at most. Not for async code.
    pub fn sleep_blocking(&self, duration: Duration) {
        match &self.kind {
            Kind::System => std::thread::sleep(duration),
            Kind::Tokio { .. } => {
                let until = tokio::time::Instant::now() + duration;
                loop {
                    let left = until.saturating_duration_since(tokio::time::Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    std::thread::sleep(left.min(TOKIO_BLOCKING_NAP));
                }
            }
            Kind::Manual(m) => m.sleep(duration),
        }
    }

    /// The system wall-clock time until which a task should sleep to wake
    /// when this clock reaches `at_ms` (`i64::MAX`: never): what the
    /// runtime's task loop, which sleeps on tokio's timer against the
    /// system clock, is given.
    pub(crate) fn system_deadline(&self, at_ms: i64) -> i64 {
        if at_ms == i64::MAX {
            return i64::MAX;
        }
        match &self.kind {
            Kind::System => at_ms,
            Kind::Tokio { .. } => {
                let left = at_ms.saturating_sub(self.now_ms()).max(0);
                now_ms().saturating_add(left).min(i64::MAX - 1)
            }
            // A task cannot be woken by a manual clock: it looks again soon.
            Kind::Manual(m) if m.now_ms() >= at_ms => i64::MIN,
            Kind::Manual(_) => now_ms().saturating_add(MANUAL_POLL_MS),
        }
    }
}

/// Undoes [`Clock::enter`] when dropped.
#[must_use = "the clock is current only while the guard lives"]
pub struct ClockGuard {
    previous: Option<Clock>,
    /// Entered per thread: the guard stays on it.
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for ClockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClockGuard").finish_non_exhaustive()
    }
}

impl Drop for ClockGuard {
    fn drop(&mut self) {
        let previous = self.previous.take();
        let _ = ENTERED.try_with(|entered| *entered.borrow_mut() = previous);
    }
}

/// A clock for tests: stands still until [`advance`](Self::advance)d. Its
/// [`clock`](Self::clock) goes wherever a [`Clock`] is taken (a task
/// context with [`TaskContext::with_clock`](crate::TaskContext::with_clock),
/// or [`Clock::enter`]); threads blocked in its
/// [`sleep_blocking`](Clock::sleep_blocking) wake when it is advanced past
/// their time, and [`sleepers`](Self::sleepers) tells how many wait, so a
/// test knows when a polling thread has done its round and gone idle.
///
/// When the last `ManualClock` handle drops nobody can advance it any more:
/// its sleeps then return at once, so that a failing test never leaves a
/// thread waiting forever.
///
/// ```
/// use std::time::Duration;
/// use brook_core::time::ManualClock;
///
/// let manual = ManualClock::new(0);
/// let clock = manual.clock();
/// let poller = std::thread::spawn(move || {
///     clock.sleep_blocking(Duration::from_millis(100));
///     clock.now_ms()
/// });
/// while manual.sleepers() == 0 {
///     std::thread::yield_now();
/// }
/// manual.advance(Duration::from_millis(99));
/// assert_eq!(manual.sleepers(), 1, "not yet");
/// manual.advance(Duration::from_millis(1));
/// assert_eq!(manual.sleepers(), 0, "woken at once");
/// assert_eq!(poller.join().unwrap(), 100);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    manual: Arc<Manual>,
    /// Releases the clock's sleepers when the last handle drops.
    _owner: Arc<Owner>,
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now_ms", &self.manual.now_ms())
            .field("sleepers", &self.sleepers())
            .finish()
    }
}

impl ManualClock {
    /// A clock standing at `start_ms` milliseconds since the epoch.
    pub fn new(start_ms: i64) -> Self {
        let manual = Arc::new(Manual {
            start_ms,
            origin: Instant::now(),
            state: Mutex::new(ManualState::default()),
            changed: Condvar::new(),
        });
        ManualClock {
            _owner: Arc::new(Owner(manual.clone())),
            manual,
        }
    }

    /// The clock to hand to the code under test; it follows this one.
    pub fn clock(&self) -> Clock {
        Clock {
            kind: Kind::Manual(self.manual.clone()),
        }
    }

    /// Moves the clock (wall and monotonic alike) `by` forward, and wakes
    /// the sleepers whose time has come before returning: right after it,
    /// [`sleepers`](Self::sleepers) counts only those still waiting.
    pub fn advance(&self, by: Duration) {
        let mut state = self.manual.lock();
        state.elapsed = state.elapsed.saturating_add(by);
        let now = state.elapsed;
        state.sleepers.retain(|&(_, until)| until > now);
        drop(state);
        self.manual.changed.notify_all();
    }

    /// The time now, in milliseconds since the epoch.
    pub fn now_ms(&self) -> i64 {
        self.manual.now_ms()
    }

    /// The number of threads blocked in a sleep on this clock.
    pub fn sleepers(&self) -> usize {
        self.manual.lock().sleepers.len()
    }
}

/// The time of a manual clock, shared by its handles and clocks.
struct Manual {
    start_ms: i64,
    /// What [`Clock::now`] says at the start.
    origin: Instant,
    state: Mutex<ManualState>,
    /// Notified when the clock moves or is released.
    changed: Condvar,
}

#[derive(Default)]
struct ManualState {
    /// How far the clock has been advanced.
    elapsed: Duration,
    /// Who sleeps, and until when: (id, elapsed time to wake at).
    sleepers: Vec<(u64, Duration)>,
    next_id: u64,
    /// Every handle is gone: sleeps return at once.
    released: bool,
}

impl Manual {
    fn lock(&self) -> MutexGuard<'_, ManualState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn now_ms(&self) -> i64 {
        self.start_ms.saturating_add(millis(self.lock().elapsed))
    }

    fn now(&self) -> Instant {
        let elapsed = self.lock().elapsed;
        self.origin.checked_add(elapsed).unwrap_or(self.origin)
    }

    fn sleep(&self, duration: Duration) {
        let mut state = self.lock();
        if state.released || duration.is_zero() {
            return;
        }
        let id = state.next_id;
        state.next_id += 1;
        let until = state.elapsed.saturating_add(duration);
        state.sleepers.push((id, until));
        while !state.released && state.sleepers.iter().any(|&(i, _)| i == id) {
            state = self
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.sleepers.retain(|&(i, _)| i != id);
    }
}

/// Held by every [`ManualClock`] handle, not by the clocks given out.
struct Owner(Arc<Manual>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.lock().released = true;
        self.0.changed.notify_all();
    }
}

/// Whole milliseconds of `d`, saturating.
fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_advanced() {
        let manual = ManualClock::new(5_000);
        let clock = manual.clock();
        let (t0, i0) = (clock.now_ms(), clock.now());
        std::thread::sleep(Duration::from_millis(2));
        assert_eq!(
            (clock.now_ms(), clock.now()),
            (t0, i0),
            "real time is not its time"
        );
        manual.advance(Duration::from_micros(1_500));
        assert_eq!(clock.now_ms(), 5_001, "whole milliseconds");
        assert_eq!(clock.now() - i0, Duration::from_micros(1_500));
    }

    #[test]
    fn sleepers_wake_when_their_time_comes_and_when_the_clock_is_dropped() {
        let manual = ManualClock::new(0);
        let sleeper = |ms| {
            let clock = manual.clock();
            std::thread::spawn(move || {
                clock.sleep_blocking(Duration::from_millis(ms));
                clock.now_ms()
            })
        };
        let (short, long) = (sleeper(10), sleeper(1_000));
        while manual.sleepers() < 2 {
            std::thread::yield_now();
        }
        manual.advance(Duration::from_millis(9));
        assert_eq!(manual.sleepers(), 2);
        manual.advance(Duration::from_millis(1));
        assert_eq!(manual.sleepers(), 1, "the short one woke at 10");
        assert_eq!(short.join().expect("short"), 10);
        drop(manual);
        assert_eq!(long.join().expect("long"), 10, "released, not advanced");
    }

    #[test]
    fn an_entered_clock_is_current_on_its_thread_until_the_guard_drops() {
        let manual = ManualClock::new(7);
        {
            let _guard = manual.clock().enter();
            assert_eq!(Clock::current().now_ms(), 7);
            let other = std::thread::spawn(|| Clock::current().now_ms())
                .join()
                .expect("thread");
            assert!(other > 7, "other threads keep the system clock");
        }
        assert!(Clock::current().now_ms() > 7);
    }

    #[test]
    fn task_deadlines_follow_the_clock() {
        let manual = ManualClock::new(1_000);
        let clock = manual.clock();
        assert_eq!(clock.system_deadline(i64::MAX), i64::MAX);
        let soon = clock.system_deadline(1_010);
        assert!(soon > 1_000_000 && soon - now_ms() <= MANUAL_POLL_MS);
        manual.advance(Duration::from_millis(10));
        assert_eq!(clock.system_deadline(1_010), i64::MIN, "due: at once");
        assert_eq!(Clock::system().system_deadline(1_010), 1_010);
    }

    #[tokio::test(start_paused = true)]
    async fn the_tokio_clock_follows_paused_time() {
        let clock = Clock::tokio();
        let (t0, i0) = (clock.now_ms(), clock.now());
        tokio::time::sleep(Duration::from_secs(3_600)).await;
        assert_eq!(clock.now_ms(), t0 + 3_600_000, "an hour passed at once");
        assert_eq!(clock.now() - i0, Duration::from_secs(3_600));
        // A task sleeps against the system clock: 5 s from now on the
        // system clock, though this clock is an hour ahead of it.
        let t1 = clock.now_ms();
        let left = clock.system_deadline(t1 + 5_000) - now_ms();
        assert!((4_990..=5_000).contains(&left), "{left}");
        assert_eq!(clock.system_deadline(t1), now_ms(), "due: now");
    }
}
