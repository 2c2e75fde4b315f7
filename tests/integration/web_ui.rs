//! The admin server's web UI in a real headless browser (Chromium from the
//! distribution's packages: `scripts/setup.sh --browser`). Behind a
//! switch, since CI machines have no browser: `BROOK_BROWSER_TESTS=1
//! cargo test --test integration web_ui`. It starts a job with a
//! deliberately slow operator and a Parquet table for the SQL box, loads
//! the page, lets its scripts run (and refresh) for a few seconds of
//! virtual time, and checks the page the browser built: every node of the
//! job drawn, the figures refreshed, and a SQL query's rows; then it saves
//! a screenshot (`target/brook-ui.png`, or `BROOK_UI_SCREENSHOT`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use brook::admin::AdminServer;
use brook::prelude::*;
use brook::sql::SqlEngine;
use serde::{Deserialize, Serialize};

use crate::support::admin::{raw, slow_job};

/// The switch.
const SWITCH: &str = "BROOK_BROWSER_TESTS";

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser", "google-chrome"]
        .iter()
        .find_map(|name| {
            let out = Command::new("which").arg(name).output().ok()?;
            out.status
                .success()
                .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
        })
}

/// A row of the table the SQL box queries.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Hits {
    service: String,
    hits: u64,
}

/// Writes the table `hits` to `dir` with a small job.
async fn write_table(dir: &Path) {
    let rows: Vec<Hits> = (0..5u64)
        .map(|i| Hits {
            service: format!("svc-{i:02}"),
            hits: 100 * (i + 1),
        })
        .collect();
    let flow = Dataflow::with_config("hits", crate::support::config(1));
    flow.source("rows", MemorySource::new(rows))
        .sink("parquet", ParquetSink::<Hits>::new(dir));
    flow.build()
        .expect("build")
        .run(CancellationToken::new())
        .await
        .expect("the table");
}

/// Runs the browser on `url` with `args`; returns its standard output.
fn browse(browser: &Path, url: &str, args: &[&str]) -> String {
    let out = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1400,1250",
            "--virtual-time-budget=5000",
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("the browser runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_web_ui_draws_the_running_job_refreshes_and_answers_sql() {
    if std::env::var(SWITCH).as_deref() != Ok("1") {
        eprintln!("web_ui: SKIPPED (set {SWITCH}=1, after scripts/setup.sh --browser)");
        return;
    }
    let browser = chromium().unwrap_or_else(|| {
        panic!("{SWITCH}=1 but no Chromium found: run scripts/setup.sh --browser")
    });
    let tmp = tempfile::tempdir().expect("tempdir");
    let table = tmp.path().join("hits");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        write_table(&table).await;
        let job = slow_job("ui-test");
        let engine = SqlEngine::with_memory_limit(64 << 20).expect("engine");
        let admin = AdminServer::start_with_sql(
            "127.0.0.1:0".parse().expect("addr"),
            job.metrics(),
            engine,
            vec![("hits".into(), table.clone())],
        )
        .await
        .expect("admin");
        let addr = admin.local_addr();
        let shutdown = CancellationToken::new();
        let running = job.start(shutdown.clone()).expect("start");
        tokio::time::sleep(Duration::from_millis(2200)).await;

        let query = "SELECT service, hits FROM hits WHERE hits >= 300 ORDER BY hits DESC";
        let url = format!(
            "http://{addr}/#sql={}",
            query
                .replace(' ', "%20")
                .replace('>', "%3E")
                .replace('=', "%3D")
        );
        let screenshot = std::env::var_os("BROOK_UI_SCREENSHOT").map_or_else(
            || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/brook-ui.png"),
            PathBuf::from,
        );
        let (dom, shot) = tokio::task::spawn_blocking(move || {
            let dom = browse(&browser, &url, &["--dump-dom"]);
            let shot = format!("--screenshot={}", screenshot.display());
            browse(&browser, &url, &[&shot]);
            (dom, screenshot)
        })
        .await
        .expect("browser");

        for node in ["logs", "keep-all", "slow", "out"] {
            assert!(
                dom.contains(&format!("data-node=\"{node}\"")),
                "the graph lacks node {node}:\n{dom}"
            );
        }
        let refreshes: u32 = dom
            .split("data-refreshes=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(refreshes >= 2, "the figures did not refresh: {refreshes}");
        assert!(
            dom.contains("node 'slow' is the bottleneck"),
            "no advice:\n{dom}"
        );
        for row in ["<td>svc-04</td><td>500</td>", "<td>svc-02</td><td>300</td>"] {
            assert!(dom.contains(row), "no SQL row {row}:\n{dom}");
        }
        assert!(!dom.contains("<td>svc-01</td>"), "the query's filter held");
        assert!(dom.contains("3 rows"), "{dom}");
        let size = std::fs::metadata(&shot).map(|m| m.len()).unwrap_or(0);
        assert!(size > 10_000, "no screenshot at {}", shot.display());

        shutdown.cancel();
        running.wait().await.expect("the job stops");
        admin.stop().await;
    });
}

fn post_sql(
    addr: std::net::SocketAddr,
    host: &str,
    origin: Option<&str>,
    sql: &str,
) -> (u16, String) {
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    raw(
        addr,
        &format!(
            "POST /api/sql HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Type: text/plain\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{sql}",
            sql.len()
        ),
    )
}

/// The SQL box answers the server's own page, and only queries: a foreign
/// Origin, a Host that is not the server (DNS rebinding), too much SQL and
/// anything but a query are refused. Needs no browser.
#[test]
fn the_sql_endpoint_answers_its_own_page_and_refuses_the_rest() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let table = tmp.path().join("hits");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        write_table(&table).await;
        let flow = Dataflow::with_config("sql-test", crate::support::config(1));
        flow.source("rows", MemorySource::new(vec![1u64]))
            .sink("out", CollectSink::new());
        let job = flow.build().expect("build");
        let engine = SqlEngine::with_memory_limit(64 << 20).expect("engine");
        let admin = AdminServer::start_with_sql(
            "127.0.0.1:0".parse().expect("addr"),
            job.metrics(),
            engine,
            vec![("hits".into(), table.clone())],
        )
        .await
        .expect("admin");
        let addr = admin.local_addr();
        let host = addr.to_string();
        tokio::task::spawn_blocking(move || {
            let own = format!("http://{host}");
            let (code, body) = post_sql(
                addr,
                &host,
                Some(&own),
                "SELECT sum(hits) AS total FROM hits",
            );
            assert_eq!(code, 200, "{body}");
            let v: serde_json::Value = serde_json::from_str(&body).expect("json");
            assert_eq!(v["rows"][0]["total"], 1500, "{body}");
            assert_eq!(
                post_sql(
                    addr,
                    &format!("localhost:{}", addr.port()),
                    None,
                    "SELECT 1"
                )
                .0,
                200,
                "localhost at the port is the server too"
            );
            let (code, body) = post_sql(addr, &host, Some("http://evil.example"), "SELECT 1");
            assert_eq!(code, 403, "{body}");
            assert!(body.contains("foreign Origin"), "{body}");
            let (code, body) = post_sql(
                addr,
                "evil.example:80",
                Some("http://evil.example:80"),
                "SELECT 1",
            );
            assert_eq!(code, 403, "{body}");
            assert!(body.contains("DNS rebinding"), "{body}");
            let big = format!("SELECT 1 -- {}", "x".repeat(20_000));
            assert_eq!(post_sql(addr, &host, None, &big).0, 413);
            for write in [
                "DROP TABLE hits",
                "CREATE TABLE t AS SELECT 1",
                "COPY hits TO '/tmp/x.csv'",
            ] {
                let (code, body) = post_sql(addr, &host, None, write);
                assert_eq!(code, 400, "{write}: {body}");
            }
        })
        .await
        .expect("checks");
        admin.stop().await;
    });
}
