//! How a visitor walks an array, an object and an enum in the fast path:
//! `serde_json`'s access types, with the same checks and errors.

use serde::de::{self, DeserializeSeed, Unexpected, Visitor};

use super::de::Deserializer;
use super::error::{Code, Error};

type Result<T, E = Error> = std::result::Result<T, E>;

/// The elements of an array.
pub(super) struct SeqAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'a, 'de> SeqAccess<'a, 'de> {
    pub(super) fn new(de: &'a mut Deserializer<'de>) -> Self {
        SeqAccess { de, first: true }
    }

    fn has_next_element(&mut self) -> Result<bool> {
        let de = &mut *self.de;
        let peek = match de.parse_whitespace() {
            Some(b) => b,
            None => return Err(de.peek_error(Code::EofWhileParsingList)),
        };
        if peek == b']' {
            Ok(false)
        } else if self.first {
            self.first = false;
            Ok(true)
        } else if peek == b',' {
            de.eat_char();
            match de.parse_whitespace() {
                Some(b']') => Err(de.peek_error(Code::TrailingComma)),
                Some(_) => Ok(true),
                None => Err(de.peek_error(Code::EofWhileParsingValue)),
            }
        } else {
            Err(de.peek_error(Code::ExpectedListCommaOrEnd))
        }
    }
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, 'de> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        if self.has_next_element()? {
            Ok(Some(seed.deserialize(&mut *self.de)?))
        } else {
            Ok(None)
        }
    }
}

/// The entries of an object.
pub(super) struct MapAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'a, 'de> MapAccess<'a, 'de> {
    pub(super) fn new(de: &'a mut Deserializer<'de>) -> Self {
        MapAccess { de, first: true }
    }

    #[inline(always)]
    fn has_next_key(&mut self) -> Result<bool> {
        let de = &mut *self.de;
        let peek = match de.parse_whitespace() {
            Some(b) => b,
            None => return Err(de.peek_error(Code::EofWhileParsingObject)),
        };
        if peek == b'}' {
            Ok(false)
        } else if self.first {
            self.first = false;
            if peek == b'"' {
                Ok(true)
            } else {
                Err(de.peek_error(Code::KeyMustBeAString))
            }
        } else if peek == b',' {
            de.eat_char();
            match de.parse_whitespace() {
                Some(b'"') => Ok(true),
                Some(b'}') => Err(de.peek_error(Code::TrailingComma)),
                Some(_) => Err(de.peek_error(Code::KeyMustBeAString)),
                None => Err(de.peek_error(Code::EofWhileParsingValue)),
            }
        } else {
            Err(de.peek_error(Code::ExpectedObjectCommaOrEnd))
        }
    }
}

impl<'de> de::MapAccess<'de> for MapAccess<'_, 'de> {
    type Error = Error;

    #[inline(always)]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        if self.has_next_key()? {
            Ok(Some(seed.deserialize(MapKey { de: &mut *self.de })?))
        } else {
            Ok(None)
        }
    }

    #[inline(always)]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.parse_object_colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// An enum written `{"variant": value}`.
pub(super) struct VariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'a, 'de> VariantAccess<'a, 'de> {
    pub(super) fn new(de: &'a mut Deserializer<'de>) -> Self {
        VariantAccess { de }
    }
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        match self.de.parse_whitespace() {
            Some(b'"') => {}
            Some(b'}') => return Err(self.de.peek_error(Code::ExpectedSomeValue)),
            Some(_) => return Err(self.de.peek_error(Code::KeyMustBeAString)),
            None => return Err(self.de.peek_error(Code::EofWhileParsingObject)),
        }
        let value = match seed.deserialize(MapKey { de: &mut *self.de }) {
            Ok(value) => value,
            Err(err) => return Err(err.fix_position(self.de.pos)),
        };
        self.de.parse_object_colon()?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
}

/// An enum written as the name of a unit variant.
pub(super) struct UnitVariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'a, 'de> UnitVariantAccess<'a, 'de> {
    pub(super) fn new(de: &'a mut Deserializer<'de>) -> Self {
        UnitVariantAccess { de }
    }
}

impl<'de> de::EnumAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;

    #[inline]
    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

/// An object's key, at its opening quote. Keys read as strings (any text
/// type, identifiers, enums, newtypes of them) stay on the fast path; keys
/// read as numbers or booleans leave the whole text to `serde_json`.
struct MapKey<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

/// Key methods that leave the whole text to `serde_json`.
macro_rules! bail {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value> {
            Err(self.de.bail())
        }
    )*};
}

impl<'de> de::Deserializer<'de> for MapKey<'_, 'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.eat_char();
        self.de.visit_str(visitor)
    }

    bail! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_bool
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        // Keys are never null.
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == super::de::RAW_VALUE_TOKEN {
            return Err(self.de.bail());
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_enum(self.de, name, variants, visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_bytes(self.de, visitor)
    }

    serde::forward_to_deserialize_any! {
        char str string unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}
