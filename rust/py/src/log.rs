//! `clusterstate._core.EventLog`: the crash-safe event log of `clusterstate-core`.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use clusterstate_core::log::{Durability, EventLog, LogError, LogResult, Options, Recovery};
use clusterstate_core::{codec, IndexedEvent, State};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use crate::convert::{event_arg, JsonArg};
use crate::errors::{invalid, LogClosedError, PyCoreError, PyCoreResult};
use crate::pyimports::{DECODE_EVENT, GET_LOGGER};
use crate::state::{state_arg, PyCoreState};

/// Records read per chunk by `EventLog.iter`.
const ITER_CHUNK: u64 = 1024;

/// A crash-safe, append-only log of indexed events in a directory.
#[pyclass(frozen, name = "EventLog", module = "clusterstate._core")]
pub struct PyEventLog {
    inner: Mutex<Option<EventLog>>,
    path: PathBuf,
    durability: &'static str,
    loaded_snapshot: Mutex<Option<u64>>,
    /// Set once a `MasterCore` or a `NodeCore` took the log over (see [`Self::take_over`]).
    handed_over: AtomicBool,
}

impl PyEventLog {
    /// Take the open log out of this object for a `MasterCore` or a `NodeCore`, which owns it from then on: every
    /// later call on this object raises `LogClosedError` saying so (the core would otherwise see records it did not
    /// write).
    pub fn take_over(&self) -> PyResult<EventLog> {
        let log = self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
        let log = log.ok_or_else(|| self.error(LogError::Closed))?;
        self.handed_over.store(true, Ordering::Release);
        Ok(log)
    }

    /// A log error as its Python exception; `Closed` says when the log was handed to a core.
    fn error(&self, err: LogError) -> PyErr {
        if matches!(err, LogError::Closed) && self.handed_over.load(Ordering::Acquire) {
            return LogClosedError::new_err(
                "this EventLog was handed to a MasterCore or NodeCore, which owns it now: use the core's \
                 events_since, snapshot, sync and close",
            );
        }
        PyCoreError::Log(err).into()
    }

    /// Run `f` on the open log with the GIL released.
    fn with_log<T: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut EventLog) -> LogResult<T> + Send) -> PyResult<T> {
        py.detach(|| {
            let mut guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            match guard.as_mut() {
                Some(log) => f(log),
                None => Err(LogError::Closed),
            }
        })
        .map_err(|err| self.error(err))
    }

    /// Run a cheap `f` on the open log, without releasing the GIL.
    fn peek<T>(&self, f: impl FnOnce(&EventLog) -> T) -> PyResult<T> {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        guard.as_ref().map(f).ok_or_else(|| self.error(LogError::Closed))
    }

    /// Replay the log into `state` in Rust, with the GIL released (also `State.replay(log)`).
    pub fn replay_into(&self, py: Python<'_>, state: State) -> PyResult<PyCoreState> {
        self.with_log(py, move |log| log.replay(&state))
            .map(|inner| PyCoreState { inner })
    }
}

fn warn(py: Python<'_>, message: String) -> PyResult<()> {
    let logger = GET_LOGGER.get(py)?.call1(("clusterstate.log",))?;
    logger.call_method1("warning", ("%s", message))?;
    Ok(())
}

fn recovery_dict<'py>(py: Python<'py>, recovery: &Recovery) -> PyResult<Bound<'py, PyDict>> {
    let cuts = PyList::empty(py);
    for cut in &recovery.cuts {
        let entry = PyDict::new(py);
        entry.set_item("segment", cut.segment.display().to_string())?;
        entry.set_item("offset", cut.offset)?;
        entry.set_item("bytes", cut.bytes)?;
        entry.set_item("saved_to", cut.saved_to.as_ref().map(|p| p.display().to_string()))?;
        entry.set_item("reason", &cut.reason)?;
        entry.set_item("torn", cut.torn)?;
        cuts.append(entry)?;
    }
    let removed: Vec<String> = recovery
        .removed_segments
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let dict = PyDict::new(py);
    dict.set_item("cuts", cuts)?;
    dict.set_item("removed_segments", removed)?;
    Ok(dict)
}

/// An event to append: its JSON, decoded after the GIL is released, or an event already converted.
enum Pending {
    Json(JsonArg),
    Event(Box<IndexedEvent>),
}

impl Pending {
    /// Own the argument: keep JSON (decoded later, without the GIL), convert a pydantic model now.
    fn from_py(obj: &Bound<'_, PyAny>) -> PyCoreResult<Self> {
        if let Ok(json) = obj.extract::<JsonArg>() {
            return Ok(Self::Json(json));
        }
        Ok(Self::Event(Box::new(event_arg(obj)?)))
    }
}

/// Decode the pending events (called without the GIL); a decode error names the position in the batch.
fn decode_pending(pending: Vec<Pending>, batch: bool) -> LogResult<Vec<IndexedEvent>> {
    pending
        .into_iter()
        .enumerate()
        .map(|(position, item)| match item {
            Pending::Event(event) => Ok(*event),
            Pending::Json(json) => codec::decode_indexed_event(json.as_ref()).map_err(|mut err| {
                if batch {
                    err.message = format!("event {position} of the batch: {}", err.message);
                }
                LogError::Decode(err)
            }),
        })
        .collect()
}

fn events_arg(events: &Bound<'_, PyAny>) -> PyResult<Vec<Pending>> {
    let mut converted = Vec::with_capacity(events.len().unwrap_or(0));
    for (position, item) in events.try_iter()?.enumerate() {
        let event = Pending::from_py(&item?).map_err(|err| {
            invalid(
                "indexed event",
                format!("event {position} of the batch: {}", PyErr::from(err).value(events.py())),
            )
        })?;
        converted.push(event);
    }
    Ok(converted)
}

fn index_or_minus_one(index: Option<u64>) -> i128 {
    index.map_or(-1, i128::from)
}

#[pymethods]
impl PyEventLog {
    /// Open (or create) the log in `path`, recovering from a crash if needed.
    #[new]
    #[pyo3(signature = (
        path, /, *, create = false, durability = "fsync", group_records = 1000, group_ms = 5.0,
        segment_bytes = 67_108_864, index_every = 256, verify_all = false, repair = false, keep_snapshots = 2,
        read_only = false
    ))]
    #[allow(clippy::too_many_arguments, clippy::fn_params_excessive_bools)] // Python keyword arguments
    fn new(
        py: Python<'_>,
        path: PathBuf,
        create: bool,
        durability: &str,
        group_records: u32,
        group_ms: f64,
        segment_bytes: u64,
        index_every: u32,
        verify_all: bool,
        repair: bool,
        keep_snapshots: usize,
        read_only: bool,
    ) -> PyCoreResult<Self> {
        let policy = match durability.parse()? {
            Durability::Group { .. } => Durability::group(group_records, group_ms)?,
            other => other,
        };
        let options = Options {
            durability: policy,
            create,
            segment_bytes,
            index_every,
            verify_all,
            repair,
            keep_snapshots,
            read_only,
            ..Options::default()
        };
        let open_path = path.clone();
        let log = py.detach(move || EventLog::open(&open_path, options))?;
        for cut in &log.recovery().cuts {
            let kind = if cut.torn { "torn tail" } else { "damage (repair mode)" };
            let (done, kept) = match &cut.saved_to {
                Some(saved_to) => ("cut", format!("saved to {}", saved_to.display())),
                None => ("ignored", "left in place (read-only)".to_owned()),
            };
            warn(
                py,
                format!(
                    "event log {}: {done} {} bytes of {} at offset {} ({kind}: {}); {kept}",
                    path.display(),
                    cut.bytes,
                    cut.segment.display(),
                    cut.offset,
                    cut.reason,
                ),
            )?;
        }
        for removed in &log.recovery().removed_segments {
            warn(
                py,
                format!(
                    "event log {}: segment moved aside to {}",
                    path.display(),
                    removed.display()
                ),
            )?;
        }
        Ok(Self {
            inner: Mutex::new(Some(log)),
            path,
            durability: policy.name(),
            loaded_snapshot: Mutex::new(None),
            handed_over: AtomicBool::new(false),
        })
    }

    /// The log's directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The durability policy: `"fsync"`, `"group"` or `"none"`.
    #[getter]
    fn durability(&self) -> &'static str {
        self.durability
    }

    /// Whether the log was opened with `read_only=True` (every write raises `LogReadOnlyError`).
    #[getter]
    fn read_only(&self) -> PyResult<bool> {
        self.peek(EventLog::is_read_only)
    }

    /// Whether the log was closed.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }

    /// The idx of the first record.
    #[getter]
    fn first_index(&self) -> PyResult<u64> {
        self.peek(EventLog::first_index)
    }

    /// The idx the next appended event must carry.
    #[getter]
    fn next_index(&self) -> PyResult<u64> {
        self.peek(EventLog::next_index)
    }

    /// The idx of the last record, -1 if the log is empty.
    #[getter]
    fn last_index(&self) -> PyResult<i128> {
        self.peek(|log| index_or_minus_one(log.last_index()))
    }

    /// The idx of the last record known to be on disk (fsynced), -1 if none.
    #[getter]
    fn durable_index(&self) -> PyResult<i128> {
        self.peek(|log| index_or_minus_one(log.durable_index()))
    }

    /// The number of segment files.
    #[getter]
    fn segment_count(&self) -> PyResult<usize> {
        self.peek(EventLog::segment_count)
    }

    /// What opening had to repair: `{"cuts": [...], "removed_segments": [...]}`.
    #[getter]
    fn recovery<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let recovery = self.peek(|log| log.recovery().clone())?;
        recovery_dict(py, &recovery)
    }

    /// The idx of the newest snapshot file, if any.
    #[getter]
    fn latest_snapshot_index(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        self.with_log(py, |log| log.latest_snapshot())
    }

    /// The snapshot the last `load_state()` started from, if any.
    #[getter]
    fn loaded_snapshot_index(&self) -> Option<u64> {
        *self.loaded_snapshot.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn __len__(&self) -> PyResult<usize> {
        self.peek(|log| usize::try_from(log.len()).unwrap_or(usize::MAX))
    }

    /// Append one indexed event (a pydantic `IndexedEvent` or its JSON); returns its idx.
    #[pyo3(signature = (event, /))]
    fn append(&self, py: Python<'_>, event: &Bound<'_, PyAny>) -> PyResult<u64> {
        let pending = vec![Pending::from_py(event)?];
        self.with_log(py, move |log| {
            let events = decode_pending(pending, false)?;
            log.append_all(&events)?;
            Ok(events.first().map_or(0, |e| e.idx))
        })
    }

    /// Append a batch in one call (one fsync under `"fsync"`); returns the last idx, -1 for an empty batch.
    #[pyo3(signature = (events, /))]
    fn append_many(&self, py: Python<'_>, events: &Bound<'_, PyAny>) -> PyResult<i128> {
        let pending = events_arg(events)?;
        // JSON only (the usual batch): read in place, long batches decoded on several threads.
        if pending.iter().all(|item| matches!(item, Pending::Json(_))) {
            let json: Vec<JsonArg> = pending
                .into_iter()
                .filter_map(|item| match item {
                    Pending::Json(json) => Some(json),
                    Pending::Event(_) => None,
                })
                .collect();
            let json = &json;
            // `json` outlives the detached work and is dropped with the GIL held: no release queued from a thread.
            return self.with_log(py, move |log| {
                log.append_json(json)?;
                let last = log.next_index().checked_sub(1).filter(|_| !json.is_empty());
                Ok(index_or_minus_one(last))
            });
        }
        self.with_log(py, move |log| {
            let events = decode_pending(pending, true)?;
            log.append_all(&events)?;
            Ok(index_or_minus_one(events.last().map(|e| e.idx)))
        })
    }

    /// Force every appended record to disk (and, under group commit, what M ms asked for).
    fn sync(&self, py: Python<'_>) -> PyResult<()> {
        self.with_log(py, EventLog::sync)
    }

    /// Hand the records buffered in the process to the OS (no fsync).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.with_log(py, EventLog::flush)
    }

    /// Sync and release the directory; further calls raise `LogClosedError`. Closing twice is a no-op.
    fn close(&self, py: Python<'_>) -> PyCoreResult<()> {
        let log = self.inner.lock().unwrap_or_else(PoisonError::into_inner).take();
        match log {
            Some(log) => Ok(py.detach(move || log.close())?),
            None => Ok(()),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyCoreResult<()> {
        self.close(py)
    }

    /// The events `[start, end)` as pydantic `IndexedEvent`s (`end` is clamped to the log's end).
    fn read_range(&self, py: Python<'_>, start: u64, end: u64) -> PyResult<Vec<Py<PyAny>>> {
        let decode = DECODE_EVENT.get(py)?;
        let raw = self.with_log(py, move |log| log.read_raw(start, end))?;
        raw.into_iter()
            .map(|(_, payload)| Ok(decode.call1((PyBytes::new(py, &payload),))?.unbind()))
            .collect()
    }

    /// The records `[start, end)` as their JSON bytes (`end` is clamped to the log's end).
    fn read_range_raw<'py>(&self, py: Python<'py>, start: u64, end: u64) -> PyResult<Vec<Bound<'py, PyBytes>>> {
        let raw = self.with_log(py, move |log| log.read_raw(start, end))?;
        Ok(raw.into_iter().map(|(_, payload)| PyBytes::new(py, &payload)).collect())
    }

    /// Iterate over the records from `start` on, reading a chunk at a time from the sparse index.
    #[pyo3(signature = (start = 0, *, raw = false))]
    fn iter(slf: Py<Self>, start: u64, raw: bool) -> PyLogIterator {
        PyLogIterator {
            log: slf,
            state: Mutex::new((start, VecDeque::new())),
            raw,
        }
    }

    /// Fold the records after `state.last_event_applied_idx` into `state` (default: the empty State), in Rust.
    #[pyo3(signature = (state = None))]
    fn replay(&self, py: Python<'_>, state: Option<&Bound<'_, PyAny>>) -> PyCoreResult<PyCoreState> {
        let state = match state {
            Some(state) => state_arg(state)?,
            None => State::default(),
        };
        Ok(self.replay_into(py, state)?)
    }

    /// Write `state` as a snapshot at its `last_event_applied_idx` (atomically); returns that idx.
    #[pyo3(signature = (state, /))]
    fn snapshot(&self, py: Python<'_>, state: &Bound<'_, PyAny>) -> PyCoreResult<u64> {
        let state = state_arg(state)?;
        Ok(self.with_log(py, move |log| log.snapshot(&state))?)
    }

    /// The State after the last record: the newest valid snapshot plus a replay of the tail.
    fn load_state(&self, py: Python<'_>) -> PyResult<PyCoreState> {
        let loaded = self.with_log(py, EventLog::load_state)?;
        for (path, reason) in &loaded.skipped {
            warn(
                py,
                format!(
                    "event log {}: snapshot {} skipped: {reason}",
                    self.path.display(),
                    path.display()
                ),
            )?;
        }
        *self.loaded_snapshot.lock().unwrap_or_else(PoisonError::into_inner) = loaded.snapshot;
        Ok(PyCoreState { inner: loaded.state })
    }

    fn __repr__(&self) -> String {
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        match guard.as_ref() {
            Some(log) => format!(
                "EventLog({:?}, durability={:?}, next_index={}, durable_index={})",
                self.path.display().to_string(),
                self.durability,
                log.next_index(),
                index_or_minus_one(log.durable_index())
            ),
            None => format!("EventLog({:?}, closed)", self.path.display().to_string()),
        }
    }
}

/// An iterator over an `EventLog`'s records, reading them a chunk at a time.
#[pyclass(frozen, name = "EventLogIterator", module = "clusterstate._core")]
pub struct PyLogIterator {
    log: Py<PyEventLog>,
    state: Mutex<(u64, VecDeque<Vec<u8>>)>,
    raw: bool,
}

#[pymethods]
impl PyLogIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<Py<PyAny>>> {
        let next = {
            let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            if guard.1.is_empty() {
                let start = guard.0;
                let chunk = self
                    .log
                    .get()
                    .with_log(py, move |log| log.read_raw(start, start + ITER_CHUNK))?;
                guard.0 += chunk.len() as u64;
                guard.1.extend(chunk.into_iter().map(|(_, payload)| payload));
            }
            guard.1.pop_front()
        };
        let Some(payload) = next else { return Ok(None) };
        let bytes = PyBytes::new(py, &payload);
        if self.raw {
            return Ok(Some(bytes.into_any().unbind()));
        }
        let decode = DECODE_EVENT.get(py)?;
        Ok(Some(decode.call1((bytes,))?.unbind()))
    }
}
