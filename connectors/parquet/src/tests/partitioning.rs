//! Partition directories: Hive-style levels, and values made safe.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_by_date_and_field_are_hive_directories_holding_their_rows() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let input = stats(600);
    let sink = ParquetSink::<Stat>::new(tmp.path())
        .partition_by_date(|s| s.window_start)
        .partition_by_field("service", |s: &Stat| s.service.clone());
    run(input.clone(), sink, 2).await.expect("run");
    let all = read_all(tmp.path());
    let mut dirs: Vec<&str> = all
        .iter()
        .map(|(n, _)| n.rsplit_once('/').expect("dir").0)
        .collect();
    dirs.dedup();
    let mut expected = Vec::new();
    for date in ["2023-11-14", "2023-11-15", "2023-11-16"] {
        for svc in 0..4 {
            expected.push(format!("date={date}/service=svc-{svc:02}"));
        }
    }
    assert_eq!(dirs, expected);
    let mut values = Vec::new();
    for (name, r) in all {
        for s in &r.values {
            let days = (s.window_start - T0) / DAY_MS;
            let date = format!("2023-11-{}", 14 + days);
            assert!(
                name.starts_with(&format!("date={date}/service={}/", s.service)),
                "{name}"
            );
        }
        values.extend(r.values);
    }
    assert_eq!(sorted(values), input);
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Named {
    name: String,
    n: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_values_cannot_leave_or_hide_the_directory() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let out = tmp.path().join("out");
    let names = ["a/b", "..", "", ".hidden", "x=1"];
    let input: Vec<Named> = (0..5)
        .map(|n| Named {
            name: names[n].into(),
            n: n as u32,
        })
        .collect();
    let sink =
        ParquetSink::<Named>::new(&out).partition_by_field("name", |v: &Named| v.name.clone());
    run(input.clone(), sink, 1).await.expect("run");
    let paths = ParquetSink::<Named>::new(&out).partition_by(|v: &Named| format!("../{}", v.name));
    run(input, paths, 1).await.expect("run");
    assert_eq!(files(tmp.path()).len(), 10, "nothing outside out/");
    let mut dirs: Vec<String> = published(&out)
        .iter()
        .map(|n| n.rsplit_once('/').expect("dir").0.to_string())
        .collect();
    dirs.sort();
    let expected = [
        "%2E.",
        "%2E./%2E.",
        "%2E./%2Ehidden",
        "%2E./a/b",
        "%2E./x=1",
        "name=..",
        "name=.hidden",
        "name=__HIVE_DEFAULT_PARTITION__",
        "name=a%2Fb",
        "name=x%3D1",
    ];
    assert_eq!(dirs, expected);
}
