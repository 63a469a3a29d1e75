//! The master's errors: [`MasterError`] (opening, catch-up pages, snapshots; also the errors of a
//! [`NodeCore`](crate::node::NodeCore)'s replica log, the same log) and [`LogFailure`] (an `ingest`, `plan_cycle`
//! or a node's `receive` that the event log cut short, with what was done before the failure).

use std::fmt;

use crate::liveness::TrackerError;
use crate::log::LogError;

/// Why a [`MasterCore`](super::MasterCore) operation other than `ingest` / `plan_cycle` failed, or an operation on
/// a [`NodeCore`](crate::node::NodeCore)'s replica log other than `receive`.
#[derive(Debug)]
pub enum MasterError {
    /// The core has no event log (created without one), so there is nothing to page or snapshot.
    NoLog,
    /// The event log failed (I/O, corruption, closed, ...).
    Log(LogError),
    /// An invalid staleness-tracker setting (`period_s`, `threshold`).
    Tracker(TrackerError),
    /// Another invalid [`MasterOptions`](super::MasterOptions) setting (a `capacity` of 0).
    InvalidOptions(&'static str),
    /// On reopen, the State rebuilt from the log does not end where the log ends: continuing would leave a gap or
    /// reuse an index.
    IndexMismatch {
        /// The log's next index.
        log_next: u64,
        /// The next index of the State rebuilt from it.
        state_next: u64,
    },
    /// A catch-up page asked for an index the log no longer holds: the node must join from a snapshot.
    BeforeLog {
        /// The requested index.
        idx: u64,
        /// The log's first retained index.
        first_index: u64,
    },
    /// A catch-up page asked for an index past the log's next index (the asking node is ahead of this log, e.g. it
    /// followed another session).
    AheadOfLog {
        /// The requested index.
        idx: u64,
        /// The log's next index.
        next_index: u64,
    },
}

impl fmt::Display for MasterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoLog => f.write_str("no event log: this core was created without one"),
            Self::Log(err) => err.fmt(f),
            Self::Tracker(err) => err.fmt(f),
            Self::InvalidOptions(message) => f.write_str(message),
            Self::IndexMismatch { log_next, state_next } => write!(
                f,
                "the State rebuilt from the event log ends before index {state_next} but the log's next index is \
                 {log_next}"
            ),
            Self::BeforeLog { idx, first_index } => write!(
                f,
                "index {idx} is before the event log's first retained index {first_index}: join from a snapshot"
            ),
            Self::AheadOfLog { idx, next_index } => {
                write!(f, "index {idx} is past the event log's next index {next_index}")
            }
        }
    }
}

impl std::error::Error for MasterError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Log(err) => Some(err),
            Self::Tracker(err) => Some(err),
            _ => None,
        }
    }
}

impl From<LogError> for MasterError {
    fn from(err: LogError) -> Self {
        Self::Log(err)
    }
}

impl From<TrackerError> for MasterError {
    fn from(err: TrackerError) -> Self {
        Self::Tracker(err)
    }
}

/// An `ingest`, `plan_cycle` or (a node's) `receive` call that the event log cut short. `done` is what the call did
/// before the failure, which is consistent with the log: its `broadcast` and acknowledgements cover exactly the
/// events the log accepted (often none), and the State holds exactly those. The events the log refused were not
/// applied and are forgotten as if lost in transit (producers resend them: they were never acknowledged; a node
/// fetches them again).
#[derive(Debug)]
pub struct LogFailure<T> {
    /// Why the log refused the append (e.g. [`LogError::DiskFull`]).
    pub error: LogError,
    /// What the call did before the failure.
    pub done: T,
}

impl<T> fmt::Display for LogFailure<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "event log append failed: {}", self.error)
    }
}

impl<T: fmt::Debug> std::error::Error for LogFailure<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}
