//! Failpoints: named places in the checkpoint protocol where a test can
//! make the process die, as a crash would, to check that a restore after a
//! crash at exactly that point loses and doubles nothing.
//!
//! Set `BROOK_FAILPOINT` to a comma-separated list of `name` or `name@n`
//! (die at the `n`th time the point is reached in the process, counting
//! from 1; default 1). The process then aborts there: no destructor runs,
//! no buffer is flushed, as after `kill -9`. The points, in the order a
//! checkpoint reaches them:
//!
//! | name | where |
//! |---|---|
//! | `after-snapshot` | an operator instance has snapshotted its state |
//! | `after-pre-commit` | a sink instance has pre-committed (its files are finished, not published) |
//! | `before-manifest` | every state file is written, the manifest not yet |
//! | `after-manifest` | the checkpoint is complete; no sink has committed |
//! | `after-commit` | every sink has committed the checkpoint |
//! | `after-final-manifest` | the final checkpoint (taken once every source has read all its input) is complete; no sink has committed it |
//! | `before-finish` | the job completed and the final checkpoint is committed; the sinks are not yet finished |
//!
//! Unset (the normal case), each point costs one relaxed atomic load.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::OnceLock;

/// The environment variable naming the failpoints.
pub const ENV: &str = "BROOK_FAILPOINT";

/// Each failpoint asked for, by name: the hit it fires on, and the hits so
/// far.
type Points = Mutex<HashMap<String, (u64, u64)>>;

/// The failpoints asked for.
fn wanted() -> &'static Option<Points> {
    static WANTED: OnceLock<Option<Points>> = OnceLock::new();
    WANTED.get_or_init(|| {
        let spec = std::env::var(ENV).ok()?;
        let mut points = HashMap::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (name, nth) = match item.split_once('@') {
                Some((name, n)) => (name, n.parse().unwrap_or(1)),
                None => (item, 1),
            };
            points.insert(name.to_string(), (nth, 0));
        }
        Some(Mutex::new(points))
    })
}

/// Reaches failpoint `name`: the process dies here if it was asked to.
/// Connectors call it at the points of their own commit protocols (the
/// Kafka sink's transactions).
pub fn hit(name: &str) {
    let Some(points) = wanted() else {
        return;
    };
    let mut points = points.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((nth, seen)) = points.get_mut(name) {
        *seen += 1;
        if *seen == *nth {
            eprintln!("brook: failpoint '{name}' reached (hit {nth}): aborting the process");
            std::process::abort();
        }
    }
}
