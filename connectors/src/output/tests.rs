//! Tests of the output directory's lock, commit records and commits.

use super::*;

#[test]
fn a_second_lock_on_a_directory_is_refused_and_names_the_holder() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("out");
    let first = OutputLock::acquire(&out, "first-job").expect("first lock");
    let err = OutputLock::acquire(&out, "second-job").expect_err("second lock");
    assert!(matches!(err, Error::Config(_)), "{err}");
    let msg = err.to_string();
    assert!(msg.contains("first-job"), "{msg}");
    assert!(msg.contains(&std::process::id().to_string()), "{msg}");
    drop(first);
    OutputLock::acquire(&out, "third-job").expect("free again once dropped");
}

#[test]
fn a_file_is_not_an_output_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("f");
    fs::write(&file, "x").expect("write");
    let err = OutputLock::acquire(&file, "job").expect_err("a file");
    assert!(matches!(err, Error::Config(_)), "{err}");
    assert!(err.to_string().contains("not a directory"), "{err}");
}

#[test]
fn abandoned_in_progress_files_are_removed_and_nothing_else() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sub = dir.path().join("service=a");
    fs::create_dir_all(&sub).expect("mkdir");
    for f in [
        dir.path().join(".part-1-0-00000.parquet.inprogress"),
        sub.join(".part-1-1-00000.parquet.inprogress"),
        dir.path().join("part-1-0-00000.parquet"),
        dir.path().join("other.inprogress"),
        dir.path().join(".hidden"),
    ] {
        fs::write(&f, "x").expect("write");
    }
    assert_eq!(remove_abandoned(dir.path()).expect("clean"), 2);
    let mut left: Vec<String> = fs::read_dir(dir.path())
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [
            ".hidden",
            "other.inprogress",
            "part-1-0-00000.parquet",
            "service=a"
        ]
    );
    assert_eq!(fs::read_dir(&sub).expect("list").count(), 0);
}

/// Stages a finished file of run `run`, as a replacing sink does.
fn stage(dir: &Path, name: &str, body: &str) -> PathBuf {
    let done = dir.join(name);
    fs::create_dir_all(done.parent().expect("parent")).expect("mkdir");
    fs::write(in_progress_path(&done), body).expect("write");
    done
}

fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_replacing_commit_removes_only_the_files_the_earlier_run_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    fs::write(d.join("part-00000-from-spark.snappy.parquet"), "theirs").expect("write");
    let first = [
        stage(d, "part-a-0-00000.parquet", "a0"),
        stage(d, "part-a-1-00000.parquet", "a1"),
    ];
    assert!(commit_replacing(d, "j", "a", &first).expect("commit a"));
    assert_eq!(
        listing(d),
        [
            COMMIT_FILE,
            "part-00000-from-spark.snappy.parquet",
            "part-a-0-00000.parquet",
            "part-a-1-00000.parquet"
        ]
    );
    let second = [stage(d, "part-b-0-00000.parquet", "b0")];
    assert!(commit_replacing(d, "j", "b", &second).expect("commit b"));
    assert_eq!(
        listing(d),
        [
            COMMIT_FILE,
            "part-00000-from-spark.snappy.parquet",
            "part-b-0-00000.parquet"
        ]
    );
    let record = CommitRecord::read(d).expect("read").expect("a record");
    assert_eq!(record.files, ["part-b-0-00000.parquet"]);
    assert!(record.pending.is_empty());
    // A run with no output replaces nothing.
    assert!(!commit_replacing(d, "j", "c", &[]).expect("empty"));
    assert_eq!(
        CommitRecord::read(d).expect("read").expect("record").run,
        "b"
    );
}

#[test]
fn a_commit_left_half_way_is_completed_by_the_next_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let old = [stage(d, "part-a-0-00000.parquet", "a0")];
    commit_replacing(d, "j", "a", &old).expect("commit a");
    // The writer died after recording its intent and renaming one of
    // its two files.
    let new = [
        stage(d, "k=1/part-b-0-00000.parquet", "b0"),
        stage(d, "part-b-1-00000.parquet", "b1"),
    ];
    CommitRecord {
        version: 1,
        job: "j".into(),
        run: "b".into(),
        committed_ms: 1,
        files: vec!["part-a-0-00000.parquet".into()],
        pending: vec![
            "k=1/part-b-0-00000.parquet".into(),
            "part-b-1-00000.parquet".into(),
        ],
    }
    .write(d)
    .expect("intent");
    crate::publish::rename(&in_progress_path(&new[1]), &new[1], d).expect("rename");
    recover(d).expect("recover");
    assert_eq!(listing(d), [COMMIT_FILE, "k=1", "part-b-1-00000.parquet"]);
    assert_eq!(listing(&d.join("k=1")), ["part-b-0-00000.parquet"]);
    let record = CommitRecord::read(d).expect("read").expect("record");
    assert_eq!(
        record.files,
        ["k=1/part-b-0-00000.parquet", "part-b-1-00000.parquet"]
    );
}

#[test]
fn a_publish_cut_short_by_a_missing_file_names_it_and_can_be_repeated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut files = vec![
        stage(d, "part-a-0-00000.parquet", "a0"),
        d.join("part-a-1-00000.parquet"),
    ];
    let err = publish_staged(d, &files).expect_err("a file is missing");
    assert!(matches!(err, Error::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("part-a-1-00000.parquet"), "{err}");
    // Whatever the failed publish renamed, the publish repeated once the
    // missing file is staged counts as done, and nothing is lost.
    assert!(
        listing(d) == [".part-a-0-00000.parquet.inprogress"]
            || listing(d) == ["part-a-0-00000.parquet"],
        "{:?}",
        listing(d)
    );
    files[1] = stage(d, "part-a-1-00000.parquet", "a1");
    publish_staged(d, &files).expect("repeated");
    assert_eq!(
        listing(d),
        ["part-a-0-00000.parquet", "part-a-1-00000.parquet"]
    );
}

#[test]
fn a_discarded_run_leaves_no_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let staged = [stage(dir.path(), "part-a-0-00000.parquet", "a0")];
    discard(&staged).expect("discard");
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn commit_records_round_trip_and_refuse_other_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    assert_eq!(CommitRecord::read(dir.path()).expect("none"), None);
    let record = CommitRecord {
        version: 1,
        job: "j".into(),
        run: "r".into(),
        committed_ms: 5,
        files: vec![
            "part-r-0-00000.parquet".into(),
            "d=1/part-r-1-00000.parquet".into(),
        ],
        pending: Vec::new(),
    };
    record.write(dir.path()).expect("write");
    assert_eq!(CommitRecord::read(dir.path()).expect("read"), Some(record));
    fs::write(dir.path().join(COMMIT_FILE), "{\"x\":1}").expect("write");
    assert!(matches!(
        CommitRecord::read(dir.path()),
        Err(Error::Config(_))
    ));
}
