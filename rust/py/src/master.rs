//! `clusterstate._core.MasterCore`: the master's ingest path, plan cycle and catch-up pages (core `master` module)
//! for Python.

use std::collections::BTreeMap;

use clusterstate_core::liveness::{DEFAULT_PERIOD_S, DEFAULT_THRESHOLD};
use clusterstate_core::master::{
    CycleResult, IngestResult, LogFailure, MasterCore, MasterOptions, DEFAULT_DEDUP_WINDOW,
};
use clusterstate_core::resequence::DEFAULT_CAPACITY;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::convert::{batch_arg, bytes_list, counters_dict, session_tuple, SessionArg};
use crate::errors::{failure_error, PyCoreResult};
use crate::liveness::PyNodeStaleness;
use crate::log::PyEventLog;
use crate::state::PyCoreState;

/// Byte strings kept in a result object, handed out as `bytes` without a copy.
fn kept_bytes(py: Python<'_>, items: &[Vec<u8>]) -> Vec<Py<PyBytes>> {
    bytes_list(py, items).into_iter().map(Bound::unbind).collect()
}

/// What one `MasterCore.ingest` call did: the events to broadcast, the acknowledgements, the refusals.
#[pyclass(frozen, name = "IngestResult", module = "clusterstate._core")]
pub struct PyIngestResult {
    broadcast: Vec<Py<PyBytes>>,
    #[pyo3(get)]
    acknowledged: Vec<(String, u64)>,
    #[pyo3(get)]
    rejected: Vec<(usize, &'static str)>,
    /// `(producer, missing, held)` for every producer heard from whose events wait behind a gap: send it back with
    /// the acknowledgements (`ProducerOutbox.resend_missing`).
    #[pyo3(get)]
    missing: Vec<(String, u64, u64)>,
}

#[pymethods]
impl PyIngestResult {
    /// The newly indexed events as `IndexedEvent` JSON bytes, in global-index order.
    #[getter]
    fn broadcast<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.broadcast.iter().map(|bytes| bytes.bind(py)))
    }

    fn __repr__(&self) -> String {
        format!(
            "IngestResult(broadcast={} events, acknowledged={}, rejected={:?}, missing={:?})",
            self.broadcast.len(),
            self.acknowledged.len(),
            self.rejected,
            self.missing
        )
    }
}

impl PyIngestResult {
    fn new(py: Python<'_>, outcome: IngestResult) -> Self {
        Self {
            broadcast: kept_bytes(py, &outcome.broadcast),
            acknowledged: outcome
                .acknowledged
                .into_iter()
                .map(|(producer, idx)| (producer.to_string(), idx))
                .collect(),
            rejected: outcome
                .rejected
                .into_iter()
                .map(|(position, reason)| (position, reason.as_str()))
                .collect(),
            missing: outcome
                .missing
                .into_iter()
                .map(|gap| (gap.producer.to_string(), gap.missing, gap.held))
                .collect(),
        }
    }
}

/// What one `MasterCore.plan_cycle` did: the `NodeDisconnected` events to broadcast and the decisions behind them.
#[pyclass(frozen, name = "CycleResult", module = "clusterstate._core")]
pub struct PyCycleResult {
    broadcast: Vec<Py<PyBytes>>,
    #[pyo3(get)]
    decisions: Vec<PyNodeStaleness>,
}

#[pymethods]
impl PyCycleResult {
    /// The master's `NodeDisconnected` events as `IndexedEvent` JSON bytes (`origin` = the master node).
    #[getter]
    fn broadcast<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.broadcast.iter().map(|bytes| bytes.bind(py)))
    }

    fn __repr__(&self) -> String {
        format!("CycleResult(disconnected={} nodes)", self.decisions.len())
    }
}

impl PyCycleResult {
    fn new(py: Python<'_>, outcome: CycleResult) -> Self {
        Self {
            broadcast: kept_bytes(py, &outcome.broadcast),
            decisions: outcome.decisions.into_iter().map(PyNodeStaleness::from).collect(),
        }
    }
}

/// The master's state core: resequences local events per producer, indexes, logs and applies them, runs the
/// staleness tracker's plan cycle and serves catch-up pages (docs/master.md).
///
/// With `log=`, the master takes the `EventLog` over (the Python object then raises `LogClosedError` on use)
/// and starts from the log's State, continuing its index: a restarted master must serve a new session.
#[pyclass(name = "MasterCore", module = "clusterstate._core")]
pub struct PyMasterCore {
    inner: MasterCore,
}

#[pymethods]
impl PyMasterCore {
    #[new]
    #[pyo3(signature = (
        session, *, capacity = DEFAULT_CAPACITY, log = None, period_s = DEFAULT_PERIOD_S,
        threshold = DEFAULT_THRESHOLD, dedup_window = DEFAULT_DEDUP_WINDOW
    ))]
    fn new(
        py: Python<'_>,
        session: SessionArg,
        capacity: usize,
        log: Option<&Bound<'_, PyEventLog>>,
        period_s: f64,
        threshold: u32,
        dedup_window: usize,
    ) -> PyCoreResult<Self> {
        let SessionArg(session) = session;
        let options = MasterOptions {
            capacity,
            period_s,
            threshold,
            dedup_window,
        };
        // Checked before the log is taken over, so that a bad setting leaves the EventLog usable.
        options.validate()?;
        let inner = match log {
            None => MasterCore::with_options(session, options),
            Some(log) => {
                let log = log.get().take_over()?;
                py.detach(move || MasterCore::open(session, log, options))
            }
        };
        Ok(Self { inner: inner? })
    }

    /// Ingest a batch of local-event envelopes (JSON bytes); one call, the work done without the GIL. If the log
    /// refuses the append, raises its `LogError` with `result`: the part done before (consistent with the log).
    fn ingest(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<PyIngestResult> {
        let envelopes = batch_arg(batch, "envelope")?;
        let inner = &mut self.inner;
        match py.detach(|| inner.try_ingest(&envelopes)) {
            Ok(outcome) => Ok(PyIngestResult::new(py, outcome)),
            Err(failure) => {
                let LogFailure { error, done } = *failure;
                Err(failure_error(py, error, PyIngestResult::new(py, done)))
            }
        }
    }

    /// Run one plan cycle at `now` (seconds of a monotonic clock): disconnect the nodes whose event index stopped
    /// advancing, through the same index-log-apply path as ingested events.
    fn plan_cycle(&mut self, py: Python<'_>, now: f64) -> PyResult<PyCycleResult> {
        let inner = &mut self.inner;
        match py.detach(|| inner.plan_cycle(now)) {
            Ok(outcome) => Ok(PyCycleResult::new(py, outcome)),
            Err(failure) => {
                let LogFailure { error, done } = *failure;
                Err(failure_error(py, error, PyCycleResult::new(py, done)))
            }
        }
    }

    /// Up to `limit` (at most 10 000) events from global index `idx` on, as `IndexedEvent` JSON bytes read from
    /// the log: a catch-up page.
    #[pyo3(signature = (idx, limit = 1000))]
    fn events_since<'py>(&mut self, py: Python<'py>, idx: u64, limit: usize) -> PyCoreResult<Vec<Bound<'py, PyBytes>>> {
        let inner = &mut self.inner;
        let page = py.detach(|| inner.events_since(idx, limit))?;
        Ok(bytes_list(py, &page))
    }

    /// Write the State as a snapshot into the log; returns its index.
    fn snapshot(&mut self, py: Python<'_>) -> PyCoreResult<u64> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.snapshot())?)
    }

    /// Force every appended record to disk.
    fn sync(&mut self, py: Python<'_>) -> PyCoreResult<()> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.sync())?)
    }

    /// Sync and close the log (releasing its directory); afterwards `ingest` and `plan_cycle` raise
    /// `LogClosedError`. A no-op without a log.
    fn close(&mut self, py: Python<'_>) -> PyCoreResult<()> {
        let inner = &mut self.inner;
        Ok(py.detach(|| inner.close())?)
    }

    /// Whether the master has an open event log.
    #[getter]
    fn has_log(&self) -> bool {
        self.inner.log().is_some()
    }

    /// The snapshot the master's State was loaded from when it was built from a log, if any.
    #[getter]
    fn loaded_snapshot_index(&self) -> Option<u64> {
        self.inner.loaded_snapshot_index()
    }

    /// The State after every applied event (the Rust `State`, shared, not copied).
    #[getter]
    fn state(&self) -> PyCoreState {
        PyCoreState {
            inner: self.inner.state().clone(),
        }
    }

    /// The running totals: `ingested`, `applied`, `duplicates`, `other_session`, `buffered`, `appended`,
    /// `disconnects`, `replayed_duplicates`, `unlogged`, `rejected` and `rejected_<reason>` for every reason.
    #[getter]
    fn counters(&self) -> BTreeMap<String, u64> {
        counters_dict(self.inner.counters().iter())
    }

    /// `(master_node_id, election_clock)` of the session this master serves.
    #[getter]
    fn session(&self) -> (String, u64) {
        session_tuple(self.inner.session())
    }

    /// The global index the next applied event gets.
    #[getter]
    fn next_index(&self) -> u64 {
        self.inner.next_index()
    }

    /// The next sequence number expected from `producer` (`None` for a producer never heard from).
    fn producer_next(&self, producer: &str) -> Option<u64> {
        self.inner.producer_next(producer)
    }

    fn __repr__(&self) -> String {
        let session = self.inner.session();
        format!(
            "MasterCore(session=({:?}, {}), next_index={})",
            session.master_node_id.as_str(),
            session.election_clock,
            self.inner.next_index()
        )
    }
}
