//! `clusterstate._core.MasterCore`: the master's ingest path (core `master` module) for Python.

use std::collections::BTreeMap;

use clusterstate_core::events::SessionId;
use clusterstate_core::master::{IngestOutcome, MasterCore, RejectReason, DEFAULT_CAPACITY};
use clusterstate_core::NodeId;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyTuple};

use crate::errors::invalid;
use crate::state::PyState;

/// What one `MasterCore.ingest` call did: the events to broadcast, the acknowledgements, the refusals.
#[pyclass(frozen, name = "IngestResult", module = "clusterstate._core")]
pub struct PyIngestResult {
    broadcast: Vec<Py<PyBytes>>,
    #[pyo3(get)]
    acknowledged: Vec<(String, u64)>,
    #[pyo3(get)]
    rejected: Vec<(usize, &'static str)>,
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
            "IngestResult(broadcast={} events, acknowledged={}, rejected={:?})",
            self.broadcast.len(),
            self.acknowledged.len(),
            self.rejected
        )
    }
}

impl PyIngestResult {
    fn new(py: Python<'_>, outcome: IngestOutcome) -> Self {
        Self {
            broadcast: outcome
                .broadcast
                .iter()
                .map(|bytes| PyBytes::new(py, bytes).unbind())
                .collect(),
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
        }
    }
}

/// The master's state core: resequences local events per producer, indexes and applies them (docs/master.md).
#[pyclass(name = "MasterCore", module = "clusterstate._core")]
pub struct PyMasterCore {
    inner: MasterCore,
}

/// A session argument: a `(master_node_id, election_clock)` pair or an object with those attributes.
fn session_arg(obj: &Bound<'_, PyAny>) -> PyResult<SessionId> {
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
    Ok(SessionId {
        master_node_id: NodeId::from(node),
        election_clock: clock,
    })
}

/// The batch as owned byte strings (so the work can run without the GIL).
fn batch_arg(batch: &Bound<'_, PyAny>) -> PyResult<Vec<Vec<u8>>> {
    let mut owned = Vec::with_capacity(batch.len().unwrap_or(0));
    for (position, item) in batch.try_iter()?.enumerate() {
        let item = item?;
        if let Ok(bytes) = item.cast::<PyBytes>() {
            owned.push(bytes.as_bytes().to_vec());
        } else if let Ok(array) = item.cast::<PyByteArray>() {
            owned.push(array.to_vec());
        } else {
            return Err(PyTypeError::new_err(format!(
                "envelope {position} of the batch is not bytes or bytearray"
            )));
        }
    }
    Ok(owned)
}

#[pymethods]
impl PyMasterCore {
    #[new]
    #[pyo3(signature = (session, *, capacity = DEFAULT_CAPACITY))]
    fn new(session: &Bound<'_, PyAny>, capacity: usize) -> PyResult<Self> {
        if capacity == 0 {
            return Err(PyValueError::new_err("capacity must be at least 1"));
        }
        Ok(Self {
            inner: MasterCore::with_capacity(session_arg(session)?, capacity),
        })
    }

    /// Ingest a batch of local-event envelopes (JSON bytes); one call, the work done without the GIL.
    fn ingest(&mut self, py: Python<'_>, batch: &Bound<'_, PyAny>) -> PyResult<PyIngestResult> {
        let owned = batch_arg(batch)?;
        let inner = &mut self.inner;
        let outcome = py.detach(|| inner.ingest(&owned));
        Ok(PyIngestResult::new(py, outcome))
    }

    /// The State after every applied event (the Rust `State`, shared, not copied).
    #[getter]
    fn state(&self) -> PyState {
        PyState {
            inner: self.inner.state().clone(),
        }
    }

    /// The running totals: `ingested`, `applied`, `duplicates`, `other_session`, `buffered`, `rejected` and
    /// `rejected_<reason>` for every reason.
    #[getter]
    fn counters(&self) -> BTreeMap<String, u64> {
        let counters = self.inner.counters();
        let mut out = BTreeMap::from([
            ("ingested".to_owned(), counters.ingested),
            ("applied".to_owned(), counters.applied),
            ("duplicates".to_owned(), counters.duplicates),
            ("other_session".to_owned(), counters.other_session),
            ("buffered".to_owned(), counters.buffered),
            ("rejected".to_owned(), counters.rejected_total()),
        ]);
        for reason in RejectReason::ALL {
            out.insert(format!("rejected_{reason}"), counters.rejected(reason));
        }
        out
    }

    /// `(master_node_id, election_clock)` of the session this master serves.
    #[getter]
    fn session(&self) -> (String, u64) {
        let session = self.inner.session();
        (session.master_node_id.to_string(), session.election_clock)
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
