//! [`GeneratedLog`]: one log event of the "logs-window" workload, and its
//! [`Level`].

use std::fmt::{self, Write};

use serde::{Deserialize, Serialize};

/// A log level, written in capitals in JSON (`"DEBUG"`, `"INFO"`, `"WARN"`,
/// `"ERROR"`), as `gen_logs.py` writes them.
///
/// The levels of the logs-window query (`brook::logs`), so that a JSON
/// line of a [`GeneratedLog`] parses as a `brook_workload::logs::LogEvent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    /// `DEBUG`, about 40% of events.
    Debug,
    /// `INFO`, about 45% of events.
    Info,
    /// `WARN`, about 10% of events.
    Warn,
    /// `ERROR`, about 5% of events.
    Error,
}

impl Level {
    /// Every level, from least to most severe.
    pub const ALL: [Level; 4] = [Level::Debug, Level::Info, Level::Warn, Level::Error];

    /// The level as JSON spells it: `"DEBUG"`, `"INFO"`, `"WARN"` or `"ERROR"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One generated log event, with every field of the workload's JSON lines
/// (`benches/workload/README.md`), in their order.
///
/// Serde gives the same keys in the same order; [`GeneratedLog::to_json_line`]
/// also writes `latency_ms` with exactly 3 decimals, byte for byte in the
/// shape `gen_logs.py` writes, so generated events and `--input` files are
/// interchangeable.
///
/// ```
/// use brook_workload::generator::{GeneratedLog, Level};
///
/// let e = GeneratedLog {
///     ts: 1_700_000_000_000,
///     level: Level::Info,
///     service: "svc-07".into(),
///     host: "host-123".into(),
///     status: 200,
///     latency_ms: 12.3,
///     message: "GET /api/v1/orders/42 ok".into(),
/// };
/// assert_eq!(
///     e.to_json_line(),
///     r#"{"ts":1700000000000,"level":"INFO","service":"svc-07","host":"host-123","status":200,"latency_ms":12.300,"message":"GET /api/v1/orders/42 ok"}"#
/// );
/// let back: GeneratedLog = serde_json::from_str(&e.to_json_line()).unwrap();
/// assert_eq!(back, e);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GeneratedLog {
    /// Event time, milliseconds since the epoch.
    pub ts: i64,
    /// Severity.
    pub level: Level,
    /// The service that logged it: `svc-00` to `svc-49`.
    pub service: String,
    /// The host it ran on: `host-000` to `host-199`.
    pub host: String,
    /// HTTP status: mostly 200, some 404, 500 and 503.
    pub status: u16,
    /// Request latency in milliseconds, a multiple of 0.001 (as near as an
    /// `f64` gets).
    pub latency_ms: f64,
    /// A request summary of 20 to 60 characters that need no JSON escaping,
    /// such as `GET /api/v1/orders/42 ok`.
    pub message: String,
}

impl GeneratedLog {
    /// The event as one line of JSON, without the trailing `\n`, in
    /// `gen_logs.py`'s shape: compact, keys in field order, `latency_ms`
    /// with 3 decimals.
    ///
    /// Strings are escaped as JSON requires (generated ones never need it).
    /// A latency that is not finite is written as `null`, which does not
    /// parse back into a `GeneratedLog`.
    pub fn to_json_line(&self) -> String {
        let mut line = String::with_capacity(192);
        self.write_json_line(&mut line);
        line.pop(); // the `\n`
        line
    }

    /// Appends [`to_json_line`](Self::to_json_line)'s text and a `\n` to
    /// `out`, to write many events into one buffer without allocating per
    /// event.
    pub fn write_json_line(&self, out: &mut String) {
        // Writing into a String cannot fail.
        let _ = write!(
            out,
            "{{\"ts\":{},\"level\":\"{}\",\"service\":",
            self.ts, self.level
        );
        push_json_str(out, &self.service);
        out.push_str(",\"host\":");
        push_json_str(out, &self.host);
        let _ = write!(out, ",\"status\":{},\"latency_ms\":", self.status);
        if self.latency_ms.is_finite() {
            let _ = write!(out, "{:.3}", self.latency_ms);
        } else {
            out.push_str("null");
        }
        out.push_str(",\"message\":");
        push_json_str(out, &self.message);
        out.push_str("}\n");
    }
}

/// Appends `s` as a JSON string literal, quotes included.
fn push_json_str(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        out.push_str(s);
    } else {
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 => {
                    let _ = write!(out, "\\u{:04x}", c as u32);
                }
                c => out.push(c),
            }
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_that_need_escaping_are_escaped() {
        let e = GeneratedLog {
            ts: -5,
            level: Level::Error,
            service: "a\"b\\c".into(),
            host: "tab\there\u{1}".into(),
            status: 503,
            latency_ms: 0.0005,
            message: "line\nbreak ünïcødé".into(),
        };
        let line = e.to_json_line();
        assert!(!line.contains('\n'));
        let back: GeneratedLog = serde_json::from_str(&line).expect("valid JSON");
        assert_eq!(back.service, e.service);
        assert_eq!(back.host, e.host);
        assert_eq!(back.message, e.message);
        assert!(line.contains("\"latency_ms\":0.001") || line.contains("\"latency_ms\":0.000"));
    }

    #[test]
    fn a_non_finite_latency_is_null() {
        let mut e: GeneratedLog = serde_json::from_str(
            r#"{"ts":1,"level":"WARN","service":"s","host":"h","status":200,"latency_ms":1.0,"message":"m"}"#,
        )
        .expect("parse");
        e.latency_ms = f64::NAN;
        assert!(e.to_json_line().contains("\"latency_ms\":null"));
    }
}
