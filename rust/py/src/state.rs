//! `clusterstate._core.CoreState`: the Rust-owned, persistent State, read like the pydantic `State`.

use clusterstate_core::json::{self, Case};
use clusterstate_core::{codec, State};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyDict};
use serde::Serialize;

use crate::convert::{model_json, type_name, JsonArg};
use crate::errors::{invalid, PyCoreResult};
use crate::pyimports::{BASE_MODEL, DECODE_STATE, FIELD_VALUE, JSON_LOADS};

/// The cluster State held by the Rust core: immutable, structurally shared between versions.
#[pyclass(frozen, name = "CoreState", module = "clusterstate._core")]
pub struct PyCoreState {
    pub inner: State,
}

/// A State argument: the Rust `CoreState`, or a pydantic State of the same JSON shape (`clusterstate.models.State`
/// or a foreign class), converted through its `model_dump_json()`.
pub fn state_arg(obj: &Bound<'_, PyAny>) -> PyCoreResult<State> {
    if let Ok(state) = obj.cast::<PyCoreState>() {
        return Ok(state.get().inner.clone());
    }
    let json = model_json(obj).ok_or_else(|| {
        invalid(
            "state",
            format!("expected a CoreState or a pydantic State, got {}", type_name(obj)),
        )
    })?;
    Ok(codec::decode_state(json.as_bytes())?)
}

/// One State field as the pydantic State holds it (typed models in plain dicts and lists).
fn field<T: Serialize + ?Sized>(py: Python<'_>, name: &str, value: &T) -> PyResult<Py<PyAny>> {
    let field_value = FIELD_VALUE.get(py)?;
    let json = PyBytes::new(py, &codec::encode(value, Case::Snake));
    Ok(field_value.call1((name, json))?.unbind())
}

#[pymethods]
impl PyCoreState {
    /// An empty State (`last_event_applied_idx == -1`).
    #[new]
    fn new() -> Self {
        PyCoreState {
            inner: State::default(),
        }
    }

    /// The Rust State of a pydantic `clusterstate.models.State` (or a copy of a Rust State).
    #[staticmethod]
    fn from_pydantic(state: &Bound<'_, PyAny>) -> PyCoreResult<Self> {
        Ok(PyCoreState {
            inner: state_arg(state)?,
        })
    }

    /// Decode a State from its JSON (`bytes`, `bytearray` or `str`, either key spelling).
    #[staticmethod]
    fn from_json(data: &Bound<'_, PyAny>) -> PyCoreResult<Self> {
        let json: JsonArg = data
            .extract()
            .map_err(|_| invalid("state", "expected JSON as bytes, bytearray or str"))?;
        Ok(PyCoreState {
            inner: codec::decode_state(json.as_ref())?,
        })
    }

    /// The equal pydantic `clusterstate.models.State`.
    fn to_pydantic(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let decode = DECODE_STATE.get(py)?;
        let json = PyBytes::new(py, &codec::encode(&self.inner, Case::Snake));
        Ok(decode.call1((json,))?.unbind())
    }

    /// The JSON the pydantic State writes for the same content, byte for byte.
    #[pyo3(signature = (*, by_alias = false))]
    fn model_dump_json(&self, by_alias: bool) -> String {
        let case = if by_alias { Case::Camel } else { Case::Snake };
        json::to_string(&self.inner, case).unwrap_or_default()
    }

    /// The State as Python data: JSON-compatible (`mode="json"`, the default, read from the Rust State) or with the
    /// typed models inside (`mode="python"`, the pydantic State's `model_dump`).
    #[pyo3(signature = (*, mode = "json", by_alias = false))]
    fn model_dump(&self, py: Python<'_>, mode: &str, by_alias: bool) -> PyResult<Py<PyAny>> {
        match mode {
            "json" => Ok(JSON_LOADS.get(py)?.call1((self.model_dump_json(by_alias),))?.unbind()),
            "python" => {
                let kwargs = PyDict::new(py);
                kwargs.set_item(pyo3::intern!(py, "by_alias"), by_alias)?;
                let dumped =
                    self.to_pydantic(py)?
                        .call_method(py, pyo3::intern!(py, "model_dump"), (), Some(&kwargs))?;
                Ok(dumped)
            }
            other => Err(PyValueError::new_err(format!(
                "mode must be \"json\" or \"python\", not {other:?}"
            ))),
        }
    }

    /// This State with the fields in `update` replaced, as pydantic's `model_copy(update=...)`; the result is
    /// validated like any State input (a `DecodeError` for a value of the wrong shape). A State is immutable, so
    /// `deep` changes nothing and a copy without `update` shares everything with this one.
    #[pyo3(signature = (*, update = None, deep = false))]
    fn model_copy(&self, py: Python<'_>, update: Option<&Bound<'_, PyDict>>, deep: bool) -> PyCoreResult<Self> {
        let _ = deep;
        let Some(update) = update.filter(|update| !update.is_empty()) else {
            return Ok(PyCoreState {
                inner: self.inner.clone(),
            });
        };
        let kwargs = PyDict::new(py);
        kwargs.set_item(pyo3::intern!(py, "update"), update)?;
        let copied = self
            .to_pydantic(py)?
            .call_method(py, pyo3::intern!(py, "model_copy"), (), Some(&kwargs))?;
        Ok(PyCoreState {
            inner: state_arg(copied.bind(py))?,
        })
    }

    #[getter]
    fn instances(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "instances", &self.inner.instances)
    }

    #[getter]
    fn runners(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "runners", &self.inner.runners)
    }

    #[getter]
    fn downloads(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "downloads", &self.inner.downloads)
    }

    #[getter]
    fn tasks(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "tasks", &self.inner.tasks)
    }

    #[getter]
    fn last_event_index_by_node(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "last_event_index_by_node", &self.inner.last_event_index_by_node)
    }

    #[getter]
    fn topology(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "topology", &self.inner.topology)
    }

    #[getter]
    fn last_event_applied_idx(&self) -> i64 {
        self.inner.last_event_applied_idx
    }

    #[getter]
    fn node_identities(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_identities", &self.inner.node_identities)
    }

    #[getter]
    fn node_memory(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_memory", &self.inner.node_memory)
    }

    #[getter]
    fn node_disk(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_disk", &self.inner.node_disk)
    }

    #[getter]
    fn node_system(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_system", &self.inner.node_system)
    }

    #[getter]
    fn node_network(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_network", &self.inner.node_network)
    }

    #[getter]
    fn node_thunderbolt(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_thunderbolt", &self.inner.node_thunderbolt)
    }

    #[getter]
    fn node_thunderbolt_bridge(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_thunderbolt_bridge", &self.inner.node_thunderbolt_bridge)
    }

    #[getter]
    fn node_rdma_ctl(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "node_rdma_ctl", &self.inner.node_rdma_ctl)
    }

    #[getter]
    fn thunderbolt_bridge_cycles(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        field(py, "thunderbolt_bridge_cycles", &*self.inner.thunderbolt_bridge_cycles)
    }

    /// This State with the records of `log` after `last_event_applied_idx` folded in, in Rust (GIL released).
    #[pyo3(signature = (log, /))]
    fn replay(&self, py: Python<'_>, log: &Bound<'_, crate::log::PyEventLog>) -> PyResult<PyCoreState> {
        log.get().replay_into(py, self.inner.clone())
    }

    /// Every node the State holds anything about: in the topology or with an event index.
    fn known_nodes(&self) -> Vec<String> {
        self.inner
            .known_nodes()
            .iter()
            .map(|node| node.as_str().to_owned())
            .collect()
    }

    /// Equal to a Rust State, or a pydantic State (`clusterstate.models.State` or a foreign class of the same JSON
    /// shape), with the same content.
    fn __eq__(&self, py: Python<'_>, other: &Bound<'_, PyAny>) -> PyCoreResult<Py<PyAny>> {
        if let Ok(other) = other.cast::<PyCoreState>() {
            return Ok(PyBool::new(py, self.inner == other.get().inner)
                .to_owned()
                .into_any()
                .unbind());
        }
        if other.is_instance(BASE_MODEL.get(py)?)? {
            // A pydantic model that is not a State of this shape is not equal (nor an error).
            if let Ok(other) = state_arg(other) {
                return Ok(PyBool::new(py, self.inner == other).to_owned().into_any().unbind());
            }
        }
        Ok(py.NotImplemented())
    }

    fn __repr__(&self) -> String {
        format!(
            "CoreState(last_event_applied_idx={}, nodes={}, edges={}, instances={}, runners={}, tasks={})",
            self.inner.last_event_applied_idx,
            self.inner.topology.len(),
            self.inner.topology.connections().count(),
            self.inner.instances.len(),
            self.inner.runners.len(),
            self.inner.tasks.len(),
        )
    }
}
