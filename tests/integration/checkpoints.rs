//! Checkpoints survive crashes: the main job (`examples/log_analysis.rs`),
//! killed with SIGKILL at random moments and started again until it
//! completes, writes exactly the answer of the project's SQL oracle, at
//! parallelism 1 and 2; at each failpoint of the protocol, the final
//! checkpoint included; and restored at another parallelism.
//!
//! These run the example's binary, which `cargo test` builds with the
//! tests; run alone (`cargo test --test integration checkpoints`), build it
//! first (`cargo build --example log_analysis`).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use brook_workload::LogGenerator;

use crate::log_analysis_job::log_analysis;
use crate::support::block_on;

/// Writes `events` generated log lines (seed 7) to `path`.
fn write_input(path: &Path, events: u64) {
    let mut text = String::new();
    for e in LogGenerator::new(events, 7).iter() {
        e.write_json_line(&mut text);
    }
    std::fs::write(path, text).expect("write the input");
}

/// The main job's arguments: `input` read at `parallelism`, windows to
/// `out`, a checkpoint every 20 ms into `ck`.
fn job_args(input: &Path, out: &Path, ck: &Path, parallelism: usize) -> Vec<String> {
    let path = |p: &Path| p.to_str().expect("utf-8").to_string();
    vec![
        "--input".into(),
        path(input),
        "--out".into(),
        path(out),
        "--parallelism".into(),
        parallelism.to_string(),
        "--checkpoint-dir".into(),
        path(ck),
        "--checkpoint-interval-ms".into(),
        "20".into(),
    ]
}

/// A small deterministic generator of kill delays.
struct Delays(u64);

impl Delays {
    /// The next delay, between `min` and `max` milliseconds.
    fn next(&mut self, min: u64, max: u64) -> Duration {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        Duration::from_millis(min + self.0 % (max - min + 1))
    }
}

/// What the kill loop saw.
#[derive(Debug, Default)]
struct Cycles {
    /// Runs killed before they ended.
    killed: usize,
    /// Runs that said they resumed from a checkpoint.
    resumed: usize,
}

/// Runs the job with `args` until a run completes, killing each run with
/// SIGKILL after a random delay while `budget` kills are left (a run that
/// ends first is not killed). Returns what happened; panics if a run
/// fails.
fn kill_until_done(args: &[String], dir: &Path, budget: &mut usize, delays: &mut Delays) -> Cycles {
    let mut cycles = Cycles::default();
    let deadline = Instant::now() + Duration::from_secs(600);
    for run in 0.. {
        assert!(
            Instant::now() < deadline,
            "the job did not complete in 10 minutes"
        );
        let (stdout, stderr) = (
            dir.join(format!("run-{run}.out")),
            dir.join(format!("run-{run}.err")),
        );
        let mut child = log_analysis()
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).expect("stdout file"))
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start log_analysis");
        let status = if *budget > 0 {
            let wait = delays.next(30, 500);
            let start = Instant::now();
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    break Some(status);
                }
                if start.elapsed() >= wait {
                    child.kill().expect("SIGKILL");
                    child.wait().expect("reap");
                    cycles.killed += 1;
                    *budget -= 1;
                    break None;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        } else {
            Some(child.wait().expect("wait"))
        };
        let out = std::fs::read_to_string(&stdout).unwrap_or_default();
        if out.contains("Resuming from checkpoint") {
            cycles.resumed += 1;
        }
        if let Some(status) = status {
            let err = std::fs::read_to_string(&stderr).unwrap_or_default();
            assert!(status.success(), "run {run} failed: {err}\n{out}");
            assert!(!err.contains("panicked"), "{err}");
            return cycles;
        }
    }
    unreachable!()
}

/// Kills and restarts the job over a JSON-lines file at `parallelism`, 20
/// times in all: whenever a run completes, its output is checked against
/// the oracle, and the next round starts afresh.
fn survives_kills(parallelism: usize, seed: u64) {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("logs.jsonl");
    write_input(&input, 200_000);
    let mut delays = Delays(seed | 1);
    let (mut budget, mut resumed, mut rounds) = (20, 0, 0);
    while budget > 0 {
        rounds += 1;
        let round = tmp.path().join(format!("round-{rounds}"));
        std::fs::create_dir(&round).expect("round dir");
        let (out, ck) = (round.join("stats"), round.join("checkpoints"));
        let args = job_args(&input, &out, &ck, parallelism);
        let cycles = kill_until_done(&args, &round, &mut budget, &mut delays);
        resumed += cycles.resumed;
        let comparison = block_on(brook_workload::oracle::compare(&input, &out)).expect("oracle");
        assert!(
            comparison.ok(),
            "parallelism {parallelism}, round {rounds}, {cycles:?}: {comparison:?}"
        );
        // A completed job leaves no checkpoint to resume, and no hidden
        // file.
        let left: Vec<_> = std::fs::read_dir(&ck)
            .expect("checkpoint dir")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("chk-"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        let hidden: Vec<_> = std::fs::read_dir(&out)
            .expect("out")
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".inprogress"))
            .collect();
        assert!(hidden.is_empty(), "{hidden:?}");
    }
    assert!(resumed > 0, "no run resumed from a checkpoint");
}

#[test]
fn the_job_killed_twenty_times_at_parallelism_1_gives_the_exact_answer() {
    survives_kills(1, 0x5eed_0001);
}

#[test]
fn the_job_killed_twenty_times_at_parallelism_2_gives_the_exact_answer() {
    survives_kills(2, 0x5eed_0002);
}

/// At each named failpoint of the checkpoint protocol, the job dies (as
/// `kill -9` would end it: the process aborts there); run again without
/// it, it resumes and completes with the exact answer.
#[test]
fn a_crash_at_each_failpoint_is_recovered_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("logs.jsonl");
    write_input(&input, 200_000);
    for point in [
        "after-snapshot",
        "after-pre-commit",
        "before-manifest",
        "after-manifest",
        "after-commit",
        "after-final-manifest",
        "before-finish",
    ] {
        let round = tmp.path().join(point);
        let (out, ck) = (round.join("stats"), round.join("checkpoints"));
        let parallelism = 2;
        // Die in the second checkpoint: one completed before (the final
        // one counts: a fast run may take only one before it). A
        // checkpoint reaches `after-snapshot` once per operator instance
        // (five operators: timestamps, filter, the window's two phases and
        // the row mapping), `after-pre-commit` once per sink instance. The
        // final checkpoint's points come once.
        let per_checkpoint = match point {
            "after-snapshot" => 5 * parallelism,
            "after-pre-commit" => parallelism,
            _ => 1,
        };
        let nth = match point {
            "after-final-manifest" | "before-finish" => 1,
            _ => per_checkpoint + 1,
        };
        let args = job_args(&input, &out, &ck, parallelism);
        let crashed = log_analysis()
            .args(&args)
            .env("BROOK_FAILPOINT", format!("{point}@{nth}"))
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&crashed.stderr);
        assert!(
            !crashed.status.success(),
            "{point}: the run did not die\n{err}"
        );
        assert!(
            err.contains(&format!("failpoint '{point}'")),
            "{point}: {err}"
        );
        let again = log_analysis().args(&args).output().expect("run again");
        let out_text = String::from_utf8_lossy(&again.stdout);
        assert!(
            again.status.success(),
            "{point}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert!(
            out_text.contains("Resuming from checkpoint"),
            "{point}: {out_text}"
        );
        let comparison = block_on(brook_workload::oracle::compare(&input, &out)).expect("oracle");
        assert!(
            comparison.ok(),
            "{point} at parallelism {parallelism}: {comparison:?}"
        );
    }
}

/// A checkpoint taken at one parallelism restores at another: the window
/// state moves by key group to the instances that now own the keys, the
/// file's byte ranges resume at their positions on the new instances, and
/// the answer is exact (3 to 2, as the issue asks, and 2 to 3).
#[test]
fn a_checkpoint_restores_at_another_parallelism_exactly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("logs.jsonl");
    write_input(&input, 500_000);
    // A checkpoint every 5 ms: the first is taken mid-run, not as the
    // final one, even on a loaded machine.
    let args = |out: &Path, ck: &Path, p: usize| {
        let mut a = job_args(&input, out, ck, p);
        let last = a.len() - 1;
        a[last] = "5".into();
        a
    };
    for (from, to) in [(3, 2), (2, 3)] {
        let round = tmp.path().join(format!("{from}-{to}"));
        let (out, ck) = (round.join("stats"), round.join("checkpoints"));
        // Die once the first checkpoint is complete, before any sink
        // publishes it (it starts 5 ms in, long before the input ends;
        // under load a second one may come only at the end).
        let crashed = log_analysis()
            .args(args(&out, &ck, from))
            .env("BROOK_FAILPOINT", "after-manifest@1")
            .output()
            .expect("run");
        let err = String::from_utf8_lossy(&crashed.stderr);
        assert!(
            err.contains("failpoint 'after-manifest'"),
            "{from} -> {to}: the run did not die at the failpoint\n{err}"
        );
        let again = log_analysis()
            .args(args(&out, &ck, to))
            .output()
            .expect("run again");
        let out_text = String::from_utf8_lossy(&again.stdout);
        assert!(
            again.status.success(),
            "{from} -> {to}: {}",
            String::from_utf8_lossy(&again.stderr)
        );
        assert!(
            out_text.contains("Resuming from checkpoint 1") && !out_text.contains("the final one"),
            "{from} -> {to}: not resumed mid-run from checkpoint 1: {out_text}"
        );
        let comparison = block_on(brook_workload::oracle::compare(&input, &out)).expect("oracle");
        assert!(comparison.ok(), "{from} -> {to}: {comparison:?}");
    }
}

/// Ctrl-C with checkpoints: the job stops reading, fires nothing, takes a
/// stop checkpoint where it stopped and exits 130; run again, it resumes
/// exactly there: the two runs read the input once between them, and the
/// answer is exact.
#[cfg(unix)]
#[test]
fn an_interrupted_job_stops_at_a_checkpoint_and_resumes_reading_nothing_twice() {
    use std::io::{BufRead, BufReader};

    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("logs.jsonl");
    let events: u64 = 600_000;
    write_input(&input, events);
    let (out, ck) = (tmp.path().join("stats"), tmp.path().join("checkpoints"));
    let mut args = job_args(&input, &out, &ck, 2);
    // Checkpoints far apart: the stop checkpoint is what the rerun resumes
    // from.
    let last = args.len() - 1;
    args[last] = "60000".into();
    let mut child = log_analysis()
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the first line");
    assert!(line.starts_with("Running"), "{line}");
    std::thread::sleep(Duration::from_millis(300));
    let kill = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let o = crate::support::wait_within(child, 120);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    let read_first: u64 = err
        .split("Interrupted after reading ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of events read: {err}"));
    assert!(
        read_first < events,
        "the run was stopped before its end: {err}"
    );

    let again = log_analysis().args(&args).output().expect("run again");
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert!(text.contains("Resuming from checkpoint"), "{text}");
    let read_second: u64 = text
        .split("Read ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of events read: {text}"));
    assert_eq!(
        read_first + read_second,
        events,
        "the rerun reads exactly what the stopped run had not"
    );
    let comparison = block_on(brook_workload::oracle::compare(&input, &out)).expect("oracle");
    assert!(comparison.ok(), "{comparison:?}");
}

/// `brook crash-test` runs the job, kills it, runs it again until it
/// completes, then runs the check; a failing check fails it.
#[cfg(feature = "cli")]
#[test]
fn brook_crash_test_kills_restarts_and_checks() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = tmp.path().join("logs.jsonl");
    write_input(&input, 100_000);
    let (out, ck) = (tmp.path().join("stats"), tmp.path().join("checkpoints"));
    let job = log_analysis();
    let exe = job.get_program().to_str().expect("utf-8").to_string();
    let record = out.join("_brook_output.json");
    let run = |check: &str| {
        std::process::Command::new(env!("CARGO_BIN_EXE_brook"))
            .env("RUST_BACKTRACE", "0")
            .args([
                "crash-test",
                "--kills",
                "4",
                "--min-ms",
                "30",
                "--max-ms",
                "300",
            ])
            .args(["--check", check, "--"])
            .arg(&exe)
            .args(job_args(&input, &out, &ck, 1))
            .output()
            .expect("brook crash-test")
    };
    let ok = run(&format!("test -f '{}'", record.display()));
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(
        ok.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(text.contains("The job completed on run"), "{text}");
    let comparison = block_on(brook_workload::oracle::compare(&input, &out)).expect("oracle");
    assert!(comparison.ok(), "{comparison:?}");
    let failed = run("false");
    assert_eq!(failed.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failed.stderr).contains("the check failed"));
}
