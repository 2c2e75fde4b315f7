//! The admin server of a running job: health, metrics and the job's shape
//! over HTTP, on the loopback address unless told otherwise.
//!
//! | path | what |
//! |---|---|
//! | `/` | the web UI: the graph with live λ and ρ per node (coloured by ρ), backpressure, watermarks, checkpoint history, the advice, and a SQL box |
//! | `/metrics` | Prometheus (OpenMetrics) text: each node instance's counters, λ, μ, ρ, queue length, backpressure, watermark and its lag; checkpoints; the bottleneck |
//! | `/api/job` | the same as JSON, with the graph (nodes, edges, partitioning, parallelism) and the bottleneck advice ([`JobStatus`]) |
//! | `/healthz` | `200 ok` while the process serves |
//! | `/readyz` | `200 ready` while the job runs, `503` before and after |
//! | `POST /api/sql` | a read-only query over the job's sinks (the body is the SQL), as JSON; `GET /api/sql/tables` lists the tables |
//!
//! A sampler reads the job's counters every second and keeps the rates of
//! the last interval, read as a queue: λ, the records per second arriving
//! at a node instance; μ, the records it handles per second of its own
//! work; ρ = λ/μ, the share of the time it is busy; and its queue length.
//! Every 30 s it logs the bottleneck advice: the task (chain) with the
//! highest ρ, its busiest node, and the parallelism that would bring it
//! under 0.7.
//!
//! # Security
//! Only `GET` and `HEAD`, but for the SQL endpoint; a `GET` with a body is
//! refused (413), headers are limited to 16 KiB and must arrive within
//! 10 s, and at most 64 connections are served at once. Nothing changes
//! the job. The SQL endpoint takes at most 16 KiB of SQL, runs queries
//! only (`brook::sql` refuses DDL, DML, `COPY`, file paths and URLs) within
//! the engine's memory and time limits, returns at most 1,000 rows, and
//! refuses a request whose `Origin` is not the server's own or whose
//! `Host` is not the address it listens on (another site's page, or DNS
//! rebinding, cannot make a browser run queries).

mod prometheus;
pub mod status;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use brook_core::metrics::JobMetrics;
use brook_core::{CancellationToken, Error, Result};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

#[cfg(feature = "sql")]
mod sql;
#[cfg(feature = "sql")]
type SqlTables = sql::Tables;
#[cfg(not(feature = "sql"))]
type SqlTables = std::convert::Infallible;

pub use status::{Advice, JobStatus, TARGET_RHO};

/// The default address: loopback only.
pub const DEFAULT_ADDR: &str = "127.0.0.1:8686";

/// How often the sampler reads the counters.
const SAMPLE_EVERY: Duration = Duration::from_secs(1);
/// How often the advice is logged.
const ADVICE_EVERY: Duration = Duration::from_secs(30);
/// The most connections served at once.
const MAX_CONNECTIONS: usize = 64;

/// The web UI, built into the binary.
const UI: &str = include_str!("ui.html");
/// The most SQL a request may carry.
#[cfg(feature = "sql")]
const MAX_SQL: usize = 16 * 1024;
/// The most rows a query returns to the UI.
#[cfg(feature = "sql")]
const MAX_ROWS: usize = 1000;

/// What the handlers share.
struct Shared {
    addr: SocketAddr,
    metrics: JobMetrics,
    status: Arc<RwLock<Option<JobStatus>>>,
    registry: prometheus_client::registry::Registry,
    state: RwLock<String>,
    #[cfg(feature = "sql")]
    sql: Option<sql::Tables>,
}

/// A running admin server; it stops when [`stop`](Self::stop)ped or
/// dropped.
pub struct AdminServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
    tasks: tokio::task::JoinSet<()>,
}

impl std::fmt::Debug for AdminServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminServer")
            .field("addr", &self.addr)
            .finish()
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl AdminServer {
    /// Listens on `addr` (port 0: any free port) for the job whose metrics
    /// these are, and starts the sampler. Call inside a tokio runtime.
    ///
    /// # Errors
    /// [`Error::Io`] when the address cannot be bound.
    pub async fn start(addr: SocketAddr, metrics: JobMetrics) -> Result<AdminServer> {
        Self::start_inner(addr, metrics, None).await
    }

    /// As [`start`](Self::start), with a SQL box over the job's sinks: the
    /// Parquet directories `tables` (name, directory), queried with
    /// `engine` (its memory and time limits hold). A table is registered
    /// when it is first queried, once its sink has written a file.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    #[cfg(feature = "sql")]
    pub async fn start_with_sql(
        addr: SocketAddr,
        metrics: JobMetrics,
        engine: crate::sql::SqlEngine,
        tables: Vec<(String, std::path::PathBuf)>,
    ) -> Result<AdminServer> {
        Self::start_inner(addr, metrics, Some(sql::Tables::new(engine, tables))).await
    }

    async fn start_inner(
        addr: SocketAddr,
        metrics: JobMetrics,
        #[cfg_attr(not(feature = "sql"), allow(unused_variables))] sql: Option<SqlTables>,
    ) -> Result<AdminServer> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::io(format_args!("admin server: binding {addr}"), e))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::io("admin server: reading its address", e))?;
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "The admin server listens beyond this machine: anyone who can reach the address can read the job's metrics.");
        }
        let status = Arc::new(RwLock::new(None));
        let shared = Arc::new(Shared {
            addr,
            #[cfg(feature = "sql")]
            sql,
            registry: prometheus::registry(metrics.clone(), status.clone()),
            metrics,
            status,
            state: RwLock::new("running".into()),
        });
        let stop = CancellationToken::new();
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(sample(shared.clone(), stop.clone()));
        tasks.spawn(serve(listener, shared.clone(), stop.clone()));
        tracing::info!(%addr, "Admin server: http://{addr}/ (metrics at /metrics, the job at /api/job).");
        Ok(AdminServer {
            addr,
            shared,
            stop,
            tasks,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sets the job's state as `/api/job` and `/readyz` report it:
    /// `running`, `completed`, `stopped` or `failed`.
    pub fn set_state(&self, state: &str) {
        *self.shared.state.write().unwrap_or_else(|p| p.into_inner()) = state.to_string();
    }

    /// The job's status now (rates over the last sampling interval).
    pub fn status(&self) -> JobStatus {
        current(&self.shared)
    }

    /// Stops serving and waits for the server's tasks.
    pub async fn stop(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// The newest status, or one computed now if the sampler has none yet.
fn current(shared: &Shared) -> JobStatus {
    let state = shared
        .state
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let kept = shared
        .status
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    match kept {
        Some(mut s) => {
            s.state = state;
            s
        }
        None => status::status(
            None,
            &shared.metrics.snapshot(),
            &state,
            brook_core::time::now_ms(),
        ),
    }
}

/// Reads the counters every second into a status; logs the advice every
/// 30 s.
async fn sample(shared: Arc<Shared>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut prev = None;
    let mut last_advice = tokio::time::Instant::now();
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = shared.metrics.snapshot();
        let state = shared
            .state
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let s = status::status(prev.as_ref(), &now, &state, brook_core::time::now_ms());
        if last_advice.elapsed() >= ADVICE_EVERY {
            last_advice = tokio::time::Instant::now();
            if let Some(a) = &s.advice {
                tracing::info!(job = %s.job, node = %a.node, rho = a.rho, parallelism = a.parallelism, suggested = a.suggested_parallelism, "Bottleneck: {}.", a.message);
            }
        }
        *shared.status.write().unwrap_or_else(|p| p.into_inner()) = Some(s);
        prev = Some(now);
    }
}

/// Accepts connections until stopped.
async fn serve(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else { continue };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            // Too many at once: close this one.
            continue;
        };
        let (shared, stop) = (shared.clone(), stop.clone());
        connections.spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |req| {
                let shared = shared.clone();
                async move { Ok::<_, Infallible>(handle(shared, req).await) }
            });
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .max_buf_size(16 * 1024);
            let conn = http.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                () = stop.cancelled() => conn.as_mut().graceful_shutdown(),
            }
        });
    }
    connections.shutdown().await;
}

fn reply(code: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = code;
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r.headers_mut().insert(
        hyper::header::CACHE_CONTROL,
        hyper::header::HeaderValue::from_static("no-store"),
    );
    r
}

const TEXT: &str = "text/plain; charset=utf-8";

/// Answers one request.
async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() == Method::POST && req.uri().path() == "/api/sql" {
        return post_sql(&shared, req).await;
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET and HEAD\n");
    }
    let has_body = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || req.headers().contains_key(hyper::header::TRANSFER_ENCODING);
    if has_body {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            TEXT,
            "requests take no body\n",
        );
    }
    match req.uri().path() {
        "/" | "/index.html" => reply(StatusCode::OK, "text/html; charset=utf-8", UI),
        "/api/sql/tables" => {
            #[cfg(feature = "sql")]
            let tables = shared
                .sql
                .as_ref()
                .map(sql::Tables::names)
                .unwrap_or_default();
            #[cfg(not(feature = "sql"))]
            let tables: Vec<String> = Vec::new();
            json(StatusCode::OK, &serde_json::json!({ "tables": tables }))
        }
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n"),
        "/readyz" => {
            let state = shared
                .state
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            if state == "running" {
                reply(StatusCode::OK, TEXT, "ready\n")
            } else {
                reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, format!("{state}\n"))
            }
        }
        "/metrics" => match prometheus::encode(&shared.registry) {
            Ok(text) => reply(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            ),
            Err(_) => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, "encoding failed\n"),
        },
        "/api/job" => match serde_json::to_vec(&current(&shared)) {
            Ok(json) => reply(StatusCode::OK, "application/json", json),
            Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
        },
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found\n"),
    }
}

fn json(code: StatusCode, value: &serde_json::Value) -> Response<Full<Bytes>> {
    match serde_json::to_vec(value) {
        Ok(body) => reply(code, "application/json", body),
        Err(e) => reply(StatusCode::INTERNAL_SERVER_ERROR, TEXT, format!("{e}\n")),
    }
}

fn refuse(code: StatusCode, why: &str) -> Response<Full<Bytes>> {
    json(code, &serde_json::json!({ "error": why }))
}

/// Whether a request that runs a query comes from the server's own page:
/// its `Host` is the address the server listens on (or `localhost` at its
/// port, on a loopback server), and its `Origin`, if any, is that host.
fn same_origin(addr: SocketAddr, req: &Request<Incoming>) -> Result<(), &'static str> {
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_ascii_lowercase)
    };
    let host = header(hyper::header::HOST).ok_or("a request without a Host header")?;
    let port = addr.port();
    let mut hosts = vec![addr.to_string()];
    if addr.ip().is_loopback() {
        hosts.push(format!("localhost:{port}"));
        hosts.push(format!("127.0.0.1:{port}"));
        hosts.push(format!("[::1]:{port}"));
    } else if addr.ip().is_unspecified() {
        // Bound to every interface on purpose: any host at this port.
        if !host.ends_with(&format!(":{port}")) {
            return Err("a Host at another port");
        }
        hosts.push(host.clone());
    }
    if !hosts.contains(&host) {
        return Err("a Host that is not this server's address (DNS rebinding?)");
    }
    match header(hyper::header::ORIGIN) {
        None => Ok(()),
        Some(origin) if origin == format!("http://{host}") => Ok(()),
        Some(_) => Err("a request from another site's page (foreign Origin)"),
    }
}

/// `POST /api/sql`: runs the body's query over the job's sinks.
async fn post_sql(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    if let Err(why) = same_origin(shared.addr, &req) {
        return refuse(StatusCode::FORBIDDEN, why);
    }
    #[cfg(feature = "sql")]
    {
        use http_body_util::BodyExt;
        let Some(tables) = &shared.sql else {
            return refuse(StatusCode::NOT_FOUND, "this job serves no SQL");
        };
        let body = http_body_util::Limited::new(req.into_body(), MAX_SQL);
        let sql = match body.collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => return refuse(StatusCode::PAYLOAD_TOO_LARGE, "at most 16 KiB of SQL"),
        };
        let Ok(sql) = std::str::from_utf8(&sql) else {
            return refuse(StatusCode::BAD_REQUEST, "the SQL is not UTF-8");
        };
        match tables.query(sql, MAX_ROWS).await {
            Ok(result) => json(StatusCode::OK, &result),
            Err(e) => refuse(StatusCode::BAD_REQUEST, &e),
        }
    }
    #[cfg(not(feature = "sql"))]
    {
        let _ = req;
        refuse(StatusCode::NOT_FOUND, "this build serves no SQL")
    }
}
