//! [`MasterCore`]: the master's ingest path from [`LocalEnvelope`] bytes to indexed, applied, broadcastable events.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::counters::{Counters, RejectReason};
use super::resequence::{Offer, Resequencer};
use crate::apply::apply;
use crate::codec;
use crate::events::{Event, IndexedEvent, SessionId, TopologyEdgeCreated, TopologyEdgeDeleted};
use crate::ids::NodeId;
use crate::json::Case;
use crate::state::State;

/// A producer's id: one per event source instance (a fresh one after every restart, exo-core.md §12.3), so that
/// its sequence numbers restart at 0 without being taken for stale copies of the old instance's events.
pub type ProducerId = Arc<str>;

/// How many events one producer may have waiting behind a gap, by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A local event on its way to the master (`snake_case` keys; `camelCase` aliases accepted; no other key allowed):
///
/// ```json
/// {"origin": "producer id", "origin_idx": 0,
///  "session": {"master_node_id": "m", "election_clock": 1},
///  "event": {"NodeGatheredInfo": {...}},
///  "node_id": "the sending node"}
/// ```
///
/// - `origin`: the [`ProducerId`]; `origin_idx`: the producer's sequence number, `0, 1, 2, ...` without gaps;
/// - `session`: the master session the producer addresses (other sessions' envelopes are ignored);
/// - `event`: one externally tagged [`Event`];
/// - `node_id`: the node the producer runs on. It becomes the broadcast event's `origin`, and every node-scoped
///   event must be about it (the sampled node, the downloading node, the source of a topology edge).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEnvelope {
    pub origin: ProducerId,
    #[serde(alias = "originIdx")]
    pub origin_idx: u64,
    pub session: SessionId,
    pub event: Event,
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
}

impl LocalEnvelope {
    /// The node a node-scoped event is about (`None` for the other events).
    pub fn scoped_node(&self) -> Option<&NodeId> {
        match &self.event {
            Event::NodeGatheredInfo(event) => Some(&event.node_id),
            Event::NodeDownloadProgress(event) => Some(event.download_progress.node_id()),
            Event::TopologyEdgeCreated(TopologyEdgeCreated { conn, .. })
            | Event::TopologyEdgeDeleted(TopologyEdgeDeleted { conn, .. }) => Some(&conn.source),
            _ => None,
        }
    }

    /// Whether only the master may produce this event: a node's disconnection is the master's decision (its
    /// staleness tracker), so no node can disconnect another.
    pub fn master_only(&self) -> bool {
        matches!(self.event, Event::NodeDisconnected(_) | Event::NodeTimedOut(_))
    }
}

/// Why `bytes` is not a [`LocalEnvelope`]: an event tag that is not a known one, or anything else. Only called on
/// the failure path, so the second parse costs nothing on valid input.
fn classify(bytes: &[u8]) -> RejectReason {
    let Ok(serde_json::Value::Object(envelope)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return RejectReason::Malformed;
    };
    match envelope.get("event") {
        Some(serde_json::Value::Object(event))
            if event.len() == 1 && event.keys().all(|tag| !Event::TAGS.contains(&tag.as_str())) =>
        {
            RejectReason::UnknownTag
        }
        _ => RejectReason::Malformed,
    }
}

/// What one [`MasterCore::ingest`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The newly indexed events, in global-index order: each an [`IndexedEvent`]'s JSON (`snake_case`, `origin` =
    /// the sending node), ready to broadcast.
    pub broadcast: Vec<Vec<u8>>,
    /// `(producer, origin_idx)` of every event applied by this call, then of every stale copy in the batch (an
    /// event applied earlier: the producer missed the acknowledgement and resent it).
    pub acknowledged: Vec<(ProducerId, u64)>,
    /// `(position in the batch, reason)` of every refused envelope.
    pub rejected: Vec<(usize, RejectReason)>,
}

#[derive(Clone, Debug)]
struct Producer {
    node_id: NodeId,
    buffer: Resequencer<(Event, NodeId)>,
}

/// The master's state core: its session, its State, one [`Resequencer`] per producer and the [`Counters`].
///
/// The next global index is `state.last_event_applied_idx + 1`. Not wired yet: the event log (nothing is persisted)
/// and the staleness tracker.
#[derive(Clone, Debug)]
pub struct MasterCore {
    session: SessionId,
    state: State,
    capacity: usize,
    producers: HashMap<ProducerId, Producer>,
    counters: Counters,
}

impl MasterCore {
    /// A master of `session` with an empty State, buffering up to [`DEFAULT_CAPACITY`] events per producer.
    pub fn new(session: SessionId) -> Self {
        Self::with_capacity(session, DEFAULT_CAPACITY)
    }

    /// A master of `session` whose producers may each have up to `capacity` (at least 1) events waiting.
    pub fn with_capacity(session: SessionId, capacity: usize) -> Self {
        Self {
            session,
            state: State::default(),
            capacity: capacity.max(1),
            producers: HashMap::new(),
            counters: Counters::default(),
        }
    }

    /// The session this master serves.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The State after every event applied so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The global index the next applied event gets.
    pub fn next_index(&self) -> u64 {
        u64::try_from(i128::from(self.state.last_event_applied_idx) + 1).unwrap_or(u64::MAX)
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next sequence number the master expects from `producer` (`None` for a producer never heard from).
    pub fn producer_next(&self, producer: &str) -> Option<u64> {
        self.producers.get(producer).map(|p| p.buffer.next_index())
    }

    /// Take a batch of [`LocalEnvelope`] bytes: ignore other sessions', refuse malformed and spoofed ones,
    /// resequence per producer, index, apply and return what to broadcast and acknowledge. Never panics and never
    /// applies a refused envelope; the batch is processed in order, so the result is a function of the sequence of
    /// batches.
    pub fn ingest<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> IngestOutcome {
        let mut outcome = IngestOutcome::default();
        let mut reacknowledged = Vec::new();
        for (position, bytes) in batch.iter().enumerate() {
            self.counters.ingested += 1;
            let bytes = bytes.as_ref();
            let Ok(envelope) = serde_json::from_slice::<LocalEnvelope>(bytes) else {
                self.refuse(&mut outcome, position, classify(bytes));
                continue;
            };
            if envelope.session != self.session {
                self.counters.other_session += 1;
                continue;
            }
            if envelope.scoped_node().is_some_and(|node| *node != envelope.node_id)
                || (envelope.master_only() && envelope.node_id != self.session.master_node_id)
            {
                self.refuse(&mut outcome, position, RejectReason::Spoofed);
                continue;
            }
            let capacity = self.capacity;
            let producer = self
                .producers
                .entry(envelope.origin.clone())
                .or_insert_with(|| Producer {
                    node_id: envelope.node_id.clone(),
                    buffer: Resequencer::new(capacity),
                });
            if producer.node_id != envelope.node_id {
                self.refuse(&mut outcome, position, RejectReason::Spoofed);
                continue;
            }
            let offered = producer
                .buffer
                .offer(envelope.origin_idx, (envelope.event, envelope.node_id));
            match offered {
                Offer::Accepted => {
                    self.counters.buffered += 1;
                    self.release(&envelope.origin, position, &mut outcome);
                }
                Offer::Stale => {
                    self.counters.duplicates += 1;
                    reacknowledged.push((envelope.origin, envelope.origin_idx));
                }
                Offer::Duplicate => self.counters.duplicates += 1,
                Offer::Conflict => self.refuse(&mut outcome, position, RejectReason::Conflict),
                Offer::Full => self.refuse(&mut outcome, position, RejectReason::BufferFull),
            }
        }
        outcome.acknowledged.extend(reacknowledged);
        outcome
    }

    fn refuse(&mut self, outcome: &mut IngestOutcome, position: usize, reason: RejectReason) {
        self.counters.reject(reason);
        outcome.rejected.push((position, reason));
    }

    /// Index and apply every event of `producer` that is ready.
    fn release(&mut self, producer: &ProducerId, position: usize, outcome: &mut IngestOutcome) {
        let Some(entry) = self.producers.get_mut(producer) else {
            return;
        };
        let ready = entry.buffer.drain();
        for (origin_idx, (event, node_id)) in ready {
            self.counters.buffered = self.counters.buffered.saturating_sub(1);
            let indexed = IndexedEvent {
                idx: self.next_index(),
                origin: Some(node_id),
                event,
            };
            match apply(&self.state, &indexed) {
                Ok(next) => {
                    self.state = next;
                    self.counters.applied += 1;
                    outcome.broadcast.push(codec::encode(&indexed, Case::Snake));
                    outcome.acknowledged.push((producer.clone(), origin_idx));
                }
                // `apply` only refuses an index that does not follow the State: here, one past `i64::MAX`.
                Err(_) => self.refuse(outcome, position, RejectReason::IndexExhausted),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::{Just, Strategy};

    use super::*;

    fn session(clock: u64) -> SessionId {
        SessionId {
            master_node_id: NodeId::from("m"),
            election_clock: clock,
        }
    }

    fn envelope(producer: &str, idx: u64, node: &str, event: &str) -> Vec<u8> {
        format!(
            r#"{{"origin":"{producer}","origin_idx":{idx},"session":{{"master_node_id":"m","election_clock":1}},"event":{event},"node_id":"{node}"}}"#
        )
        .into_bytes()
    }

    fn test_event(id: &str) -> String {
        format!(r#"{{"TestEvent":{{"event_id":"{id}"}}}}"#)
    }

    fn info(node: &str) -> String {
        format!(
            r#"{{"NodeGatheredInfo":{{"event_id":"g-{node}","node_id":"{node}","info":{{"MiscData":{{"friendly_name":"x"}}}}}}}}"#
        )
    }

    #[test]
    fn resequences_indexes_and_applies() {
        let mut master = MasterCore::new(session(1));
        let out = master.ingest(&[
            envelope("p", 1, "a", &test_event("e1")),
            envelope("p", 0, "a", &test_event("e0")),
            envelope("p", 0, "a", &test_event("e0")),
        ]);
        assert_eq!(out.rejected, vec![]);
        let decoded: Vec<IndexedEvent> = out
            .broadcast
            .iter()
            .map(|b| codec::decode_indexed_event(b).unwrap())
            .collect();
        assert_eq!(decoded.iter().map(|e| e.idx).collect::<Vec<_>>(), vec![0, 1]);
        assert_eq!(decoded[0].origin, Some(NodeId::from("a")));
        let p: ProducerId = Arc::from("p");
        assert_eq!(out.acknowledged, vec![(p.clone(), 0), (p.clone(), 1), (p, 0)]);
        assert_eq!(master.state().last_event_applied_idx, 1);
        assert_eq!(master.counters().duplicates, 1);
        assert_eq!(master.counters().applied, 2);
        assert_eq!(master.counters().buffered, 0);
        assert_eq!(master.next_index(), 2);
    }

    #[test]
    fn refuses_without_applying() {
        let mut master = MasterCore::with_capacity(session(1), 2);
        let other = envelope("p", 0, "a", &test_event("e")).into_iter().collect::<Vec<_>>();
        let other = String::from_utf8(other)
            .unwrap()
            .replace("\"election_clock\":1", "\"election_clock\":2");
        let out = master.ingest(&[
            b"not json".to_vec(),
            envelope("p", 0, "a", r#"{"Nope":{}}"#),
            envelope("p", 0, "a", &info("b")),
            other.into_bytes(),
            envelope("p", 5, "a", &test_event("e5")),
            envelope("p", 1, "a", &test_event("e1")),
            envelope("p", 1, "a", &test_event("x1")),
            envelope("p", 0, "b", &info("b")),
        ]);
        assert_eq!(
            out.rejected,
            vec![
                (0, RejectReason::Malformed),
                (1, RejectReason::UnknownTag),
                (2, RejectReason::Spoofed),
                (4, RejectReason::BufferFull),
                (6, RejectReason::Conflict),
                (7, RejectReason::Spoofed), // producer p runs on a, not b
            ]
        );
        assert!(out.broadcast.is_empty());
        let counters = master.counters();
        assert_eq!(
            (counters.ingested, counters.other_session, counters.buffered),
            (8, 1, 1)
        );
        assert_eq!(counters.rejected(RejectReason::Spoofed), 2);
        assert_eq!(master.state(), &State::default());
        let out = master.ingest(&[envelope("p", 0, "a", &info("a"))]);
        assert_eq!(out.broadcast.len(), 2);
        assert_eq!(master.counters().buffered, 0);
    }

    #[test]
    fn only_the_master_disconnects_nodes() {
        let mut master = MasterCore::new(session(1));
        let disconnect = r#"{"NodeDisconnected":{"event_id":"d","node_id":"a","last_index":0,"stale_cycles":3}}"#;
        let legacy = r#"{"NodeTimedOut":{"event_id":"t","node_id":"a"}}"#;
        let out = master.ingest(&[
            envelope("pa", 0, "a", &info("a")),
            envelope("pb", 0, "b", disconnect),
            envelope("pb", 0, "b", legacy),
            envelope("pm", 0, "m", disconnect),
        ]);
        assert_eq!(
            out.rejected,
            vec![(1, RejectReason::Spoofed), (2, RejectReason::Spoofed)]
        );
        assert_eq!(out.broadcast.len(), 2);
        assert!(!master.state().topology.contains("a"));
    }

    proptest::proptest! {
        /// Any interleaving of three producers' envelopes, with copies, cut into any batches: every event is
        /// applied exactly once, each producer's in its own order, under consecutive global indices.
        #[test]
        fn any_delivery_is_exactly_once_in_producer_order(
            (wire, cuts) in (0..3u64, 0..3u64, 0..3u64)
                .prop_flat_map(|(a, b, c)| {
                    let mut wire = Vec::new();
                    for (producer, copies) in [("p0", a), ("p1", b), ("p2", c)] {
                        for idx in 0..6 {
                            for _ in 0..=copies.min(idx % 3) {
                                wire.push((producer, idx));
                            }
                        }
                    }
                    (Just(wire).prop_shuffle(), proptest::collection::vec(1..8usize, 1..40))
                })
        ) {
            let mut master = MasterCore::new(session(1));
            let mut released = Vec::new();
            let mut rest: &[(&str, u64)] = &wire;
            let mut cut = cuts.iter().cycle();
            while !rest.is_empty() {
                let take = (*cut.next().unwrap_or(&1)).min(rest.len());
                let batch: Vec<Vec<u8>> = rest[..take]
                    .iter()
                    .map(|(p, idx)| envelope(p, *idx, "n", &test_event(&format!("{p}-{idx}"))))
                    .collect();
                rest = &rest[take..];
                let out = master.ingest(&batch);
                proptest::prop_assert!(out.rejected.is_empty());
                for bytes in &out.broadcast {
                    let event = codec::decode_indexed_event(bytes).unwrap();
                    proptest::prop_assert_eq!(event.idx, u64::try_from(released.len()).unwrap());
                    let Event::TestEvent(test) = event.event else { panic!("not a TestEvent") };
                    released.push(test.event_id.as_str().to_owned());
                }
            }
            proptest::prop_assert_eq!(released.len(), 18);
            for producer in ["p0", "p1", "p2"] {
                let mine: Vec<&String> = released.iter().filter(|id| id.starts_with(producer)).collect();
                let expected: Vec<String> = (0..6).map(|idx| format!("{producer}-{idx}")).collect();
                proptest::prop_assert_eq!(mine, expected.iter().collect::<Vec<_>>());
            }
            let counters = master.counters();
            proptest::prop_assert_eq!(counters.duplicates, u64::try_from(wire.len()).unwrap() - 18);
            proptest::prop_assert_eq!(counters.buffered, 0);
        }
    }

    #[test]
    fn classify_tells_unknown_tags() {
        assert_eq!(classify(b"{"), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{"Nope":{}}}"#), RejectReason::UnknownTag);
        assert_eq!(classify(br#"{"event":{"TestEvent":{"x":1}}}"#), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{}}"#), RejectReason::Malformed);
    }
}
