//! `brook crash-test`: runs a job command again and again, killing it with
//! SIGKILL at random moments, until a run completes by itself; then runs a
//! check command on what it wrote. For jobs with checkpoints, which must
//! resume each time and give the answer an uninterrupted run gives.

use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// What `brook crash-test` is told.
#[derive(clap::Args, Debug)]
pub(crate) struct CrashTestArgs {
    /// How many times to kill the job before letting a run complete.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// The shortest time a run gets before it is killed, in milliseconds.
    #[arg(long, default_value_t = 50)]
    min_ms: u64,
    /// The longest time a run gets before it is killed, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    max_ms: u64,
    /// The seed of the kill delays (the same seed, the same delays).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// A shell command run once the job has completed; its exit status is
    /// the verdict (for example the workload's `check`).
    #[arg(long)]
    check: Option<String>,
    /// Failpoint to crash at instead of a random moment, once, on the
    /// first run (see `brook_core::checkpoint::failpoint`), such as
    /// `after-manifest@3`.
    #[arg(long)]
    failpoint: Option<String>,
    /// The job's command and its arguments, after `--`.
    #[arg(required = true, last = true)]
    job: Vec<String>,
}

/// Runs the crash test; fails if a run fails or the check does.
pub(crate) fn run(args: CrashTestArgs) -> anyhow::Result<()> {
    if args.max_ms < args.min_ms {
        bail!("--max-ms must be at least --min-ms");
    }
    let (program, rest) = args.job.split_first().context("no job command after --")?;
    let mut rng = args.seed | 1;
    let mut next_delay = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        Duration::from_millis(args.min_ms + rng % (args.max_ms - args.min_ms + 1))
    };
    let started = Instant::now();
    let (mut killed, mut runs) = (0, 0);
    loop {
        runs += 1;
        let mut cmd = Command::new(program);
        cmd.args(rest).stdin(Stdio::null()).stdout(Stdio::null());
        if runs == 1
            && let Some(point) = &args.failpoint
        {
            cmd.env(brook::core::checkpoint::failpoint::ENV, point);
        }
        let mut child = cmd.spawn().with_context(|| format!("starting {program}"))?;
        let status = if killed < args.kills && (runs > 1 || args.failpoint.is_none()) {
            let wait = next_delay();
            let t0 = Instant::now();
            loop {
                if let Some(status) = child.try_wait()? {
                    break Some(status);
                }
                if t0.elapsed() >= wait {
                    child.kill().context("killing the job")?;
                    child.wait()?;
                    killed += 1;
                    eprintln!("run {runs}: killed after {} ms", wait.as_millis());
                    break None;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            Some(child.wait()?)
        };
        match status {
            None => continue,
            Some(status) if args.failpoint.is_some() && runs == 1 => {
                eprintln!("run 1: ended at the failpoint ({})", describe(status));
            }
            Some(status) if status.success() => break,
            Some(status) => bail!("run {runs} failed: {}", describe(status)),
        }
    }
    println!(
        "The job completed on run {runs}, after {killed} kills, in {:.1} s.",
        started.elapsed().as_secs_f64()
    );
    if let Some(check) = &args.check {
        let status = Command::new("sh")
            .args(["-c", check])
            .status()
            .context("running the check")?;
        if !status.success() {
            bail!("the check failed: {}", describe(status));
        }
        println!("Check passed: {check}");
    }
    Ok(())
}

/// An exit status in words.
fn describe(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("killed by signal {signal}");
        }
    }
    match status.code() {
        Some(code) => format!("exit status {code}"),
        None => "no exit status".into(),
    }
}
