//! Core errors as the Python exceptions of `clusterstate.errors` (defined in Python, imported here).

use clusterstate_core::log::LogError;
use clusterstate_core::{ApplyError, DecodeError as CoreDecodeError};
use pyo3::prelude::*;

pyo3::import_exception!(clusterstate.errors, DecodeError);
pyo3::import_exception!(clusterstate.errors, EventIndexError);

/// A core `apply` error as `EventIndexError(expected, got)`.
pub fn apply_error(err: &ApplyError) -> PyErr {
    match err {
        ApplyError::EventIndex { expected, got } => EventIndexError::new_err((*expected, *got)),
    }
}

/// A core decode error as `DecodeError(what, message)`.
pub fn decode_error(err: &CoreDecodeError) -> PyErr {
    DecodeError::new_err((err.what, err.message.clone()))
}

/// An object that is not a valid `what`, as `DecodeError(what, message)`.
pub fn invalid(what: &'static str, message: impl Into<String>) -> PyErr {
    DecodeError::new_err((what, message.into()))
}

pyo3::import_exception!(clusterstate.errors, LogNotFoundError);
pyo3::import_exception!(clusterstate.errors, LogLockedError);
pyo3::import_exception!(clusterstate.errors, LogFullError);
pyo3::import_exception!(clusterstate.errors, LogIOError);
pyo3::import_exception!(clusterstate.errors, LogCorruptedError);
pyo3::import_exception!(clusterstate.errors, LogIndexError);
pyo3::import_exception!(clusterstate.errors, LogUsageError);
pyo3::import_exception!(clusterstate.errors, LogClosedError);
pyo3::import_exception!(clusterstate.errors, LogReadOnlyError);

/// An event-log error as the `clusterstate.errors.Log*Error` of its kind.
pub fn log_error(err: LogError) -> PyErr {
    let path = |p: &std::path::Path| p.display().to_string();
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
        LogError::Decode(err) => decode_error(&err),
        LogError::Apply(err) => apply_error(&err),
        LogError::Invalid(message) => LogUsageError::new_err(message),
        LogError::Closed => LogClosedError::new_err("the event log is closed"),
        LogError::ReadOnly { path: p } => LogReadOnlyError::new_err((path(&p),)),
    }
}

pyo3::import_exception!(clusterstate.errors, OutboxFullError);
