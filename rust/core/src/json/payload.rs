//! Opaque JSON payloads, read as pydantic reads them into Python values (`clusterstate.models._base.JsonObject`).
//!
//! - Integers of any size are kept exactly (`serde_json`'s `arbitrary_precision`), written as Python's `int`
//!   writes them: `-0` is `0`. Like Python's `int()`, at most [`MAX_INT_DIGITS`] digits.
//! - Floats are stored as the text pydantic writes for the float64 Python would parse (`1E5` is `100000.0`,
//!   `-0.0` stays); a float beyond float64 (`1e400`) is refused.
//! - A duplicate key is refused; nesting deeper than [`MAX_DEPTH`] is refused.
//!
//! The same rules hold whatever the input: `serde_json` bytes or a Python object (`depythonize`), which hands a
//! big integer over as `serde_json`'s arbitrary-precision map (`{NUMBER_TOKEN: "digits"}`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use super::{format_float, JsonObject};

/// How deep arrays and objects may nest inside a payload (the payload object itself is depth 1).
pub const MAX_DEPTH: usize = 64;

/// The most digits an integer may have: Python's `int` limit (`sys.get_int_max_str_digits()`), which pydantic's
/// parser applies too.
pub const MAX_INT_DIGITS: usize = 4300;

/// The key under which `serde_json` (with `arbitrary_precision`) hands over a number as its text.
pub const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Deserialize a payload object (`deserialize_with` target).
pub fn object<'de, D: Deserializer<'de>>(deserializer: D) -> Result<JsonObject, D::Error> {
    match deserializer.deserialize_any(ValueSeed {
        depth: 1,
        object_only: true,
    })? {
        Value::Object(map) => Ok(map),
        // `object_only` refuses anything else before it is built.
        other => Err(de::Error::invalid_type(unexpected(&other), &"a JSON object")),
    }
}

/// Read any JSON value under the payload rules and drop it: for fields that are accepted and ignored.
pub fn ignored<'de, D: Deserializer<'de>>(deserializer: D) -> Result<(), D::Error> {
    deserializer
        .deserialize_any(ValueSeed {
            depth: 1,
            object_only: false,
        })
        .map(drop)
}

fn unexpected(value: &Value) -> de::Unexpected<'_> {
    match value {
        Value::Null => de::Unexpected::Unit,
        Value::Bool(b) => de::Unexpected::Bool(*b),
        Value::Number(_) => de::Unexpected::Other("number"),
        Value::String(s) => de::Unexpected::Str(s),
        Value::Array(_) => de::Unexpected::Seq,
        Value::Object(_) => de::Unexpected::Map,
    }
}

/// A number from its JSON text, normalised as Python reads and pydantic writes it.
pub fn number<E: de::Error>(text: &str) -> Result<Number, E> {
    if text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        let value = f64::from_str(text).map_err(|_| E::custom(format_args!("invalid number {text:?}")))?;
        return float(value);
    }
    let digits = text.strip_prefix('-').unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(E::custom(format_args!("invalid number {text:?}")));
    }
    if digits.len() > MAX_INT_DIGITS {
        return Err(E::custom(format_args!("integer of more than {MAX_INT_DIGITS} digits")));
    }
    let canonical = if digits.bytes().all(|b| b == b'0') { "0" } else { text };
    Number::from_str(canonical).map_err(E::custom)
}

fn float<E: de::Error>(value: f64) -> Result<Number, E> {
    if !value.is_finite() {
        return Err(E::custom("JSON numbers must be finite"));
    }
    Number::from_str(&format_float(value)).map_err(E::custom)
}

#[derive(Clone, Copy)]
struct ValueSeed {
    /// The depth an array or object read here has (the outermost is 1).
    depth: usize,
    object_only: bool,
}

impl ValueSeed {
    fn child(self) -> Self {
        Self {
            depth: self.depth + 1,
            object_only: false,
        }
    }

    fn enter<E: de::Error>(self) -> Result<(), E> {
        if self.depth > MAX_DEPTH {
            return Err(E::custom(format_args!("JSON nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn scalar<E: de::Error>(self, value: Value) -> Result<Value, E> {
        if self.object_only {
            return Err(E::invalid_type(unexpected(&value), &self));
        }
        Ok(value)
    }
}

impl<'de> DeserializeSeed<'de> for ValueSeed {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.object_only {
            "a JSON object"
        } else {
            "a JSON value"
        })
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<Value, E> {
        self.scalar(Value::Bool(value))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<Value, E> {
        self.scalar(Value::Number(value.into()))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<Value, E> {
        self.scalar(Value::Number(value.into()))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<Value, E> {
        self.scalar(Value::Number(float(value)?))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<Value, E> {
        self.scalar(Value::String(value.to_owned()))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<Value, E> {
        self.scalar(Value::String(value))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_none<E: de::Error>(self) -> Result<Value, E> {
        self.scalar(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        if self.object_only {
            return Err(de::Error::invalid_type(de::Unexpected::Seq, &self));
        }
        self.enter()?;
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element_seed(self.child())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let first = map.next_key::<String>()?;
        if first.as_deref() == Some(NUMBER_TOKEN) {
            let text: String = map.next_value()?;
            return self.scalar(Value::Number(number(&text)?));
        }
        self.enter()?;
        let mut object = Map::new();
        let mut key = first;
        while let Some(name) = key {
            let value = map.next_value_seed(self.child())?;
            if object.insert(name.clone(), value).is_some() {
                return Err(de::Error::custom(format_args!("duplicate key {name:?}")));
            }
            key = map.next_key()?;
        }
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{to_string, Case};

    fn read(text: &str) -> Result<JsonObject, serde_json::Error> {
        object(&mut serde_json::Deserializer::from_str(text))
    }

    #[test]
    fn numbers_are_kept_as_python_keeps_them() {
        let value =
            read(r#"{"big":18446744073709551616,"neg":-99999999999999999999999,"z":-0,"f":-0.0,"e":1E5,"s":1e16}"#)
                .unwrap();
        assert_eq!(
            to_string(&value, Case::Snake).unwrap(),
            r#"{"big":18446744073709551616,"neg":-99999999999999999999999,"z":0,"f":-0.0,"e":100000.0,"s":1e+16}"#
        );
        assert_eq!(
            to_string(&value, Case::Camel).unwrap(),
            to_string(&value, Case::Snake).unwrap()
        );
        let digits = "9".repeat(MAX_INT_DIGITS);
        assert!(read(&format!(r#"{{"a":{digits}}}"#)).is_ok());
        assert!(read(&format!(r#"{{"a":{digits}9}}"#)).is_err());
        assert!(read(r#"{"a":1e400}"#).is_err());
    }

    #[test]
    fn duplicate_keys_and_deep_nesting_are_refused() {
        assert!(read(r#"{"a":1,"a":1}"#).is_err());
        assert!(read(r#"{"a":{"b":1,"b":2}}"#).is_err());
        let nested = |depth: usize| format!("{{\"a\":{}{}}}", "[".repeat(depth - 1), "]".repeat(depth - 1));
        assert!(read(&nested(MAX_DEPTH)).is_ok());
        assert!(read(&nested(MAX_DEPTH + 1)).is_err());
        assert!(read("[]").is_err());
        assert!(read("1").is_err());
    }

    #[test]
    fn ignored_values_follow_the_same_rules() {
        let ignore = |text: &str| ignored(&mut serde_json::Deserializer::from_str(text));
        assert!(ignore(r#"{"a":[1,"x",null,2.5]}"#).is_ok());
        assert!(ignore("1e400").is_err());
        assert!(ignore(r#"{"a":1,"a":2}"#).is_err());
        assert!(ignore(&format!("{}{}", "[".repeat(MAX_DEPTH + 1), "]".repeat(MAX_DEPTH + 1))).is_err());
    }
}
