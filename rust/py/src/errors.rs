//! Every core error as its Python exception, in one place: the exceptions are defined in `clusterstate.errors`
//! and imported here; [`PyCoreError`] wraps each core error type, so binding code returns [`PyCoreResult`] and
//! propagates core and Python errors alike with `?`.

use std::path::Path;

use clusterstate_core::liveness::TrackerError;
use clusterstate_core::log::LogError;
use clusterstate_core::master::MasterError;
use clusterstate_core::node::JoinRefused;
use clusterstate_core::producer::OutboxError;
use clusterstate_core::{ApplyError, DecodeError as CoreDecodeError};
use pyo3::prelude::*;

pyo3::import_exception!(clusterstate.errors, DecodeError);
pyo3::import_exception!(clusterstate.errors, EventIndexError);
pyo3::import_exception!(clusterstate.errors, OptionsError);
pyo3::import_exception!(clusterstate.errors, LogNotFoundError);
pyo3::import_exception!(clusterstate.errors, LogLockedError);
pyo3::import_exception!(clusterstate.errors, LogFullError);
pyo3::import_exception!(clusterstate.errors, LogIOError);
pyo3::import_exception!(clusterstate.errors, LogCorruptedError);
pyo3::import_exception!(clusterstate.errors, LogIndexError);
pyo3::import_exception!(clusterstate.errors, LogUsageError);
pyo3::import_exception!(clusterstate.errors, LogClosedError);
pyo3::import_exception!(clusterstate.errors, LogReadOnlyError);
pyo3::import_exception!(clusterstate.errors, NoLogError);
pyo3::import_exception!(clusterstate.errors, SnapshotRequiredError);
pyo3::import_exception!(clusterstate.errors, IndexAheadError);
pyo3::import_exception!(clusterstate.errors, OutboxFullError);
pyo3::import_exception!(clusterstate.errors, EventRefusedError);

/// An error of the core, or of Python, on its way to the caller as a Python exception.
pub enum PyCoreError {
    Decode(CoreDecodeError),
    Apply(ApplyError),
    Log(LogError),
    Master(MasterError),
    Join(JoinRefused),
    Outbox(OutboxError),
    Tracker(TrackerError),
    Py(PyErr),
}

/// The result of binding code: `?` takes core errors and `PyErr`s alike.
pub type PyCoreResult<T> = Result<T, PyCoreError>;

macro_rules! from_error {
    ($($variant:ident($error:ty)),* $(,)?) => {
        $(impl From<$error> for PyCoreError {
            fn from(err: $error) -> Self {
                Self::$variant(err)
            }
        })*
    };
}

from_error!(
    Decode(CoreDecodeError),
    Apply(ApplyError),
    Log(LogError),
    Master(MasterError),
    Join(JoinRefused),
    Outbox(OutboxError),
    Tracker(TrackerError),
    Py(PyErr),
);

impl From<PyCoreError> for PyErr {
    fn from(err: PyCoreError) -> Self {
        match err {
            PyCoreError::Decode(err) => DecodeError::new_err((err.what, err.message)),
            PyCoreError::Apply(ApplyError::EventIndex { expected, got }) => EventIndexError::new_err((expected, got)),
            PyCoreError::Log(err) => log_error(err),
            PyCoreError::Master(err) => master_error(err),
            PyCoreError::Join(err) => LogUsageError::new_err(err.to_string()),
            PyCoreError::Outbox(err) => outbox_error(err),
            PyCoreError::Tracker(err) => OptionsError::new_err(err.to_string()),
            PyCoreError::Py(err) => err,
        }
    }
}

fn log_error(err: LogError) -> PyErr {
    let path = |p: &Path| p.display().to_string();
    match err {
        LogError::NotFound { path: p } => LogNotFoundError::new_err((path(&p),)),
        LogError::Locked { path: p } => LogLockedError::new_err((path(&p),)),
        LogError::DiskFull { path: p } => LogFullError::new_err((path(&p),)),
        LogError::Io { op, path: p, source } => {
            LogIOError::new_err((source.raw_os_error().unwrap_or(0), format!("{op}: {source}"), path(&p)))
        }
        LogError::Corrupted {
            segment,
            offset,
            reason,
        } => LogCorruptedError::new_err((path(&segment), offset, reason)),
        LogError::EventIndex { expected, got } => LogIndexError::new_err((expected, got)),
        LogError::Decode(err) => PyCoreError::Decode(err).into(),
        LogError::Apply(err) => PyCoreError::Apply(err).into(),
        LogError::Invalid(message) => LogUsageError::new_err(message),
        LogError::Closed => LogClosedError::new_err("the event log is closed"),
        LogError::ReadOnly { path: p } => LogReadOnlyError::new_err((path(&p),)),
    }
}

fn master_error(err: MasterError) -> PyErr {
    match err {
        MasterError::NoLog => NoLogError::new_err(err.to_string()),
        MasterError::Log(err) => log_error(err),
        MasterError::Tracker(err) => PyCoreError::Tracker(err).into(),
        MasterError::InvalidOptions(message) => OptionsError::new_err(message),
        MasterError::IndexMismatch { .. } => LogUsageError::new_err(err.to_string()),
        MasterError::BeforeLog { idx, first_index } => SnapshotRequiredError::new_err((idx, first_index)),
        MasterError::AheadOfLog { idx, next_index } => IndexAheadError::new_err((idx, next_index)),
    }
}

fn outbox_error(err: OutboxError) -> PyErr {
    match err {
        OutboxError::InvalidOptions(_) => OptionsError::new_err(err.to_string()),
        OutboxError::Full { capacity } => OutboxFullError::new_err((capacity,)),
        OutboxError::Decode(err) => PyCoreError::Decode(err).into(),
        OutboxError::Spoofed | OutboxError::Exhausted => EventRefusedError::new_err(err.to_string()),
    }
}

/// An object that is not a valid `what`, as `DecodeError(what, message)`.
pub fn invalid(what: &'static str, message: impl Into<String>) -> PyErr {
    DecodeError::new_err((what, message.into()))
}

/// A setting a component cannot work with, as `OptionsError(message)`.
pub fn invalid_option(message: &'static str) -> PyErr {
    OptionsError::new_err(message)
}

/// The log error of a call the log cut short, with what the call did before as its `result` attribute.
pub fn failure_error<T>(py: Python<'_>, error: LogError, done: T) -> PyErr
where
    T: pyo3::PyClass + Into<pyo3::PyClassInitializer<T>>,
{
    let error = PyErr::from(PyCoreError::Log(error));
    if let Ok(result) = Bound::new(py, done) {
        // Best effort: an exception instance always takes attributes.
        let _ = error.value(py).setattr("result", result);
    }
    error
}
