//! The fast path's `serde::Deserializer`: [`from_str`] and the
//! `Deserializer` it drives, which mirrors `serde_json`'s method for method.

use serde::de::{self, Expected, Unexpected, Visitor};
use serde_json::de::StrRead;

use super::access::{MapAccess, SeqAccess, UnitVariantAccess, VariantAccess};
use super::error::{Code, Error};
use super::number::{ARBITRARY_PRECISION, CORRECTLY_ROUNDED, Number};
use super::read::Str;

type Result<T, E = Error> = std::result::Result<T, E>;

/// The name `serde_json` gives its `RawValue` newtype, to recognise it.
pub(super) const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Reads one value of type `T` from JSON text, as `serde_json::from_str`
/// does and with the same result, only faster: strings without escapes are
/// borrowed from `text`, numbers are read in place, and the values of
/// fields `T` does not have are skipped rather than parsed.
///
/// Whitespace may surround the value; anything else after it is an error.
///
/// # Errors
/// When `serde_json::from_str` fails, with its message and position: the
/// text is not JSON, or not JSON of type `T`.
///
/// # Examples
/// ```
/// use std::borrow::Cow;
///
/// #[derive(serde::Deserialize)]
/// struct Hit<'a> {
///     #[serde(borrow)]
///     path: Cow<'a, str>,
///     status: u16,
/// }
///
/// let line = r#"{"path":"/a","status":200,"ua":"curl"}"#;
/// let hit: Hit = brook_connectors::codec::json::from_str(line).unwrap();
/// assert!(matches!(hit.path, Cow::Borrowed("/a")));
///
/// let err = brook_connectors::codec::json::from_str::<Hit>(r#"{"path":"/a","status":-1}"#);
/// assert_eq!(
///     err.err().unwrap().to_string(),
///     "invalid value: integer `-1`, expected u16 at line 1 column 24",
/// );
/// ```
pub fn from_str<'de, T: de::Deserialize<'de>>(text: &'de str) -> Result<T> {
    let mut de = Deserializer::new(text);
    let value = T::deserialize(&mut de).and_then(|value| de.end().map(|()| value));
    if de.bail {
        return serde_json::from_str(text)
            .map_err(|e| Error::from_serde_json(&e, text, 0).locate(text));
    }
    // Like `serde_json`, no position for an error the type made after the
    // deserializer returned (an untagged enum's).
    value.map_err(|e| e.locate(text))
}

/// Reads JSON text for serde, one value at a time.
pub(super) struct Deserializer<'de> {
    pub(super) input: &'de str,
    pub(super) bytes: &'de [u8],
    /// The next unread byte.
    pub(super) pos: usize,
    /// The start of the number being read.
    pub(super) num_start: usize,
    /// How many more arrays and objects may nest, as in `serde_json`.
    remaining_depth: u8,
    /// Whether the fast path met something it leaves to `serde_json`,
    /// for the whole text.
    pub(super) bail: bool,
}

/// Runs `$body` one nesting level deeper, failing as `serde_json` does
/// beyond 128 levels.
macro_rules! check_recursion {
    ($this:ident, $($body:tt)*) => {
        $this.remaining_depth -= 1;
        if $this.remaining_depth == 0 {
            return Err($this.peek_error(Code::RecursionLimitExceeded));
        }
        $($body)*
        $this.remaining_depth += 1;
    };
}

impl<'de> Deserializer<'de> {
    fn new(input: &'de str) -> Self {
        Deserializer {
            input,
            bytes: input.as_bytes(),
            pos: 0,
            num_start: 0,
            remaining_depth: 128,
            bail: false,
        }
    }

    /// Checks that only whitespace is left.
    fn end(&mut self) -> Result<()> {
        match self.parse_whitespace() {
            Some(_) => Err(self.peek_error(Code::TrailingCharacters)),
            None => Ok(()),
        }
    }

    /// Marks the text as one for `serde_json` and returns the error that
    /// unwinds the fast path.
    #[cold]
    pub(super) fn bail(&mut self) -> Error {
        self.bail = true;
        de::Error::custom("left to serde_json")
    }

    /// Reads the next value with `serde_json`: skips it to find its text,
    /// then has `serde_json` read that text with `read`.
    #[cold]
    #[inline(never)]
    fn with_serde_json<V, F>(&mut self, visitor: V, read: F) -> Result<V::Value>
    where
        V: Visitor<'de>,
        F: FnOnce(&mut serde_json::Deserializer<StrRead<'de>>, V) -> serde_json::Result<V::Value>,
    {
        self.parse_whitespace();
        let start = self.pos;
        // A value that does not skip is broken: `serde_json` reading the
        // rest of the text finds the same fault, or an earlier one (a
        // number type meets a string), as it would alone.
        let skipped = self.ignore_value().is_ok();
        let end = if skipped { self.pos } else { self.input.len() };
        let text = self.input.get(start..end).unwrap_or_default();
        let mut de = serde_json::Deserializer::from_str(text);
        let value = read(&mut de, visitor)
            .and_then(|value| de.end().map(|()| value))
            .map_err(|e| Error::from_serde_json(&e, self.input, start))?;
        self.pos = end;
        Ok(value)
    }

    /// The error for a value of the wrong type, naming what it is
    /// (`serde_json`'s `peek_invalid_type`).
    #[cold]
    fn peek_invalid_type(&mut self, exp: &dyn Expected) -> Error {
        let err = match self.peek_or_null() {
            b'n' => {
                self.eat_char();
                match self.parse_ident(b"ull") {
                    Ok(()) => de::Error::invalid_type(Unexpected::Unit, exp),
                    Err(e) => return e,
                }
            }
            b't' | b'f' => {
                let value = self.peek_or_null() == b't';
                self.eat_char();
                match self.parse_ident(if value { b"rue" } else { b"alse" }) {
                    Ok(()) => de::Error::invalid_type(Unexpected::Bool(value), exp),
                    Err(e) => return e,
                }
            }
            b'-' | b'0'..=b'9' => match self.parse_signed() {
                Ok(Number::U64(n)) => de::Error::invalid_type(Unexpected::Unsigned(n), exp),
                Ok(Number::I64(n)) => de::Error::invalid_type(Unexpected::Signed(n), exp),
                Ok(Number::F64(n)) => de::Error::invalid_type(Unexpected::Float(n), exp),
                Err(e) => return e,
            },
            b'"' => {
                self.eat_char();
                match self.parse_str() {
                    Ok(Str::Borrowed(s)) => de::Error::invalid_type(Unexpected::Str(s), exp),
                    Ok(Str::Owned(s)) => de::Error::invalid_type(Unexpected::Str(&s), exp),
                    Err(e) => return e,
                }
            }
            b'[' => de::Error::invalid_type(Unexpected::Seq, exp),
            b'{' => de::Error::invalid_type(Unexpected::Map, exp),
            _ => return self.peek_error(Code::ExpectedSomeValue),
        };
        Error::fix_position(err, self.pos)
    }

    /// Skips whitespace and peeks, failing at the end of the text.
    #[inline]
    fn peek_value(&mut self) -> Result<u8> {
        match self.parse_whitespace() {
            Some(b) => Ok(b),
            None => Err(self.peek_error(Code::EofWhileParsingValue)),
        }
    }

    /// A number, for a number type (`serde_json`'s `deserialize_number`).
    #[inline(always)]
    fn deserialize_number<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'-' | b'0'..=b'9' => self.parse_signed()?.visit(visitor),
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    /// The string after an opening quote, to `visitor`.
    #[inline(always)]
    pub(super) fn visit_str<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        if let Some(s) = self.parse_plain_str() {
            return visitor.visit_borrowed_str(s);
        }
        match self.parse_str_slow(self.pos)? {
            Str::Borrowed(s) => visitor.visit_borrowed_str(s),
            Str::Owned(s) => visitor.visit_string(s),
        }
    }

    /// The array at `[`, to `visitor`, and its end.
    fn visit_array<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        check_recursion! {self,
            self.eat_char();
            let ret = visitor.visit_seq(SeqAccess::new(self));
        }
        match (ret, self.end_seq()) {
            (Ok(ret), Ok(())) => Ok(ret),
            (Err(err), _) | (_, Err(err)) => Err(err),
        }
    }

    /// The object at `{`, to `visitor`, and its end.
    #[inline]
    fn visit_object<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        check_recursion! {self,
            self.eat_char();
            let ret = visitor.visit_map(MapAccess::new(self));
        }
        match (ret, self.end_map()) {
            (Ok(ret), Ok(())) => Ok(ret),
            (Err(err), _) | (_, Err(err)) => Err(err),
        }
    }

    fn end_seq(&mut self) -> Result<()> {
        match self.parse_whitespace() {
            Some(b']') => {
                self.eat_char();
                Ok(())
            }
            Some(b',') => {
                self.eat_char();
                match self.parse_whitespace() {
                    Some(b']') => Err(self.peek_error(Code::TrailingComma)),
                    _ => Err(self.peek_error(Code::TrailingCharacters)),
                }
            }
            Some(_) => Err(self.peek_error(Code::TrailingCharacters)),
            None => Err(self.peek_error(Code::EofWhileParsingList)),
        }
    }

    #[inline]
    fn end_map(&mut self) -> Result<()> {
        match self.parse_whitespace() {
            Some(b'}') => {
                self.eat_char();
                Ok(())
            }
            Some(b',') => Err(self.peek_error(Code::TrailingComma)),
            Some(_) => Err(self.peek_error(Code::TrailingCharacters)),
            None => Err(self.peek_error(Code::EofWhileParsingObject)),
        }
    }

    /// Consumes the `:` after a key.
    #[inline]
    pub(super) fn parse_object_colon(&mut self) -> Result<()> {
        match self.parse_whitespace() {
            Some(b':') => {
                self.eat_char();
                Ok(())
            }
            Some(_) => Err(self.peek_error(Code::ExpectedColon)),
            None => Err(self.peek_error(Code::EofWhileParsingObject)),
        }
    }
}

/// Number methods that read any JSON number as `serde_json` does.
macro_rules! deserialize_numbers {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
            self.deserialize_number(visitor)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'n' => {
                self.eat_char();
                self.parse_ident(b"ull")?;
                visitor.visit_unit()
            }
            b't' => {
                self.eat_char();
                self.parse_ident(b"rue")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.eat_char();
                self.parse_ident(b"alse")?;
                visitor.visit_bool(false)
            }
            b'-' | b'0'..=b'9' if *ARBITRARY_PRECISION => {
                return self
                    .with_serde_json(visitor, |de, v| de::Deserializer::deserialize_any(de, v));
            }
            b'-' | b'0'..=b'9' => self.parse_signed()?.visit(visitor),
            b'"' => {
                self.eat_char();
                self.visit_str(visitor)
            }
            b'[' => self.visit_array(visitor),
            b'{' => self.visit_object(visitor),
            _ => Err(self.peek_error(Code::ExpectedSomeValue)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b't' => {
                self.eat_char();
                self.parse_ident(b"rue")?;
                visitor.visit_bool(true)
            }
            b'f' => {
                self.eat_char();
                self.parse_ident(b"alse")?;
                visitor.visit_bool(false)
            }
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    deserialize_numbers! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f64
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if *CORRECTLY_ROUNDED {
            // `serde_json` then rounds straight to `f32`.
            return self.with_serde_json(visitor, |de, v| de::Deserializer::deserialize_f32(de, v));
        }
        self.deserialize_number(visitor)
    }

    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.with_serde_json(visitor, |de, v| de::Deserializer::deserialize_i128(de, v))
    }

    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.with_serde_json(visitor, |de, v| de::Deserializer::deserialize_u128(de, v))
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline(always)]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'"' => {
                self.eat_char();
                self.visit_str(visitor)
            }
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    #[inline]
    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    /// Left to `serde_json`: its strings as bytes keep lone surrogates
    /// and control characters.
    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.parse_whitespace() != Some(b'"') {
            return self
                .with_serde_json(visitor, |de, v| de::Deserializer::deserialize_bytes(de, v));
        }
        // The string's end, found as `serde_json` finds it for bytes.
        let start = self.pos;
        self.eat_char();
        let end = match self.ignore_raw_str() {
            Ok(()) => self.pos,
            Err(_) => self.input.len(),
        };
        let text = self.input.get(start..end).unwrap_or_default();
        let mut de = serde_json::Deserializer::from_str(text);
        let value = de::Deserializer::deserialize_bytes(&mut de, visitor)
            .and_then(|value| de.end().map(|()| value))
            .map_err(|e| Error::from_serde_json(&e, self.input, start))?;
        self.pos = end;
        Ok(value)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.parse_whitespace() == Some(b'n') {
            self.eat_char();
            self.parse_ident(b"ull")?;
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'n' => {
                self.eat_char();
                self.parse_ident(b"ull")?;
                visitor.visit_unit()
            }
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW_VALUE_TOKEN {
            return self.with_serde_json(visitor, |de, v| {
                de::Deserializer::deserialize_newtype_struct(de, name, v)
            });
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'[' => self.visit_array(visitor),
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'{' => self.visit_object(visitor),
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    /// An object, or an array of the fields in order, as in `serde_json`.
    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let value = match self.peek_value()? {
            b'{' => self.visit_object(visitor),
            b'[' => self.visit_array(visitor),
            _ => Err(self.peek_invalid_type(&visitor)),
        };
        value.map_err(|e| e.fix_position(self.pos))
    }

    /// A unit variant as a string, any variant as `{"name": value}`.
    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.parse_whitespace() {
            Some(b'{') => {
                check_recursion! {self,
                    self.eat_char();
                    let ret = visitor.visit_enum(VariantAccess::new(self));
                }
                let value = ret?;
                match self.parse_whitespace() {
                    Some(b'}') => {
                        self.eat_char();
                        Ok(value)
                    }
                    Some(_) => Err(self.error(Code::ExpectedSomeValue)),
                    None => Err(self.error(Code::EofWhileParsingObject)),
                }
            }
            Some(b'"') => visitor.visit_enum(UnitVariantAccess::new(self)),
            Some(_) => Err(self.peek_error(Code::ExpectedSomeValue)),
            None => Err(self.peek_error(Code::EofWhileParsingValue)),
        }
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // A string, the usual skipped value, without the general walk.
        if self.parse_whitespace() == Some(b'"') {
            self.eat_char();
            self.ignore_str()?;
        } else {
            self.ignore_value()?;
        }
        visitor.visit_unit()
    }
}
