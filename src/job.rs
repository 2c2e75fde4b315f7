//! The job harness: one standard command line for a pipeline binary, a
//! clean stop on SIGINT and SIGTERM, the admin server and logging.
//!
//! ```no_run
//! use brook::job::JobArgs;
//! use brook::prelude::*;
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Args {
//!     #[command(flatten)]
//!     job: JobArgs,
//! }
//!
//! #[tokio::main]
//! async fn main() -> anyhow::Result<()> {
//!     let args = Args::parse();
//!     args.job.init_logging()?;
//!     let mut flow = Dataflow::with_config("numbers", args.job.config());
//!     args.job.configure(&mut flow)?;
//!     flow.source("numbers", MemorySource::new((0..1000u64).collect()))
//!         .sink("out", StdoutSink::debug());
//!     let outcome = args.job.run(flow.build()?).await?;
//!     std::process::exit(outcome.exit_code());
//! }
//! ```
//!
//! | flag | what |
//! |---|---|
//! | `--parallelism N` | parallel instances per node (default: the cores) |
//! | `--checkpoint-dir DIR` | checkpoints there (or `s3://…`), resumed from on start |
//! | `--checkpoint-interval-ms MS` | between checkpoints (default 1000) |
//! | `--restore latest\|fresh\|N` | where to start (default `latest`) |
//! | `--admin ADDR` | the admin server (default `127.0.0.1:8686`; a port alone is on 127.0.0.1; `off`) |
//! | `--log-format human\|json` | log lines for people or for a collector |
//! | `--log-level FILTER` | `warn` (default), `info`, `debug`, or a `tracing` filter; `RUST_LOG` wins |
//!
//! # Stopping
//! SIGINT or SIGTERM stops the job gracefully: its sources stop reading,
//! what they read drains, and with checkpoints a stop checkpoint is taken
//! (the next run resumes exactly there). A second signal stops it at once.
//! [`RunOutcome::exit_code`] gives 0 after SIGTERM (a service manager's
//! stop), 130 after SIGINT (a person's Ctrl-C, as shells expect).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use brook_core::{CheckpointConfig, Dataflow, Error, Job, JobConfig, Restore, Result};

use crate::admin::AdminServer;
use crate::run::{Interrupts, RunOutcome, run_until};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One readable line per event.
    Human,
    /// One JSON object per line.
    Json,
}

/// The standard flags of a Brook job; flatten them into a binary's own
/// (`#[command(flatten)]`). See the [module](self).
#[derive(Debug, Clone, clap::Args)]
pub struct JobArgs {
    /// Parallel instances per node (default: the number of cores).
    #[arg(long)]
    pub parallelism: Option<usize>,
    /// Take checkpoints into this directory (or object store:
    /// `s3://bucket/prefix` with the `s3` feature), and when started again
    /// after a crash or a stop, resume from the newest one there: nothing
    /// lost, nothing counted twice.
    #[arg(long)]
    pub checkpoint_dir: Option<String>,
    /// Milliseconds between checkpoints (with --checkpoint-dir).
    #[arg(long, default_value_t = 1000)]
    pub checkpoint_interval_ms: u64,
    /// Where to start with --checkpoint-dir: `latest` (the newest
    /// checkpoint, if any), `fresh` (delete the checkpoints there), or a
    /// checkpoint's number.
    #[arg(long, default_value = "latest")]
    pub restore: String,
    /// The admin server (health, Prometheus metrics, the job's API):
    /// `HOST:PORT`, a port alone (on 127.0.0.1), or `off`. Anything but a
    /// loopback address is reachable from other machines.
    #[arg(long, default_value = crate::admin::DEFAULT_ADDR)]
    pub admin: String,
    /// Log lines for people (`human`) or collectors (`json`), on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// The log level: `error`, `warn`, `info`, `debug`, or a `tracing`
    /// filter (`info,brook_core=debug`). `RUST_LOG`, when set, wins.
    #[arg(long, default_value = "warn")]
    pub log_level: String,
}

impl JobArgs {
    /// Installs the log subscriber the flags ask for.
    ///
    /// # Errors
    /// [`Error::Config`] for a filter that does not parse, or a
    /// subscriber installed already.
    pub fn init_logging(&self) -> Result<()> {
        let filter = match tracing_subscriber::EnvFilter::try_from_default_env() {
            Ok(f) => f,
            Err(_) => tracing_subscriber::EnvFilter::try_new(&self.log_level)
                .map_err(|e| Error::Config(format!("--log-level '{}': {e}", self.log_level)))?,
        };
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let installed = match self.log_format {
            LogFormat::Human => builder.try_init(),
            LogFormat::Json => builder.json().try_init(),
        };
        installed.map_err(|e| Error::Config(format!("installing the log subscriber: {e}")))
    }

    /// The job configuration the flags give (the parallelism).
    pub fn config(&self) -> JobConfig {
        let mut config = JobConfig::default();
        if let Some(p) = self.parallelism {
            config.parallelism = p;
        }
        config
    }

    /// A tokio runtime sized to the job: at parallelism 1 a single thread
    /// (a current-thread runtime: the job's tasks hand batches to each
    /// other with no cross-thread wake-ups), else one worker thread per
    /// instance. File sources read on the runtime's blocking pool either
    /// way. A runtime with a worker per core, whatever the job's
    /// parallelism, spends CPU moving tasks between threads: a job at
    /// parallelism 1 ran slower on one (measured in the end-to-end bench).
    ///
    /// # Errors
    /// When the runtime cannot start (no threads left).
    pub fn runtime(&self) -> std::io::Result<tokio::runtime::Runtime> {
        let parallelism = self.config().parallelism.max(1);
        let mut builder = if parallelism == 1 {
            tokio::runtime::Builder::new_current_thread()
        } else {
            let mut b = tokio::runtime::Builder::new_multi_thread();
            b.worker_threads(parallelism);
            b
        };
        builder.enable_all().build()
    }

    /// Sets the dataflow's checkpoints from the flags.
    ///
    /// # Errors
    /// [`Error::Config`] for a `--restore` or `--checkpoint-dir` that does
    /// not parse.
    pub fn configure(&self, flow: &mut Dataflow) -> Result<()> {
        let Some(dir) = &self.checkpoint_dir else {
            if self.restore != "latest" {
                return Err(Error::Config("--restore needs --checkpoint-dir".into()));
            }
            return Ok(());
        };
        let restore = match self.restore.as_str() {
            "latest" => Restore::Latest,
            "fresh" => Restore::Fresh,
            n => Restore::Checkpoint(n.parse().map_err(|_| {
                Error::Config(format!(
                    "--restore '{n}': give latest, fresh or a checkpoint's number"
                ))
            })?),
        };
        let checkpoints = CheckpointConfig::from_location(dir)?
            .interval(Duration::from_millis(self.checkpoint_interval_ms))
            .restore(restore);
        flow.set_checkpoints(checkpoints);
        Ok(())
    }

    /// The admin server's address, `None` when `off`.
    ///
    /// # Errors
    /// [`Error::Config`] for an address that does not parse.
    pub fn admin_addr(&self) -> Result<Option<SocketAddr>> {
        let a = self.admin.trim();
        if a.eq_ignore_ascii_case("off") {
            return Ok(None);
        }
        if let Ok(port) = a.parse::<u16>() {
            return Ok(Some(SocketAddr::from(([127, 0, 0, 1], port))));
        }
        a.parse().map(Some).map_err(|_| {
            Error::Config(format!(
                "--admin '{a}': give HOST:PORT (127.0.0.1:8686), a port, or off"
            ))
        })
    }

    /// Runs `job` until it ends or a signal stops it, with the admin
    /// server while it runs (if the address is taken, the job runs without
    /// it, with a warning). The signal handlers are installed when this is
    /// called, not when the future is first polled: call it before telling
    /// the user the job runs, so that a signal right after is never lost.
    /// Call inside a tokio runtime.
    ///
    /// # Errors
    /// The job's error, naming the node; a bad `--admin`.
    pub fn run(&self, job: Job) -> impl Future<Output = Result<RunOutcome>> + '_ {
        self.run_serving(job, Vec::new())
    }

    /// As [`run`](Self::run), with the admin server's SQL box over the
    /// job's Parquet sinks `tables` (name, directory): read-only queries,
    /// at most 256 MiB and 10 s each.
    ///
    /// # Errors
    /// As [`run`](Self::run).
    pub fn run_serving(
        &self,
        job: Job,
        tables: Vec<(String, std::path::PathBuf)>,
    ) -> impl Future<Output = Result<RunOutcome>> + '_ {
        // Listening from now on: a signal before the first poll is kept.
        let interrupts = Interrupts::install(true);
        self.serve_and_run(job, tables, interrupts)
    }

    async fn serve_and_run(
        &self,
        job: Job,
        tables: Vec<(String, std::path::PathBuf)>,
        interrupts: Result<Interrupts>,
    ) -> Result<RunOutcome> {
        let addr = self.admin_addr()?;
        let started = match addr {
            Some(addr) if tables.is_empty() => {
                AdminServer::start(addr, job.metrics()).await.map(Some)
            }
            Some(addr) => match crate::sql::SqlEngine::with_memory_limit(256 << 20) {
                Ok(engine) => {
                    let engine = engine.with_timeout(Some(Duration::from_secs(10)));
                    AdminServer::start_with_sql(addr, job.metrics(), engine, tables)
                        .await
                        .map(Some)
                }
                Err(e) => Err(Error::Config(format!("the admin server's SQL engine: {e}"))),
            },
            None => Ok(None),
        };
        let admin = match started {
            Ok(server) => server,
            Err(e) => {
                tracing::warn!(error = %e, "The admin server did not start; the job runs without it.");
                None
            }
        };
        let result = run_until(job, interrupts).await;
        if let Some(admin) = admin {
            admin.set_state(match &result {
                Ok(RunOutcome::Completed) => "completed",
                Ok(_) => "stopped",
                Err(_) => "failed",
            });
            admin.stop().await;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Args {
        #[command(flatten)]
        job: JobArgs,
    }

    fn parse(args: &[&str]) -> JobArgs {
        Args::parse_from(std::iter::once("job").chain(args.iter().copied())).job
    }

    #[test]
    fn the_admin_address_is_loopback_unless_told_otherwise() {
        let default = parse(&[]).admin_addr().expect("parses").expect("on");
        assert!(default.ip().is_loopback());
        assert_eq!(default.port(), 8686);
        let port = parse(&["--admin", "9100"])
            .admin_addr()
            .expect("parses")
            .expect("on");
        assert_eq!(port, SocketAddr::from(([127, 0, 0, 1], 9100)));
        assert_eq!(
            parse(&["--admin", "off"]).admin_addr().expect("parses"),
            None
        );
        let any = parse(&["--admin", "0.0.0.0:9100"])
            .admin_addr()
            .expect("parses")
            .expect("on");
        assert!(any.ip().is_unspecified(), "explicit only");
        assert!(parse(&["--admin", "nowhere"]).admin_addr().is_err());
    }

    #[test]
    fn restore_needs_a_checkpoint_dir_and_a_known_value() {
        let mut flow = Dataflow::new("t");
        assert!(parse(&["--restore", "fresh"]).configure(&mut flow).is_err());
        let bad = parse(&["--checkpoint-dir", "/tmp/x", "--restore", "soon"]);
        let err = bad.configure(&mut flow).expect_err("refused").to_string();
        assert!(err.contains("latest, fresh"), "{err}");
        let ok = parse(&["--checkpoint-dir", "/tmp/x", "--restore", "7"]);
        ok.configure(&mut flow).expect("a number");
    }
}
