//! The main job (`examples/log_analysis.rs`) as a user runs it, as a
//! process: earlier results survive every failed or interrupted run, a
//! second writer is refused, bad lines follow the chosen policy, and a
//! closed pipe ends it quietly.
//!
//! These run the example's binary, which `cargo test` builds with the
//! tests; run alone (`cargo test --test integration`), build it first
//! (`cargo build --example log_analysis`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use brook::connectors::output::{CommitRecord, OutputLock};
use brook::sql::SqlEngine;

use crate::logs_window::fixture;
use crate::support::block_on;

/// The example's binary, built by `cargo test` beside the test binaries.
pub(crate) fn log_analysis() -> Command {
    let mut path = std::env::current_exe().expect("test binary");
    path.pop();
    if path.ends_with("deps") {
        path.pop();
    }
    let exe = path
        .join("examples")
        .join(format!("log_analysis{}", std::env::consts::EXE_SUFFIX));
    assert!(exe.is_file(), "{} is not built", exe.display());
    let mut cmd = Command::new(exe);
    cmd.env("RUST_BACKTRACE", "0").env_remove("RUST_LOG");
    cmd
}

fn run(args: &[&str]) -> Output {
    log_analysis()
        .args(args)
        .output()
        .expect("run log_analysis")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The Parquet files the directory's commit record lists.
fn committed(out: &Path) -> Vec<String> {
    CommitRecord::read(out)
        .expect("read")
        .map(|r| r.files)
        .unwrap_or_default()
}

/// `count(*)` of the table in `dir`, as `brook sql` would read it.
fn rows(dir: &Path) -> i64 {
    block_on(async {
        let engine = SqlEngine::new().expect("engine");
        engine.register_parquet("t", dir).await.expect("register");
        let csv = engine
            .query("SELECT count(*) FROM t")
            .await
            .expect("query")
            .format(brook::sql::OutputFormat::Csv)
            .expect("csv");
        csv.lines().nth(1).expect("a row").parse().expect("a count")
    })
}

/// The fixture with one bad line appended, in `dir`.
fn with_bad_last_line(dir: &Path) -> PathBuf {
    let mut text = std::fs::read_to_string(fixture("logs_3k.jsonl")).expect("fixture");
    text.push_str("{\"ts\": oops\n");
    let path = dir.join("bad.jsonl");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn failed_runs_keep_the_earlier_results_and_a_second_writer_is_refused() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let out_arg = out.to_str().expect("utf-8");
    let first = run(&["--events", "30000", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = committed(&out);
    assert!(!before.is_empty());
    let rows_before = rows(&out);

    // A typo in the input, parallelism 0, a bad last line: each fails,
    // naming what is wrong, and the results stay.
    let bad = with_bad_last_line(tmp.path());
    for (args, says) in [
        (
            vec!["--input", "/no/such/logs.jsonl"],
            "no file matches /no/such/logs.jsonl".to_string(),
        ),
        (vec!["--parallelism", "0"], "parallelism".to_string()),
        (
            vec!["--input", bad.to_str().expect("utf-8")],
            format!("{}:3001", bad.display()),
        ),
    ] {
        let mut all = args.clone();
        all.extend(["--out", out_arg]);
        let o = run(&all);
        assert_eq!(o.status.code(), Some(1), "{args:?}");
        let err = text(&o.stderr);
        assert!(err.contains(&says), "{args:?}: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(committed(&out), before, "{args:?} changed the results");
        assert_eq!(rows(&out), rows_before);
    }

    // Another job holding the directory: refused, naming the lock.
    let lock = OutputLock::acquire(&out, "someone-else").expect("lock");
    let o = run(&["--events", "1000", "--out", out_arg]);
    assert_eq!(o.status.code(), Some(1));
    let err = text(&o.stderr);
    assert!(
        err.contains("is being written by job 'someone-else'"),
        "{err}"
    );
    drop(lock);
    assert_eq!(committed(&out), before);

    // A run that succeeds replaces them.
    let o = run(&["--events", "1000", "--out", out_arg]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let after = committed(&out);
    assert!(!after.is_empty() && after.iter().all(|f| !before.contains(f)));
}

#[test]
fn bad_lines_follow_the_policy_and_every_line_is_accounted_for() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let bad = with_bad_last_line(tmp.path());
    let dead = tmp.path().join("dead");
    let out = tmp.path().join("stats");
    let o = run(&[
        "--input",
        bad.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--on-bad-line",
        "dead-letter",
        "--dead-letters",
        dead.to_str().expect("utf-8"),
        "--parallelism",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let said = text(&o.stdout);
    // 3,000 events of which 1,219 are DEBUG (the fixture's expected answer
    // counts the other 1,781), none late, and the bad line.
    assert!(
        said.contains("Read 3001 events")
            && said.contains("1781 counted in windows")
            && said.contains("1219 DEBUG left out")
            && said.contains("0 late")
            && said.contains("1 dead-lettered"),
        "{said}"
    );
    assert_eq!(rows(&dead), 1, "the bad line, queryable");
    let o = run(&[
        "--input",
        bad.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
        "--on-bad-line",
        "drop",
    ]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("1 bad lines dropped"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn a_closed_pipe_ends_it_quietly() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let mut child = log_analysis()
        .args(["--events", "20000", "--out", out.to_str().expect("utf-8")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    // `| head -1`: read one line, then close the pipe.
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut first = String::new();
    stdout.read_line(&mut first).expect("a line");
    drop(stdout);
    let o = child.wait_with_output().expect("wait");
    let err = text(&o.stderr);
    assert!(o.status.success(), "{:?}: {err}", o.status);
    assert!(
        !err.contains("panicked") && !err.contains("Broken pipe"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn an_interrupted_run_says_so_writes_nothing_and_exits_130() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let out_arg = out.to_str().expect("utf-8");
    let first = run(&["--events", "20000", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = committed(&out);

    // Far more events than it can make before the interrupt.
    let mut child = log_analysis()
        .args(["--events", "10000000000", "--out", out_arg])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("the first line");
    assert!(line.starts_with("Running"), "{line}");
    let kill = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(kill.success());
    let o = crate::support::wait_within(child, 120);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "{err}");
    assert!(
        err.contains("Interrupted after reading") && err.contains("of about 10000000000"),
        "{err}"
    );
    assert_eq!(
        committed(&out),
        before,
        "an interrupted run replaced the results"
    );
    let hidden: Vec<_> = std::fs::read_dir(&out)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".inprogress"))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
}

#[test]
fn an_event_from_the_year_2100_is_refused_and_the_answer_stays_exact() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut lines = std::fs::read_to_string(fixture("logs_3k.jsonl")).expect("fixture");
    // A broken clock: one event dated 2100, first in the file.
    let future = r#"{"ts":4102444800000,"level":"INFO","service":"svc-01","host":"host-001","status":200,"latency_ms":1.5,"message":"GET / from the future"}"#;
    lines.insert_str(0, &format!("{future}\n"));
    let input = tmp.path().join("future.jsonl");
    std::fs::write(&input, lines).expect("write");
    for p in ["1", "2", "4"] {
        let out = tmp.path().join(format!("stats-{p}"));
        let o = run(&[
            "--input",
            input.to_str().expect("utf-8"),
            "--out",
            out.to_str().expect("utf-8"),
            "--parallelism",
            p,
        ]);
        assert!(o.status.success(), "{}", text(&o.stderr));
        let said = text(&o.stdout);
        assert!(
            said.contains("1781 counted in windows")
                && said.contains("0 late")
                && said.contains("1 refused for a time too far ahead"),
            "parallelism {p}: {said}"
        );
        // The library's warning reaches the user, once.
        let warned = text(&o.stderr);
        assert_eq!(warned.matches("was rejected").count(), 1, "{warned}");
        let c = block_on(brook_workload::oracle::compare(
            &fixture("logs_3k.jsonl"),
            &out,
        ))
        .expect("compare");
        assert!(c.ok(), "parallelism {p}: {c:?}");
    }
}

#[test]
fn an_input_that_reads_as_empty_says_so_and_keeps_the_results() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("stats");
    let out_arg = out.to_str().expect("utf-8");
    let first = run(&["--events", "5000", "--out", out_arg]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let before = committed(&out);
    let empty = tmp.path().join("empty.jsonl");
    std::fs::write(&empty, "").expect("write");
    let o = run(&["--input", empty.to_str().expect("utf-8"), "--out", out_arg]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    let said = text(&o.stdout);
    assert!(said.contains("The input holds no events"), "{said}");
    assert!(
        !said.contains("Which services"),
        "no answer over nothing: {said}"
    );
    assert_eq!(committed(&out), before);
}
