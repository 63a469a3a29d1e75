//! `clusterstate._core.StalenessTracker`: the event-index liveness tracker (core `liveness` module) for Python.

use clusterstate_core::liveness::{CycleKind, NodeStaleness, StalenessTracker};
use pyo3::prelude::*;

use crate::errors::PyCoreResult;
use crate::pyimports::NODE_DISCONNECTED;
use crate::state::{state_arg, PyCoreState};

/// A node's staleness: a decision of `StalenessTracker.cycle` (the evidence of a `NodeDisconnected`), or an entry of
/// `StalenessTracker.status()`.
#[pyclass(
    frozen,
    eq,
    hash,
    skip_from_py_object,
    name = "NodeStaleness",
    module = "clusterstate._core"
)]
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PyNodeStaleness {
    #[pyo3(get)]
    node_id: String,
    #[pyo3(get)]
    last_index: Option<u64>,
    #[pyo3(get)]
    stale_cycles: u32,
}

impl From<NodeStaleness> for PyNodeStaleness {
    fn from(value: NodeStaleness) -> Self {
        Self {
            node_id: value.node_id.as_str().to_owned(),
            last_index: value.last_index,
            stale_cycles: value.stale_cycles,
        }
    }
}

#[pymethods]
impl PyNodeStaleness {
    #[new]
    #[pyo3(signature = (node_id, last_index, stale_cycles))]
    fn new(node_id: String, last_index: Option<u64>, stale_cycles: u32) -> Self {
        Self {
            node_id,
            last_index,
            stale_cycles,
        }
    }

    /// The `NodeDisconnected` event carrying this evidence (a fresh `event_id` unless one is given).
    #[pyo3(signature = (*, event_id = None))]
    fn to_event(&self, py: Python<'_>, event_id: Option<String>) -> PyResult<Py<PyAny>> {
        let class = NODE_DISCONNECTED.get(py)?;
        let kwargs = pyo3::types::PyDict::new(py);
        kwargs.set_item("node_id", &self.node_id)?;
        kwargs.set_item("last_index", self.last_index)?;
        kwargs.set_item("stale_cycles", self.stale_cycles)?;
        if let Some(event_id) = event_id {
            kwargs.set_item("event_id", event_id)?;
        }
        Ok(class.call((), Some(&kwargs))?.unbind())
    }

    fn __repr__(&self) -> String {
        let last = self
            .last_index
            .map_or_else(|| "None".to_owned(), |index| index.to_string());
        format!(
            "NodeStaleness(node_id={:?}, last_index={last}, stale_cycles={})",
            self.node_id, self.stale_cycles
        )
    }
}

/// Decides which nodes are gone from whether their event index advances (docs/liveness.md).
#[pyclass(name = "StalenessTracker", module = "clusterstate._core")]
pub struct PyStalenessTracker {
    inner: StalenessTracker,
}

#[pymethods]
impl PyStalenessTracker {
    // Literal defaults (the core's DEFAULT_PERIOD_S and DEFAULT_THRESHOLD, checked by a test), so that the
    // runtime signature shows them.
    #[new]
    #[pyo3(signature = (period_s = 10.0, threshold = 3))]
    fn new(period_s: f64, threshold: u32) -> PyCoreResult<Self> {
        Ok(Self {
            inner: StalenessTracker::new(period_s, threshold)?,
        })
    }

    /// Run one plan cycle; returns the nodes to disconnect, sorted by node id.
    #[pyo3(signature = (state, *, now, global_index = None))]
    fn cycle(
        &mut self,
        state: &Bound<'_, PyAny>,
        now: f64,
        global_index: Option<i64>,
    ) -> PyCoreResult<Vec<PyNodeStaleness>> {
        let decisions = if let Ok(rust) = state.cast::<PyCoreState>() {
            let inner = &rust.get().inner;
            self.inner
                .cycle(inner, now, global_index.unwrap_or(inner.last_event_applied_idx))
        } else {
            let converted = state_arg(state)?;
            let index = global_index.unwrap_or(converted.last_event_applied_idx);
            self.inner.cycle(&converted, now, index)
        };
        Ok(decisions.into_iter().map(PyNodeStaleness::from).collect())
    }

    /// Per-node last index and stale cycles, by node id (sorted).
    fn status(&self) -> std::collections::BTreeMap<String, PyNodeStaleness> {
        self.inner
            .status()
            .into_iter()
            .map(|s| (s.node_id.as_str().to_owned(), PyNodeStaleness::from(s)))
            .collect()
    }

    #[getter]
    fn period_s(&self) -> f64 {
        self.inner.period_s()
    }

    #[getter]
    fn threshold(&self) -> u32 {
        self.inner.threshold()
    }

    /// How many cycles have run.
    #[getter]
    fn cycles(&self) -> u64 {
        self.inner.cycles()
    }

    /// How the last cycle counted: `"grace"`, `"counted"`, `"master_idle"` or `"late"`; `None` before the first cycle.
    #[getter]
    fn last_cycle(&self) -> Option<&'static str> {
        self.inner.last_cycle_kind().map(|kind| match kind {
            CycleKind::Grace => "grace",
            CycleKind::Counted => "counted",
            CycleKind::MasterIdle => "master_idle",
            CycleKind::Late => "late",
        })
    }

    /// The core's default period and threshold (the constructor's defaults must equal them).
    #[staticmethod]
    fn _core_defaults() -> (f64, u32) {
        (
            clusterstate_core::liveness::DEFAULT_PERIOD_S,
            clusterstate_core::liveness::DEFAULT_THRESHOLD,
        )
    }

    fn __len__(&self) -> usize {
        self.inner.len()
    }

    fn __repr__(&self) -> String {
        format!(
            "StalenessTracker(period_s={}, threshold={}, nodes={}, cycles={})",
            self.inner.period_s(),
            self.inner.threshold(),
            self.inner.len(),
            self.inner.cycles()
        )
    }
}
