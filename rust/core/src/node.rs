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
//! A node built on an [`EventLog`] ([`NodeCore::open`]) keeps a **replica log** of the global stream: every run of
//! events that a `receive` call is about to apply is appended to the log first, in one write, and only what the log
//! holds is applied (the master's rule, `MasterCore`'s "log first, then apply", through the same code). After
//! [`NodeCore::close`], the node elected master opens `MasterCore::open` on that log and continues the same history
//! and index; a `MasterCore`'s closed log opens as a node's replica the same way.
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
use crate::json::Case;
use crate::log::{EventLog, LogError};
use crate::master::log_slot::{load_state, next_of, LogSlot};
use crate::master::{LogFailure, MasterError};
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

/// [`NodeCore::join`] on a node with a replica log: adopting a snapshot would leave a hole in the log (the events
/// between its end and the snapshot are not in it), so such a node fetches every event instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinRefused;

impl fmt::Display for JoinRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a NodeCore with a replica log cannot join from a snapshot (its log would have a hole): fetch the \
             missing events instead",
        )
    }
}

impl std::error::Error for JoinRefused {}

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
    /// Records appended to the replica log.
    pub appended: u64,
    /// Events about to be applied that the replica log refused (not applied; fetched again).
    pub unlogged: u64,
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
            ("appended", self.appended),
            ("unlogged", self.unlogged),
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
/// Invariant: between calls, the resequencer's next index is the State's (`last_event_applied_idx + 1`), and with
/// an open replica log, so is the log's.
#[derive(Debug)]
pub struct NodeCore {
    state: State,
    capacity: usize,
    buffer: Resequencer<IndexedEvent>,
    /// One past the highest index known to exist (buffered, dropped ahead, or the master's next index).
    known_end: u64,
    /// Whether the node was behind at the end of the last call (to count `gaps` once per gap).
    behind: bool,
    counters: Counters,
    log: LogSlot,
    loaded_snapshot: Option<u64>,
    last_log_error: Option<LogError>,
}

impl Default for NodeCore {
    fn default() -> Self {
        Self::new()
    }
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
            log: LogSlot::Detached,
            loaded_snapshot: None,
            last_log_error: None,
        }
    }

    /// A node that owns `log` as its replica log: its State is the log's (the latest valid snapshot plus a replay
    /// of the records after it), it continues at the log's next index, and it appends every event to the log before
    /// applying it. The log may be a replica log or a master's log that its master closed (a hand-over). The log
    /// is dropped (closed) if opening fails.
    pub fn open(mut log: EventLog, capacity: usize) -> Result<Self, MasterError> {
        let loaded = load_state(&mut log)?;
        let mut node = Self::from_state(loaded.state, capacity);
        node.log = LogSlot::Open(Box::new(log));
        node.loaded_snapshot = loaded.snapshot;
        Ok(node)
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

    /// The replica log, while the node has one open.
    pub fn log(&self) -> Option<&EventLog> {
        self.log.log()
    }

    /// The snapshot [`Self::open`] started from, if any.
    pub fn loaded_snapshot_index(&self) -> Option<u64> {
        self.loaded_snapshot
    }

    /// The error of the last log failure that [`Self::receive`] absorbed, if any.
    pub fn last_log_error(&self) -> Option<&LogError> {
        self.last_log_error.as_ref()
    }

    /// Up to `limit` (at most [`MAX_PAGE`](crate::master::MAX_PAGE)) events from index `idx` on, read from the
    /// replica log: a catch-up page, as `MasterCore::events_since` serves it (the same errors).
    pub fn events_since(&mut self, idx: u64, limit: usize) -> Result<Vec<Vec<u8>>, MasterError> {
        self.log.events_since(idx, limit)
    }

    /// Write the State as a snapshot into the replica log; returns its index.
    pub fn snapshot(&mut self) -> Result<u64, MasterError> {
        self.log.snapshot(&self.state)
    }

    /// Force every appended record of the replica log to disk.
    pub fn sync(&mut self) -> Result<(), MasterError> {
        self.log.sync(self.next_index())
    }

    /// Sync and close the replica log, releasing its directory (a `MasterCore` can then open it). Afterwards
    /// `receive` fails with [`LogError::Closed`]; the State and the next index can still be read. A no-op without
    /// a log.
    pub fn close(&mut self) -> Result<(), MasterError> {
        self.log.close()
    }

    /// `Some(next_index)` when an event past the applied ones is known to exist (one is buffered, one was dropped
    /// as too far ahead, or the master said its next index is further): fetch from there. `None` when caught up.
    pub fn missing(&self) -> Option<u64> {
        let next = self.next_index();
        (self.known_end > next).then_some(next)
    }

    /// [`Self::try_receive`] for a caller that handles a log failure like lost events: the part done before the
    /// failure is returned and the error kept in [`Self::last_log_error`]; the refused events are fetched again
    /// ([`Self::missing`] still points at them). Without a log it cannot fail.
    pub fn receive<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> ReceiveResult {
        match self.try_receive(batch) {
            Ok(outcome) => outcome,
            Err(failure) => {
                let LogFailure { error, done } = *failure;
                self.last_log_error = Some(error);
                done
            }
        }
    }

    /// Take a batch of broadcast events (`IndexedEvent` JSON bytes, or pages of the master's log): refuse what does
    /// not decode, drop duplicates, conflicts and events too far ahead, buffer the rest and apply every event now in
    /// sequence, in index order. Never panics and never applies a refused item; the State reached depends on which
    /// events arrived, not on their order or how they were cut into batches.
    ///
    /// With a replica log, the run of events about to be applied is appended to it in one write first, and only
    /// the events the log holds are applied. If the log refuses the write, the call returns a [`LogFailure`] whose
    /// `done` part covers what was applied (the records the log took, usually none); the refused events are
    /// dropped, to be fetched again ([`Self::missing`] points at the first), and the events buffered out of order
    /// stay buffered. When buffered durability made the log lose records of earlier calls, the State is ahead of
    /// the log for good and the node lets go of it, as `MasterCore` does; after that, or after [`Self::close`],
    /// every call fails with [`LogError::Closed`] and changes nothing.
    pub fn try_receive<B: AsRef<[u8]>>(
        &mut self,
        batch: &[B],
    ) -> Result<ReceiveResult, Box<LogFailure<ReceiveResult>>> {
        if self.log.is_closed() {
            return Err(Box::new(LogFailure {
                error: LogError::Closed,
                done: ReceiveResult::default(),
            }));
        }
        let mut outcome = ReceiveResult::default();
        let mut run = Vec::new();
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
                    run.extend(std::iter::from_fn(|| self.buffer.pop_ready()).map(|(_, event)| event));
                }
                Offer::Stale | Offer::Duplicate => self.counters.duplicates += 1,
                Offer::Conflict => self.counters.conflicts += 1,
                Offer::Full => {
                    self.counters.dropped_ahead += 1;
                    self.saw(idx.saturating_add(1));
                }
            }
        }
        let (applied, failure) = self.commit(run);
        outcome.applied = applied;
        self.check_gap();
        outcome.missing = self.missing();
        match failure {
            None => Ok(outcome),
            Some(error) => Err(Box::new(LogFailure { error, done: outcome })),
        }
    }

    /// Adopt a snapshot `state` if it is ahead of the node's (a node joining a long-running cluster, or one too far
    /// behind to fetch every event): the buffered events it covers are dropped, the ones that follow it applied.
    /// An older or equal snapshot is ignored (counted in `joins_ignored`). Returns whether it was adopted.
    ///
    /// A node built with a replica log (open or closed) refuses ([`JoinRefused`]) and changes nothing.
    pub fn join(&mut self, state: State) -> Result<bool, JoinRefused> {
        if !matches!(self.log, LogSlot::Detached) {
            return Err(JoinRefused);
        }
        let next = next_of(&state);
        if next <= self.next_index() {
            self.counters.joins_ignored += 1;
            return Ok(false);
        }
        self.buffer.advance_to(next);
        self.state = state;
        self.saw(next);
        self.counters.joins += 1;
        let run: Vec<IndexedEvent> = std::iter::from_fn(|| self.buffer.pop_ready())
            .map(|(_, event)| event)
            .collect();
        self.commit(run);
        self.check_gap();
        Ok(true)
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

    /// Log `run` (the events just released in sequence, in index order) in one write, then apply the ones the log
    /// holds; returns how many were applied and the log's error. The refused ones are dropped and the buffer
    /// rewound to them, so that they are accepted again when fetched; the buffered ones are kept.
    fn commit(&mut self, run: Vec<IndexedEvent>) -> (u64, Option<LogError>) {
        let mut logged = run.len();
        let mut failure = None;
        if let (Some(first), Some(_)) = (run.first(), self.log.log()) {
            let encoded: Vec<Vec<u8>> = run.iter().map(|event| codec::encode(event, Case::Snake)).collect();
            let appended = self.log.append(first.idx, &encoded);
            self.counters.appended += appended.written;
            logged = appended.logged;
            failure = appended.error;
        }
        let mut applied = 0;
        for event in run.iter().take(logged) {
            // The buffer releases exactly the State's next index, which decoding keeps within `0..=i64::MAX`, so
            // `apply_mut` cannot refuse it; were it to, the State would be unchanged and the event skipped rather
            // than the node stopped.
            if apply_mut(&mut self.state, event).is_ok() {
                applied += 1;
            }
        }
        self.counters.applied += applied;
        if failure.is_some() {
            self.counters.unlogged += u64::try_from(run.len() - logged).unwrap_or(u64::MAX);
            self.buffer.rewind_to(self.next_index());
            self.log.close_if_behind(self.next_index());
        }
        self.counters.buffered = u64::try_from(self.buffer.len()).unwrap_or(u64::MAX);
        (applied, failure)
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
            appended: 12,
            unlogged: 13,
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
                ("appended", 12),
                ("unlogged", 13),
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
        assert_eq!(node.join(reference(5)), Ok(true)); // covers 0..=4: 3 dropped, 5 and 6 follow
        assert_eq!(node.next_index(), 7);
        assert_eq!(node.counters().buffered, 1);
        assert_eq!(node.missing(), Some(7));
        assert_eq!(node.join(reference(6)), Ok(false)); // older
        assert_eq!(node.join(reference(7)), Ok(false)); // equal
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
            proptest::prop_assert_eq!(node.join(reference(k)), Ok(ahead));
            node.receive(&tail.iter().map(|i| line(*i)).collect::<Vec<_>>());
            catch_up(&mut node, n, 5);
            proptest::prop_assert_eq!(node.state(), &reference(n));
        }
    }
}
