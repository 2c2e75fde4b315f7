//! Brook's integration tests: one binary, one module per area.

#[cfg(feature = "admin")]
mod admin_server;
mod checkpoint_file_sinks;
mod checkpoints;
mod file_sources;
mod joins;
#[cfg(feature = "kafka")]
mod kafka_logs_window;
mod log_analysis_job;
mod logs_window;
mod nexmark;
mod parallelism_limit;
mod plan;
mod runtime_backpressure;
mod runtime_failures;
mod runtime_metrics;
mod runtime_parallel;
mod runtime_robustness;
mod send_sync;
mod side_outputs;
#[cfg(feature = "cli")]
mod sql_hardening;
#[cfg(feature = "sql")]
mod sql_over_sinks;
mod sql_replacing_runs;
mod support;
mod time_bounds;
mod time_keyed;
mod time_windows;
#[cfg(all(feature = "admin", feature = "sql"))]
mod web_ui;
