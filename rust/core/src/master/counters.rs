//! [`Counters`] of the master's ingest path and the [`RejectReason`]s it counts.

use std::fmt;

/// Why [`MasterCore::ingest`](super::MasterCore::ingest) refused an envelope. A refused envelope is never applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not a [`LocalEnvelope`](crate::envelope::LocalEnvelope): bad JSON, a missing, extra or mistyped field.
    Malformed,
    /// A JSON object whose `event` is a one-key object with a tag that is not one of the core's events (a newer
    /// peer, most likely), whatever else is wrong with it.
    UnknownTag,
    /// A node-scoped event about another node than the sending one, or a producer id reused by another node.
    Spoofed,
    /// A different event at a producer sequence number that is already buffered (the buffered one is kept).
    Conflict,
    /// A producer sequence number too far ahead of the producer's next one (the buffer bound).
    BufferFull,
    /// The global index would pass `i64::MAX` (reported at the position of the envelope whose arrival released
    /// the event, which may be a later one than the event's own).
    IndexExhausted,
    /// The event's JSON is over the event log's record limit (64 MiB; reported like `IndexExhausted`).
    TooLarge,
}

impl RejectReason {
    /// Every reason, in the order of [`Counters::rejected`].
    pub const ALL: [Self; 7] = [
        Self::Malformed,
        Self::UnknownTag,
        Self::Spoofed,
        Self::Conflict,
        Self::BufferFull,
        Self::IndexExhausted,
        Self::TooLarge,
    ];

    /// The reason's counter name, `rejected_<name>` (a key of the Python `counters`).
    pub fn counter_name(self) -> &'static str {
        match self {
            Self::Malformed => "rejected_malformed",
            Self::UnknownTag => "rejected_unknown_tag",
            Self::Spoofed => "rejected_spoofed",
            Self::Conflict => "rejected_conflict",
            Self::BufferFull => "rejected_buffer_full",
            Self::IndexExhausted => "rejected_index_exhausted",
            Self::TooLarge => "rejected_too_large",
        }
    }

    /// The reason's name, e.g. `"unknown_tag"` (the Python `counters` keys are `rejected_<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownTag => "unknown_tag",
            Self::Spoofed => "spoofed",
            Self::Conflict => "conflict",
            Self::BufferFull => "buffer_full",
            Self::IndexExhausted => "index_exhausted",
            Self::TooLarge => "too_large",
        }
    }

    fn slot(self) -> usize {
        self as usize
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Running totals of a [`MasterCore`](super::MasterCore) since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Envelopes handed to `ingest`, whatever became of them.
    pub ingested: u64,
    /// Events given a global index and applied.
    pub applied: u64,
    /// Envelopes dropped as a copy of one already applied (stale) or already buffered.
    pub duplicates: u64,
    /// Envelopes of another master session, ignored.
    pub other_session: u64,
    /// Events waiting in the producers' buffers for an earlier one (a gauge, not a total).
    pub buffered: u64,
    /// Events appended to the event log (ingested ones and the master's own `NodeDisconnected`s).
    pub appended: u64,
    /// `NodeDisconnected` events the master produced from its staleness tracker's decisions (and applied).
    pub disconnects: u64,
    /// Events not applied because a reopened master found their `event_id` among the last records of its log (a
    /// resend, under the new session, of an event logged before the restart): acknowledged, not applied again.
    pub replayed_duplicates: u64,
    /// Events the event log refused (e.g. a full disk): not applied, not acknowledged, forgotten (resent later).
    pub unlogged: u64,
    /// Refused envelopes, per [`RejectReason`] (indexed as [`RejectReason::ALL`]).
    pub rejected: [u64; RejectReason::ALL.len()],
}

impl Counters {
    /// Refused envelopes of one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        self.rejected[reason.slot()]
    }

    /// Refused envelopes of every reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected.iter().sum()
    }

    /// Every counter by name, as the Python `counters` dict has them: the totals, `rejected` (every reason) and
    /// `rejected_<reason>` for each reason.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        [
            ("ingested", self.ingested),
            ("applied", self.applied),
            ("duplicates", self.duplicates),
            ("other_session", self.other_session),
            ("buffered", self.buffered),
            ("appended", self.appended),
            ("disconnects", self.disconnects),
            ("replayed_duplicates", self.replayed_duplicates),
            ("unlogged", self.unlogged),
            ("rejected", self.rejected_total()),
        ]
        .into_iter()
        .chain(RejectReason::ALL.map(|reason| (reason.counter_name(), self.rejected(reason))))
    }

    pub(super) fn reject(&mut self, reason: RejectReason) {
        self.rejected[reason.slot()] += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iter_names_every_counter_once() {
        let mut counters = Counters {
            applied: 2,
            unlogged: 3,
            ..Counters::default()
        };
        counters.reject(RejectReason::TooLarge);
        let all: Vec<(&str, u64)> = counters.iter().collect();
        let names: Vec<&str> = all.iter().map(|(name, _)| *name).collect();
        assert_eq!(
            names,
            [
                "ingested",
                "applied",
                "duplicates",
                "other_session",
                "buffered",
                "appended",
                "disconnects",
                "replayed_duplicates",
                "unlogged",
                "rejected",
                "rejected_malformed",
                "rejected_unknown_tag",
                "rejected_spoofed",
                "rejected_conflict",
                "rejected_buffer_full",
                "rejected_index_exhausted",
                "rejected_too_large",
            ]
        );
        for reason in RejectReason::ALL {
            assert_eq!(reason.counter_name(), format!("rejected_{reason}"));
        }
        let nonzero: Vec<(&str, u64)> = all.into_iter().filter(|(_, value)| *value > 0).collect();
        assert_eq!(
            nonzero,
            [
                ("applied", 2),
                ("unlogged", 3),
                ("rejected", 1),
                ("rejected_too_large", 1)
            ]
        );
    }

    #[test]
    fn reasons_have_slots_in_order() {
        for (slot, reason) in RejectReason::ALL.into_iter().enumerate() {
            assert_eq!(reason.slot(), slot);
        }
        let mut counters = Counters::default();
        counters.reject(RejectReason::Spoofed);
        counters.reject(RejectReason::Spoofed);
        counters.reject(RejectReason::Malformed);
        assert_eq!(counters.rejected(RejectReason::Spoofed), 2);
        assert_eq!(counters.rejected_total(), 3);
        assert_eq!(RejectReason::UnknownTag.to_string(), "unknown_tag");
    }
}
