//! JSON encoding that matches pydantic's `model_dump_json()` byte for byte, and the opaque JSON payloads.
//!
//! `serde_json` already writes what pydantic writes for strings (non-ASCII as raw UTF-8, control characters as
//! `\uXXXX` or their short escapes), integers, `null` for non-finite floats and compact separators. Floats differ:
//! pydantic writes ryu's shortest round-trip digits and layout but with an explicit `+` in positive exponents
//! (`1e+16`, `1.5e+300`, `0.000025`, `1e-7`), so [`PydanticFormatter`] writes floats itself. (std's float formatting
//! is not enough: on a tie between two shortest digit strings it picks differently from ryu.)
//!
//! The `snake_case` form (the log, the wire) is written by the encoder in `writer.rs`, the same bytes about a third
//! faster; camelCase dumps (for people) go through `serde_json` with the field names renamed ([`CamelCase`]).

use std::fmt;
use std::io;
use std::marker::PhantomData;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::ser::Formatter;
use serde_json::{Map, Value};

use crate::case::CamelCase;

pub mod payload;
pub mod strict;
mod writer;

/// A JSON object carried opaquely: validated as JSON, never looked inside by the reducer; key order is kept.
pub type JsonObject = Map<String, Value>;

/// Which spelling of field names a dump uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Case {
    /// `snake_case`: the wire and log form (`model_dump_json()`).
    #[default]
    Snake,
    /// camelCase aliases, for people (`model_dump_json(by_alias=True)`).
    Camel,
}

/// `serde_json`'s compact formatter with pydantic's float layout.
#[derive(Clone, Copy, Debug, Default)]
pub struct PydanticFormatter;

impl Formatter for PydanticFormatter {
    fn write_f64<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        write_float(writer, value)
    }

    fn write_f32<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: f32) -> io::Result<()> {
        write_float(writer, f64::from(value))
    }

    fn write_number_str<W: ?Sized + io::Write>(&mut self, writer: &mut W, value: &str) -> io::Result<()> {
        write_number_text(writer, value)
    }
}

/// Write an arbitrary-precision number's text: an integer as it is, a float in pydantic's layout.
fn write_number_text<W: ?Sized + io::Write>(writer: &mut W, text: &str) -> io::Result<()> {
    match text.parse::<f64>() {
        Ok(value) if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) => write_float(writer, value),
        _ => writer.write_all(text.as_bytes()),
    }
}

/// pydantic's text for a float: ryu's shortest round-trip digits and layout, with `e+` for positive exponents;
/// `null` for NaN and the infinities (pydantic's default `ser_json_inf_nan`).
///
/// ```
/// use clusterstate_core::json::format_float;
/// assert_eq!(format_float(1e16), "1e+16");
/// assert_eq!(format_float(1e15), "1000000000000000.0");
/// assert_eq!(format_float(2.5e-5), "0.000025");
/// assert_eq!(format_float(1e-7), "1e-7");
/// assert_eq!(format_float(-0.0), "-0.0");
/// assert_eq!(format_float(12.5), "12.5");
/// ```
pub fn format_float(value: f64) -> String {
    let mut out = Vec::with_capacity(24);
    // Writing to a Vec cannot fail.
    let _ = write_float(&mut out, value);
    String::from_utf8(out).unwrap_or_default()
}

fn write_float<W: ?Sized + io::Write>(writer: &mut W, value: f64) -> io::Result<()> {
    if !value.is_finite() {
        return writer.write_all(b"null");
    }
    let mut buffer = ryu::Buffer::new();
    let text = buffer.format_finite(value);
    match text.split_once('e') {
        Some((mantissa, exponent)) if !exponent.starts_with('-') => {
            writer.write_all(mantissa.as_bytes())?;
            writer.write_all(b"e+")?;
            writer.write_all(exponent.as_bytes())
        }
        _ => writer.write_all(text.as_bytes()),
    }
}

/// Encode `value` as pydantic's `model_dump_json()` would (`Case::Camel`: `by_alias=True`).
pub fn to_vec<T: Serialize + ?Sized>(value: &T, case: Case) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = Vec::with_capacity(256);
    write(&mut out, value, case)?;
    Ok(out)
}

/// Like [`to_vec`], as a `String`.
pub fn to_string<T: Serialize + ?Sized>(value: &T, case: Case) -> Result<String, serde_json::Error> {
    let bytes = to_vec(value, case)?;
    // serde_json writes UTF-8 only; the fallback never runs.
    Ok(String::from_utf8(bytes).unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned()))
}

/// Append the encoding of `value` to `out`, as pydantic's `model_dump_json()` would write it.
pub fn write<T: Serialize + ?Sized>(out: &mut Vec<u8>, value: &T, case: Case) -> Result<(), serde_json::Error> {
    match case {
        Case::Snake => writer::write(out, value),
        Case::Camel => CamelCase(value).serialize(&mut serde_json::Serializer::with_formatter(out, PydanticFormatter)),
    }
}

/// Equality of two JSON values as Python compares the decoded objects (`1 == 1.0 == True`, dicts by content).
pub fn py_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::String(x), Value::String(y)) => x == y,
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| py_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => py_eq_objects(x, y),
        (Value::Bool(_) | Value::Number(_), Value::Bool(_) | Value::Number(_)) => match (number(a), number(b)) {
            (Some(x), Some(y)) => x.eq(&y),
            _ => false,
        },
        _ => false,
    }
}

/// [`py_eq`] for two objects: same keys, equal values, order ignored.
pub fn py_eq_objects(a: &JsonObject, b: &JsonObject) -> bool {
    a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| py_eq(x, y)))
}

/// A JSON number or bool as Python sees it, for exact mixed int/float comparison.
#[derive(Clone, Copy)]
enum PyNumber<'a> {
    Int(i128),
    /// An integer beyond `i128`, as its (normalised) text.
    Big(&'a str),
    Float(f64),
}

impl PyNumber<'_> {
    fn eq(self, other: &Self) -> bool {
        match (self, *other) {
            (Self::Int(x), Self::Int(y)) => x == y,
            (Self::Big(x), Self::Big(y)) => x == y,
            (Self::Float(x), Self::Float(y)) => x == y,
            (Self::Int(i), Self::Float(f)) | (Self::Float(f), Self::Int(i)) => int_eq_float(i, f),
            // Rust prints a float with no decimals exactly, as Python compares it with an int.
            (Self::Big(b), Self::Float(f)) | (Self::Float(f), Self::Big(b)) => {
                f.is_finite() && f.fract() == 0.0 && format!("{f:.0}") == b
            }
            (Self::Big(_), Self::Int(_)) | (Self::Int(_), Self::Big(_)) => false,
        }
    }
}

fn number(value: &Value) -> Option<PyNumber<'_>> {
    match value {
        Value::Bool(b) => Some(PyNumber::Int(i128::from(*b))),
        Value::Number(n) => {
            let text = n.as_str();
            if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                n.as_f64().map(PyNumber::Float)
            } else {
                Some(text.parse::<i128>().map_or(PyNumber::Big(text), PyNumber::Int))
            }
        }
        _ => None,
    }
}

/// Python's exact int == float comparison (no rounding of the int).
#[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
fn int_eq_float(i: i128, f: f64) -> bool {
    // |f| < 2^127 keeps the cast exact; larger floats equal no i128.
    f.is_finite() && f.fract() == 0.0 && f.abs() < 1.7e38 && (f as i128) == i
}

/// The set of tags a [`TaggedJson`] payload may carry.
pub trait TagSet {
    /// The allowed tags, in the order an error message lists them.
    const TAGS: &'static [&'static str];
}

/// A tagged payload kept as JSON: `{"Tag": {...}}` with one tag of `K::TAGS` (the Python `TaggedJson`).
pub struct TaggedJson<K> {
    /// The single tag.
    pub tag: String,
    /// The payload under the tag.
    pub body: JsonObject,
    tags: PhantomData<fn() -> K>,
}

impl<K: TagSet> TaggedJson<K> {
    /// A payload, or `None` if `tag` is not one of `K::TAGS`.
    pub fn new(tag: impl Into<String>, body: JsonObject) -> Option<Self> {
        let tag = tag.into();
        K::TAGS.contains(&tag.as_str()).then_some(Self {
            tag,
            body,
            tags: PhantomData,
        })
    }

    /// Equality as Python compares the decoded dicts (see [`py_eq`]).
    pub fn py_eq(&self, other: &Self) -> bool {
        self.tag == other.tag && py_eq_objects(&self.body, &other.body)
    }
}

impl<K> Clone for TaggedJson<K> {
    fn clone(&self) -> Self {
        Self {
            tag: self.tag.clone(),
            body: self.body.clone(),
            tags: PhantomData,
        }
    }
}

impl<K> PartialEq for TaggedJson<K> {
    fn eq(&self, other: &Self) -> bool {
        self.tag == other.tag && self.body == other.body
    }
}

impl<K> fmt::Debug for TaggedJson<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entry(&self.tag, &self.body).finish()
    }
}

impl<K> Serialize for TaggedJson<K> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry(&self.tag, &self.body)?;
        map.end()
    }
}

impl<'de, K: TagSet> Deserialize<'de> for TaggedJson<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TaggedJsonVisitor(PhantomData))
    }
}

struct TaggedJsonVisitor<K>(PhantomData<fn() -> K>);

/// A payload object under a tag (see [`payload::object`]).
struct PayloadObject;

impl<'de> de::DeserializeSeed<'de> for PayloadObject {
    type Value = JsonObject;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<JsonObject, D::Error> {
        payload::object(deserializer)
    }
}

impl<'de, K: TagSet> Visitor<'de> for TaggedJsonVisitor<K> {
    type Value = TaggedJson<K>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with one tag of {:?}", K::TAGS)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Like pydantic, the whole value must be a dict of dicts before the tag is checked.
        let mut entries: Vec<(String, JsonObject)> = Vec::with_capacity(1);
        while let Some(key) = map.next_key::<String>()? {
            let body = map.next_value_seed(PayloadObject)?;
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            entries.push((key, body));
        }
        let mut entries = entries.into_iter();
        match (entries.next(), entries.next()) {
            (Some((tag, body)), None) => {
                let message = || format!("unknown tag {tag:?}, expected one of {:?}", K::TAGS);
                if K::TAGS.contains(&tag.as_str()) {
                    Ok(TaggedJson {
                        tag,
                        body,
                        tags: PhantomData,
                    })
                } else {
                    Err(de::Error::custom(message()))
                }
            }
            _ => Err(de::Error::custom(format_args!("expected one tag of {:?}", K::TAGS))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_use_pydantics_layout() {
        let cases = [
            (1e16, "1e+16"),
            (1.0, "1.0"),
            (-0.0, "-0.0"),
            (0.0, "0.0"),
            (1e5, "100000.0"),
            (0.1, "0.1"),
            (1e-7, "1e-7"),
            (1.5e300, "1.5e+300"),
            (2.5e-5, "0.000025"),
            (123_456_789.123, "123456789.123"),
            (1e22, "1e+22"),
            (1e21, "1e+21"),
            (12_345_678_901_234_567.0, "1.2345678901234568e+16"),
            (5e-324, "5e-324"),
            (1.797_693_134_862_315_7e308, "1.7976931348623157e+308"),
            (1e-5, "0.00001"),
            (0.000_123_4, "0.0001234"),
            (9_007_199_254_740_992.0, "9007199254740992.0"),
            (1_234_567_890_123_456.8, "1234567890123456.8"),
            (274_564_663_099_778.12, "274564663099778.12"),
            (f64::NAN, "null"),
        ];
        for (value, text) in cases {
            assert_eq!(format_float(value), text, "{value:e}");
        }
    }

    #[test]
    fn encoding_matches_pydantic_for_strings_and_numbers() {
        let value =
            json!({"s": "a\nb\t\u{8}\u{c}\r\u{1}\u{1f}\"\\ \u{e9}\u{1f600}\u{2028}\u{7f}/", "n": [1, -1, 1.0, 1e16]});
        let text = to_string(&value, Case::Snake).unwrap();
        assert_eq!(
            text,
            "{\"s\":\"a\\nb\\t\\b\\f\\r\\u0001\\u001f\\\"\\\\ \u{e9}\u{1f600}\u{2028}\u{7f}/\",\"n\":[1,-1,1.0,1e+16]}"
        );
    }

    #[test]
    fn py_eq_compares_like_python() {
        assert!(py_eq(&json!({"a": 1, "b": [true]}), &json!({"b": [1.0], "a": 1.0})));
        assert!(!py_eq(&json!({"a": 1}), &json!({"a": "1"})));
        assert!(!py_eq(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(py_eq(&json!(null), &json!(null)));
    }

    struct Shard;
    impl TagSet for Shard {
        const TAGS: &'static [&'static str] = &["A", "B"];
    }

    #[test]
    fn tagged_json_checks_its_single_tag() {
        let ok: TaggedJson<Shard> = serde_json::from_str(r#"{"A": {"x": 1}}"#).unwrap();
        assert_eq!(ok.tag, "A");
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"A":{"x":1}}"#);
        assert!(serde_json::from_str::<TaggedJson<Shard>>(r#"{"C": {}}"#).is_err());
        assert!(serde_json::from_str::<TaggedJson<Shard>>(r#"{"A": {}, "B": {}}"#).is_err());
        assert!(serde_json::from_str::<TaggedJson<Shard>>(r#"{"A": 1}"#).is_err());
        assert!(serde_json::from_str::<TaggedJson<Shard>>(r"{}").is_err());
        assert!(TaggedJson::<Shard>::new("C", JsonObject::new()).is_none());
    }
}
