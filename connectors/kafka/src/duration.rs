//! Durations in configuration files: `"250ms"`, `"30s"`, `"5m"`, `"1h"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// Parses `"<n>ms"`, `"<n>s"`, `"<n>m"` or `"<n>h"`.
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("'{text}' is not a duration such as \"500ms\", \"30s\" or \"5m\""))?;
    let ms = match unit.trim() {
        "ms" => Some(n),
        "s" => n.checked_mul(1_000),
        "m" | "min" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => {
            return Err(format!(
                "'{text}' has no unit: write it as \"500ms\", \"30s\", \"5m\" or \"1h\""
            ));
        }
    };
    ms.map(Duration::from_millis)
        .ok_or_else(|| format!("'{text}' is too long a duration"))
}

/// Formats a duration the way [`parse`] reads it back.
pub(crate) fn format(d: &Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(1_000) {
        format!("{}s", ms / 1_000)
    } else {
        format!("{ms}ms")
    }
}

/// `#[serde(with = "duration")]` for a [`Duration`].
pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format(d))
}

/// `#[serde(with = "duration")]` for a [`Duration`].
pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(d)?;
    parse(&text).map_err(serde::de::Error::custom)
}

/// `#[serde(with = "duration::option")]` for an `Option<Duration>`, where
/// `null` means none.
pub(crate) mod option {
    use super::*;

    /// Writes `null` or the duration.
    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_str(&super::format(d)),
            None => s.serialize_none(),
        }
    }

    /// Reads `null` or a duration.
    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => parse(&text).map(Some).map_err(serde::de::Error::custom),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_round_trips() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse(" 30s "), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse("30").is_err());
        assert!(parse("s").is_err());
        assert!(parse("-1s").is_err());
        for d in [Duration::from_millis(1500), Duration::from_secs(7)] {
            assert_eq!(parse(&format(&d)), Ok(d));
        }
    }
}
