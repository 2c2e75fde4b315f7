//! JSON: the [`Json`] codec and the fast path under it, [`from_str`], which
//! reads any `#[derive(Deserialize)]` type from JSON text with the same
//! result as `serde_json::from_str`, in about two thirds of its time on
//! log lines (123 against 183 ns for the flagship job's 150-byte lines,
//! of which it keeps five fields).
//!
//! # Why it is faster
//! - Strings without escapes are borrowed from the text: a `String` field
//!   costs one allocation, a `&str` or `Cow<str>` field none.
//! - Numbers are read in place, with `serde_json`'s own arithmetic, so an
//!   `f64` is bit for bit what `serde_json` gives (see below).
//! - The values of fields the type does not have are skipped, by a scan
//!   that finds the end of a string eight bytes at a time and walks nested
//!   arrays and objects without recursion, rather than parsed.
//! - No reader abstraction between the parser and the bytes.
//!
//! # What is the same as `serde_json`
//! Everything a caller can see: every method of the `serde::Deserializer`
//! mirrors `serde_json`'s, with the same values handed to the same
//! visitor calls (a `-0` is an `f64`, an integer past `u64` is an `f64`,
//! a struct may be an array of its fields), the same checks (also in
//! skipped values: their strings are checked for control characters and
//! bad escapes, their numbers and nesting as `serde_json` checks them),
//! the same nesting limit (128), and the same messages with the same
//! positions in most cases: `invalid type: string "abc", expected u16 at
//! line 1 column 42`. The tests compare the two on many types and on
//! random and broken texts.
//!
//! What the fast path does not do itself, it hands to `serde_json`:
//! strings with escapes are unescaped by `serde_json`; byte arrays,
//! `i128`/`u128`, `RawValue`, and numbers under `deserialize_any` when
//! `serde_json` has `arbitrary_precision` are read by `serde_json` from the
//! value's text; and a text with a map keyed by numbers or booleans is read
//! by `serde_json` whole.
//!
//! # Floats
//! `serde_json`, by default, is not correctly rounded: about one 17-digit
//! number in five comes out one bit away from `str::parse` (its
//! `float_roundtrip` feature fixes that, at about twice the cost). The fast
//! path gives what this build's `serde_json` gives, bit for bit: its
//! arithmetic by default, `str::parse` when `float_roundtrip` is on.
//!
//! # Differences
//! Only where a visitor swallows errors: a visitor that catches the error
//! of a nested value and goes on (none in serde's derive) may see an error
//! meant to hand the text to `serde_json`; the text is still read again by
//! `serde_json`, so the result is the same, but the visitor ran twice. Use
//! [`JsonStrict`] to read with `serde_json` alone.

mod access;
mod codec;
mod de;
mod error;
mod number;
mod read;
#[cfg(test)]
mod tests;

pub use self::codec::{Json, JsonStrict};
pub use self::de::from_str;
pub use self::error::Error;
