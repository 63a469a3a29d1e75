//! A `Deserializer` adapter that reads JSON the way pydantic does where serde is laxer.
//!
//! serde's derived `Deserialize` accepts a JSON array for a struct (fields by position) and for a struct variant;
//! pydantic refuses both. [`Strict`] wraps any deserializer and refuses a sequence wherever a struct or a struct
//! variant is asked for, at every depth: it wraps the nested map, sequence, enum and variant accesses it hands out,
//! the way `serde_ignored` wraps its own. A map (`HashMap`, `IndexMap`, ...) refuses a duplicate key, which serde's
//! maps would overwrite (a struct's derived code refuses a duplicate field itself). Ignored values are read in full
//! (`deserialize_any`), so an ignored field is valid JSON as pydantic parses it (no lone surrogate).

use std::collections::HashSet;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor};

/// A deserializer that refuses arrays for structs, at every depth.
pub struct Strict<D>(pub D);

/// Decode `T` from `deserializer` through [`Strict`].
pub fn deserialize<'de, T: de::Deserialize<'de>, D: Deserializer<'de>>(deserializer: D) -> Result<T, D::Error> {
    T::deserialize(Strict(deserializer))
}

/// What a visitor forwarded through [`Strict`] was asked for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Any,
    /// A struct or struct variant: a sequence is refused.
    Struct,
    /// A map: a duplicate key is refused.
    Map,
}

/// A visitor forwarded through [`Strict`].
struct Wrap<V> {
    visitor: V,
    mode: Mode,
}

impl<V> Wrap<V> {
    fn any(visitor: V) -> Self {
        Self {
            visitor,
            mode: Mode::Any,
        }
    }

    fn structure(visitor: V) -> Self {
        Self {
            visitor,
            mode: Mode::Struct,
        }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        #[inline]
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            self.0.$method(Wrap::any(visitor))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<D> {
    type Error = D::Error;

    forward_deserialize! {
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64
        deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
        deserialize_f32 deserialize_f64 deserialize_char deserialize_str deserialize_string deserialize_bytes
        deserialize_byte_buf deserialize_option deserialize_unit deserialize_seq
        deserialize_identifier
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_map(Wrap {
            visitor,
            mode: Mode::Map,
        })
    }

    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_any(Wrap::any(visitor))
    }

    #[inline]
    fn deserialize_unit_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_unit_struct(name, Wrap::any(visitor))
    }

    #[inline]
    fn deserialize_newtype_struct<V: Visitor<'de>>(self, name: &'static str, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_newtype_struct(name, Wrap::any(visitor))
    }

    #[inline]
    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple(len, Wrap::any(visitor))
    }

    #[inline]
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_tuple_struct(name, len, Wrap::any(visitor))
    }

    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_struct(name, fields, Wrap::structure(visitor))
    }

    #[inline]
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.0.deserialize_enum(name, variants, Wrap::any(visitor))
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_visit {
    ($($method:ident: $ty:ty,)*) => {$(
        #[inline]
        fn $method<E: de::Error>(self, value: $ty) -> Result<V::Value, E> {
            self.visitor.$method(value)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visit! {
        visit_bool: bool, visit_i8: i8, visit_i16: i16, visit_i32: i32, visit_i64: i64, visit_i128: i128,
        visit_u8: u8, visit_u16: u16, visit_u32: u32, visit_u64: u64, visit_u128: u128, visit_f32: f32,
        visit_f64: f64, visit_char: char, visit_str: &str, visit_borrowed_str: &'de str, visit_string: String,
        visit_bytes: &[u8], visit_borrowed_bytes: &'de [u8], visit_byte_buf: Vec<u8>,
    }

    #[inline]
    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_none()
    }

    #[inline]
    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.visitor.visit_unit()
    }

    #[inline]
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_some(Strict(deserializer))
    }

    #[inline]
    fn visit_newtype_struct<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        self.visitor.visit_newtype_struct(Strict(deserializer))
    }

    #[inline]
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        if self.mode == Mode::Struct {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self.visitor));
        }
        self.visitor.visit_seq(Strict(seq))
    }

    #[inline]
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        if self.mode == Mode::Map {
            return self.visitor.visit_map(Unique {
                map: Strict(map),
                seen: HashSet::new(),
            });
        }
        self.visitor.visit_map(Strict(map))
    }

    #[inline]
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_enum(Strict(data))
    }
}

/// A seed whose deserializer is wrapped in [`Strict`].
struct Seed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<S> {
    type Value = S::Value;

    #[inline]
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.0.deserialize(Strict(deserializer))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Strict<A> {
    type Error = A::Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>, A::Error> {
        self.0.next_element_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Strict<A> {
    type Error = A::Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        self.0.next_key_seed(Seed(seed))
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.0.next_value_seed(Seed(seed))
    }

    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: EnumAccess<'de>> EnumAccess<'de> for Strict<A> {
    type Error = A::Error;
    type Variant = Strict<A::Variant>;

    #[inline]
    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant), A::Error> {
        let (value, variant) = self.0.variant_seed(Seed(seed))?;
        Ok((value, Strict(variant)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Strict<A> {
    type Error = A::Error;

    #[inline]
    fn unit_variant(self) -> Result<(), A::Error> {
        self.0.unit_variant()
    }

    #[inline]
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.0.newtype_variant_seed(Seed(seed))
    }

    #[inline]
    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.0.tuple_variant(len, Wrap::any(visitor))
    }

    #[inline]
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.0.struct_variant(fields, Wrap::structure(visitor))
    }
}

/// A map's entries, each key read as a string first to refuse a duplicate.
struct Unique<A> {
    map: Strict<A>,
    seen: HashSet<String>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Unique<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, A::Error> {
        let Some(key) = self.map.next_key::<String>()? else {
            return Ok(None);
        };
        if self.seen.contains(&key) {
            return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
        }
        let value = seed.deserialize(de::value::StrDeserializer::new(&key))?;
        self.seen.insert(key);
        Ok(Some(value))
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }

    fn size_hint(&self) -> Option<usize> {
        self.map.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Inner {
        a: u64,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Outer {
        inner: Inner,
        items: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    enum Tagged {
        Unit,
        Fields { a: u64 },
        Wrapped(Inner),
    }

    fn strict<T: de::DeserializeOwned>(text: &str) -> Result<T, serde_json::Error> {
        deserialize(&mut serde_json::Deserializer::from_str(text))
    }

    #[test]
    fn structs_are_objects_only_at_every_depth() {
        assert!(
            serde_json::from_str::<Outer>(r"[[1],[[2]]]").is_ok(),
            "serde alone is lax"
        );
        assert!(strict::<Outer>(r#"[{"a":1},[]]"#).is_err());
        assert!(strict::<Outer>(r#"{"inner":[1],"items":[]}"#).is_err());
        assert!(strict::<Outer>(r#"{"inner":{"a":1},"items":[{"a":2},[3]]}"#).is_err());
        assert!(strict::<Tagged>(r#"{"Fields":[1]}"#).is_err());
        assert!(strict::<Tagged>(r#"{"Wrapped":[1]}"#).is_err());
        assert!(strict::<Option<Inner>>(r"[1]").is_err());
        let ok: Outer = strict(r#"{"inner":{"a":1},"items":[{"a":2}]}"#).unwrap();
        assert_eq!(ok.items, vec![Inner { a: 2 }]);
        assert_eq!(
            strict::<Tagged>(r#"{"Fields":{"a":3}}"#).unwrap(),
            Tagged::Fields { a: 3 }
        );
        assert_eq!(strict::<Tagged>(r#""Unit""#).unwrap(), Tagged::Unit);
    }

    #[test]
    fn maps_refuse_duplicate_keys() {
        type Map = std::collections::HashMap<String, u64>;
        assert!(
            serde_json::from_str::<Map>(r#"{"a":1,"a":2}"#).is_ok(),
            "serde alone keeps the last"
        );
        let err = strict::<Map>(r#"{"a":1,"b":2,"a":3}"#).unwrap_err().to_string();
        assert!(err.contains(r#"duplicate key "a""#), "{err}");
        assert_eq!(strict::<Map>(r#"{"a":1,"b":2}"#).unwrap().len(), 2);
        assert!(strict::<Vec<Map>>(r#"[{"a":1},{"x":1,"x":1}]"#).is_err());
    }

    #[test]
    fn the_error_names_the_struct() {
        let err = strict::<Outer>(r#"{"inner":[1],"items":[]}"#).unwrap_err().to_string();
        assert!(err.contains("invalid type: sequence, expected struct Inner"), "{err}");
    }

    #[test]
    fn ignored_values_are_read_in_full() {
        #[derive(Debug, Deserialize)]
        struct Skips {
            #[allow(dead_code)]
            #[serde(default)]
            skipped: Option<de::IgnoredAny>,
        }
        assert!(
            serde_json::from_str::<Skips>(r#"{"skipped":"\ud800"}"#).is_ok(),
            "serde alone skips unread"
        );
        assert!(strict::<Skips>(r#"{"skipped":"\ud800"}"#).is_err());
        assert!(strict::<Skips>(r#"{"skipped":["\u00e9",{"x":1}]}"#).is_ok());
    }
}
