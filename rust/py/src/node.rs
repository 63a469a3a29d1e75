//! `clusterstate._core.NodeCore`: the receiving side every node runs (core `node` module) for Python.

use std::collections::BTreeMap;

use clusterstate_core::node::{NodeCore, ReceiveResult};
use clusterstate_core::resequence::DEFAULT_CAPACITY;
use clusterstate_core::State;
use pyo3::prelude::*;

use crate::convert::{batch_arg, counters_dict};
use crate::errors::{invalid_option, PyCoreResult};
use crate::state::{state_arg, PyCoreState};

/// What one `NodeCore.receive` call did: how many events it applied, where the node is missing events, refusals.
#[pyclass(frozen, name = "ReceiveResult", module = "clusterstate._core")]
pub struct PyReceiveResult {
    #[pyo3(get)]
    applied: u64,
    #[pyo3(get)]
    missing: Option<u64>,
    #[pyo3(get)]
    rejected: Vec<(usize, &'static str)>,
}

#[pymethods]
impl PyReceiveResult {
    fn __repr__(&self) -> String {
        let missing = self.missing.map_or_else(|| "None".to_owned(), |idx| idx.to_string());
        format!(
            "ReceiveResult(applied={}, missing={missing}, rejected={:?})",
            self.applied, self.rejected
        )
    }
}

impl From<ReceiveResult> for PyReceiveResult {
    fn from(outcome: ReceiveResult) -> Self {
        Self {
            applied: outcome.applied,
            missing: outcome.missing,
            rejected: outcome
                .rejected
                .into_iter()
                .map(|(position, reason)| (position, reason.as_str()))
                .collect(),
        }
    }
}

/// A node's copy of the cluster State, kept from the master's broadcast (docs/node.md).
#[pyclass(name = "NodeCore", module = "clusterstate._core")]
pub struct PyNodeCore {
    inner: NodeCore,
}

#[pymethods]
impl PyNodeCore {
    #[new]
    #[pyo3(signature = (state = None, *, capacity = DEFAULT_CAPACITY))]
    fn new(state: Option<&Bound<'_, PyAny>>, capacity: usize) -> PyCoreResult<Self> {
        if capacity == 0 {
            return Err(invalid_option("capacity must be at least 1").into());
        }
        let state = state.map(state_arg).transpose()?.unwrap_or_default();
        Ok(Self {
            inner: NodeCore::from_state(state, capacity),
        })
    }

    /// Receive a batch of broadcast events (`IndexedEvent` JSON bytes); one call, the work done without the GIL.
    fn receive(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<PyReceiveResult> {
        let events = batch_arg(batch, "event")?;
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.receive(&events)).into())
    }

    /// Adopt a snapshot State if it is ahead of the node's; returns whether it was adopted.
    fn join(&mut self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyCoreResult<bool> {
        let state: State = state_arg(state)?;
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.join(state)))
    }

    /// Note the master's next index (e.g. from a heartbeat): past the node's, the node is behind.
    fn note_master_index(&mut self, next: u64) {
        self.inner.note_master_index(next);
    }

    /// The State after every applied event (the Rust `State`, shared, not copied).
    #[getter]
    fn state(&self) -> PyCoreState {
        PyCoreState {
            inner: self.inner.state().clone(),
        }
    }

    /// The index of the next event to apply.
    #[getter]
    fn next_index(&self) -> u64 {
        self.inner.next_index()
    }

    /// The index to fetch from when events past the applied ones are known to exist; `None` when caught up.
    #[getter]
    fn missing(&self) -> Option<u64> {
        self.inner.missing()
    }

    /// How many events may wait ahead of a gap.
    #[getter]
    fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// The running totals: `received`, `applied`, `duplicates`, `conflicts`, `dropped_ahead`, `rejected` and
    /// `rejected_<reason>`, `gaps`, `joins`, `joins_ignored`, `buffered`.
    #[getter]
    fn counters(&self) -> BTreeMap<String, u64> {
        counters_dict(self.inner.counters().iter())
    }

    fn __repr__(&self) -> String {
        let missing = self
            .inner
            .missing()
            .map_or_else(|| "None".to_owned(), |idx| idx.to_string());
        format!(
            "NodeCore(next_index={}, missing={missing}, buffered={})",
            self.inner.next_index(),
            self.inner.counters().buffered
        )
    }
}
