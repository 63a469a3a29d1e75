//! `apply` and `apply_many`: the Rust reducer, a drop-in for `clusterstate.reference.apply`.

use clusterstate_core::{apply as core_apply, fold, IndexedEvent};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::event_arg;
use crate::errors::{invalid, PyCoreResult};
use crate::state::{state_arg, PyCoreState};

/// Batches at least this long are folded with the GIL released (below it, releasing costs more than it frees).
const DETACH_AT: usize = 256;

/// Fold one indexed event into `state` and return the new State.
#[pyfunction]
#[pyo3(signature = (state, indexed_event, /))]
pub fn apply(state: &Bound<'_, PyAny>, indexed_event: &Bound<'_, PyAny>) -> PyCoreResult<PyCoreState> {
    let event = event_arg(indexed_event)?;
    let next = match state.cast::<PyCoreState>() {
        Ok(rust) => core_apply(&rust.get().inner, &event),
        Err(_) => core_apply(&state_arg(state)?, &event),
    };
    Ok(PyCoreState { inner: next? })
}

/// Fold a batch of indexed events in one call; all or nothing (on an error no event is applied).
#[pyfunction]
#[pyo3(signature = (state, events, /))]
pub fn apply_many(py: Python<'_>, state: &Bound<'_, PyAny>, events: &Bound<'_, PyAny>) -> PyCoreResult<PyCoreState> {
    let start = state_arg(state)?;
    let events = events_arg(events)?;
    let folded = if events.len() >= DETACH_AT {
        py.detach(|| fold(&start, &events))
    } else {
        fold(&start, &events)
    };
    Ok(PyCoreState { inner: folded? })
}

fn events_arg(events: &Bound<'_, PyAny>) -> PyResult<Vec<IndexedEvent>> {
    let mut converted = Vec::with_capacity(events.len().unwrap_or(0));
    let iterate = |item: PyResult<Bound<'_, PyAny>>, position: usize| -> PyResult<IndexedEvent> {
        event_arg(&item?).map_err(|err| {
            let py = events.py();
            invalid(
                "indexed event",
                format!("event {position} of the batch: {}", PyErr::from(err).value(py)),
            )
        })
    };
    if let Ok(list) = events.cast::<PyList>() {
        for (position, item) in list.iter().enumerate() {
            converted.push(iterate(Ok(item), position)?);
        }
    } else {
        for (position, item) in events.try_iter()?.enumerate() {
            converted.push(iterate(item, position)?);
        }
    }
    Ok(converted)
}
