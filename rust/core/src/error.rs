//! The reducer's and the decoder's errors, with `Display` messages like the Python exceptions'. The log, the
//! master, the producer and the tracker have their own in their modules.

use std::fmt;

/// Why [`apply`](crate::apply()) refused an event. The State it was given is unchanged (it is immutable).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApplyError {
    /// The event's `idx` is not `state.last_event_applied_idx + 1`: a duplicate or stale event
    /// (`got < expected`) or a gap (`got > expected`). Python: `clusterstate.errors.EventIndexError`.
    EventIndex {
        /// The index the State expects next.
        expected: u64,
        /// The index the event carries.
        got: u64,
    },
}

impl ApplyError {
    /// `true` for a gap (events are missing before this one), `false` for a duplicate or stale event.
    pub fn is_gap(&self) -> bool {
        match self {
            Self::EventIndex { expected, got } => got > expected,
        }
    }
}

impl fmt::Display for ApplyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EventIndex { expected, got } => {
                let kind = if self.is_gap() { "gap" } else { "duplicate or stale" };
                write!(
                    f,
                    "event index {got} does not follow the state ({kind}): expected {expected}"
                )
            }
        }
    }
}

impl std::error::Error for ApplyError {}

/// Bytes that do not decode to the expected type. Python: `clusterstate.errors.DecodeError`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// What was being decoded, e.g. `"indexed event"` or `"state"`.
    pub what: &'static str,
    /// What is wrong, with the position in the input.
    pub message: String,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.what, self.message)
    }
}

impl std::error::Error for DecodeError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_match_python() {
        let gap = ApplyError::EventIndex { expected: 3, got: 5 };
        assert_eq!(
            gap.to_string(),
            "event index 5 does not follow the state (gap): expected 3"
        );
        let stale = ApplyError::EventIndex { expected: 3, got: 1 };
        assert_eq!(
            stale.to_string(),
            "event index 1 does not follow the state (duplicate or stale): expected 3"
        );
        let err = DecodeError {
            what: "event",
            message: "unknown variant `X`".to_owned(),
        };
        assert_eq!(err.to_string(), "invalid event: unknown variant `X`");
    }
}
