//! `clusterstate._core.ProducerOutbox`: the producer side of the ingest path (core `ProducerOutbox`) for Python.

use std::collections::BTreeMap;
use std::sync::Arc;

use clusterstate_core::envelope::{new_producer_id, Gap, ProducerId};
use clusterstate_core::events::Event;
use clusterstate_core::producer::{OutboxOptions, ProducerOutbox};
use clusterstate_core::NodeId;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyInt, PyTuple};

use crate::convert::{bytes_list, counters_dict, session_tuple, JsonArg, SessionArg};
use crate::depythonize::depythonize;
use crate::errors::{invalid, PyCoreResult};

/// The sequence numbers among `acks` (ints, or `(producer, origin_idx)` pairs of which only `producer`'s count),
/// all converted before any is applied, so a bad item changes nothing.
fn acks_arg(acks: &Bound<'_, PyAny>, producer: &str) -> PyResult<Vec<u64>> {
    let mut seqs = Vec::with_capacity(acks.len().unwrap_or(0));
    for (position, item) in acks.try_iter()?.enumerate() {
        let item = item?;
        // `bool` is an `int` subclass in Python, but `True` is no sequence number.
        let is_index = |value: &Bound<'_, PyAny>| value.is_instance_of::<PyInt>() && !value.is_instance_of::<PyBool>();
        let seq = if is_index(&item) {
            item.clone()
        } else if let Ok(pair) = item.cast::<PyTuple>() {
            let not_a_pair = || {
                PyTypeError::new_err(format!(
                    "acknowledgement {position} is not a (producer, origin_idx) pair"
                ))
            };
            let (origin, seq): (String, Bound<'_, PyAny>) = pair.extract().map_err(|_| not_a_pair())?;
            if !is_index(&seq) {
                return Err(not_a_pair());
            }
            if origin != producer {
                continue;
            }
            seq
        } else {
            return Err(PyTypeError::new_err(format!(
                "acknowledgement {position} is not an int or a (producer, origin_idx) pair"
            )));
        };
        // An int that is no u64 (negative, too large) is no pending sequence number; neither is `u64::MAX` (the
        // outbox never numbers an event with it), so it stands for them and is counted as an ignored acknowledgement.
        seqs.push(seq.extract::<u64>().unwrap_or(u64::MAX));
    }
    Ok(seqs)
}

/// This producer's reports among `missing` (`(producer, missing, held)` triples, as `IngestResult.missing` gives
/// them), all converted before any is used, so a bad item changes nothing.
fn gaps_arg(missing: &Bound<'_, PyAny>, producer: &ProducerId) -> PyResult<Vec<Gap>> {
    let mut gaps = Vec::new();
    for (position, item) in missing.try_iter()?.enumerate() {
        let (origin, missing, held): (String, u64, u64) = item?.extract().map_err(|_| {
            PyTypeError::new_err(format!(
                "missing report {position} is not a (producer, missing, held) triple of a str and two ints >= 0"
            ))
        })?;
        if *origin == **producer {
            gaps.push(Gap {
                producer: producer.clone(),
                missing,
                held,
            });
        }
    }
    Ok(gaps)
}

/// One producer instance's sequencer and outbox: numbers local events, keeps them until the master acknowledges
/// them, resends what is due (docs/master.md, "The producer side").
#[pyclass(name = "ProducerOutbox", module = "clusterstate._core")]
pub struct PyProducerOutbox {
    inner: ProducerOutbox,
}

#[pymethods]
impl PyProducerOutbox {
    #[new]
    #[pyo3(signature = (
        producer_id,
        node_id,
        session,
        *,
        resend_after_s = OutboxOptions::default().resend_after_s,
        max_resend_after_s = OutboxOptions::default().max_resend_after_s,
        capacity = OutboxOptions::default().capacity,
    ))]
    fn new(
        producer_id: &str,
        node_id: &str,
        session: SessionArg,
        resend_after_s: f64,
        max_resend_after_s: f64,
        capacity: usize,
    ) -> PyCoreResult<Self> {
        let options = OutboxOptions {
            resend_after_s,
            max_resend_after_s,
            capacity,
        };
        let inner = ProducerOutbox::new(Arc::from(producer_id), NodeId::from(node_id), session.0, options)?;
        Ok(Self { inner })
    }

    /// A fresh producer id for a producer instance on `node_id`: `"{node_id}/{random suffix}"`.
    #[staticmethod]
    fn new_producer_id(node_id: &str) -> String {
        new_producer_id(node_id).to_string()
    }

    /// Number `event` (a pydantic `Event` model, or its JSON as `bytes`, `bytearray` or `str`), keep its envelope until acknowledged and
    /// return the envelope bytes to send now.
    #[pyo3(signature = (event, *, now))]
    fn push<'py>(&mut self, py: Python<'py>, event: &Bound<'py, PyAny>, now: f64) -> PyCoreResult<Bound<'py, PyBytes>> {
        let pushed = if let Ok(json) = event.extract::<JsonArg>() {
            self.inner.push_bytes(json.as_ref(), now)?
        } else {
            let event: Event = depythonize(event).map_err(|err| invalid("event", err.to_string()))?;
            self.inner.push(event, now)?
        };
        Ok(PyBytes::new(py, &pushed))
    }

    /// Take the master's acknowledgements: sequence numbers, or `(producer, origin_idx)` pairs (only this
    /// producer's count). With `session`, only if it is still this outbox's session. How many envelopes it removed.
    #[pyo3(signature = (acks, *, session = None))]
    fn acknowledge(&mut self, acks: &Bound<'_, PyAny>, session: Option<SessionArg>) -> PyResult<usize> {
        let seqs = acks_arg(acks, self.inner.producer())?;
        Ok(match session {
            Some(SessionArg(session)) => self.inner.acknowledge_from(&session, seqs),
            None => self.inner.acknowledge(seqs),
        })
    }

    /// The envelopes whose resend is due at `now`, lowest sequence number first (each one's interval doubles).
    fn due<'py>(&mut self, py: Python<'py>, now: f64) -> Vec<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let envelopes = py.detach(|| inner.due(now));
        bytes_list(py, &envelopes)
    }

    /// Resend at once what the master reports missing (`IngestResult.missing`: only this producer's reports
    /// count): each missing pending envelope the master has since received a later send than. With `session`,
    /// only if it is still this outbox's session.
    #[pyo3(signature = (missing, *, now, session = None))]
    fn resend_missing<'py>(
        &mut self,
        py: Python<'py>,
        missing: &Bound<'py, PyAny>,
        now: f64,
        session: Option<SessionArg>,
    ) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let gaps = gaps_arg(missing, self.inner.producer())?;
        let envelopes = match session {
            Some(SessionArg(session)) => self.inner.resend_missing_from(&session, &gaps, now),
            None => self.inner.resend_missing(&gaps, now),
        };
        Ok(bytes_list(py, &envelopes))
    }

    /// Address the master of a new `session`: the pending envelopes renumbered from 0, all to send now.
    fn retarget<'py>(&mut self, py: Python<'py>, session: SessionArg) -> Vec<Bound<'py, PyBytes>> {
        let inner = &mut self.inner;
        let envelopes = py.detach(|| inner.retarget(session.0));
        bytes_list(py, &envelopes)
    }

    /// The producer id every envelope carries as `origin`.
    #[getter]
    fn producer_id(&self) -> &str {
        self.inner.producer()
    }

    /// The node this producer runs on.
    #[getter]
    fn node_id(&self) -> &str {
        self.inner.node_id().as_str()
    }

    /// `(master_node_id, election_clock)` of the session addressed.
    #[getter]
    fn session(&self) -> (String, u64) {
        session_tuple(self.inner.session())
    }

    /// The sequence number the next pushed event gets.
    #[getter]
    fn next_seq(&self) -> u64 {
        self.inner.next_seq()
    }

    /// How many envelopes wait for an acknowledgement.
    #[getter]
    fn pending(&self) -> usize {
        self.inner.pending()
    }

    /// The running totals and the `pending` gauge.
    #[getter]
    fn counters(&self) -> BTreeMap<String, u64> {
        counters_dict(self.inner.counters().iter())
    }

    fn __repr__(&self) -> String {
        let session = self.inner.session();
        format!(
            "ProducerOutbox(producer_id={:?}, session=({:?}, {}), next_seq={}, pending={})",
            self.inner.producer().as_ref(),
            session.master_node_id.as_str(),
            session.election_clock,
            self.inner.next_seq(),
            self.inner.pending()
        )
    }
}
