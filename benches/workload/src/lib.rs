//! # brook-workload
//!
//! The workloads Brook is benchmarked and tested on, kept out of the public
//! library: examples, benches and tests depend on this crate, users do not.
//!
//! - [`logs`]: the logs-window workload's event type ([`LogEvent`]), its
//!   windowed query ([`logs::window_stats`]) and a sequential computation of
//!   the same answer ([`logs::window_stats_batch`]);
//! - [`generator`]: a deterministic source of the workload's log events
//!   ([`LogGenerator`]), which also writes them as JSON lines;
//! - [`oracle`]: the exact answer, by DataFusion SQL over the input,
//!   compared with a job's Parquet output;
//! - [`nexmark`]: the Nexmark benchmark's events, their source
//!   ([`nexmark::NexmarkSource`]), its queries as Brook pipelines and a
//!   DataFusion oracle for them.
//!
//! The `brook-workload` binary writes the workload's input and checks a
//! job's output against an oracle: see `cargo run -p brook-workload -- --help`.
//! The `nexmark` binary runs the Nexmark queries and measures them: see
//! `cargo run --release -p brook-workload --bin nexmark -- --help`.

pub mod generator;
pub mod logs;
pub mod nexmark;
pub mod oracle;

pub use generator::{GeneratedLog, Level, LogGenerator};
pub use logs::{LogEvent, WindowStats};

/// CPU seconds the whole process has used so far (user + system, all
/// threads), from `/proc/self/stat`; NaN where there is none (not Linux).
/// For benches: the figures they report per CPU-second.
pub fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return f64::NAN;
    };
    // Fields after the command name, which ends at the last ')': state is
    // field 3, utime 14 and stime 15, in clock ticks (100 per second).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return f64::NAN;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    match (ticks(11), ticks(12)) {
        (Some(u), Some(s)) => (u + s) / 100.0,
        _ => f64::NAN,
    }
}
