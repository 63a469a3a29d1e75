//! [`LogSlot`]: the event log a core owns — a [`MasterCore`](super::MasterCore)'s log or a
//! [`NodeCore`](crate::node::NodeCore)'s replica log, the same files — and what both cores do with it: build
//! their State from it, write a batch before applying it, serve catch-up pages, snapshot, sync and close it.

use std::fmt;

use super::error::MasterError;
use super::ingest::MAX_PAGE;
use crate::log::{EventLog, LoadedState, LogError};
use crate::state::State;

/// The event log a core owns, if it has one.
pub(crate) enum LogSlot {
    /// Built without a log: nothing is persisted.
    Detached,
    /// The open log: every event is appended to it before it is applied.
    Open(Box<EventLog>),
    /// The log was closed: the core refuses to apply anything it could not persist.
    Closed,
}

impl fmt::Debug for LogSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detached => f.write_str("Detached"),
            Self::Open(log) => write!(f, "Open({:?}, next_index={})", log.dir(), log.next_index()),
            Self::Closed => f.write_str("Closed"),
        }
    }
}

/// What one [`LogSlot::append`] did.
pub(crate) struct Appended {
    /// How many of the batch's records the log holds after the call (the whole batch without a log): the core
    /// applies exactly these.
    pub logged: usize,
    /// How many records were written to the log (0 without a log).
    pub written: u64,
    /// Why the log refused the rest of the batch.
    pub error: Option<LogError>,
}

/// The State a core owning `log` starts from: the log's newest valid snapshot plus a replay of the records after
/// it. Refused when that State does not end where the log ends (continuing would leave a gap or reuse an index).
pub(crate) fn load_state(log: &mut EventLog) -> Result<LoadedState, MasterError> {
    let loaded = log.load_state()?;
    let state_next = next_of(&loaded.state);
    if state_next != log.next_index() {
        return Err(MasterError::IndexMismatch {
            log_next: log.next_index(),
            state_next,
        });
    }
    Ok(loaded)
}

impl LogSlot {
    /// The log, while it is open.
    pub(crate) fn log(&self) -> Option<&EventLog> {
        match self {
            Self::Open(log) => Some(log),
            Self::Detached | Self::Closed => None,
        }
    }

    /// Whether the log was closed (the core must refuse to apply anything).
    pub(crate) fn is_closed(&self) -> bool {
        matches!(self, Self::Closed)
    }

    fn open_mut(&mut self) -> Result<&mut EventLog, MasterError> {
        match self {
            Self::Open(log) => Ok(log),
            Self::Detached => Err(MasterError::NoLog),
            Self::Closed => Err(MasterError::Log(LogError::Closed)),
        }
    }

    /// Append the `encoded` records (the `snake_case` `IndexedEvent` JSON of the events from index `first` on) in
    /// one write, as a core does before it applies them. On failure the log ends where it managed to write: where
    /// it was, after part of this batch, or (buffered durability: records of earlier calls not yet written are
    /// dropped too) before it was; `logged` counts the records of this batch it holds.
    pub(crate) fn append(&mut self, first: u64, encoded: &[Vec<u8>]) -> Appended {
        let Self::Open(log) = self else {
            return Appended {
                logged: encoded.len(),
                written: 0,
                error: None,
            };
        };
        let before = log.next_index();
        // `append_encoded` trusts the indices; they come from the core's State, which opening checked against the
        // log.
        let appended = if first == before {
            log.append_encoded(encoded)
        } else {
            Err(LogError::EventIndex {
                expected: before,
                got: first,
            })
        };
        let written = log.next_index().saturating_sub(before);
        Appended {
            logged: usize::try_from(written).map_or(0, |written| written.min(encoded.len())),
            written,
            error: appended.err(),
        }
    }

    /// After a failed write: when buffered durability made the log drop records that earlier calls had already
    /// applied, the core's State (whose next index is `next`) is ahead of the log for good. The core then lets go
    /// of the log and refuses further work ([`LogError::Closed`]) until it is reopened from what the log holds.
    pub(crate) fn close_if_behind(&mut self, next: u64) {
        if self.log().is_some_and(|log| log.next_index() < next) {
            *self = Self::Closed;
        }
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) events from index `idx` on, as the `IndexedEvent` JSON of the log's
    /// records: a catch-up page. An empty page when `idx` is the log's next index.
    pub(crate) fn events_since(&mut self, idx: u64, limit: usize) -> Result<Vec<Vec<u8>>, MasterError> {
        let log = self.open_mut()?;
        let next_index = log.next_index();
        if idx > next_index {
            return Err(MasterError::AheadOfLog { idx, next_index });
        }
        let first_index = log.first_index();
        if idx < first_index {
            return Err(MasterError::BeforeLog { idx, first_index });
        }
        let limit = u64::try_from(limit.min(MAX_PAGE)).unwrap_or(0);
        let page = log.read_raw(idx, idx.saturating_add(limit))?;
        Ok(page.into_iter().map(|(_, payload)| payload).collect())
    }

    /// Write `state` (the core's) as a snapshot into the log; returns its index.
    pub(crate) fn snapshot(&mut self, state: &State) -> Result<u64, MasterError> {
        let written = self.open_mut()?.snapshot(state);
        if written.is_err() {
            self.close_if_behind(next_of(state));
        }
        Ok(written?)
    }

    /// Force every appended record to disk; `next` is the core's next index.
    pub(crate) fn sync(&mut self, next: u64) -> Result<(), MasterError> {
        let synced = self.open_mut()?.sync();
        if synced.is_err() {
            self.close_if_behind(next);
        }
        Ok(synced?)
    }

    /// Sync and close the log, releasing its directory. A no-op without a log or when closed already.
    pub(crate) fn close(&mut self) -> Result<(), MasterError> {
        match std::mem::replace(self, Self::Closed) {
            Self::Open(log) => Ok(log.close()?),
            Self::Detached => {
                *self = Self::Detached;
                Ok(())
            }
            Self::Closed => Ok(()),
        }
    }
}

/// The index after `state`'s last one (`last_event_applied_idx` is in `-1..=i64::MAX`).
pub(crate) fn next_of(state: &State) -> u64 {
    u64::try_from(i128::from(state.last_event_applied_idx) + 1).unwrap_or(u64::MAX)
}
