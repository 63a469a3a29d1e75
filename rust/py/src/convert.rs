//! Turning the Python arguments of `apply` into core values: one conversion per argument, before any work.

use clusterstate_core::{codec, IndexedEvent, State};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::pybacked::PyBackedBytes;
use pyo3::types::{PyByteArray, PyBytes, PyString};

use crate::depythonize::depythonize;
use crate::errors::{decode_error, invalid};
use crate::state::PyState;

/// A State argument: the Rust `CoreState`, or a pydantic `clusterstate.models.State` (converted through its JSON).
pub fn state_arg(obj: &Bound<'_, PyAny>) -> PyResult<State> {
    if let Ok(state) = obj.cast::<PyState>() {
        return Ok(state.get().inner.clone());
    }
    let json = obj
        .call_method0(pyo3::intern!(obj.py(), "model_dump_json"))
        .map_err(|_| {
            invalid(
                "state",
                format!("expected a CoreState or a clusterstate.State, got {}", type_name(obj)),
            )
        })?;
    let json = json
        .cast::<PyString>()
        .map_err(|_| invalid("state", "model_dump_json() did not return a str"))?;
    codec::decode_state(json.to_str()?.as_bytes()).map_err(|err| decode_error(&err))
}

/// An indexed-event argument: a pydantic `IndexedEvent`, or its JSON as `bytes`, `bytearray` or `str`.
pub fn event_arg(obj: &Bound<'_, PyAny>) -> PyResult<IndexedEvent> {
    if let Ok(bytes) = obj.cast::<PyBytes>() {
        return codec::decode_indexed_event(bytes.as_bytes()).map_err(|err| decode_error(&err));
    }
    if let Ok(text) = obj.cast::<PyString>() {
        return codec::decode_indexed_event(text.to_str()?.as_bytes()).map_err(|err| decode_error(&err));
    }
    if let Ok(array) = obj.cast::<PyByteArray>() {
        return codec::decode_indexed_event(&array.to_vec()).map_err(|err| decode_error(&err));
    }
    depythonize(obj).map_err(|err| invalid("indexed event", err.to_string()))
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

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "an unknown object".to_owned(), |name| name.to_string())
}
