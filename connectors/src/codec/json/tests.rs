//! The fast path against `serde_json`: the same values and the same errors,
//! on chosen texts and on random and broken ones, for many target types.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;

use proptest::prelude::*;
use serde::Deserialize;

use super::from_str;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// The flagship job's event.
#[derive(Debug, PartialEq, Deserialize)]
struct LogEvent {
    ts: i64,
    level: Level,
    service: String,
    status: u16,
    latency_ms: f64,
}

/// The same, borrowing its strings.
#[derive(Debug, PartialEq, Deserialize)]
struct Borrowed<'a> {
    #[serde(borrow)]
    service: Cow<'a, str>,
    host: Option<&'a str>,
    level: Option<Level>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Ints {
    a: Option<u8>,
    b: Option<u16>,
    c: Option<u32>,
    d: Option<u64>,
    e: Option<i8>,
    f: Option<i16>,
    g: Option<i32>,
    h: Option<i64>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Floats {
    a: Option<f64>,
    b: Option<f32>,
    c: Option<Vec<f64>>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Nested {
    a: Option<Vec<Nested>>,
    b: Option<BTreeMap<String, i64>>,
    c: Option<(bool, String)>,
    #[serde(default)]
    kind: Vec<Kind>,
}

#[derive(Debug, PartialEq, Deserialize)]
enum Kind {
    A,
    B(i32),
    C(u8, String),
    D { x: f64, y: Option<bool> },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(tag = "kind")]
enum Tagged {
    A { a: Option<i64> },
    B { b: Option<String> },
}

#[derive(Debug, PartialEq, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Int(i64),
    Text(String),
    List(Vec<Untagged>),
}

#[derive(Debug, PartialEq, Deserialize)]
struct Flat {
    a: Option<u32>,
    #[serde(flatten)]
    rest: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, PartialEq, Deserialize)]
struct Newtype(Vec<Option<String>>);

/// Reads `text` both ways and checks the results are the same: equal
/// values (and equal `Debug`, which tells `-0.0` from `0.0`), or errors
/// with the same message.
fn same<'a, T: Deserialize<'a> + PartialEq + Debug>(text: &'a str) {
    let fast = from_str::<T>(text);
    let slow = serde_json::from_str::<T>(text);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a, b, "{text:?}");
            assert_eq!(format!("{a:?}"), format!("{b:?}"), "{text:?}");
        }
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
        _ => panic!("{text:?}: fast {fast:?}, serde_json {slow:?}"),
    }
}

/// [`same`], for a type compared by `==` alone (its `Debug` order varies).
fn same_eq<'a, T: Deserialize<'a> + PartialEq + Debug>(text: &'a str) {
    let fast = from_str::<T>(text);
    let slow = serde_json::from_str::<T>(text);
    match (&fast, &slow) {
        (Ok(a), Ok(b)) => assert_eq!(a, b, "{text:?}"),
        (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string(), "{text:?}"),
        _ => panic!("{text:?}: fast {fast:?}, serde_json {slow:?}"),
    }
}

/// Every target type on one text.
fn all_types(text: &str) {
    same::<LogEvent>(text);
    same::<Borrowed<'_>>(text);
    same::<Ints>(text);
    same::<Floats>(text);
    same::<Nested>(text);
    same::<Kind>(text);
    same::<Vec<Kind>>(text);
    same::<Tagged>(text);
    same::<Untagged>(text);
    same::<Flat>(text);
    same::<Newtype>(text);
    same::<serde_json::Value>(text);
    same::<Option<f64>>(text);
    same::<Vec<i64>>(text);
    same::<(u64, i8)>(text);
    same::<String>(text);
    same::<&str>(text);
    same::<char>(text);
    same::<bool>(text);
    same::<()>(text);
    same::<i128>(text);
    same::<u128>(text);
    same::<&[u8]>(text);
    same_eq::<HashMap<String, Option<f64>>>(text);
    same_eq::<HashMap<Level, u16>>(text);
    same_eq::<HashMap<u32, String>>(text);
    same::<serde::de::IgnoredAny>(text);
}

#[test]
fn log_lines_read_as_serde_json_reads_them() {
    let line = r#"{"ts":1699999999263,"level":"DEBUG","service":"svc-14","host":"host-168","status":200,"latency_ms":32.451,"message":"POST /api/v2/items/45542 rate limited"}"#;
    let event: LogEvent = from_str(line).expect("a log line");
    assert_eq!(
        event,
        LogEvent {
            ts: 1699999999263,
            level: Level::Debug,
            service: "svc-14".into(),
            status: 200,
            latency_ms: 32.451
        }
    );
    let borrowed: Borrowed<'_> = from_str(line).expect("a log line");
    assert!(matches!(borrowed.service, Cow::Borrowed("svc-14")));
    all_types(line);
    // Escapes in kept and skipped strings, whitespace everywhere.
    all_types(
        " {\"ts\" : -1 ,\n\"level\":\"WARN\", \"service\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",\"status\":65535,\"latency_ms\":-0.0,\"message\":\"x\\u0041\\\"\"}\r\n",
    );
}

#[test]
fn errors_have_serde_json_messages_and_positions() {
    for text in [
        r#"{"ts":1,"level":"INFO","service":"a","status":"abc","latency_ms":1.0}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":70000,"latency_ms":1.0}"#,
        r#"{"ts":1,"level":"TRACE","service":"a","status":7,"latency_ms":1.0}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7}"#,
        r#"{"ts":1,"ts":2,"level":"INFO","service":"a","status":7,"latency_ms":1}"#,
        r#"{"ts":1.5,"level":"INFO","service":"a","status":7,"latency_ms":1}"#,
        r#"{"ts":-0,"level":"INFO","service":"a","status":7,"latency_ms":1}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":1} x"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":01}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":1.}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":.5}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":+5}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":NaN}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":1e400}"#,
        r#"{"ts":1,"level":"INFO","service":"a","status":7,"latency_ms":1,}"#,
        r#"{"ts":1 "level":"INFO"}"#,
        r#"{"ts" 1}"#,
        r#"{"ts":1,"message":"unterminated}"#,
        "{\"ts\":1,\"message\":\"control \u{1} char\"}",
        r#"{"ts":1,"message":"bad \x escape"}"#,
        r#"{"ts":1,"message":"bad \u12 escape"}"#,
        r#"{"ts":1,"message":{"a":[1,2,{"b":}]}}"#,
        r#"{"ts":1,"message":[1 2]}"#,
        r#"{"ts":1,"message":{"a" 1}}"#,
        r#"{"ts":1,"message":[[[[}"#,
        r#"{"ts":1,"service":"lone \ud800 surrogate"}"#,
        "",
        "   ",
        "[",
    ] {
        let fast = from_str::<LogEvent>(text).expect_err(text).to_string();
        let slow = serde_json::from_str::<LogEvent>(text)
            .expect_err(text)
            .to_string();
        assert_eq!(fast, slow, "{text}");
        all_types(text);
    }
    let err = from_str::<LogEvent>(r#"{"ts":1,"level":"INFO","service":"a","status":"abc"}"#)
        .expect_err("a string for a u16");
    assert_eq!(
        err.to_string(),
        "invalid type: string \"abc\", expected u16 at line 1 column 51"
    );
    assert_eq!((err.line(), err.column()), (1, 51));
}

#[test]
fn numbers_at_their_edges_read_as_serde_json_reads_them() {
    for n in [
        "0",
        "-0",
        "1",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "255",
        "256",
        "32767",
        "32768",
        "-32768",
        "-32769",
        "65535",
        "65536",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "4294967295",
        "4294967296",
        "9223372036854775807",
        "9223372036854775808",
        "-9223372036854775808",
        "-9223372036854775809",
        "18446744073709551615",
        "18446744073709551616",
        "99999999999999999999999",
        "-99999999999999999999999",
        "1e2",
        "1E2",
        "1e+2",
        "1e-2",
        "-0.0",
        "0.0",
        "0e0",
        "-0e-0",
        "0.1",
        "32.451",
        "1.7976931348623157e308",
        "1.7976931348623159e308",
        "2.2250738585072014e-308",
        "5e-324",
        "3e-324",
        "1e-400",
        "-1e-400",
        "0.1e-300",
        "8.988465674311579e307",
        "0.30000000000000004",
        "1.2345678901234567e-300",
        "123456789012345678901234567890.123456789e-10",
        "0.000000000000000000000000000001",
        "1e2147483648",
        "0e2147483648",
        "1e-2147483649",
        "3.4028235e38",
        "3.4028236e38",
        "1e39",
        "00",
        "01",
        "-",
        "-a",
        "1.",
        "1.e5",
        "1e",
        "1e+",
        ".5",
        "+5",
        "1.5.5",
        "0x10",
        "Infinity",
        "-Infinity",
        "NaN",
    ] {
        all_types(n);
        all_types(&format!("[{n}]"));
        all_types(&format!(
            "{{\"h\":{n},\"a\":{n},\"latency_ms\":{n},\"b\":{n}}}"
        ));
    }
}

#[test]
fn what_the_fast_path_leaves_to_serde_json_reads_the_same() {
    for text in [
        r#"{"1":"a","22":"b"}"#,
        r#"{"-1":"a"}"#,
        r#"{"x":"a"}"#,
        r#""bytes""#,
        r#"[1,2,3]"#,
        r#""b\u00e9ytes""#,
        r#"{"kind":"A","a":5}"#,
        r#"{"b":"x","kind":"B"}"#,
        r#"{"a":1,"z":[1,{"y":null}],"w":"v"}"#,
        r#"{"D":{"x":1.5,"y":true}}"#,
        r#"{"C":[7,"seven"]}"#,
        r#"{"B":-3}"#,
        r#"{"A":null}"#,
        r#"{"B":"x"}"#,
        r#"{"D":[2.5,null]}"#,
        r#"["A",{"B":1},{"C":[1,"x"]},{"D":{"x":0}}]"#,
        r#"{"INFO":200,"WARN":404}"#,
        r#"{"INFO":200,"TRACE":404}"#,
        "170141183460469231731687303715884105727",
        "-170141183460469231731687303715884105729",
        r#"[1,"x",[2,"y"]]"#,
        "[1,2,3,]",
        "{\"a\":[1]}",
        "[true, \"x\"]",
        "[18446744073709551615, -128]",
        "\"\u{1}\"",
        "[\"a\u{1f}\", \"b\"]",
        "{\"service\":\"\u{1}\"}",
    ] {
        all_types(text);
    }
}

#[test]
fn nesting_is_limited_as_in_serde_json() {
    for depth in [10, 126, 127, 128, 129, 1000] {
        let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        all_types(&text);
        let text = format!("{{\"a\":{}1{}}}", "[".repeat(depth), "]".repeat(depth));
        all_types(&text);
        let text = "{\"a\":[".repeat(depth);
        all_types(&text);
    }
}

/// The text of a JSON number: edge values, floats as Rust prints them,
/// and numbers of any shape JSON allows, some JSON does not.
fn number() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<u8>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        "-?(0|[1-9][0-9]{0,24})(\\.[0-9]{1,24})?([eE][+-]?[0-9]{1,3})?",
        "[-+]?[0-9.eE+-]{1,6}",
    ]
}

/// The text of a JSON string: plain text, field and variant names, every
/// escape, surrogate pairs and lone surrogates, non-ASCII text, and now
/// and then a control character.
fn string() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => "[a-zA-Z0-9 /._-]{0,12}",
        2 => prop::sample::select(vec![
            "ts", "level", "service", "status", "latency_ms", "host", "message", "DEBUG", "INFO",
            "WARN", "A", "B", "C", "D", "kind", "a", "b", "c", "x", "y", "1", "-7",
        ])
        .prop_map(str::to_owned),
        2 => prop::sample::select(vec![
            "\\\"", "\\\\", "\\/", "\\b", "\\f", "\\n", "\\r", "\\t", "\\u00e9", "\\u0000",
            "\\ud83d\\ude00", "\\ud800", "\\udc00x", "\\u12", "\\x", "é", "😀", "\u{1}", "\u{1f}",
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec(piece, 0..3).prop_map(|p| format!("\"{}\"", p.concat()))
}

/// A JSON text shaped like the target types: objects with their field
/// names, numbers, strings, nesting, and whitespace here and there.
fn json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number(),
        string(),
    ];
    leaf.prop_recursive(4, 40, 6, |inner| {
        let sep = prop::sample::select(vec![",", ", ", " ,\n", "\t,"]);
        prop_oneof![
            (prop::collection::vec(inner.clone(), 0..5), sep.clone())
                .prop_map(|(items, sep)| format!("[{}]", items.join(sep))),
            (prop::collection::vec((string(), inner), 0..7), sep).prop_map(|(entries, sep)| {
                let entries: Vec<String> =
                    entries.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!("{{{}}}", entries.join(sep))
            }),
        ]
    })
}

/// `text` broken in one of a few ways: cut short, a byte dropped, or a
/// character that matters to JSON inserted.
fn mutated() -> impl Strategy<Value = String> {
    (
        json(),
        0..4u8,
        any::<prop::sample::Index>(),
        prop::sample::select(b"{}[]\":,\\ 0-.eE+ntfu\x01".to_vec()),
    )
        .prop_map(|(text, how, at, c)| {
            let mut bytes = text.into_bytes();
            let i = at.index(bytes.len() + 1);
            match how {
                0 => {}
                1 => bytes.truncate(i),
                2 if i < bytes.len() => {
                    bytes.remove(i);
                }
                _ => bytes.insert(i, c),
            }
            // A cut inside a multi-byte character is not UTF-8: drop that text.
            String::from_utf8(bytes).unwrap_or_default()
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn random_texts_read_as_serde_json_reads_them(text in json()) {
        all_types(&text);
    }

    #[test]
    fn broken_texts_fail_as_in_serde_json(text in mutated()) {
        all_types(&text);
    }

    #[test]
    fn log_lines_with_random_values_read_as_serde_json_reads_them(
        ts in number(), level in string(), service in string(), status in number(),
        latency in number(), message in json(), cut in any::<prop::sample::Index>(),
    ) {
        let line = format!(
            "{{\"ts\":{ts},\"level\":{level},\"service\":{service},\"host\":\"h\",\"status\":{status},\"latency_ms\":{latency},\"message\":{message}}}"
        );
        all_types(&line);
        let cut = cut.index(line.len());
        if let Some(prefix) = line.get(..cut) {
            all_types(prefix);
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(text) = std::str::from_utf8(&bytes) {
            all_types(text);
        }
    }
}
