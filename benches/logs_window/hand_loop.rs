//! The baseline: the logs-window query as one tight single-threaded loop,
//! written as a good engineer would write it by hand for this one file.
//!
//! It reads the file in 4 MiB chunks into one reused buffer (reading it
//! whole into a fresh 300 MB `String` spends a quarter of the time in page
//! faults), checks each chunk's UTF-8 once, splits it into lines, parses
//! each line with serde_json into a struct that borrows `service` from the
//! buffer (skipping `host` and `message`), drops `DEBUG`, and folds per
//! (window start, service, level) in an Fx hash map, services interned to
//! small integers.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{ErrorKind, Read};
use std::path::Path;

use anyhow::Context;
use brook_workload::logs::{Level, WINDOW, WindowStats};
use serde::Deserialize;

/// Bytes read at once.
const CHUNK: usize = 4 << 20;

/// The fields the query reads; `service` borrows from the line when it has
/// no escapes (always, in this workload).
#[derive(Deserialize)]
struct Line<'a> {
    ts: i64,
    level: Level,
    #[serde(borrow)]
    service: Cow<'a, str>,
    status: u16,
    latency_ms: f64,
}

/// (count, latency sum, latency max, 5xx count)
type Group = (u64, f64, f64, u64);

/// What one run of the loop found.
pub(crate) struct LoopResult {
    pub(crate) events: u64,
    pub(crate) rows: Vec<WindowStats>,
}

/// The fold: groups by (window start, service id, level).
#[derive(Default)]
struct Fold {
    services: HashMap<String, u32, Fx>,
    groups: HashMap<(i64, u32, Level), Group, Fx>,
    events: u64,
    lines: u64,
}

impl Fold {
    /// Folds every line of `text`, a run of whole lines.
    fn lines(&mut self, text: &str, path: &Path) -> anyhow::Result<()> {
        let size = WINDOW.as_millis() as i64;
        for line in text.split('\n') {
            self.lines += 1;
            if line.is_empty() {
                continue;
            }
            let e: Line<'_> = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a log event", path.display(), self.lines))?;
            self.events += 1;
            if e.level == Level::Debug {
                continue;
            }
            let service = match self.services.get(&*e.service) {
                Some(&id) => id,
                None => {
                    let id = self.services.len() as u32;
                    self.services.insert(e.service.into_owned(), id);
                    id
                }
            };
            let start = e.ts - e.ts.rem_euclid(size);
            let g = self.groups.entry((start, service, e.level)).or_insert((
                0,
                0.0,
                f64::NEG_INFINITY,
                0,
            ));
            g.0 += 1;
            g.1 += e.latency_ms;
            g.2 = g.2.max(e.latency_ms);
            g.3 += u64::from(e.status >= 500);
        }
        // `split` counts the empty piece after the chunk's last `\n`.
        self.lines -= 1;
        Ok(())
    }

    fn rows(self) -> Vec<WindowStats> {
        let size = WINDOW.as_millis() as i64;
        let mut names = vec![String::new(); self.services.len()];
        for (name, id) in self.services {
            names[id as usize] = name;
        }
        let mut rows: Vec<WindowStats> = self
            .groups
            .into_iter()
            .map(
                |((start, service, level), (n, sum, max, n5xx))| WindowStats {
                    window_start: start,
                    window_end: start + size,
                    service: names[service as usize].clone(),
                    level,
                    count: n,
                    avg_latency_ms: sum / n as f64,
                    max_latency_ms: max,
                    count_5xx: n5xx,
                },
            )
            .collect();
        crate::sort_rows(&mut rows);
        rows
    }
}

/// Runs the query over the file at `path`.
pub(crate) fn run(path: &Path) -> anyhow::Result<LoopResult> {
    let io = |e| anyhow::Error::new(e).context(format!("reading {}", path.display()));
    let mut file = File::open(path).map_err(io)?;
    let mut buf = vec![0u8; CHUNK];
    let mut filled = 0;
    let mut fold = Fold::default();
    loop {
        if filled == buf.len() {
            // A line longer than the buffer.
            buf.resize(buf.len() * 2, 0);
        }
        let n = match file.read(&mut buf[filled..]) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        };
        filled += n;
        let end = if n == 0 {
            filled
        } else {
            match buf[..filled].iter().rposition(|&b| b == b'\n') {
                Some(i) => i + 1,
                None => continue,
            }
        };
        let text = std::str::from_utf8(&buf[..end])
            .with_context(|| format!("{}: not UTF-8", path.display()))?;
        fold.lines(text, path)?;
        buf.copy_within(end..filled, 0);
        filled -= end;
        if n == 0 {
            break;
        }
    }
    Ok(LoopResult {
        events: fold.events,
        rows: fold.rows(),
    })
}

/// The Fx hash (rustc's): one rotate, xor and multiply per word. Fast for
/// short keys; not DoS-resistant, which a bench over its own file need not
/// be. Inline because the `brook` package has no `rustc-hash` dependency.
type Fx = BuildHasherDefault<FxHasher>;

#[derive(Default, Clone, Copy)]
struct FxHasher(u64);

const SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(SEED);
    }
}

impl Hasher for FxHasher {
    #[inline]
    fn write(&mut self, mut bytes: &[u8]) {
        while let Some((chunk, rest)) = bytes.split_first_chunk::<8>() {
            self.add(u64::from_le_bytes(*chunk));
            bytes = rest;
        }
        if let Some((chunk, rest)) = bytes.split_first_chunk::<4>() {
            self.add(u64::from(u32::from_le_bytes(*chunk)));
            bytes = rest;
        }
        for &b in bytes {
            self.add(u64::from(b));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_i64(&mut self, i: i64) {
        self.add(i as u64);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
}
