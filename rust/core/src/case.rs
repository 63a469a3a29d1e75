//! camelCase dumps (pydantic's `by_alias=True`) from the same `Serialize` impls as the `snake_case` wire form.
//!
//! [`CamelCase`] wraps a value and its serializer: every struct field name is turned into its camelCase alias,
//! recursively, while map keys (ids, opaque JSON) stay as they are. Types whose keys pydantic never aliases
//! (`Multiaddr`, `TopologySnapshot`) serialise as maps, so they keep their `snake_case` keys here too.

use serde::ser::{
    self, Impossible, Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeTuple, SerializeTupleStruct,
    SerializeTupleVariant, Serializer,
};

use crate::json::payload::NUMBER_TOKEN;

/// pydantic's `to_camel` for our `snake_case` field names: `os_build_version` → `osBuildVersion`.
///
/// ```
/// assert_eq!(clusterstate_core::case::to_camel("last_event_index_by_node"), "lastEventIndexByNode");
/// assert_eq!(clusterstate_core::case::to_camel("idx"), "idx");
/// ```
pub fn to_camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' && !out.is_empty() {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Serialises the wrapped value with camelCase field names.
pub struct CamelCase<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for CamelCase<'_, T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Camel(serializer))
    }
}

/// A serializer (or one of its compound states) that renames struct fields and wraps every nested value.
struct Camel<S>(S);

fn unsupported<E: ser::Error>() -> E {
    E::custom("struct variants have no camelCase form; use a newtype variant holding a struct")
}

impl<S: Serializer> Serializer for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Camel<S::SerializeSeq>;
    type SerializeTuple = Camel<S::SerializeTuple>;
    type SerializeTupleStruct = Camel<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Camel<S::SerializeTupleVariant>;
    type SerializeMap = Camel<S::SerializeMap>;
    type SerializeStruct = CamelStruct<S::SerializeMap, S::SerializeStruct>;
    type SerializeStructVariant = Impossible<S::Ok, S::Error>;

    fn serialize_bool(self, v: bool) -> Result<S::Ok, S::Error> {
        self.0.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<S::Ok, S::Error> {
        self.0.serialize_i8(v)
    }
    fn serialize_i16(self, v: i16) -> Result<S::Ok, S::Error> {
        self.0.serialize_i16(v)
    }
    fn serialize_i32(self, v: i32) -> Result<S::Ok, S::Error> {
        self.0.serialize_i32(v)
    }
    fn serialize_i64(self, v: i64) -> Result<S::Ok, S::Error> {
        self.0.serialize_i64(v)
    }
    fn serialize_i128(self, v: i128) -> Result<S::Ok, S::Error> {
        self.0.serialize_i128(v)
    }
    fn serialize_u8(self, v: u8) -> Result<S::Ok, S::Error> {
        self.0.serialize_u8(v)
    }
    fn serialize_u16(self, v: u16) -> Result<S::Ok, S::Error> {
        self.0.serialize_u16(v)
    }
    fn serialize_u32(self, v: u32) -> Result<S::Ok, S::Error> {
        self.0.serialize_u32(v)
    }
    fn serialize_u64(self, v: u64) -> Result<S::Ok, S::Error> {
        self.0.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<S::Ok, S::Error> {
        self.0.serialize_u128(v)
    }
    fn serialize_f32(self, v: f32) -> Result<S::Ok, S::Error> {
        self.0.serialize_f32(v)
    }
    fn serialize_f64(self, v: f64) -> Result<S::Ok, S::Error> {
        self.0.serialize_f64(v)
    }
    fn serialize_char(self, v: char) -> Result<S::Ok, S::Error> {
        self.0.serialize_char(v)
    }
    fn serialize_str(self, v: &str) -> Result<S::Ok, S::Error> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<S::Ok, S::Error> {
        self.0.serialize_bytes(v)
    }
    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&CamelCase(value))
    }
    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, name: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_struct(name)
    }
    fn serialize_unit_variant(self, name: &'static str, index: u32, variant: &'static str) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, name: &'static str, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &CamelCase(value))
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &CamelCase(value))
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Camel)
    }
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Camel)
    }
    fn serialize_tuple_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Camel)
    }
    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0.serialize_tuple_variant(name, index, variant, len).map(Camel)
    }
    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Camel)
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Self::SerializeStruct, S::Error> {
        if name == NUMBER_TOKEN {
            return self.0.serialize_struct(name, len).map(CamelStruct::Number);
        }
        self.0
            .serialize_map(Some(len))
            .map(|map| CamelStruct::Fields(Camel(map)))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        Err(unsupported())
    }
    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

impl<S: SerializeSeq> SerializeSeq for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&CamelCase(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTuple> SerializeTuple for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_element(&CamelCase(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleStruct> SerializeTupleStruct for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&CamelCase(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeTupleVariant> SerializeTupleVariant for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_field(&CamelCase(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

impl<S: SerializeMap> SerializeMap for Camel<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), S::Error> {
        self.0.serialize_key(key)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), S::Error> {
        self.0.serialize_value(&CamelCase(value))
    }
    fn end(self) -> Result<S::Ok, S::Error> {
        self.0.end()
    }
}

/// A struct's fields, renamed; or a `serde_json::Number` (arbitrary precision), a struct that is passed through.
enum CamelStruct<M, N> {
    Fields(Camel<M>),
    Number(N),
}

impl<M: SerializeMap, N: SerializeStruct<Ok = M::Ok, Error = M::Error>> SerializeStruct for CamelStruct<M, N> {
    type Ok = M::Ok;
    type Error = M::Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result<(), M::Error> {
        match self {
            Self::Fields(map) => map.0.serialize_entry(&to_camel(key), &CamelCase(value)),
            Self::Number(number) => number.serialize_field(key, value),
        }
    }
    fn end(self) -> Result<M::Ok, M::Error> {
        match self {
            Self::Fields(map) => map.0.end(),
            Self::Number(number) => number.end(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Serialize;
    use std::collections::BTreeMap;

    #[derive(Serialize)]
    struct Inner {
        ram_total: u8,
    }

    #[derive(Serialize)]
    enum Tagged {
        MacmonMetrics(Inner),
    }

    #[derive(Serialize)]
    struct Outer {
        node_memory: BTreeMap<String, Inner>,
        info: Option<Tagged>,
        list_of: Vec<Inner>,
    }

    #[test]
    fn renames_struct_fields_only() {
        let mut map = BTreeMap::new();
        map.insert("node_a".to_owned(), Inner { ram_total: 1 });
        let value = Outer {
            node_memory: map,
            info: Some(Tagged::MacmonMetrics(Inner { ram_total: 2 })),
            list_of: vec![],
        };
        let text = crate::json::to_string(&value, crate::json::Case::Camel).unwrap();
        assert_eq!(
            text,
            r#"{"nodeMemory":{"node_a":{"ramTotal":1}},"info":{"MacmonMetrics":{"ramTotal":2}},"listOf":[]}"#
        );
    }

    #[test]
    fn camel_names() {
        assert_eq!(to_camel("os_build_version"), "osBuildVersion");
        assert_eq!(to_camel("in_bytes"), "inBytes");
        assert_eq!(to_camel("conns"), "conns");
    }
}
