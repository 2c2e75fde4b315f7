//! `brook top`: a running job's nodes and their rates, refreshed in the
//! terminal, read from the job's admin server (`/api/job`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;

#[derive(clap::Args, Debug)]
pub(crate) struct TopArgs {
    /// The job's admin server (its `--admin`): HOST:PORT, or a port on
    /// 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1:8686")]
    admin: String,
    /// Seconds between refreshes.
    #[arg(long, default_value_t = 1.0)]
    every: f64,
    /// Print the figures once and exit (no screen clearing), for scripts.
    #[arg(long)]
    once: bool,
}

/// Shows the job until it ends (its server goes away) or Ctrl-C.
pub(crate) fn run(args: TopArgs) -> anyhow::Result<()> {
    let addr = address(&args.admin)?;
    let every = Duration::from_secs_f64(args.every.max(0.1));
    loop {
        let job = fetch(addr)?;
        let text = render(&job);
        let mut out = std::io::stdout().lock();
        if args.once {
            out.write_all(text.as_bytes())?;
            return Ok(());
        }
        // Clear the screen and go home, then the figures.
        write!(out, "\x1b[2J\x1b[H{text}")?;
        out.flush()?;
        drop(out);
        std::thread::sleep(every);
    }
}

fn address(s: &str) -> anyhow::Result<SocketAddr> {
    if let Ok(port) = s.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.to_socket_addrs()
        .with_context(|| format!("--admin '{s}'"))?
        .next()
        .with_context(|| format!("--admin '{s}' names no address"))
}

/// `GET /api/job`, parsed.
fn fetch(addr: SocketAddr) -> anyhow::Result<Value> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).with_context(|| {
        format!(
            "connecting to the admin server at {addr} (is the job running with --admin {addr}?)"
        )
    })?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    write!(
        s,
        "GET /api/job HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut text = String::new();
    s.read_to_string(&mut text)
        .with_context(|| format!("reading from {addr}"))?;
    let (head, body) = text
        .split_once("\r\n\r\n")
        .with_context(|| format!("{addr} answered no HTTP"))?;
    if !head.starts_with("HTTP/1.1 200") {
        bail!(
            "{addr} answered: {}",
            head.lines().next().unwrap_or_default()
        );
    }
    serde_json::from_str(body).with_context(|| format!("{addr}/api/job is not a job's JSON"))
}

/// A rate in people's units.
fn rate(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v >= 1e6 => format!("{:.2}M", v / 1e6),
        Some(v) if v >= 1e3 => format!("{:.1}k", v / 1e3),
        Some(v) => format!("{v:.0}"),
    }
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{:.0}%", v * 100.0))
}

/// The job as a table.
fn render(job: &Value) -> String {
    let mut s = String::new();
    let ck = &job["checkpoints"];
    s.push_str(&format!(
        "job {}: {}, {:.1} s; checkpoints {} (newest {:.1} ms, {} bytes)\n\n",
        job["job"].as_str().unwrap_or("?"),
        job["state"].as_str().unwrap_or("?"),
        job["elapsed_s"].as_f64().unwrap_or(0.0),
        ck["completed"].as_u64().unwrap_or(0),
        ck["last_duration_ms"].as_f64().unwrap_or(0.0),
        ck["last_bytes"].as_u64().unwrap_or(0),
    ));
    s.push_str(&format!(
        "{:<20} {:<8} {:>3} {:>9} {:>9} {:>5} {:>6} {:>7} {:>9}\n",
        "NODE", "KIND", "P", "λ/s", "μ/s", "ρ", "QUEUE", "BLOCKED", "WM LAG"
    ));
    for n in job["nodes"].as_array().into_iter().flatten() {
        let instances = n["instances"].as_array().cloned().unwrap_or_default();
        let mus: Vec<f64> = instances.iter().filter_map(|i| i["mu"].as_f64()).collect();
        let mu = (!mus.is_empty()).then(|| mus.iter().sum::<f64>());
        let lag = n["watermark_lag_ms"]
            .as_i64()
            .map_or("-".into(), |l| format!("{:.1} s", l as f64 / 1e3));
        s.push_str(&format!(
            "{:<20} {:<8} {:>3} {:>9} {:>9} {:>5} {:>6} {:>7} {:>9}\n",
            n["name"].as_str().unwrap_or("?"),
            n["kind"].as_str().unwrap_or("?"),
            n["parallelism"].as_u64().unwrap_or(0),
            rate(n["lambda"].as_f64()),
            rate(mu),
            percent(n["rho"].as_f64()),
            n["queue_len"].as_u64().unwrap_or(0),
            percent(n["blocked"].as_f64()),
            lag,
        ));
    }
    if let Some(m) = job["advice"]["message"].as_str() {
        s.push_str(&format!("\n{m}\n"));
    }
    s
}
