//! [`NodeCore`]: the receiving side every node runs, its copy of the cluster State kept from the master's broadcast.
//!
//! The master applies each event once, gives it the next global index and broadcasts its [`IndexedEvent`] JSON.
//! The broadcast may lose, repeat and reorder events, and a node may join a long-running cluster; the node must
//! still apply every event exactly once, in index order, and know when it is behind. Item by item, `receive`:
//!
//! - decodes the bytes; anything that is not an [`IndexedEvent`] is refused with a [`RejectReason`] and never
//!   reaches the State;
//! - offers the event to a [`Resequencer`] keyed by the global index (the master's buffer, made total): an index
//!   already applied, or equal to a buffered event, is a duplicate; a *different* event at a buffered index is a
//!   conflict (the first one is kept); an index `capacity` or more ahead is dropped (the node fetches it again
//!   through the gap, the way it fetches anything it missed); anything else is buffered and every event now in
//!   sequence is applied.
//!
//! [`NodeCore::missing`] is the index to fetch from when something is known to exist past what is applied: a
//! buffered event, a dropped one, or the master's next index from a heartbeat ([`NodeCore::note_master_index`]).
//! A node joins from a snapshot State ([`NodeCore::from_state`], [`NodeCore::join`]) and fetches the rest in pages
//! of the master's log (`MasterCore::events_since`, `EventLog::read_range`), without replaying history
//! (`docs/node.md`).
//!
//! ```
//! use clusterstate_core::node::NodeCore;
//!
//! let event = |idx: u64| format!(r#"{{"idx":{idx},"origin":"n","event":{{"TestEvent":{{"event_id":"e{idx}"}}}}}}"#);
//! let mut node = NodeCore::new();
//! let out = node.receive(&[event(2), event(0), event(0)]); // out of order, a copy
//! assert_eq!(out.applied, 1);
//! assert_eq!(out.missing, Some(1)); // 2 waits for 1
//! assert_eq!(node.counters().duplicates, 1);
//! assert_eq!(node.receive(&[event(1)]).applied, 2);
//! assert_eq!((node.next_index(), node.missing()), (3, None));
//! ```

use std::fmt;

use crate::apply::apply_mut;
use crate::codec;
use crate::events::IndexedEvent;
use crate::resequence::{Offer, Resequencer, DEFAULT_CAPACITY};
use crate::state::State;

/// Why [`NodeCore::receive`] refused an item. A refused item never reaches the State.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// Not an [`IndexedEvent`]: bad JSON or UTF-8, a missing, extra or mistyped field, an index past `i64::MAX`.
    Malformed,
    /// A JSON object whose `event` is a one-key object with a tag this node does not know (a newer master, most
    /// likely), whatever else is wrong with it.
    UnknownTag,
}

impl RejectReason {
    /// Every reason.
    pub const ALL: [Self; 2] = [Self::Malformed, Self::UnknownTag];

    /// The reason's name, e.g. `"unknown_tag"` (the Python `counters` keys are `rejected_<name>`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::UnknownTag => "unknown_tag",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why `bytes` is not an [`IndexedEvent`]: an unknown event tag, or anything else. Only called on the failure path.
fn classify(bytes: &[u8]) -> RejectReason {
    if codec::has_unknown_event_tag(bytes) {
        RejectReason::UnknownTag
    } else {
        RejectReason::Malformed
    }
}

/// Running totals of a [`NodeCore`] since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Items handed to `receive`, whatever became of them.
    pub received: u64,
    /// Events applied one by one (the events a joined snapshot covers are not counted).
    pub applied: u64,
    /// Events dropped as a copy of one already applied (or covered by a snapshot) or already buffered.
    pub duplicates: u64,
    /// Events dropped because a *different* event was buffered at their index (the buffered one is kept).
    pub conflicts: u64,
    /// Events dropped because they were `capacity` or more ahead of the next index (fetched again later).
    pub dropped_ahead: u64,
    /// Items refused as [`RejectReason::Malformed`].
    pub rejected_malformed: u64,
    /// Items refused as [`RejectReason::UnknownTag`].
    pub rejected_unknown_tag: u64,
    /// Times the node went from caught up to behind (checked at the end of each call).
    pub gaps: u64,
    /// Snapshot States adopted by [`NodeCore::join`].
    pub joins: u64,
    /// Snapshot States ignored by [`NodeCore::join`] because they were not ahead of the node's State.
    pub joins_ignored: u64,
    /// Events waiting for an earlier one (a gauge, not a total).
    pub buffered: u64,
}

impl Counters {
    /// Refused items of one reason.
    pub fn rejected(&self, reason: RejectReason) -> u64 {
        match reason {
            RejectReason::Malformed => self.rejected_malformed,
            RejectReason::UnknownTag => self.rejected_unknown_tag,
        }
    }

    /// Refused items of every reason.
    pub fn rejected_total(&self) -> u64 {
        self.rejected_malformed + self.rejected_unknown_tag
    }

    /// Every counter by name, as the Python `counters` dict has them (with `rejected`, every reason).
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("received", self.received),
            ("applied", self.applied),
            ("duplicates", self.duplicates),
            ("conflicts", self.conflicts),
            ("dropped_ahead", self.dropped_ahead),
            ("rejected", self.rejected_total()),
            ("rejected_malformed", self.rejected_malformed),
            ("rejected_unknown_tag", self.rejected_unknown_tag),
            ("gaps", self.gaps),
            ("joins", self.joins),
            ("joins_ignored", self.joins_ignored),
            ("buffered", self.buffered),
        ]
        .into_iter()
    }

    fn reject(&mut self, reason: RejectReason) {
        match reason {
            RejectReason::Malformed => self.rejected_malformed += 1,
            RejectReason::UnknownTag => self.rejected_unknown_tag += 1,
        }
    }
}

/// What one [`NodeCore::receive`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveResult {
    /// How many events this call applied.
    pub applied: u64,
    /// [`NodeCore::missing`] after the call: the index to fetch from, or `None` when caught up.
    pub missing: Option<u64>,
    /// `(position in the batch, reason)` of every refused item.
    pub rejected: Vec<(usize, RejectReason)>,
}

/// A node's copy of the cluster State, kept from the master's broadcast (see the module documentation).
///
/// Invariant: the resequencer's next index is always the State's (`last_event_applied_idx + 1`).
#[derive(Clone, Debug)]
pub struct NodeCore {
    state: State,
    capacity: usize,
    buffer: Resequencer<IndexedEvent>,
    /// One past the highest index known to exist (buffered, dropped ahead, or the master's next index).
    known_end: u64,
    /// Whether the node was behind at the end of the last call (to count `gaps` once per gap).
    behind: bool,
    counters: Counters,
}

impl Default for NodeCore {
    fn default() -> Self {
        Self::new()
    }
}

/// The index that follows `state`'s last applied one (`last_event_applied_idx` is in `-1..=i64::MAX`).
fn next_of(state: &State) -> u64 {
    u64::try_from(i128::from(state.last_event_applied_idx) + 1).unwrap_or(0)
}

impl NodeCore {
    /// A node with an empty State, buffering up to [`DEFAULT_CAPACITY`] events ahead of a gap.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }

    /// A node with an empty State that buffers up to `capacity` (at least 1) events ahead of a gap.
    pub fn with_capacity(capacity: usize) -> Self {
        Self::from_state(State::default(), capacity)
    }

    /// A node joining from a snapshot `state`: it continues at `state.last_event_applied_idx + 1`.
    pub fn from_state(state: State, capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let next = next_of(&state);
        Self {
            state,
            capacity,
            buffer: Resequencer::starting_at(next, capacity),
            known_end: next,
            behind: false,
            counters: Counters::default(),
        }
    }

    /// The State after every event applied so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// How many events may wait ahead of a gap.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// The index of the next event to apply.
    pub fn next_index(&self) -> u64 {
        next_of(&self.state)
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// `Some(next_index)` when an event past the applied ones is known to exist (one is buffered, one was dropped
    /// as too far ahead, or the master said its next index is further): fetch from there. `None` when caught up.
    pub fn missing(&self) -> Option<u64> {
        let next = self.next_index();
        (self.known_end > next).then_some(next)
    }

    /// Take a batch of broadcast events (`IndexedEvent` JSON bytes, or pages of the master's log): refuse what does
    /// not decode, drop duplicates, conflicts and events too far ahead, buffer the rest and apply every event now in
    /// sequence, in index order. Never panics and never applies a refused item; the State reached depends on which
    /// events arrived, not on their order or how they were cut into batches.
    pub fn receive<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> ReceiveResult {
        let mut outcome = ReceiveResult::default();
        for (position, bytes) in batch.iter().enumerate() {
            self.counters.received += 1;
            let bytes = bytes.as_ref();
            let Ok(event) = codec::decode_indexed_event(bytes) else {
                let reason = classify(bytes);
                self.counters.reject(reason);
                outcome.rejected.push((position, reason));
                continue;
            };
            let idx = event.idx;
            match self.buffer.offer(idx, event) {
                Offer::Accepted => {
                    self.saw(idx.saturating_add(1));
                    outcome.applied += self.release();
                }
                Offer::Stale | Offer::Duplicate => self.counters.duplicates += 1,
                Offer::Conflict => self.counters.conflicts += 1,
                Offer::Full => {
                    self.counters.dropped_ahead += 1;
                    self.saw(idx.saturating_add(1));
                }
            }
        }
        self.check_gap();
        outcome.missing = self.missing();
        outcome
    }

    /// Adopt a snapshot `state` if it is ahead of the node's (a node joining a long-running cluster, or one too far
    /// behind to fetch every event): the buffered events it covers are dropped, the ones that follow it applied.
    /// An older or equal snapshot is ignored (counted in `joins_ignored`). Returns whether it was adopted.
    pub fn join(&mut self, state: State) -> bool {
        let next = next_of(&state);
        if next <= self.next_index() {
            self.counters.joins_ignored += 1;
            return false;
        }
        self.buffer.advance_to(next);
        self.state = state;
        self.saw(next);
        self.counters.joins += 1;
        self.release();
        self.check_gap();
        true
    }

    /// Note that the master's next index is `next` (e.g. from a heartbeat): if it is past the node's, the node is
    /// behind and [`NodeCore::missing`] says where to fetch from.
    pub fn note_master_index(&mut self, next: u64) {
        self.saw(next);
        self.check_gap();
    }

    /// Record that the events below `end` exist.
    fn saw(&mut self, end: u64) {
        self.known_end = self.known_end.max(end);
    }

    /// Count a gap when the node has just fallen behind.
    fn check_gap(&mut self) {
        let behind = self.missing().is_some();
        if behind && !self.behind {
            self.counters.gaps += 1;
        }
        self.behind = behind;
    }

    /// Apply every buffered event that is now in sequence; returns how many.
    fn release(&mut self) -> u64 {
        let mut applied = 0;
        while let Some((_, event)) = self.buffer.pop_ready() {
            // The buffer releases exactly the State's next index, which decoding keeps within `0..=i64::MAX`, so
            // `apply_mut` cannot refuse it; were it to, the State would be unchanged and the event skipped rather
            // than the node stopped.
            if apply_mut(&mut self.state, &event).is_ok() {
                applied += 1;
            }
        }
        self.counters.applied += applied;
        self.counters.buffered = u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        applied
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy};

    use super::*;
    use crate::apply::fold;

    /// Event `idx` of a small stream that changes the State in several ways (identities, memory, liveness).
    fn line(idx: u64) -> Vec<u8> {
        let node = format!("n{}", idx % 3);
        let event = match idx % 3 {
            0 => format!(
                r#"{{"NodeGatheredInfo":{{"event_id":"g{idx}","node_id":"{node}","info":{{"MiscData":{{"friendly_name":"name{idx}"}}}}}}}}"#
            ),
            1 => format!(
                r#"{{"NodeGatheredInfo":{{"event_id":"m{idx}","node_id":"{node}","info":{{"ram_total":{{"in_bytes":{total}}},"ram_available":{{"in_bytes":{idx}}},"swap_total":{{"in_bytes":0}},"swap_available":{{"in_bytes":0}}}}}}}}"#,
                total = 1000 + idx
            ),
            _ => format!(r#"{{"TestEvent":{{"event_id":"t{idx}"}}}}"#),
        };
        format!(r#"{{"idx":{idx},"origin":"{node}","event":{event}}}"#).into_bytes()
    }

    fn lines(range: std::ops::Range<u64>) -> Vec<Vec<u8>> {
        range.map(line).collect()
    }

    fn reference(n: u64) -> State {
        let events: Vec<IndexedEvent> = lines(0..n)
            .iter()
            .map(|bytes| codec::decode_indexed_event(bytes).unwrap())
            .collect();
        fold(&State::default(), &events).unwrap()
    }

    /// Fetch pages of `page` events from the "log" (`0..n`) while the node says something is missing.
    fn catch_up(node: &mut NodeCore, n: u64, page: u64) {
        for _ in 0..=n {
            let Some(from) = node.missing() else { return };
            node.receive(&lines(from..(from + page).min(n)));
        }
    }

    #[test]
    fn counters_iter_names_every_counter_once() {
        let counters = Counters {
            received: 1,
            applied: 2,
            duplicates: 3,
            conflicts: 4,
            dropped_ahead: 5,
            rejected_malformed: 6,
            rejected_unknown_tag: 7,
            gaps: 8,
            joins: 9,
            joins_ignored: 10,
            buffered: 11,
        };
        assert_eq!(
            counters.iter().collect::<Vec<_>>(),
            [
                ("received", 1),
                ("applied", 2),
                ("duplicates", 3),
                ("conflicts", 4),
                ("dropped_ahead", 5),
                ("rejected", 13),
                ("rejected_malformed", 6),
                ("rejected_unknown_tag", 7),
                ("gaps", 8),
                ("joins", 9),
                ("joins_ignored", 10),
                ("buffered", 11),
            ]
        );
    }

    #[test]
    fn the_stream_changes_the_state() {
        // The reference must not be trivial, or equality with it would prove little.
        let state = reference(9);
        assert_eq!(state.last_event_applied_idx, 8);
        assert_eq!(state.node_identities["n0"].friendly_name, "name6");
        assert_eq!(state.node_memory.len(), 1);
        assert_eq!(state.last_event_index_by_node["n2"], 8);
    }

    #[test]
    fn in_order_out_of_order_and_copies() {
        let mut node = NodeCore::new();
        let out = node.receive(&lines(0..2));
        assert_eq!((out.applied, out.missing, out.rejected.len()), (2, None, 0));
        let out = node.receive(&[line(4), line(3), line(1), line(3)]);
        assert_eq!((out.applied, out.missing), (0, Some(2)));
        let counters = node.counters();
        assert_eq!((counters.duplicates, counters.buffered, counters.gaps), (2, 2, 1));
        let out = node.receive(&[line(2)]);
        assert_eq!((out.applied, out.missing), (3, None));
        assert_eq!(node.state(), &reference(5));
        assert_eq!(node.next_index(), 5);
        let counters = node.counters();
        assert_eq!((counters.received, counters.applied, counters.buffered), (7, 5, 0));
    }

    #[test]
    fn conflicts_keep_the_first_event() {
        let mut node = NodeCore::new();
        let other = br#"{"idx":1,"origin":"x","event":{"TestEvent":{"event_id":"other"}}}"#.to_vec();
        node.receive(&[line(1), other.clone(), line(1)]);
        assert_eq!(node.counters().conflicts, 1);
        assert_eq!(node.counters().duplicates, 1);
        node.receive(&[line(0), other]); // 1 is applied now: a stale copy, whatever it holds
        assert_eq!(node.counters().duplicates, 2);
        assert_eq!(node.state(), &reference(2));
    }

    #[test]
    fn too_far_ahead_is_dropped_and_reported_missing() {
        let mut node = NodeCore::with_capacity(2);
        let out = node.receive(&[line(2), line(1)]);
        assert_eq!(out.missing, Some(0));
        let counters = node.counters();
        assert_eq!((counters.dropped_ahead, counters.buffered), (1, 1));
        let out = node.receive(&[line(0)]);
        assert_eq!(out.applied, 2);
        assert_eq!(out.missing, Some(2)); // 2 was dropped: still known to exist
        assert_eq!(node.counters().gaps, 1); // the same gap, never closed
        node.receive(&[line(2)]);
        assert_eq!(node.missing(), None);
        assert_eq!(node.state(), &reference(3));
        assert_eq!(NodeCore::with_capacity(0).capacity(), 1);
    }

    #[test]
    fn malformed_items_are_refused_without_touching_the_state() {
        let mut node = NodeCore::new();
        node.receive(&lines(0..1));
        let before = node.state().clone();
        let bad: Vec<&[u8]> = vec![
            b"",
            b"\xff\xfe",
            b"[1]",
            b"{}",
            br#"{"idx":1,"event":{"Nope":{}}}"#,
            br#"{"idx":1,"event":{"TestEvent":{"event_id":"e","x":1}}}"#,
            br#"{"idx":-1,"event":{"TestEvent":{"event_id":"e"}}}"#,
            br#"{"idx":9223372036854775808,"event":{"TestEvent":{"event_id":"e"}}}"#,
            br#"{"idx":1,"event":{"TestEvent":{"event_id":"e"}},"extra":1}"#,
            br#"{"idx":1,"event":{"TestEvent":{"event_id":"e"}}"#,
        ];
        let out = node.receive(&bad);
        let reasons: Vec<(usize, RejectReason)> = out.rejected;
        assert_eq!(reasons.len(), bad.len());
        assert_eq!(reasons[4], (4, RejectReason::UnknownTag));
        assert!(reasons
            .iter()
            .enumerate()
            .all(|(i, r)| r.0 == i && (i == 4 || r.1 == RejectReason::Malformed)));
        assert_eq!(node.state(), &before);
        assert_eq!(node.missing(), None);
        let counters = node.counters();
        assert_eq!((counters.rejected_malformed, counters.rejected_unknown_tag), (9, 1));
        assert_eq!(counters.rejected_total(), 10);
        assert_eq!(counters.rejected(RejectReason::UnknownTag), 1);
        assert_eq!(RejectReason::UnknownTag.to_string(), "unknown_tag");
    }

    #[test]
    fn the_master_index_hint_reports_a_gap() {
        let mut node = NodeCore::new();
        node.note_master_index(0);
        assert_eq!(node.missing(), None);
        node.note_master_index(3);
        assert_eq!(node.missing(), Some(0));
        node.note_master_index(1); // an older hint changes nothing
        assert_eq!(node.missing(), Some(0));
        node.receive(&lines(0..2));
        assert_eq!(node.missing(), Some(2));
        node.receive(&lines(2..3));
        assert_eq!(node.missing(), None);
        node.note_master_index(4);
        assert_eq!(node.counters().gaps, 2);
    }

    #[test]
    fn join_adopts_a_newer_snapshot_and_ignores_an_older_one() {
        let mut node = NodeCore::new();
        node.receive(&[line(0), line(3), line(5), line(6), line(8)]);
        assert_eq!(node.counters().buffered, 4);
        assert!(node.join(reference(5))); // covers 0..=4: 3 dropped, 5 and 6 follow
        assert_eq!(node.next_index(), 7);
        assert_eq!(node.counters().buffered, 1);
        assert_eq!(node.missing(), Some(7));
        assert!(!node.join(reference(6))); // older
        assert!(!node.join(reference(7))); // equal
        node.receive(&[line(7)]);
        assert_eq!(node.missing(), None);
        assert_eq!(node.state(), &reference(9));
        let counters = node.counters();
        assert_eq!((counters.joins, counters.joins_ignored, counters.applied), (1, 2, 5));
    }

    #[test]
    fn from_state_continues_after_the_snapshot() {
        let mut node = NodeCore::from_state(reference(4), 8);
        assert_eq!((node.next_index(), node.missing()), (4, None));
        let out = node.receive(&lines(0..6));
        assert_eq!(out.applied, 2);
        assert_eq!(node.counters().duplicates, 4);
        assert_eq!(node.state(), &reference(6));
    }

    proptest::proptest! {
        /// Every event 0..n at least once, some twice, shuffled and cut into any batches, with any capacity; then
        /// pages fetched from the log while `missing` says so: the State is the in-order fold, each event applied
        /// once.
        #[test]
        fn any_delivery_ends_equal_to_the_fold(
            (n, wire, cuts, capacity, page) in (1..40u64)
                .prop_flat_map(|n| {
                    let wire = (0..n).chain((0..n).filter(|i| i % 3 == 1)).collect::<Vec<_>>();
                    (
                        Just(n),
                        Just(wire).prop_shuffle(),
                        proptest::collection::vec(1..10usize, 1..20),
                        1..48usize,
                        1..12u64,
                    )
                })
        ) {
            let mut node = NodeCore::with_capacity(capacity);
            let mut cut = cuts.iter().cycle();
            let mut rest: &[u64] = &wire;
            while !rest.is_empty() {
                let take = (*cut.next().unwrap_or(&1)).min(rest.len());
                node.receive(&rest[..take].iter().map(|i| line(*i)).collect::<Vec<_>>());
                rest = &rest[take..];
            }
            catch_up(&mut node, n, page);
            proptest::prop_assert_eq!(node.missing(), None);
            proptest::prop_assert_eq!(node.state(), &reference(n));
            proptest::prop_assert_eq!(node.counters().applied, n);
            proptest::prop_assert_eq!(node.counters().buffered, 0);
        }

        /// A snapshot at any point plus the tail (shuffled), or a node that joins a snapshot midway through its own
        /// delivery: both end equal to the full replay.
        #[test]
        fn snapshot_and_tail_equal_full_replay(
            (n, k, tail, before) in (1..30u64)
                .prop_flat_map(|n| (Just(n), 0..=n))
                .prop_flat_map(|(n, k)| {
                    (Just(n), Just(k), Just((k..n).collect::<Vec<_>>()).prop_shuffle(),
                     proptest::collection::vec(0..n, 0..20))
                })
        ) {
            let mut joined = NodeCore::from_state(reference(k), 4096);
            joined.receive(&tail.iter().map(|i| line(*i)).collect::<Vec<_>>());
            proptest::prop_assert_eq!(joined.state(), &reference(n));

            let mut node = NodeCore::with_capacity(8);
            node.receive(&before.iter().map(|i| line(*i)).collect::<Vec<_>>());
            let ahead = i64::try_from(k).unwrap() - 1 > node.state().last_event_applied_idx;
            proptest::prop_assert_eq!(node.join(reference(k)), ahead);
            node.receive(&tail.iter().map(|i| line(*i)).collect::<Vec<_>>());
            catch_up(&mut node, n, 5);
            proptest::prop_assert_eq!(node.state(), &reference(n));
        }
    }
}
