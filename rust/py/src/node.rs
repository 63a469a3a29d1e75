//! `clusterstate._core.NodeCore`: the receiving side every node runs (core `node` module) for Python.

use std::collections::BTreeMap;

use clusterstate_core::master::LogFailure;
use clusterstate_core::node::{NodeCore, ReceiveResult};
use clusterstate_core::resequence::DEFAULT_CAPACITY;
use clusterstate_core::State;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::convert::{batch_arg, bytes_list, counters_dict};
use crate::errors::{failure_error, invalid_option, PyCoreResult};
use crate::log::PyEventLog;
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
///
/// With `log=`, the node takes the `EventLog` over as its replica log (as `MasterCore` does), starts from the log's
/// State and logs every event before applying it.
#[pyclass(name = "NodeCore", module = "clusterstate._core")]
pub struct PyNodeCore {
    inner: NodeCore,
}

#[pymethods]
impl PyNodeCore {
    #[new]
    #[pyo3(signature = (state = None, *, capacity = DEFAULT_CAPACITY, log = None))]
    fn new(
        py: Python<'_>,
        state: Option<&Bound<'_, PyAny>>,
        capacity: usize,
        log: Option<&Bound<'_, PyEventLog>>,
    ) -> PyCoreResult<Self> {
        // Checked before the log is taken over, so that a bad setting leaves the EventLog usable.
        if capacity == 0 {
            return Err(invalid_option("capacity must be at least 1").into());
        }
        let inner = match (state, log) {
            (Some(_), Some(_)) => {
                return Err(
                    invalid_option("give a NodeCore a state or a log, not both: the log holds its State").into(),
                )
            }
            (state, None) => NodeCore::from_state(state.map(state_arg).transpose()?.unwrap_or_default(), capacity),
            (None, Some(log)) => {
                let log = log.get().take_over()?;
                py.detach(move || NodeCore::open(log, capacity))?
            }
        };
        Ok(Self { inner })
    }

    /// Receive a batch of broadcast events (`IndexedEvent` JSON bytes); one call, the work done without the GIL.
    /// If the replica log refuses the write, raises its `LogError` with `result`: what was done before.
    fn receive(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<PyReceiveResult> {
        let events = batch_arg(batch, "event")?;
        let inner = &mut self.inner;
        match py.detach(|| inner.try_receive(&events)) {
            Ok(outcome) => Ok(outcome.into()),
            Err(failure) => {
                let LogFailure { error, done } = *failure;
                Err(failure_error(py, error, PyReceiveResult::from(done)))
            }
        }
    }

    /// Adopt a snapshot State if it is ahead of the node's; returns whether it was adopted. Refused
    /// (`LogUsageError`) on a node with a replica log.
    fn join(&mut self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyCoreResult<bool> {
        let state: State = state_arg(state)?;
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.join(state))?)
    }

    /// Up to `limit` (at most 10 000) events from index `idx` on, as `IndexedEvent` JSON bytes read from the
    /// replica log: a catch-up page.
    #[pyo3(signature = (idx, limit = 1000))]
    fn events_since<'py>(&mut self, py: Python<'py>, idx: u64, limit: usize) -> PyCoreResult<Vec<Bound<'py, PyBytes>>> {
        let inner = &mut self.inner;
        let page = py.detach(|| inner.events_since(idx, limit))?;
        Ok(bytes_list(py, &page))
    }

    /// Write the State as a snapshot into the replica log; returns its index.
    fn snapshot(&mut self, py: Python<'_>) -> PyCoreResult<u64> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.snapshot())?)
    }

    /// Force every appended record of the replica log to disk.
    fn sync(&mut self, py: Python<'_>) -> PyCoreResult<()> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.sync())?)
    }

    /// Sync and close the replica log (releasing its directory); afterwards `receive` raises `LogClosedError`.
    /// A no-op without a log.
    fn close(&mut self, py: Python<'_>) -> PyCoreResult<()> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.close())?)
    }

    /// Whether the node has an open replica log.
    #[getter]
    fn has_log(&self) -> bool {
        self.inner.log().is_some()
    }

    /// The snapshot the node's State was loaded from when it was built from a log, if any.
    #[getter]
    fn loaded_snapshot_index(&self) -> Option<u64> {
        self.inner.loaded_snapshot_index()
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
    /// `rejected_<reason>`, `gaps`, `joins`, `joins_ignored`, `buffered`, `appended`, `unlogged`.
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
