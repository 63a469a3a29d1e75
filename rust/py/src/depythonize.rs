//! A serde `Deserializer` over Python objects: pydantic models, dicts, lists and scalars.
//!
//! It lets the core's serde types be built straight from the pydantic models without going
//! through JSON (a `model_dump_json()` alone costs more than the whole Rust `apply`). Every
//! object is presented in the shape its JSON would have: a model is a map of its fields, a
//! tagged model is `{"ClassName": {fields}}`. A tagged model is a `clusterstate.models.TaggedModel`,
//! or any other pydantic model whose serialisation wraps its fields in `{"ClassName": ...}` (exo's
//! own `TaggedModel`s): told by shape, once per class. A model that serialises itself by other code
//! of its own (a field serializer, or a model serializer that does not tag), or keeps undeclared
//! fields, cannot be read from its fields: converting it fails, and the caller falls back to its
//! `model_dump_json()`.

use std::cell::RefCell;
use std::fmt;
use std::sync::Arc;

use clusterstate_core::json::payload::NUMBER_TOKEN;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PySet, PyString, PyTuple, PyType};
use serde::de::{self, DeserializeSeed, IntoDeserializer, Visitor};

use crate::pyimports::{BASE_MODEL, TAGGED_MODEL};

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

/// Deserialize `T` from a Python object shaped like `T`'s JSON.
pub fn depythonize<T: de::DeserializeOwned>(obj: &Bound<'_, PyAny>) -> Result<T> {
    T::deserialize(Depythonizer {
        obj: obj.clone(),
        tag: true,
    })
}

/// What a Python class is to the depythonizer.
#[derive(Clone)]
enum Kind {
    /// A tagged union member (by class or by shape), with its tag (the class name).
    Tagged(Arc<str>),
    /// Any other pydantic model whose JSON is its fields.
    Model,
    /// A pydantic model whose JSON comes from serializer code of its own.
    SelfSerialized,
    /// Anything else.
    Other,
}

thread_local! {
    /// Kinds by class. `isinstance` on a pydantic model goes through its ABC metaclass, which costs more than the
    /// rest of a small event's conversion; a class's kind never changes, so it is worked out once (per thread: no
    /// lock on the hot path). Each entry keeps its class alive, so its address cannot be reused by another class.
    /// A few dozen classes at most: a linear scan of addresses beats hashing them.
    static KINDS: RefCell<Vec<(usize, Py<PyType>, Kind)>> = const { RefCell::new(Vec::new()) };
}

fn kind_of(obj: &Bound<'_, PyAny>) -> Result<Kind> {
    let class = obj.get_type();
    let key = class.as_ptr() as usize;
    let known = KINDS.with_borrow(|kinds| {
        kinds
            .iter()
            .find(|(address, _, _)| *address == key)
            .map(|(_, _, kind)| kind.clone())
    });
    if let Some(kind) = known {
        return Ok(kind);
    }
    let py = obj.py();
    let name = class.name()?;
    let kind = if class.is_subclass(TAGGED_MODEL.get(py)?)? {
        Kind::Tagged(Arc::from(name.to_str()?))
    } else if class.is_subclass(BASE_MODEL.get(py)?)? {
        model_kind(obj, &class, name.to_str()?)?
    } else {
        Kind::Other
    };
    KINDS.with_borrow_mut(|kinds| kinds.push((key, class.unbind(), kind.clone())));
    Ok(kind)
}

/// The kind of a pydantic model class that is not a `clusterstate` `TaggedModel`, worked out from `obj`, one of its
/// instances: a model with no serializer of its own is its fields; one whose only serializer code is a model
/// serializer that wraps it in `{ClassName: {...}}` (dumped with no field included, it gives `{ClassName: {}}`) is
/// a tagged union member; any other is [`Kind::SelfSerialized`], and so is a model that keeps undeclared fields
/// (`extra="allow"`: they are in its JSON, not in its `__dict__`).
fn model_kind(obj: &Bound<'_, PyAny>, class: &Bound<'_, PyType>, name: &str) -> PyResult<Kind> {
    let py = obj.py();
    let config = class.getattr(pyo3::intern!(py, "model_config"))?;
    if config
        .get_item(pyo3::intern!(py, "extra"))
        .is_ok_and(|extra| extra.eq("allow").unwrap_or(true))
    {
        return Ok(Kind::SelfSerialized);
    }
    let decorators = class.getattr(pyo3::intern!(py, "__pydantic_decorators__"))?;
    let field_serializers = decorators.getattr(pyo3::intern!(py, "field_serializers"))?.len()?;
    let model_serializers = decorators.getattr(pyo3::intern!(py, "model_serializers"))?.len()?;
    if field_serializers == 0 && model_serializers == 0 {
        return Ok(Kind::Model);
    }
    if field_serializers > 0 {
        return Ok(Kind::SelfSerialized);
    }
    let kwargs = PyDict::new(py);
    kwargs.set_item(pyo3::intern!(py, "include"), PySet::empty(py)?)?;
    let dumped = obj.call_method(pyo3::intern!(py, "model_dump"), (), Some(&kwargs))?;
    let tagged = dumped.cast::<PyDict>().is_ok_and(|dict| {
        dict.len() == 1
            && dict
                .get_item(name)
                .ok()
                .flatten()
                .is_some_and(|inner| inner.cast::<PyDict>().is_ok_and(PyDictMethods::is_empty))
    });
    Ok(if tagged {
        Kind::Tagged(Arc::from(name))
    } else {
        Kind::SelfSerialized
    })
}

struct Depythonizer<'py> {
    obj: Bound<'py, PyAny>,
    /// False when presenting the fields of a tagged model that was already unwrapped.
    tag: bool,
}

impl<'py> Depythonizer<'py> {
    fn new(obj: Bound<'py, PyAny>) -> Self {
        Depythonizer { obj, tag: true }
    }

    fn fields(&self) -> Depythonizer<'py> {
        Depythonizer {
            obj: self.obj.clone(),
            tag: false,
        }
    }

    /// The fields of a pydantic model, in declaration order: its `__dict__` holds exactly them.
    fn model_fields(&self) -> Result<Bound<'py, PyDict>> {
        let dict = self.obj.getattr(pyo3::intern!(self.obj.py(), "__dict__"))?;
        dict.cast_into::<PyDict>().map_err(|e| DepythonizeError(e.to_string()))
    }

    fn type_name(&self) -> String {
        self.obj
            .get_type()
            .name()
            .map_or_else(|_| "object".to_owned(), |name| name.to_string())
    }
}

impl<'de> de::Deserializer<'de> for Depythonizer<'_> {
    type Error = DepythonizeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let obj = &self.obj;
        if obj.is_none() {
            return visitor.visit_unit();
        }
        if let Ok(value) = obj.cast::<PyString>() {
            return visitor.visit_str(value.to_str()?);
        }
        if let Ok(value) = obj.cast::<PyBool>() {
            return visitor.visit_bool(value.is_true());
        }
        if obj.cast::<PyInt>().is_ok() {
            if let Ok(value) = obj.extract::<i64>() {
                return visitor.visit_i64(value);
            }
            if let Ok(value) = obj.extract::<u64>() {
                return visitor.visit_u64(value);
            }
            // Beyond 64 bits: handed over as serde_json's arbitrary-precision number, its decimal text (what an
            // opaque payload keeps, `clusterstate_core::json::payload`); a typed integer field refuses it.
            let text = obj.str()?.to_str()?.to_owned();
            return visitor.visit_map(de::value::MapDeserializer::new(std::iter::once((NUMBER_TOKEN, text))));
        }
        if let Ok(value) = obj.cast::<PyFloat>() {
            return visitor.visit_f64(value.value());
        }
        if let Ok(value) = obj.cast::<PyDict>() {
            return visitor.visit_map(DictAccess::new(value));
        }
        if let Ok(value) = obj.cast::<PyList>() {
            return visitor.visit_seq(SeqAccess {
                items: value.iter().collect(),
                next: 0,
            });
        }
        if let Ok(value) = obj.cast::<PyTuple>() {
            return visitor.visit_seq(SeqAccess {
                items: value.iter().collect(),
                next: 0,
            });
        }
        match kind_of(obj)? {
            Kind::Tagged(tag) if self.tag => visitor.visit_map(TaggedAccess {
                tag: Some(tag),
                inner: Some(self.fields()),
            }),
            Kind::Tagged(_) | Kind::Model => visitor.visit_map(DictAccess::new(&self.model_fields()?)),
            Kind::SelfSerialized | Kind::Other => Err(DepythonizeError(format!(
                "cannot convert a Python {} to Rust",
                self.type_name()
            ))),
        }
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
        if let Ok(dict) = self.obj.cast::<PyDict>() {
            let mut items = dict.iter();
            if let (Some((key, value)), None) = (items.next(), items.next()) {
                let tag = key.cast::<PyString>().map_err(|e| DepythonizeError(e.to_string()))?;
                let tag: Arc<str> = Arc::from(tag.to_str()?);
                return visitor.visit_enum(EnumAccess {
                    tag,
                    content: Some(Depythonizer::new(value)),
                });
            }
        } else if let Ok(tag) = self.obj.cast::<PyString>() {
            return visitor.visit_enum(EnumAccess {
                tag: Arc::from(tag.to_str()?),
                content: None,
            });
        } else if let Kind::Tagged(tag) = kind_of(&self.obj)? {
            if self.tag {
                let content = Some(self.fields());
                return visitor.visit_enum(EnumAccess { tag, content });
            }
        }
        Err(DepythonizeError(format!(
            "expected a tagged model, got a Python {}",
            self.type_name()
        )))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct identifier ignored_any
    }
}

/// A dict's (or a model's fields') entries, read one at a time.
struct DictAccess<'py> {
    items: pyo3::types::iter::BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
}

impl<'py> DictAccess<'py> {
    fn new(dict: &Bound<'py, PyDict>) -> Self {
        DictAccess {
            items: dict.iter(),
            value: None,
        }
    }
}

impl<'de> de::MapAccess<'de> for DictAccess<'_> {
    type Error = DepythonizeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let Some((key, value)) = self.items.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key = key
            .cast_into::<PyString>()
            .map_err(|e| DepythonizeError(e.to_string()))?;
        seed.deserialize(key.to_str()?.into_deserializer()).map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        match self.value.take() {
            Some(value) => seed.deserialize(Depythonizer::new(value)),
            None => Err(DepythonizeError("map value requested before its key".into())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct SeqAccess<'py> {
    items: Vec<Bound<'py, PyAny>>,
    next: usize,
}

impl<'de> de::SeqAccess<'de> for SeqAccess<'_> {
    type Error = DepythonizeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let Some(item) = self.items.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        seed.deserialize(Depythonizer::new(item.clone())).map(Some)
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len() - self.next)
    }
}

/// `{"ClassName": {fields}}` for a tagged model reached through `deserialize_any`.
struct TaggedAccess<'py> {
    tag: Option<Arc<str>>,
    inner: Option<Depythonizer<'py>>,
}

impl<'de> de::MapAccess<'de> for TaggedAccess<'_> {
    type Error = DepythonizeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        match self.tag.take() {
            Some(tag) => seed.deserialize(de::value::StrDeserializer::new(&tag)).map(Some),
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

struct EnumAccess<'py> {
    tag: Arc<str>,
    content: Option<Depythonizer<'py>>,
}

impl<'de, 'py> de::EnumAccess<'de> for EnumAccess<'py> {
    type Error = DepythonizeError;
    type Variant = VariantAccess<'py>;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self::Variant)> {
        let variant = seed.deserialize(de::value::StrDeserializer::<DepythonizeError>::new(&self.tag))?;
        Ok((variant, VariantAccess { content: self.content }))
    }
}

struct VariantAccess<'py> {
    content: Option<Depythonizer<'py>>,
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_> {
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
