//! Python arguments as core values, and core values as Python objects: one conversion per kind of argument, done
//! before any work. A leaf: it knows no binding class.

use std::collections::BTreeMap;

use clusterstate_core::events::SessionId;
use clusterstate_core::{codec, IndexedEvent, NodeId};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::{PyBackedBytes, PyBackedStr};
use pyo3::types::{PyByteArray, PyBytes, PyString, PyTuple};

use crate::depythonize::depythonize;
use crate::errors::{invalid, PyCoreResult};

/// JSON handed in from Python as `bytes`, `bytearray` or `str`, readable without the GIL: `bytes` and `str` are
/// borrowed in place, a `bytearray` is copied.
pub enum JsonArg {
    Bytes(PyBackedBytes),
    Text(PyBackedStr),
}

impl AsRef<[u8]> for JsonArg {
    fn as_ref(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes,
            Self::Text(text) => text.as_bytes(),
        }
    }
}

impl<'py> FromPyObject<'_, 'py> for JsonArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Self::Bytes(PyBackedBytes::from(bytes.to_owned())));
        }
        if let Ok(text) = obj.cast::<PyString>() {
            return Ok(Self::Text(PyBackedStr::try_from(text.to_owned())?));
        }
        if let Ok(array) = obj.cast::<PyByteArray>() {
            return Ok(Self::Bytes(PyBackedBytes::from(array.to_owned())));
        }
        Err(PyTypeError::new_err("expected JSON as bytes, bytearray or str"))
    }
}

/// An indexed-event argument: its JSON as `bytes`, `bytearray` or `str`, or a pydantic model of its shape
/// (`clusterstate.models.IndexedEvent` or a foreign class with the same JSON, such as exo's). A model is read
/// from its fields; one that cannot be (it holds values of other shapes, or serialises itself by its own code) is
/// decoded from its `model_dump_json()`, so a model of the wrong shape fails like its JSON would.
pub fn event_arg(obj: &Bound<'_, PyAny>) -> PyCoreResult<IndexedEvent> {
    if let Ok(json) = obj.extract::<JsonArg>() {
        return Ok(codec::decode_indexed_event(json.as_ref())?);
    }
    match depythonize(obj) {
        Ok(event) => Ok(event),
        Err(err) => match model_json(obj) {
            Some(json) => Ok(codec::decode_indexed_event(json.as_bytes())?),
            None => Err(invalid("indexed event", err.to_string()).into()),
        },
    }
}

/// A pydantic model's `model_dump_json()`; `None` for an object without one or whose dump fails.
pub fn model_json(obj: &Bound<'_, PyAny>) -> Option<String> {
    let json = obj.call_method0(pyo3::intern!(obj.py(), "model_dump_json")).ok()?;
    json.extract().ok()
}

/// A session argument: a `(master_node_id, election_clock)` pair or an object with those attributes.
pub struct SessionArg(pub SessionId);

impl<'py> FromPyObject<'_, 'py> for SessionArg {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, 'py, PyAny>) -> PyResult<Self> {
        let py = obj.py();
        let pair: PyResult<(String, u64)> = if obj.is_instance_of::<PyTuple>() {
            obj.extract()
        } else {
            (|| {
                let node = obj.getattr(pyo3::intern!(py, "master_node_id"))?;
                let clock = obj.getattr(pyo3::intern!(py, "election_clock"))?;
                Ok((node.str()?.to_string(), clock.extract()?))
            })()
        };
        let (node, clock) =
            pair.map_err(|err| invalid("session", format!("expected (master_node_id, election_clock): {err}")))?;
        Ok(Self(SessionId {
            master_node_id: NodeId::from(node),
            election_clock: clock,
        }))
    }
}

/// A session as Python sees it: `(master_node_id, election_clock)`.
pub fn session_tuple(session: &SessionId) -> (String, u64) {
    (session.master_node_id.to_string(), session.election_clock)
}

/// A batch of byte strings, readable without the GIL: `bytes` are read in place (not copied), a `bytearray` is
/// copied. A non-bytes item fails the whole batch before anything is done, naming it as the `what` at its position.
pub fn batch_arg(batch: &Bound<'_, PyAny>, what: &str) -> PyResult<Vec<PyBackedBytes>> {
    let mut items = Vec::with_capacity(batch.len().unwrap_or(0));
    for (position, item) in batch.try_iter()?.enumerate() {
        let item = item?;
        if let Ok(bytes) = item.cast::<PyBytes>() {
            items.push(PyBackedBytes::from(bytes.clone()));
        } else if let Ok(array) = item.cast::<PyByteArray>() {
            items.push(PyBackedBytes::from(array.clone()));
        } else {
            return Err(PyTypeError::new_err(format!(
                "{what} {position} of the batch is not bytes or bytearray"
            )));
        }
    }
    Ok(items)
}

/// Byte strings (envelopes, events) as a list of Python `bytes`.
pub fn bytes_list<'py, T: AsRef<[u8]>>(py: Python<'py>, items: &[T]) -> Vec<Bound<'py, PyBytes>> {
    items.iter().map(|bytes| PyBytes::new(py, bytes.as_ref())).collect()
}

/// A counters struct as the `dict` Python sees: `(name, value)` pairs, by name.
pub fn counters_dict<K: Into<String>>(pairs: impl IntoIterator<Item = (K, u64)>) -> BTreeMap<String, u64> {
    pairs.into_iter().map(|(name, value)| (name.into(), value)).collect()
}

/// The name of an object's type, for error messages.
pub fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "an unknown object".to_owned(), |name| name.to_string())
}
