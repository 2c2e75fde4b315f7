//! What the admin server's tests share: a job with a deliberately slow
//! operator, and a plain HTTP/1.1 client.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use brook::prelude::*;
use brook_workload::{GeneratedLog, LogGenerator};

/// Sleeps 3 ms on every batch: the job's bottleneck.
#[derive(Clone)]
pub(crate) struct Slow;

impl Operator<GeneratedLog, GeneratedLog> for Slow {
    fn process(
        &mut self,
        batch: Batch<GeneratedLog>,
        out: &mut Collector<GeneratedLog>,
    ) -> Result<()> {
        std::thread::sleep(Duration::from_millis(3));
        out.emit_batch(batch);
        Ok(())
    }
}

/// Drops what it gets.
#[derive(Clone)]
pub(crate) struct Discard;

impl<T: Send + 'static> Sink<T> for Discard {
    type Writer = Discard;

    fn open(&mut self, _ctx: &SinkContext) -> Result<Discard> {
        Ok(Discard)
    }
}

impl<T: Send + 'static> SinkWriter<T> for Discard {
    async fn write(&mut self, _batch: Batch<T>) -> Result<()> {
        Ok(())
    }
}

/// A job named `name` at parallelism 2 whose bottleneck is the operator
/// `slow`: generated logs → `keep-all` → (rebalance) `slow` → `out`.
pub(crate) fn slow_job(name: &str) -> Job {
    let flow = Dataflow::with_config(name, super::config(2));
    flow.source("logs", LogGenerator::new(20_000_000, 3).batch_size(256))
        .filter("keep-all", |_| true)
        .rebalance()
        .process("slow", Slow)
        .sink("out", Discard);
    flow.build().expect("build")
}

/// Sends `request` as is and returns the status code and the body.
pub(crate) fn raw(addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    (code, body.to_string())
}

/// A request without a body, with `extra` header lines.
pub(crate) fn request(addr: SocketAddr, method: &str, path: &str, extra: &str) -> (u16, String) {
    raw(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{extra}\r\n"),
    )
}

/// `GET path`.
pub(crate) fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    request(addr, "GET", path, "")
}
