//! A serde `Deserializer` over Python objects: pydantic models, dicts, lists and scalars.
//!
//! It lets the core's serde types be built straight from the pydantic models without going
//! through JSON (a `model_dump_json()` alone costs more than the whole Rust `apply`). Every
//! object is presented in the shape its JSON would have: a model is a map of its fields, a
//! tagged model (`clusterstate.models.TaggedModel`) is `{"ClassName": {fields}}`.

use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple, PyType};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};
use std::fmt;

/// Why a Python object could not become the requested Rust value.
#[derive(Debug)]
pub struct DepythonizeError(String);

impl fmt::Display for DepythonizeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DepythonizeError {}

impl de::Error for DepythonizeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self(msg.to_string())
    }
}

impl From<PyErr> for DepythonizeError {
    fn from(err: PyErr) -> Self {
        Self(err.to_string())
    }
}

type Result<T> = std::result::Result<T, DepythonizeError>;

static BASE_MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();
static TAGGED_MODEL: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// Deserialize `T` from a Python object shaped like `T`'s JSON.
pub fn depythonize<T: de::DeserializeOwned>(obj: &Bound<'_, PyAny>) -> Result<T> {
    let py = obj.py();
    let kinds = ModelKinds {
        base: BASE_MODEL.import(py, "pydantic", "BaseModel")?.clone(),
        tagged: TAGGED_MODEL
            .import(py, "clusterstate.models._base", "TaggedModel")?
            .clone(),
    };
    T::deserialize(Depythonizer {
        obj: obj.clone(),
        kinds: &kinds,
        tag: true,
    })
}

struct ModelKinds<'py> {
    base: Bound<'py, PyType>,
    tagged: Bound<'py, PyType>,
}

struct Depythonizer<'k, 'py> {
    obj: Bound<'py, PyAny>,
    kinds: &'k ModelKinds<'py>,
    /// False when presenting the fields of a tagged model that was already unwrapped.
    tag: bool,
}

impl<'py> Depythonizer<'_, 'py> {
    fn child(&self, obj: Bound<'py, PyAny>) -> Self {
        Depythonizer {
            obj,
            kinds: self.kinds,
            tag: true,
        }
    }

    fn is_tagged_model(&self) -> bool {
        self.tag && self.obj.is_instance(&self.kinds.tagged).unwrap_or(false)
    }

    fn class_name(&self) -> Result<String> {
        Ok(self.obj.get_type().name()?.to_str()?.to_owned())
    }

    /// The fields of a pydantic model, in declaration order: its `__dict__` holds exactly them.
    fn model_fields(&self) -> Result<Bound<'py, PyDict>> {
        let dict = self.obj.getattr(pyo3::intern!(self.obj.py(), "__dict__"))?;
        dict.cast_into::<PyDict>().map_err(|e| DepythonizeError(e.to_string()))
    }
}

impl<'de> de::Deserializer<'de> for Depythonizer<'_, '_> {
    type Error = DepythonizeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let obj = &self.obj;
        if obj.is_none() {
            return visitor.visit_unit();
        }
        if let Ok(value) = obj.cast::<PyBool>() {
            return visitor.visit_bool(value.is_true());
        }
        if obj.cast::<PyInt>().is_ok() {
            if let Ok(value) = obj.extract::<i64>() {
                return visitor.visit_i64(value);
            }
            return visitor.visit_u64(obj.extract::<u64>()?);
        }
        if let Ok(value) = obj.cast::<PyFloat>() {
            return visitor.visit_f64(value.value());
        }
        if let Ok(value) = obj.cast::<PyString>() {
            return visitor.visit_str(value.to_str()?);
        }
        if let Ok(value) = obj.cast::<PyDict>() {
            return visitor.visit_map(DictAccess::new(self.kinds, value));
        }
        if let Ok(value) = obj.cast::<PyList>() {
            return visitor.visit_seq(SeqAccess {
                kinds: self.kinds,
                items: value.iter().collect(),
                next: 0,
            });
        }
        if let Ok(value) = obj.cast::<PyTuple>() {
            return visitor.visit_seq(SeqAccess {
                kinds: self.kinds,
                items: value.iter().collect(),
                next: 0,
            });
        }
        if self.is_tagged_model() {
            let tag = self.class_name()?;
            return visitor.visit_map(TaggedAccess {
                tag: Some(tag),
                inner: Some(self.untagged()),
            });
        }
        if obj.is_instance(&self.kinds.base)? {
            let fields = self.model_fields()?;
            return visitor.visit_map(DictAccess::new(self.kinds, &fields));
        }
        Err(DepythonizeError(format!(
            "cannot convert a Python {} to Rust",
            self.class_name()?
        )))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.obj.is_none() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(self, _name: &'static str, visitor: V) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        if self.is_tagged_model() {
            let tag = self.class_name()?;
            return visitor.visit_enum(EnumAccess {
                tag,
                content: Some(self.untagged()),
            });
        }
        if let Ok(dict) = self.obj.cast::<PyDict>() {
            if dict.len() == 1 {
                if let Some((key, value)) = dict.iter().next() {
                    let tag = key
                        .cast::<PyString>()
                        .map_err(|e| DepythonizeError(e.to_string()))?
                        .to_str()?
                        .to_owned();
                    return visitor.visit_enum(EnumAccess {
                        tag,
                        content: Some(self.child(value)),
                    });
                }
            }
        }
        if let Ok(tag) = self.obj.cast::<PyString>() {
            return visitor.visit_enum(EnumAccess {
                tag: tag.to_str()?.to_owned(),
                content: None,
            });
        }
        Err(DepythonizeError(format!(
            "expected a tagged model, got a Python {}",
            self.class_name()?
        )))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

impl Depythonizer<'_, '_> {
    fn untagged(&self) -> Self {
        Depythonizer {
            obj: self.obj.clone(),
            kinds: self.kinds,
            tag: false,
        }
    }
}

struct DictAccess<'k, 'py> {
    kinds: &'k ModelKinds<'py>,
    items: Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
    next: usize,
}

impl<'k, 'py> DictAccess<'k, 'py> {
    fn new(kinds: &'k ModelKinds<'py>, dict: &Bound<'py, PyDict>) -> Self {
        DictAccess {
            kinds,
            items: dict.iter().collect(),
            next: 0,
        }
    }
}

impl<'de> de::MapAccess<'de> for DictAccess<'_, '_> {
    type Error = DepythonizeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((key, _)) = self.items.get(self.next) else {
            return Ok(None);
        };
        let key = key.cast::<PyString>().map_err(|e| DepythonizeError(e.to_string()))?;
        seed.deserialize(key.to_str()?.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        let Some((_, value)) = self.items.get(self.next) else {
            return Err(DepythonizeError("map value requested past the end".into()));
        };
        self.next += 1;
        seed.deserialize(Depythonizer {
            obj: value.clone(),
            kinds: self.kinds,
            tag: true,
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

struct SeqAccess<'k, 'py> {
    kinds: &'k ModelKinds<'py>,
    items: Vec<Bound<'py, PyAny>>,
    next: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_, '_> {
    type Error = DepythonizeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(Depythonizer {
            obj: item.clone(),
            kinds: self.kinds,
            tag: true,
        })
        .map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

/// `{"ClassName": {fields}}` for a tagged model reached through `deserialize_any`.
struct TaggedAccess<'k, 'py> {
    tag: Option<String>,
    inner: Option<Depythonizer<'k, 'py>>,
}

impl<'de> de::MapAccess<'de> for TaggedAccess<'_, '_> {
    type Error = DepythonizeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.tag.take() {
            Some(tag) => seed.deserialize(tag.into_deserializer()).map(Some),
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        match self.inner.take() {
            Some(inner) => seed.deserialize(inner),
            None => Err(DepythonizeError("tagged value requested twice".into())),
        }
    }
}

struct EnumAccess<'k, 'py> {
    tag: String,
    content: Option<Depythonizer<'k, 'py>>,
}

impl<'de, 'k, 'py> de::EnumAccess<'de> for EnumAccess<'k, 'py> {
    type Error = DepythonizeError;
    type Variant = VariantAccess<'k, 'py>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        let tag: de::value::StringDeserializer<DepythonizeError> = self.tag.into_deserializer();
        let variant = seed.deserialize(tag)?;
        Ok((variant, VariantAccess { content: self.content }))
    }
}

struct VariantAccess<'k, 'py> {
    content: Option<Depythonizer<'k, 'py>>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, '_> {
    type Error = DepythonizeError;

    fn unit_variant(self) -> Result<()> {
        match self.content {
            None => Ok(()),
            Some(content) => de::Deserialize::deserialize(content),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        let content = self
            .content
            .ok_or_else(|| DepythonizeError("expected content for a newtype variant".into()))?;
        seed.deserialize(content)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        let content = self
            .content
            .ok_or_else(|| DepythonizeError("expected content for a tuple variant".into()))?;
        de::Deserializer::deserialize_seq(content, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(self, _fields: &'static [&'static str], visitor: V) -> Result<V::Value> {
        let content = self
            .content
            .ok_or_else(|| DepythonizeError("expected content for a struct variant".into()))?;
        de::Deserializer::deserialize_map(content, visitor)
    }
}
