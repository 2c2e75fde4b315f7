//! Numbers, read as `serde_json` reads them: an integer is a `u64` (or an
//! `i64` when negative) while it fits, and anything else an `f64` made by
//! `serde_json`'s own arithmetic, so that every value is bit for bit the
//! one `serde_json` gives.
//!
//! `serde_json`'s default float arithmetic is not correctly rounded (about
//! one 17-digit number in five comes out one bit off `str::parse`); its
//! `float_roundtrip` feature makes it correctly rounded. Which one the
//! build has is found once, by parsing a number the two disagree on, and
//! the fast path follows it: with `float_roundtrip` it parses the number's
//! text with `str::parse`, which is then what `serde_json` gives.

use std::sync::LazyLock;

use serde::de::Visitor;

use super::de::Deserializer;
use super::error::{Code, Error};

type Result<T, E = Error> = std::result::Result<T, E>;

/// A number as `serde_json` hands it to a visitor.
#[derive(Debug, Clone, Copy)]
pub(super) enum Number {
    U64(u64),
    I64(i64),
    F64(f64),
}

impl Number {
    /// Hands the number to `visitor`.
    #[inline]
    pub(super) fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Number::U64(n) => visitor.visit_u64(n),
            Number::I64(n) => visitor.visit_i64(n),
            Number::F64(n) => visitor.visit_f64(n),
        }
    }
}

/// Whether this build's `serde_json` rounds floats correctly (its
/// `float_roundtrip` feature): `0.1e-300` is one bit low without it.
pub(super) static CORRECTLY_ROUNDED: LazyLock<bool> = LazyLock::new(|| {
    serde_json::from_str::<f64>("0.1e-300").is_ok_and(|f| f.to_bits() == 0x17124e63593f5e1)
});

/// Whether this build's `serde_json` keeps numbers as text (its
/// `arbitrary_precision` feature), which changes what `deserialize_any`
/// hands to a visitor: `1e400` is out of range without it.
pub(super) static ARBITRARY_PRECISION: LazyLock<bool> =
    LazyLock::new(|| serde_json::from_str::<serde_json::Value>("1e400").is_ok());

/// `if a * 10 + b` overflows `c`.
macro_rules! overflow {
    ($a:ident * 10 + $b:ident, $c:expr) => {
        $a >= $c / 10 && ($a > $c / 10 || $b > $c % 10)
    };
}

impl<'de> Deserializer<'de> {
    /// Reads a number at a `-` or a digit (`serde_json`'s
    /// `parse_integer`, sign included).
    #[inline(always)]
    pub(super) fn parse_signed(&mut self) -> Result<Number> {
        self.num_start = self.pos;
        if let Some(n) = self.parse_simple_number() {
            return Ok(n);
        }
        self.parse_signed_exact()
    }

    /// The common numbers, without `serde_json`'s checks at every digit,
    /// which they cannot fail: an integer part of 1 to 19 digits (no
    /// leading zero), and maybe a fraction, 19 digits in all, without an
    /// exponent. `None`, reading nothing, for any other number: the exact
    /// path reads it.
    #[inline(always)]
    fn parse_simple_number(&mut self) -> Option<Number> {
        let bytes = self.bytes;
        let negative = bytes.get(self.pos) == Some(&b'-');
        let int_start = self.pos + usize::from(negative);
        let (mut significand, mut i) = accumulate_digits(bytes, 0, int_start);
        let int_digits = i - int_start;
        if int_digits == 0
            || int_digits > 19
            || (int_digits > 1 && bytes.get(int_start) == Some(&b'0'))
        {
            return None;
        }
        match bytes.get(i) {
            Some(b'.') => {
                let frac_start = i + 1;
                (significand, i) = accumulate_digits(bytes, significand, frac_start);
                let frac_digits = i - frac_start;
                if frac_digits == 0
                    || int_digits + frac_digits > 19
                    || matches!(bytes.get(i), Some(b'e' | b'E'))
                {
                    return None;
                }
                self.pos = i;
                // A negative exponent: never out of range.
                let exponent = -(frac_digits as i32);
                self.f64_from_parts(!negative, significand, exponent)
                    .ok()
                    .map(Number::F64)
            }
            Some(b'e' | b'E') => None,
            _ => {
                self.pos = i;
                Some(negate(negative, significand))
            }
        }
    }

    /// Reads a number at a `-` or a digit exactly as `serde_json` does.
    #[cold]
    #[inline(never)]
    fn parse_signed_exact(&mut self) -> Result<Number> {
        self.pos = self.num_start;
        if self.peek() == Some(b'-') {
            self.eat_char();
            self.parse_integer(false)
        } else {
            self.parse_integer(true)
        }
    }

    #[inline]
    fn parse_integer(&mut self, positive: bool) -> Result<Number> {
        match self.next_char() {
            None => Err(self.error(Code::EofWhileParsingValue)),
            Some(b'0') => {
                // There can be only one leading '0'.
                if self.peek_or_null().is_ascii_digit() {
                    Err(self.peek_error(Code::InvalidNumber))
                } else {
                    self.parse_number(positive, 0)
                }
            }
            Some(c @ b'1'..=b'9') => {
                let mut significand = u64::from(c - b'0');
                loop {
                    let c = self.peek_or_null();
                    if !c.is_ascii_digit() {
                        return self.parse_number(positive, significand);
                    }
                    let digit = u64::from(c - b'0');
                    if overflow!(significand * 10 + digit, u64::MAX) {
                        return Ok(Number::F64(self.parse_long_integer(positive, significand)?));
                    }
                    self.eat_char();
                    significand = significand * 10 + digit;
                }
            }
            Some(_) => Err(self.error(Code::InvalidNumber)),
        }
    }

    #[inline]
    fn parse_number(&mut self, positive: bool, significand: u64) -> Result<Number> {
        Ok(match self.peek_or_null() {
            b'.' => Number::F64(self.parse_decimal(positive, significand, 0)?),
            b'e' | b'E' => Number::F64(self.parse_exponent(positive, significand, 0)?),
            _ => negate(!positive, significand),
        })
    }

    fn parse_decimal(&mut self, positive: bool, mut significand: u64, before: i32) -> Result<f64> {
        self.eat_char();
        let mut after = 0i32;
        loop {
            let c = self.peek_or_null();
            if !c.is_ascii_digit() {
                break;
            }
            let digit = u64::from(c - b'0');
            if overflow!(significand * 10 + digit, u64::MAX) {
                return self.parse_decimal_overflow(positive, significand, before + after);
            }
            self.eat_char();
            significand = significand * 10 + digit;
            after -= 1;
        }
        // At least one digit after the point.
        if after == 0 {
            return Err(match self.peek() {
                Some(_) => self.peek_error(Code::InvalidNumber),
                None => self.peek_error(Code::EofWhileParsingValue),
            });
        }
        match self.peek_or_null() {
            b'e' | b'E' => self.parse_exponent(positive, significand, before + after),
            _ => self.f64_from_parts(positive, significand, before + after),
        }
    }

    fn parse_exponent(&mut self, positive: bool, significand: u64, starting: i32) -> Result<f64> {
        self.eat_char();
        let positive_exp = match self.peek_or_null() {
            b'+' => {
                self.eat_char();
                true
            }
            b'-' => {
                self.eat_char();
                false
            }
            _ => true,
        };
        let mut exp = match self.next_char() {
            None => return Err(self.error(Code::EofWhileParsingValue)),
            Some(c @ b'0'..=b'9') => i32::from(c - b'0'),
            Some(_) => return Err(self.error(Code::InvalidNumber)),
        };
        loop {
            let c = self.peek_or_null();
            if !c.is_ascii_digit() {
                break;
            }
            self.eat_char();
            let digit = i32::from(c - b'0');
            if overflow!(exp * 10 + digit, i32::MAX) {
                return self.parse_exponent_overflow(positive, significand == 0, positive_exp);
            }
            exp = exp * 10 + digit;
        }
        let exponent = if positive_exp {
            starting.saturating_add(exp)
        } else {
            starting.saturating_sub(exp)
        };
        self.f64_from_parts(positive, significand, exponent)
    }

    /// The value of a whole number, read: `serde_json`'s arithmetic, or
    /// the correctly rounded value of its text when `serde_json` rounds
    /// correctly.
    fn f64_from_parts(
        &mut self,
        positive: bool,
        significand: u64,
        mut exponent: i32,
    ) -> Result<f64> {
        if *CORRECTLY_ROUNDED {
            let text = self.input.get(self.num_start..self.pos).unwrap_or_default();
            return match text.parse::<f64>() {
                Ok(f) if f.is_finite() => Ok(f),
                _ => Err(self.error(Code::NumberOutOfRange)),
            };
        }
        let mut f = significand as f64;
        loop {
            match POW10.get(exponent.unsigned_abs() as usize) {
                Some(&pow) => {
                    if exponent >= 0 {
                        f *= pow;
                        if f.is_infinite() {
                            return Err(self.error(Code::NumberOutOfRange));
                        }
                    } else {
                        f /= pow;
                    }
                    break;
                }
                None => {
                    if f == 0.0 {
                        break;
                    }
                    if exponent >= 0 {
                        return Err(self.error(Code::NumberOutOfRange));
                    }
                    f /= 1e308;
                    exponent += 308;
                }
            }
        }
        Ok(if positive { f } else { -f })
    }

    /// An integer part too long for a `u64`: later digits only scale it.
    #[cold]
    #[inline(never)]
    fn parse_long_integer(&mut self, positive: bool, significand: u64) -> Result<f64> {
        let mut exponent = 0i32;
        loop {
            match self.peek_or_null() {
                b'0'..=b'9' => {
                    self.eat_char();
                    exponent = exponent.saturating_add(1);
                }
                b'.' => return self.parse_decimal(positive, significand, exponent),
                b'e' | b'E' => return self.parse_exponent(positive, significand, exponent),
                _ => return self.f64_from_parts(positive, significand, exponent),
            }
        }
    }

    /// A fraction too long for a `u64`: later digits are ignored.
    #[cold]
    #[inline(never)]
    fn parse_decimal_overflow(
        &mut self,
        positive: bool,
        significand: u64,
        exponent: i32,
    ) -> Result<f64> {
        self.skip_digits();
        match self.peek_or_null() {
            b'e' | b'E' => self.parse_exponent(positive, significand, exponent),
            _ => self.f64_from_parts(positive, significand, exponent),
        }
    }

    /// An exponent too long for an `i32`: zero, or out of range.
    #[cold]
    #[inline(never)]
    fn parse_exponent_overflow(
        &mut self,
        positive: bool,
        zero_significand: bool,
        positive_exp: bool,
    ) -> Result<f64> {
        if !zero_significand && positive_exp {
            return Err(self.error(Code::NumberOutOfRange));
        }
        self.skip_digits();
        Ok(if positive { 0.0 } else { -0.0 })
    }
}

/// An integer: a `u64`, or when negative an `i64`, or an `f64` when
/// that underflows and for `-0`, as in `serde_json`.
#[inline]
fn negate(negative: bool, significand: u64) -> Number {
    if !negative {
        return Number::U64(significand);
    }
    let neg = (significand as i64).wrapping_neg();
    if neg >= 0 {
        Number::F64(-(significand as f64))
    } else {
        Number::I64(neg)
    }
}

/// Appends the digits at `i` to `significand` (wrapping: the caller
/// counts them), and returns it with the index after them.
#[inline(always)]
fn accumulate_digits(bytes: &[u8], mut significand: u64, mut i: usize) -> (u64, usize) {
    while let Some(&c) = bytes.get(i) {
        let digit = c.wrapping_sub(b'0');
        if digit > 9 {
            break;
        }
        significand = significand.wrapping_mul(10).wrapping_add(u64::from(digit));
        i += 1;
    }
    (significand, i)
}

/// `1e0` to `1e308`, each correctly rounded, as `serde_json` has them.
static POW10: [f64; 309] = [
    1e000, 1e001, 1e002, 1e003, 1e004, 1e005, 1e006, 1e007, 1e008, 1e009, 1e010, 1e011, 1e012,
    1e013, 1e014, 1e015, 1e016, 1e017, 1e018, 1e019, 1e020, 1e021, 1e022, 1e023, 1e024, 1e025,
    1e026, 1e027, 1e028, 1e029, 1e030, 1e031, 1e032, 1e033, 1e034, 1e035, 1e036, 1e037, 1e038,
    1e039, 1e040, 1e041, 1e042, 1e043, 1e044, 1e045, 1e046, 1e047, 1e048, 1e049, 1e050, 1e051,
    1e052, 1e053, 1e054, 1e055, 1e056, 1e057, 1e058, 1e059, 1e060, 1e061, 1e062, 1e063, 1e064,
    1e065, 1e066, 1e067, 1e068, 1e069, 1e070, 1e071, 1e072, 1e073, 1e074, 1e075, 1e076, 1e077,
    1e078, 1e079, 1e080, 1e081, 1e082, 1e083, 1e084, 1e085, 1e086, 1e087, 1e088, 1e089, 1e090,
    1e091, 1e092, 1e093, 1e094, 1e095, 1e096, 1e097, 1e098, 1e099, 1e100, 1e101, 1e102, 1e103,
    1e104, 1e105, 1e106, 1e107, 1e108, 1e109, 1e110, 1e111, 1e112, 1e113, 1e114, 1e115, 1e116,
    1e117, 1e118, 1e119, 1e120, 1e121, 1e122, 1e123, 1e124, 1e125, 1e126, 1e127, 1e128, 1e129,
    1e130, 1e131, 1e132, 1e133, 1e134, 1e135, 1e136, 1e137, 1e138, 1e139, 1e140, 1e141, 1e142,
    1e143, 1e144, 1e145, 1e146, 1e147, 1e148, 1e149, 1e150, 1e151, 1e152, 1e153, 1e154, 1e155,
    1e156, 1e157, 1e158, 1e159, 1e160, 1e161, 1e162, 1e163, 1e164, 1e165, 1e166, 1e167, 1e168,
    1e169, 1e170, 1e171, 1e172, 1e173, 1e174, 1e175, 1e176, 1e177, 1e178, 1e179, 1e180, 1e181,
    1e182, 1e183, 1e184, 1e185, 1e186, 1e187, 1e188, 1e189, 1e190, 1e191, 1e192, 1e193, 1e194,
    1e195, 1e196, 1e197, 1e198, 1e199, 1e200, 1e201, 1e202, 1e203, 1e204, 1e205, 1e206, 1e207,
    1e208, 1e209, 1e210, 1e211, 1e212, 1e213, 1e214, 1e215, 1e216, 1e217, 1e218, 1e219, 1e220,
    1e221, 1e222, 1e223, 1e224, 1e225, 1e226, 1e227, 1e228, 1e229, 1e230, 1e231, 1e232, 1e233,
    1e234, 1e235, 1e236, 1e237, 1e238, 1e239, 1e240, 1e241, 1e242, 1e243, 1e244, 1e245, 1e246,
    1e247, 1e248, 1e249, 1e250, 1e251, 1e252, 1e253, 1e254, 1e255, 1e256, 1e257, 1e258, 1e259,
    1e260, 1e261, 1e262, 1e263, 1e264, 1e265, 1e266, 1e267, 1e268, 1e269, 1e270, 1e271, 1e272,
    1e273, 1e274, 1e275, 1e276, 1e277, 1e278, 1e279, 1e280, 1e281, 1e282, 1e283, 1e284, 1e285,
    1e286, 1e287, 1e288, 1e289, 1e290, 1e291, 1e292, 1e293, 1e294, 1e295, 1e296, 1e297, 1e298,
    1e299, 1e300, 1e301, 1e302, 1e303, 1e304, 1e305, 1e306, 1e307, 1e308,
];
