//! The core's errors: a plain enum per operation, with `Display` messages like the Python exceptions'.

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

/// Any error of the core, for callers that handle them in one place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CoreError {
    /// See [`ApplyError`].
    Apply(ApplyError),
    /// See [`DecodeError`].
    Decode(DecodeError),
}

impl fmt::Display for CoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Apply(err) => err.fmt(f),
            Self::Decode(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for CoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Apply(err) => Some(err),
            Self::Decode(err) => Some(err),
        }
    }
}

impl From<ApplyError> for CoreError {
    fn from(err: ApplyError) -> Self {
        Self::Apply(err)
    }
}

impl From<DecodeError> for CoreError {
    fn from(err: DecodeError) -> Self {
        Self::Decode(err)
    }
}

/// Result of the core's fallible operations.
pub type CoreResult<T> = Result<T, CoreError>;

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
        assert_eq!(CoreError::from(err).to_string(), "invalid event: unknown variant `X`");
    }
}
