//! Partition directories: the relative path a value goes to, built from
//! levels the user chains (a field, a date, any path), each made safe to
//! use as directory names.

use std::fmt::{Display, Write as _};
use std::path::{Component, Path};

/// What a partition value that is empty becomes, as in Hive.
pub(crate) const EMPTY_VALUE: &str = "__HIVE_DEFAULT_PARTITION__";

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

/// One level of partitioning: appends a sanitized relative path for a value.
type Level<T> = Box<dyn Fn(&T, &mut String) + Send + Sync>;

/// The partition directories of a sink: a relative path per value, one
/// level after another (`date=2023-11-14/service=api`), or none at all.
pub(crate) struct Partitioner<T> {
    levels: Vec<Level<T>>,
}

impl<T> Default for Partitioner<T> {
    fn default() -> Self {
        Partitioner { levels: Vec::new() }
    }
}

impl<T> Partitioner<T> {
    /// Writes the relative directory of `value` into `out` (empty for the
    /// sink's directory itself).
    pub(crate) fn path(&self, value: &T, out: &mut String) {
        for level in &self.levels {
            let mark = out.len();
            if !out.is_empty() {
                out.push('/');
            }
            let start = out.len();
            level(value, out);
            if out.len() == start {
                // A level that gave no directory adds no separator.
                out.truncate(mark);
            }
        }
    }

    /// Adds a level: the path `f` gives, sanitized by [`push_path`].
    pub(crate) fn add_path<F>(&mut self, f: F)
    where
        F: Fn(&T) -> String + Send + Sync + 'static,
    {
        self.levels
            .push(Box::new(move |v, out| push_path(&f(v), out)));
    }

    /// Adds a level `key=value`, the value escaped by [`push_value`].
    pub(crate) fn add_field<V, F>(&mut self, key: String, f: F)
    where
        V: Display,
        F: Fn(&T) -> V + Send + Sync + 'static,
    {
        self.levels.push(Box::new(move |v, out| {
            out.push_str(&key);
            out.push('=');
            let mut text = String::new();
            // Writing to a String cannot fail.
            let _ = write!(text, "{}", f(v));
            push_value(&text, out);
        }));
    }

    /// Adds a level `key=YYYY-MM-DD`, the UTC date of the epoch
    /// milliseconds `f` gives.
    pub(crate) fn add_date<F>(&mut self, key: String, f: F)
    where
        F: Fn(&T) -> i64 + Send + Sync + 'static,
    {
        self.levels.push(Box::new(move |v, out| {
            out.push_str(&key);
            out.push('=');
            push_date(f(v), out);
        }));
    }
}

/// Whether `key` can name a partition column: not empty, no `/`, `\` or
/// `=`, no control character, and not hidden (a leading `.` or `_`).
pub(crate) fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && !key.starts_with(['.', '_'])
        && !key.contains(['/', '\\', '='])
        && !key.chars().any(char::is_control)
}

/// Whether Hive escapes `c` in a partition value.
fn hive_escapes(c: char) -> bool {
    c.is_ascii_control()
        || matches!(
            c,
            '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
        )
}

/// Appends `c` as `%XX` escapes of its UTF-8 bytes.
fn push_escaped(c: char, out: &mut String) {
    let mut buf = [0u8; 4];
    for b in c.encode_utf8(&mut buf).bytes() {
        let _ = write!(out, "%{b:02X}");
    }
}

/// Appends a partition value as Hive writes it: `/`, `%`, `=`, `:`, quotes,
/// control characters and a few more become `%XX`; an empty value becomes
/// [`EMPTY_VALUE`]. After its `key=`, the value can neither leave the
/// directory nor hide it.
pub(crate) fn push_value(value: &str, out: &mut String) {
    if value.is_empty() {
        out.push_str(EMPTY_VALUE);
        return;
    }
    for c in value.chars() {
        if hive_escapes(c) {
            push_escaped(c, out);
        } else {
            out.push(c);
        }
    }
}

/// Appends a relative path of `/`-separated segments, each made a plain
/// directory name: empty segments are dropped, `\` and control characters
/// become `%XX`, and a segment that is `.` or `..` or starts with `.` or
/// `_` (hidden from readers) gets its first character escaped. A segment
/// the platform would still read as something other than a plain name has
/// every character but ASCII letters, digits, `-` and `=` escaped.
pub(crate) fn push_path(path: &str, out: &mut String) {
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        if !out.is_empty() && !out.ends_with('/') {
            out.push('/');
        }
        let start = out.len();
        for (i, c) in segment.chars().enumerate() {
            if c == '\\' || c.is_control() || (i == 0 && matches!(c, '.' | '_')) {
                push_escaped(c, out);
            } else {
                out.push(c);
            }
        }
        let segment = &out[start..];
        let mut parts = Path::new(segment).components();
        let plain = matches!(
            (parts.next(), parts.next()),
            (Some(Component::Normal(n)), None) if n == segment
        );
        if !plain {
            let pushed = out.split_off(start);
            for c in pushed.chars() {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '=') {
                    out.push(c);
                } else {
                    push_escaped(c, out);
                }
            }
        }
    }
}

/// Appends the UTC date of `ms` (milliseconds since the epoch) as
/// `YYYY-MM-DD`.
pub(crate) fn push_date(ms: i64, out: &mut String) {
    let (y, m, d) = civil_from_days(ms.div_euclid(DAY_MS));
    let _ = write!(out, "{y:04}-{m:02}-{d:02}");
}

/// The proleptic Gregorian (year, month, day) of a count of days since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], from March
    let d = doy - (153 * mp + 2) / 5 + 1; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 }; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    // Both are in range by construction.
    (
        y,
        u32::try_from(m).unwrap_or(1),
        u32::try_from(d).unwrap_or(1),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(v: &str) -> String {
        let mut out = String::new();
        push_value(v, &mut out);
        out
    }

    fn path(p: &str) -> String {
        let mut out = String::new();
        push_path(p, &mut out);
        out
    }

    fn date(ms: i64) -> String {
        let mut out = String::new();
        push_date(ms, &mut out);
        out
    }

    #[test]
    fn values_are_escaped_as_hive_does() {
        assert_eq!(value("svc-07"), "svc-07");
        assert_eq!(value("a/b"), "a%2Fb");
        assert_eq!(value(".."), "..");
        assert_eq!(value("k=v:1%"), "k%3Dv%3A1%25");
        assert_eq!(value("tab\there"), "tab%09here");
        assert_eq!(value("ünï code"), "ünï code");
        assert_eq!(value(""), EMPTY_VALUE);
    }

    #[test]
    fn paths_cannot_leave_or_hide_the_directory() {
        assert_eq!(path("service=a/level=WARN"), "service=a/level=WARN");
        assert_eq!(path("/abs//x/"), "abs/x");
        assert_eq!(path("../../etc"), "%2E./%2E./etc");
        assert_eq!(path("./.hidden/_tmp"), "%2E/%2Ehidden/%5Ftmp");
        assert_eq!(path("a\\b"), "a%5Cb");
        assert_eq!(path(""), "");
        assert_eq!(path("//"), "");
    }

    #[test]
    fn levels_chain_and_empty_levels_add_no_separator() {
        let mut p = Partitioner::<(i64, String)>::default();
        p.add_date("date".into(), |v| v.0);
        p.add_path(|v| v.1.clone());
        p.add_field("svc".into(), |v| v.1.len());
        let mut out = String::new();
        p.path(&(1_700_000_000_000, "x/y".into()), &mut out);
        assert_eq!(out, "date=2023-11-14/x/y/svc=3");
        out.clear();
        p.path(&(0, String::new()), &mut out);
        assert_eq!(out, "date=1970-01-01/svc=0");
    }

    #[test]
    fn dates_are_utc_days_before_and_after_the_epoch() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(DAY_MS - 1), "1970-01-01");
        assert_eq!(date(-1), "1969-12-31");
        assert_eq!(date(951_782_400_000), "2000-02-29");
        assert_eq!(date(1_700_000_000_000), "2023-11-14");
        assert_eq!(date(4_107_542_400_000), "2100-03-01");
        assert_eq!(date(-62_135_596_800_000), "0001-01-01");
    }

    #[test]
    fn civil_from_days_agrees_with_counting_days() {
        // Walk day by day over 1600..2400 and compare with a plain count.
        let leap = |y: i64| (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let mut days = -135_140; // 1600-01-01
        for y in 1600..2400 {
            for m in 1..=12u32 {
                let len = match m {
                    2 if leap(y) => 29,
                    2 => 28,
                    4 | 6 | 9 | 11 => 30,
                    _ => 31,
                };
                for d in 1..=len {
                    assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
                    days += 1;
                }
            }
        }
    }

    #[test]
    fn keys_must_be_plain_names() {
        assert!(valid_key("service"));
        for bad in ["", ".x", "_x", "a/b", "a=b", "a\\b", "a\nb"] {
            assert!(!valid_key(bad), "{bad:?}");
        }
    }
}
