//! The byte-level reading of the fast path: whitespace, literals, strings,
//! and skipping whole values, each checked as `serde_json` checks it.

use super::de::Deserializer;
use super::error::{Code, Error};

type Result<T, E = Error> = std::result::Result<T, E>;

/// A string value: borrowed from the text when it has no escapes.
pub(super) enum Str<'de> {
    /// The string as it is in the text.
    Borrowed(&'de str),
    /// The string unescaped.
    Owned(String),
}

/// `0x0101…01`: one in every byte of a word.
const ONES: u64 = u64::MAX / 255;
/// `0x8080…80`: the high bit of every byte of a word.
const HIGHS: u64 = ONES << 7;

/// The index of the first `"`, `\` or control character (below `0x20`) at
/// or after `i`, or `bytes.len()`. Eight bytes at a time: for each of the
/// three tests, the lowest flagged byte of a word is a true match (a borrow
/// only runs upward from a match), so the lowest of the three is the first.
#[inline(always)]
pub(super) fn find_special(bytes: &[u8], mut i: usize) -> usize {
    while let Some(chunk) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = ((quote.wrapping_sub(ONES) & !quote)
            | (backslash.wrapping_sub(ONES) & !backslash)
            | (w.wrapping_sub(ONES * 0x20) & !w))
            & HIGHS;
        if found != 0 {
            return i + (found.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = bytes.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

impl<'de> Deserializer<'de> {
    /// The next byte, not consumed.
    #[inline]
    pub(super) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    /// The next byte, or 0 at the end.
    #[inline]
    pub(super) fn peek_or_null(&self) -> u8 {
        self.peek().unwrap_or(0)
    }

    /// Consumes the byte just peeked.
    #[inline]
    pub(super) fn eat_char(&mut self) {
        self.pos += 1;
    }

    /// Consumes and returns the next byte.
    #[inline]
    pub(super) fn next_char(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Skips whitespace and peeks at the byte after it.
    #[inline(always)]
    pub(super) fn parse_whitespace(&mut self) -> Option<u8> {
        match self.peek() {
            Some(c) if c > b' ' => Some(c),
            _ => self.parse_whitespace_slow(),
        }
    }

    fn parse_whitespace_slow(&mut self) -> Option<u8> {
        loop {
            match self.peek() {
                Some(b' ' | b'\n' | b'\t' | b'\r') => self.pos += 1,
                other => return other,
            }
        }
    }

    /// An error positioned at the next unread byte (`serde_json`'s `error`).
    #[cold]
    pub(super) fn error(&self, code: Code) -> Error {
        Error::at(code, self.pos)
    }

    /// An error positioned just after the byte peeked (`serde_json`'s
    /// `peek_error`).
    #[cold]
    pub(super) fn peek_error(&self, code: Code) -> Error {
        Error::at(code, (self.pos + 1).min(self.bytes.len()))
    }

    /// Consumes `ident` (the rest of `null`, `true` or `false`).
    pub(super) fn parse_ident(&mut self, ident: &[u8]) -> Result<()> {
        for expected in ident {
            match self.next_char() {
                None => return Err(self.error(Code::EofWhileParsingValue)),
                Some(c) if c != *expected => return Err(self.error(Code::ExpectedSomeIdent)),
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Reads a string whose opening quote is consumed, through its closing
    /// quote: borrowed when it has no escapes, else unescaped by
    /// `serde_json` itself.
    #[inline]
    pub(super) fn parse_str(&mut self) -> Result<Str<'de>> {
        match self.parse_plain_str() {
            Some(s) => Ok(Str::Borrowed(s)),
            None => self.parse_str_slow(self.pos),
        }
    }

    /// Reads a string without escapes or control characters whose opening
    /// quote is consumed, through its closing quote; `None`, reading
    /// nothing, for any other string.
    #[inline(always)]
    pub(super) fn parse_plain_str(&mut self) -> Option<&'de str> {
        let start = self.pos;
        let end = find_special(self.bytes, start);
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        // Both ends are next to ASCII bytes, so on char boundaries.
        let s = self.input.get(start..end)?;
        self.pos = end + 1;
        Some(s)
    }

    /// A string with an escape, a control character or no end: read by
    /// `serde_json` from its opening quote, so that it unescapes and fails
    /// exactly as `serde_json` does.
    #[cold]
    #[inline(never)]
    pub(super) fn parse_str_slow(&mut self, start: usize) -> Result<Str<'de>> {
        let quote = start - 1;
        let rest = self.input.get(quote..).unwrap_or_default();
        let mut strings = serde_json::Deserializer::from_str(rest).into_iter::<String>();
        match strings.next() {
            Some(Ok(s)) => {
                self.pos = quote + strings.byte_offset();
                Ok(Str::Owned(s))
            }
            Some(Err(e)) => Err(Error::from_serde_json(&e, self.input, quote)),
            None => Err(self.error(Code::EofWhileParsingString)),
        }
    }

    /// Skips a string whose opening quote is consumed, through its closing
    /// quote, checking it as `serde_json` does when it ignores a string:
    /// no control characters, valid escapes (but not surrogate pairs).
    #[inline]
    pub(super) fn ignore_str(&mut self) -> Result<()> {
        self.pos = find_special(self.bytes, self.pos);
        self.ignore_str_from_special()
    }

    /// Skips a string whose opening quote is consumed as `serde_json`
    /// reads a string as bytes: control characters allowed.
    pub(super) fn ignore_raw_str(&mut self) -> Result<()> {
        loop {
            let rest = self.bytes.get(self.pos..).unwrap_or_default();
            match memchr::memchr2(b'"', b'\\', rest) {
                None => {
                    self.pos = self.bytes.len();
                    return Err(self.error(Code::EofWhileParsingString));
                }
                Some(i) => {
                    self.pos += i + 1;
                    if rest.get(i) == Some(&b'"') {
                        return Ok(());
                    }
                    self.ignore_escape()?;
                }
            }
        }
    }

    /// [`Self::ignore_str`] from a special byte (or the end).
    #[inline]
    fn ignore_str_from_special(&mut self) -> Result<()> {
        loop {
            match self.peek() {
                None => return Err(self.error(Code::EofWhileParsingString)),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    self.ignore_escape()?;
                }
                Some(_) => return Err(self.error(Code::ControlCharacterWhileParsingString)),
            }
            self.pos = find_special(self.bytes, self.pos);
        }
    }

    /// Skips an escape after its backslash.
    fn ignore_escape(&mut self) -> Result<()> {
        match self.next_char() {
            None => Err(self.error(Code::EofWhileParsingString)),
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(()),
            Some(b'u') => match self.bytes.get(self.pos..self.pos + 4) {
                Some(hex) => {
                    self.pos += 4;
                    if hex.iter().all(u8::is_ascii_hexdigit) {
                        Ok(())
                    } else {
                        Err(self.error(Code::InvalidEscape))
                    }
                }
                None => {
                    self.pos = self.bytes.len();
                    Err(self.error(Code::EofWhileParsingString))
                }
            },
            Some(_) => Err(self.error(Code::InvalidEscape)),
        }
    }

    /// Skips one value, as `serde_json`'s `ignore_value` does and with its
    /// checks, without recursion: a stack of the open arrays and objects.
    pub(super) fn ignore_value(&mut self) -> Result<()> {
        let mut stack: Vec<u8> = Vec::new();
        let mut enclosing: Option<u8> = None;
        loop {
            let frame = match self.parse_whitespace() {
                None => return Err(self.peek_error(Code::EofWhileParsingValue)),
                Some(b'"') => {
                    self.eat_char();
                    self.ignore_str()?;
                    None
                }
                Some(b'n') => {
                    self.eat_char();
                    self.parse_ident(b"ull")?;
                    None
                }
                Some(b't') => {
                    self.eat_char();
                    self.parse_ident(b"rue")?;
                    None
                }
                Some(b'f') => {
                    self.eat_char();
                    self.parse_ident(b"alse")?;
                    None
                }
                Some(b'-') => {
                    self.eat_char();
                    self.ignore_integer()?;
                    None
                }
                Some(b'0'..=b'9') => {
                    self.ignore_integer()?;
                    None
                }
                Some(frame @ (b'[' | b'{')) => {
                    stack.extend(enclosing.take());
                    self.eat_char();
                    Some(frame)
                }
                Some(_) => return Err(self.peek_error(Code::ExpectedSomeValue)),
            };

            let (mut accept_comma, mut frame) = match frame {
                Some(frame) => (false, frame),
                None => match enclosing.take().or_else(|| stack.pop()) {
                    Some(frame) => (true, frame),
                    None => return Ok(()),
                },
            };

            loop {
                match self.parse_whitespace() {
                    Some(b',') if accept_comma => {
                        self.eat_char();
                        break;
                    }
                    Some(b']') if frame == b'[' => {}
                    Some(b'}') if frame == b'{' => {}
                    Some(_) if accept_comma => {
                        return Err(self.peek_error(if frame == b'[' {
                            Code::ExpectedListCommaOrEnd
                        } else {
                            Code::ExpectedObjectCommaOrEnd
                        }));
                    }
                    Some(_) => break,
                    None => {
                        return Err(self.peek_error(if frame == b'[' {
                            Code::EofWhileParsingList
                        } else {
                            Code::EofWhileParsingObject
                        }));
                    }
                }
                // The frame closes.
                self.eat_char();
                frame = match stack.pop() {
                    Some(frame) => frame,
                    None => return Ok(()),
                };
                accept_comma = true;
            }

            if frame == b'{' {
                match self.parse_whitespace() {
                    Some(b'"') => self.eat_char(),
                    Some(_) => return Err(self.peek_error(Code::KeyMustBeAString)),
                    None => return Err(self.peek_error(Code::EofWhileParsingObject)),
                }
                self.ignore_str()?;
                match self.parse_whitespace() {
                    Some(b':') => self.eat_char(),
                    Some(_) => return Err(self.peek_error(Code::ExpectedColon)),
                    None => return Err(self.peek_error(Code::EofWhileParsingObject)),
                }
            }
            enclosing = Some(frame);
        }
    }

    /// Skips a number after its sign.
    fn ignore_integer(&mut self) -> Result<()> {
        match self.next_char().unwrap_or(0) {
            b'0' => {
                if self.peek_or_null().is_ascii_digit() {
                    return Err(self.peek_error(Code::InvalidNumber));
                }
            }
            b'1'..=b'9' => self.skip_digits(),
            _ => return Err(self.error(Code::InvalidNumber)),
        }
        match self.peek_or_null() {
            b'.' => {
                self.eat_char();
                let before = self.pos;
                self.skip_digits();
                if self.pos == before {
                    return Err(self.peek_error(Code::InvalidNumber));
                }
                if matches!(self.peek_or_null(), b'e' | b'E') {
                    self.ignore_exponent()
                } else {
                    Ok(())
                }
            }
            b'e' | b'E' => self.ignore_exponent(),
            _ => Ok(()),
        }
    }

    /// Skips an exponent from its `e`.
    fn ignore_exponent(&mut self) -> Result<()> {
        self.eat_char();
        if matches!(self.peek_or_null(), b'+' | b'-') {
            self.eat_char();
        }
        if !self.next_char().unwrap_or(0).is_ascii_digit() {
            return Err(self.error(Code::InvalidNumber));
        }
        self.skip_digits();
        Ok(())
    }

    /// Skips ASCII digits.
    #[inline]
    pub(super) fn skip_digits(&mut self) {
        while self.peek_or_null().is_ascii_digit() {
            self.pos += 1;
        }
    }
}
