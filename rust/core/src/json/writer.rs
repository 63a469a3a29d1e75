//! The `snake_case` encoder: byte for byte what `serde_json` writes with [`super::PydanticFormatter`], about a third
//! faster, since encoding is a large share of every append and broadcast. Struct field names (Rust identifiers)
//! are written without an escape scan, a string is scanned for bytes to escape in one branch-free pass, and
//! everything goes straight into a `Vec`. `serde_json` stays the reference: the property tests compare the two.

use serde::ser::{self, Impossible, Serialize};

use super::payload::NUMBER_TOKEN;

type Error = serde_json::Error;
type Result<T = ()> = std::result::Result<T, Error>;

struct Writer<'a> {
    out: &'a mut Vec<u8>,
}

/// Append the `snake_case` JSON of `value` to `out`.
#[inline]
pub(super) fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) -> Result {
    value.serialize(&mut Writer { out })
}

const HEX: &[u8; 16] = b"0123456789abcdef";

#[inline]
fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

#[inline]
fn write_str(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Branch-free over the whole string (it vectorises): most strings have nothing to escape.
    if bytes.iter().fold(false, |found, &b| found | needs_escape(b)) {
        write_escaped(out, bytes);
    } else {
        out.extend_from_slice(bytes);
    }
    out.push(b'"');
}

/// The escapes `serde_json` writes: the short ones where JSON has them, `\u00xx` for other control bytes.
fn write_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if !needs_escape(b) {
            continue;
        }
        out.extend_from_slice(&bytes[start..i]);
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0x08 => out.extend_from_slice(b"\\b"),
            0x0c => out.extend_from_slice(b"\\f"),
            _ => out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 0xf)],
            ]),
        }
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
}

#[inline]
fn write_float(out: &mut Vec<u8>, value: f64) {
    // Writing to a Vec cannot fail.
    let _ = super::write_float(out, value);
}

#[inline]
fn write_int<I: itoa::Integer>(out: &mut Vec<u8>, value: I) {
    out.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
}

struct Compound<'w, 'a> {
    writer: &'w mut Writer<'a>,
    first: bool,
    /// What closes it: `]` or `}`, or `]}` / `}}` for a variant wrapping an array or an object.
    close: &'static [u8],
}

impl Compound<'_, '_> {
    #[inline]
    fn comma(&mut self) {
        if self.first {
            self.first = false;
        } else {
            self.writer.out.push(b',');
        }
    }
}

impl<'w, 'a> ser::Serializer for &'w mut Writer<'a> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Compound<'w, 'a>;
    type SerializeTuple = Compound<'w, 'a>;
    type SerializeTupleStruct = Compound<'w, 'a>;
    type SerializeTupleVariant = Compound<'w, 'a>;
    type SerializeMap = Compound<'w, 'a>;
    type SerializeStruct = Compound<'w, 'a>;
    type SerializeStructVariant = Compound<'w, 'a>;

    #[inline]
    fn serialize_bool(self, v: bool) -> Result {
        self.out.extend_from_slice(if v { b"true" } else { b"false" });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result {
        write_int(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result {
        write_float(self.out, f64::from(v));
        Ok(())
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result {
        write_float(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_bytes(self, v: &[u8]) -> Result {
        let mut seq = ser::Serializer::serialize_seq(self, Some(v.len()))?;
        for b in v {
            ser::SerializeSeq::serialize_element(&mut seq, b)?;
        }
        ser::SerializeSeq::end(seq)
    }
    #[inline]
    fn serialize_none(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result {
        write_str(self.out, variant);
        Ok(())
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        self.out.push(b'[');
        Ok(Compound {
            writer: self,
            first: true,
            close: b"]",
        })
    }
    #[inline]
    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple> {
        self.serialize_seq(Some(len))
    }
    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Self::SerializeTupleStruct> {
        self.serialize_seq(Some(len))
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound {
            writer: self,
            first: true,
            close: b"]}",
        })
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        self.out.push(b'{');
        Ok(Compound {
            writer: self,
            first: true,
            close: b"}",
        })
    }
    #[inline]
    fn serialize_struct(self, name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        // A `serde_json::Number` (arbitrary precision) is a struct of one field, its text: written bare.
        let close: &'static [u8] = if name == NUMBER_TOKEN { b"" } else { b"{" };
        self.out.extend_from_slice(close);
        Ok(Compound {
            writer: self,
            first: true,
            close: if close.is_empty() { b"" } else { b"}" },
        })
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        self.out.push(b'{');
        write_str(self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound {
            writer: self,
            first: true,
            close: b"}}",
        })
    }
}

impl ser::SerializeSeq for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(&mut *self.writer)
    }
    #[inline]
    fn end(self) -> Result {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}
/// Tuples of every kind are arrays.
macro_rules! as_seq {
    ($($kind:ident::$method:ident),*) => {$(
        impl ser::$kind for Compound<'_, '_> {
            type Ok = ();
            type Error = Error;
            #[inline]
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
                ser::SerializeSeq::serialize_element(self, value)
            }
            #[inline]
            fn end(self) -> Result {
                ser::SerializeSeq::end(self)
            }
        }
    )*};
}

as_seq!(
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

impl ser::SerializeMap for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        key.serialize(MapKey {
            out: &mut *self.writer.out,
        })?;
        self.writer.out.push(b':');
        Ok(())
    }
    #[inline]
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        value.serialize(&mut *self.writer)
    }
    #[inline]
    fn end(self) -> Result {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}
impl ser::SerializeStruct for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        if key == NUMBER_TOKEN {
            // The number's text, written as a string (no escapes in a number), then unquoted and normalised.
            let start = self.writer.out.len();
            value.serialize(&mut *self.writer)?;
            let text = self.writer.out.split_off(start);
            let text = text.get(1..text.len().saturating_sub(1)).unwrap_or_default();
            // Writing to a Vec cannot fail.
            let _ = super::write_number_text(self.writer.out, std::str::from_utf8(text).unwrap_or_default());
            return Ok(());
        }
        self.comma();
        // Field names are Rust identifiers or serde renames of them: nothing to escape (checked in debug builds,
        // which the tests run on every type through the golden traces).
        debug_assert!(!key.bytes().any(needs_escape));
        let out = &mut *self.writer.out;
        out.push(b'"');
        out.extend_from_slice(key.as_bytes());
        out.extend_from_slice(b"\":");
        value.serialize(&mut *self.writer)
    }
    #[inline]
    fn end(self) -> Result {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}
impl ser::SerializeStructVariant for Compound<'_, '_> {
    type Ok = ();
    type Error = Error;
    #[inline]
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        ser::SerializeStruct::serialize_field(self, key, value)
    }
    #[inline]
    fn end(self) -> Result {
        ser::SerializeStruct::end(self)
    }
}

/// Map keys as `serde_json` writes them: strings; integers, bools and finite floats quoted; nothing else.
struct MapKey<'a> {
    out: &'a mut Vec<u8>,
}

fn key_error() -> Error {
    ser::Error::custom("key must be a string")
}

impl ser::Serializer for MapKey<'_> {
    type Ok = ();
    type Error = Error;
    type SerializeSeq = Impossible<(), Error>;
    type SerializeTuple = Impossible<(), Error>;
    type SerializeTupleStruct = Impossible<(), Error>;
    type SerializeTupleVariant = Impossible<(), Error>;
    type SerializeMap = Impossible<(), Error>;
    type SerializeStruct = Impossible<(), Error>;
    type SerializeStructVariant = Impossible<(), Error>;
    #[inline]
    fn serialize_str(self, v: &str) -> Result {
        write_str(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_char(self, v: char) -> Result {
        write_str(self.out, v.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    #[inline]
    fn serialize_bool(self, v: bool) -> Result {
        self.out.extend_from_slice(if v { b"\"true\"" } else { b"\"false\"" });
        Ok(())
    }
    #[inline]
    fn serialize_i8(self, v: i8) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i16(self, v: i16) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i32(self, v: i32) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i64(self, v: i64) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_i128(self, v: i128) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u8(self, v: u8) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u16(self, v: u16) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u32(self, v: u32) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u64(self, v: u64) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_u128(self, v: u128) -> Result {
        quoted(self.out, v);
        Ok(())
    }
    #[inline]
    fn serialize_f32(self, v: f32) -> Result {
        self.serialize_f64(f64::from(v))
    }
    #[inline]
    fn serialize_f64(self, v: f64) -> Result {
        if !v.is_finite() {
            return Err(ser::Error::custom("float key must be finite (got NaN or +/-inf)"));
        }
        self.out.push(b'"');
        write_float(self.out, v);
        self.out.push(b'"');
        Ok(())
    }
    #[inline]
    fn serialize_bytes(self, _v: &[u8]) -> Result {
        Err(key_error())
    }
    #[inline]
    fn serialize_none(self) -> Result {
        Err(key_error())
    }
    #[inline]
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    #[inline]
    fn serialize_unit(self) -> Result {
        Err(key_error())
    }
    #[inline]
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        Err(key_error())
    }
    #[inline]
    fn serialize_unit_variant(self, _name: &'static str, _index: u32, variant: &'static str) -> Result {
        write_str(self.out, variant);
        Ok(())
    }
    #[inline]
    fn serialize_newtype_struct<T: Serialize + ?Sized>(self, _name: &'static str, value: &T) -> Result {
        value.serialize(self)
    }
    #[inline]
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result {
        Err(key_error())
    }
    #[inline]
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(key_error())
    }
    #[inline]
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(key_error())
    }
    #[inline]
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeTupleStruct> {
        Err(key_error())
    }
    #[inline]
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(key_error())
    }
    #[inline]
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(key_error())
    }
    #[inline]
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(key_error())
    }
    #[inline]
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(key_error())
    }
}

#[inline]
fn quoted<I: itoa::Integer>(out: &mut Vec<u8>, v: I) {
    out.push(b'"');
    write_int(out, v);
    out.push(b'"');
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Serialize;
    use serde_json::Value;

    use super::super::PydanticFormatter;

    fn reference<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        value
            .serialize(&mut serde_json::Serializer::with_formatter(&mut out, PydanticFormatter))
            .unwrap();
        out
    }

    fn fast<T: Serialize>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        super::write(&mut out, value).unwrap();
        out
    }

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex("(.|[\\x00-\\x1f\\x7f\"\\\\\u{2028}\u{e9}\u{1f600}]){0,12}").unwrap()
    }

    fn json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 48, 6, move |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::vec((text(), inner), 0..6)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON value (escapes, non-ASCII, extreme integers, floats of every layout) encodes to the same bytes
        /// as `serde_json` with pydantic's float layout.
        #[test]
        fn writes_what_serde_json_writes(value in json()) {
            prop_assert_eq!(fast(&value), reference(&value));
        }
    }

    #[derive(Serialize)]
    enum Shape {
        Unit,
        Newtype(u8),
        Tuple(i8, f32),
        Struct { a: Option<char>, b: Vec<u8> },
    }

    #[derive(Serialize)]
    struct Fields {
        unit: (),
        shapes: Vec<Shape>,
        big: (i128, u128),
        keys: std::collections::BTreeMap<i32, bool>,
        bool_keys: std::collections::BTreeMap<bool, &'static str>,
        bytes: serde_bytes_like::Bytes,
    }

    mod serde_bytes_like {
        /// Serialised with `serialize_bytes`, as `serde_bytes` would.
        pub struct Bytes(pub &'static [u8]);
        impl serde::Serialize for Bytes {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_bytes(self.0)
            }
        }
    }

    #[test]
    fn every_serde_shape_matches_serde_json() {
        let value = Fields {
            unit: (),
            shapes: vec![
                Shape::Unit,
                Shape::Newtype(7),
                Shape::Tuple(-1, 1.5),
                Shape::Struct {
                    a: Some('\u{1}'),
                    b: vec![],
                },
                Shape::Struct { a: None, b: vec![1, 2] },
            ],
            big: (i128::MIN, u128::MAX),
            keys: [(-3, true), (4, false)].into(),
            bool_keys: [(true, "t")].into(),
            bytes: serde_bytes_like::Bytes(b"\x00ab"),
        };
        assert_eq!(
            String::from_utf8(fast(&value)).unwrap(),
            String::from_utf8(reference(&value)).unwrap()
        );
        assert_eq!(fast(&FloatKeys(&[1e16, -0.5])), reference(&FloatKeys(&[1e16, -0.5])));
        let mut out = Vec::new();
        let ours = super::write(&mut out, &FloatKeys(&[f64::NAN])).unwrap_err();
        let theirs = FloatKeys(&[f64::NAN])
            .serialize(&mut serde_json::Serializer::with_formatter(
                Vec::new(),
                PydanticFormatter,
            ))
            .unwrap_err();
        assert_eq!(ours.to_string(), theirs.to_string());
    }

    /// A map with float keys (`serde_json` quotes finite ones, refuses the others).
    struct FloatKeys(&'static [f64]);

    impl Serialize for FloatKeys {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut map = serializer.serialize_map(None)?;
            for key in self.0 {
                map.serialize_entry(key, &0)?;
            }
            map.end()
        }
    }
}
