//! The admin server of a running job: its health and readiness, the job's
//! graph and rates as JSON, Prometheus metrics, and the bottleneck advice
//! naming a deliberately slow operator.

use std::time::Duration;

use brook::admin::AdminServer;
use brook::prelude::*;

use crate::support::admin::{get, request, slow_job};

#[test]
fn the_admin_server_shows_the_job_and_names_the_slow_operator() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let job = slow_job("admin-test");
        let admin = AdminServer::start("127.0.0.1:0".parse().expect("addr"), job.metrics())
            .await
            .expect("admin");
        let addr = admin.local_addr();
        assert!(addr.ip().is_loopback());
        let shutdown = CancellationToken::new();
        let running = job.start(shutdown.clone()).expect("start");
        // Rates need two samples, a second apart: the checks wait for the
        // advice to name a node (at least 2 s, longer on a busy machine).
        tokio::time::sleep(Duration::from_millis(2000)).await;

        let checks = tokio::task::spawn_blocking(move || {
            assert_eq!(get(addr, "/healthz"), (200, "ok\n".into()));
            assert_eq!(get(addr, "/readyz").0, 200);
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            let job = loop {
                let (code, body) = get(addr, "/api/job");
                assert_eq!(code, 200, "{body}");
                let job: serde_json::Value = serde_json::from_str(&body).expect("json");
                let advised = job["advice"]["node"].is_string()
                    && job["nodes"][2]["rho"].as_f64().is_some_and(|rho| rho > 0.5);
                if advised || std::time::Instant::now() > deadline {
                    break job;
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            let names: Vec<&str> = job["nodes"]
                .as_array()
                .expect("nodes")
                .iter()
                .filter_map(|n| n["name"].as_str())
                .collect();
            assert_eq!(names, ["logs", "keep-all", "slow", "out"]);
            let edges = job["edges"].as_array().expect("edges");
            assert!(
                edges.iter().any(|e| e["from"] == "keep-all"
                    && e["to"] == "slow"
                    && e["partitioning"] == "rebalance"),
                "{edges:?}"
            );
            let slow = &job["nodes"][2];
            assert_eq!(slow["parallelism"], 2);
            assert!(slow["rho"].as_f64().expect("rho") > 0.5, "{slow}");
            assert!(slow["instances"][0]["mu"].as_f64().is_some(), "{slow}");
            let advice = &job["advice"];
            eprintln!("advice: {}", advice["message"]);
            assert_eq!(advice["node"], "slow", "{advice}");
            assert!(
                advice["suggested_parallelism"].as_u64().expect("suggested") > 2,
                "{advice}"
            );

            let (code, text) = get(addr, "/metrics");
            assert_eq!(code, 200);
            for needle in [
                "brook_node_records_in_total{job=\"admin-test\",node=\"slow\",kind=\"operator\",instance=\"0\"}",
                "brook_node_utilisation{job=\"admin-test\",node=\"slow\"",
                "brook_node_arrival_rate{",
                "brook_node_service_rate{",
                "brook_node_queue_length{",
                "brook_node_backpressure_seconds_total{",
                "brook_bottleneck_suggested_parallelism{job=\"admin-test\",node=\"slow\"}",
            ] {
                assert!(text.contains(needle), "no {needle} in\n{text}");
            }
            // Only reads: other methods, bodies and unknown paths are refused.
            assert_eq!(request(addr, "POST", "/api/job", "Content-Length: 0\r\n").0, 405);
            assert_eq!(request(addr, "GET", "/api/job", "Content-Length: 5\r\n").0, 413);
            assert_eq!(get(addr, "/nothing").0, 404);

            // The terminal view reads the same.
            #[cfg(feature = "cli")]
            {
                let top = std::process::Command::new(env!("CARGO_BIN_EXE_brook"))
                    .args(["top", "--once", "--admin", &addr.to_string()])
                    .output()
                    .expect("brook top");
                let text = String::from_utf8_lossy(&top.stdout);
                assert!(top.status.success(), "{}", String::from_utf8_lossy(&top.stderr));
                assert!(text.contains("job admin-test: running"), "{text}");
                for node in ["logs", "keep-all", "slow", "out"] {
                    assert!(text.contains(node), "{text}");
                }
                assert!(text.contains("node 'slow' is the bottleneck"), "{text}");
            }
        });
        checks.await.expect("checks");

        shutdown.cancel();
        running.wait().await.expect("the job stops");
        admin.set_state("stopped");
        let (code, body) = tokio::task::spawn_blocking(move || get(addr, "/readyz"))
            .await
            .expect("readyz");
        assert_eq!((code, body.as_str()), (503, "stopped\n"));
        admin.stop().await;
    });
}
