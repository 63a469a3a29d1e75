//! The event log's errors ([`LogError`]): one variant per way opening, appending or reading can fail.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use crate::error::{ApplyError, DecodeError};

/// Why an event-log operation failed.
#[derive(Debug)]
pub enum LogError {
    /// The log directory does not exist (and `create` was not asked for). Python: `LogNotFoundError`.
    NotFound {
        /// The directory.
        path: PathBuf,
    },
    /// Another `EventLog` (this process or another) holds the directory's lock. Python: `LogLockedError`.
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// The disk is full (`ENOSPC`); the record being written is not in the log. Python: `LogFullError`.
    DiskFull {
        /// The file being written.
        path: PathBuf,
    },
    /// Any other I/O error. Python: `LogIOError`.
    Io {
        /// What was being done, e.g. `"write"`.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A damaged record, segment or snapshot that is not a torn tail: nothing after it is trusted.
    /// Python: `LogCorruptedError(segment, offset, reason)`.
    Corrupted {
        /// The segment file.
        segment: PathBuf,
        /// The byte offset of the damaged record (or header) in that file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// An appended event's `idx` is not the log's next index. Python: `EventIndexError`.
    EventIndex {
        /// The index the log expects next.
        expected: u64,
        /// The index the event carries.
        got: u64,
    },
    /// An event given to `append` that does not decode. Python: `DecodeError`.
    Decode(DecodeError),
    /// Replay met an event the State refused (the State does not follow the log). Python: `EventIndexError`.
    Apply(ApplyError),
    /// A request the log cannot serve, e.g. a range before the log's start. Python: `ValueError`.
    Invalid(String),
    /// The log was closed. Python: `LogClosedError`.
    Closed,
    /// A write (append, snapshot) to a log opened read-only. Python: `LogReadOnlyError`.
    ReadOnly {
        /// The directory.
        path: PathBuf,
    },
}

impl LogError {
    /// An I/O error on `path`, with `ENOSPC` turned into [`LogError::DiskFull`].
    pub fn io(op: &'static str, path: &Path, source: io::Error) -> Self {
        if source.kind() == io::ErrorKind::StorageFull {
            return Self::DiskFull { path: path.to_owned() };
        }
        Self::Io {
            op,
            path: path.to_owned(),
            source,
        }
    }

    /// A corrupted record at `offset` of `segment`.
    pub fn corrupted(segment: &Path, offset: u64, reason: impl Into<String>) -> Self {
        Self::Corrupted {
            segment: segment.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

impl fmt::Display for LogError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { path } => write!(f, "event log directory {} does not exist", path.display()),
            Self::Locked { path } => write!(
                f,
                "event log {} is locked by another writer (one EventLog per directory)",
                path.display()
            ),
            Self::DiskFull { path } => write!(f, "disk full while writing {}", path.display()),
            Self::Io { op, path, source } => write!(f, "{op} {}: {source}", path.display()),
            Self::Corrupted {
                segment,
                offset,
                reason,
            } => write!(
                f,
                "event log corrupted in {} at byte {offset}: {reason}",
                segment.display()
            ),
            Self::EventIndex { expected, got } => {
                write!(f, "appended event index {got} is not the log's next index {expected}")
            }
            Self::Decode(err) => err.fmt(f),
            Self::Apply(err) => err.fmt(f),
            Self::Invalid(message) => f.write_str(message),
            Self::Closed => f.write_str("the event log is closed"),
            Self::ReadOnly { path } => write!(
                f,
                "event log {} was opened read-only: it cannot be written",
                path.display()
            ),
        }
    }
}

impl std::error::Error for LogError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } => Some(source),
            Self::Decode(err) => Some(err),
            Self::Apply(err) => Some(err),
            _ => None,
        }
    }
}

impl From<ApplyError> for LogError {
    fn from(err: ApplyError) -> Self {
        Self::Apply(err)
    }
}

impl From<DecodeError> for LogError {
    fn from(err: DecodeError) -> Self {
        Self::Decode(err)
    }
}

/// Result of the event log's operations.
pub type LogResult<T> = Result<T, LogError>;
