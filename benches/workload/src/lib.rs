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
