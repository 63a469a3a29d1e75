//! Core errors as the Python exceptions of `clusterstate.errors` (defined in Python, imported here).

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
