//! [`Error`]: why the fast JSON path could not read a value, worded as
//! `serde_json` words it.

use std::borrow::Cow;
use std::fmt;

/// Why [`from_str`](super::from_str) could not read a value: the text is
/// not JSON, or not JSON of the target type.
///
/// Its message is `serde_json`'s, position included: `invalid type: string
/// "abc", expected u16 at line 1 column 42` (the column counts bytes, as
/// `serde_json`'s does).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Error(Box<Inner>);

/// The message and where it happened.
#[derive(Debug)]
struct Inner {
    msg: Cow<'static, str>,
    /// The byte offset the position is computed from, once known: the
    /// index of the next unread byte, as `serde_json` counts it.
    offset: Option<usize>,
    /// 1-based; 0 while unknown.
    line: usize,
    column: usize,
}

impl fmt::Display for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            f.write_str(&self.msg)
        } else {
            write!(
                f,
                "{} at line {} column {}",
                self.msg, self.line, self.column
            )
        }
    }
}

/// `serde_json`'s messages for what the parser itself finds wrong.
#[derive(Debug, Clone, Copy)]
pub(super) enum Code {
    EofWhileParsingList,
    EofWhileParsingObject,
    EofWhileParsingString,
    EofWhileParsingValue,
    ExpectedColon,
    ExpectedListCommaOrEnd,
    ExpectedObjectCommaOrEnd,
    ExpectedSomeIdent,
    ExpectedSomeValue,
    InvalidEscape,
    InvalidNumber,
    NumberOutOfRange,
    ControlCharacterWhileParsingString,
    KeyMustBeAString,
    TrailingComma,
    TrailingCharacters,
    RecursionLimitExceeded,
}

impl Code {
    fn message(self) -> &'static str {
        match self {
            Code::EofWhileParsingList => "EOF while parsing a list",
            Code::EofWhileParsingObject => "EOF while parsing an object",
            Code::EofWhileParsingString => "EOF while parsing a string",
            Code::EofWhileParsingValue => "EOF while parsing a value",
            Code::ExpectedColon => "expected `:`",
            Code::ExpectedListCommaOrEnd => "expected `,` or `]`",
            Code::ExpectedObjectCommaOrEnd => "expected `,` or `}`",
            Code::ExpectedSomeIdent => "expected ident",
            Code::ExpectedSomeValue => "expected value",
            Code::InvalidEscape => "invalid escape",
            Code::InvalidNumber => "invalid number",
            Code::NumberOutOfRange => "number out of range",
            Code::ControlCharacterWhileParsingString => {
                "control character (\\u0000-\\u001F) found while parsing a string"
            }
            Code::KeyMustBeAString => "key must be a string",
            Code::TrailingComma => "trailing comma",
            Code::TrailingCharacters => "trailing characters",
            Code::RecursionLimitExceeded => "recursion limit exceeded",
        }
    }
}

impl Error {
    /// An error the parser found at byte `offset`.
    #[cold]
    pub(super) fn at(code: Code, offset: usize) -> Self {
        Error(Box::new(Inner {
            msg: Cow::Borrowed(code.message()),
            offset: Some(offset),
            line: 0,
            column: 0,
        }))
    }

    /// `serde_json`'s error on a part of the text that starts at byte
    /// `start`, its position moved to count from the start of the text.
    #[cold]
    pub(super) fn from_serde_json(err: &serde_json::Error, text: &str, start: usize) -> Self {
        let full = err.to_string();
        let (line, column) = (err.line(), err.column());
        let (msg, offset) = if line == 0 {
            (full, None)
        } else {
            let suffix = format!(" at line {line} column {column}");
            let msg = full
                .strip_suffix(&suffix)
                .map(str::to_owned)
                .unwrap_or(full);
            // The start of line `line` of the part, then the column.
            let part = text.get(start..).unwrap_or_default();
            let line_start = match line {
                1 => 0,
                _ => part
                    .match_indices('\n')
                    .nth(line - 2)
                    .map_or(0, |(i, _)| i + 1),
            };
            (msg, Some(start + line_start + column))
        };
        Error(Box::new(Inner {
            msg: Cow::Owned(msg),
            offset,
            line: 0,
            column: 0,
        }))
    }

    /// Gives a position to an error that has none (one a visitor made):
    /// byte `offset`, the next unread byte.
    #[cold]
    pub(super) fn fix_position(mut self, offset: usize) -> Self {
        if self.0.offset.is_none() {
            self.0.offset = Some(offset);
        }
        self
    }

    /// Turns the byte offset into a line and column of `text`, as
    /// `serde_json` does (the column is the offset from the line's start).
    #[cold]
    pub(super) fn locate(mut self, text: &str) -> Self {
        if let Some(offset) = self.0.offset {
            let offset = offset.min(text.len());
            let before = &text.as_bytes()[..offset];
            let line_start = memchr::memrchr(b'\n', before).map_or(0, |i| i + 1);
            self.0.line = 1 + memchr::memchr_iter(b'\n', &before[..line_start]).count();
            self.0.column = offset - line_start;
        }
        self
    }

    /// The 1-based line of the error, 0 when unknown.
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// The column of the error, counted in bytes from the line's start as
    /// `serde_json` counts it; 0 when unknown.
    pub fn column(&self) -> usize {
        self.0.column
    }

    fn message(msg: String) -> Self {
        Error(Box::new(Inner {
            msg: Cow::Owned(msg),
            offset: None,
            line: 0,
            column: 0,
        }))
    }
}

impl serde::de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error::message(msg.to_string())
    }

    /// Worded by `serde_json` (`null` for unit, its float format).
    #[cold]
    fn invalid_type(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        let e = <serde_json::Error as serde::de::Error>::invalid_type(unexp, exp);
        Error::message(e.to_string())
    }

    /// Worded by `serde_json` (`null` for unit, its float format).
    #[cold]
    fn invalid_value(unexp: serde::de::Unexpected<'_>, exp: &dyn serde::de::Expected) -> Self {
        let e = <serde_json::Error as serde::de::Error>::invalid_value(unexp, exp);
        Error::message(e.to_string())
    }
}
