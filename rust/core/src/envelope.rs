//! What travels between a producer and the master: the [`LocalEnvelope`] a producer sends (its [`ProducerId`]
//! and sequence number around one event) and the [`Gap`] the master reports back with its acknowledgements.
//! The master ([`MasterCore`](crate::master::MasterCore)) and the producer ([`ProducerOutbox`](crate::ProducerOutbox))
//! both speak it; the wire format is documented in `docs/master.md`.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::codec;
use crate::error::DecodeError;
use crate::events::{Event, SessionId};
use crate::ids::NodeId;

/// A producer's id: one per event source instance (a fresh one after every restart), so that
/// its sequence numbers restart at 0 without being taken for stale copies of the old instance's events.
pub type ProducerId = Arc<str>;

/// A fresh producer id for a producer instance running on `node_id`: `"{node_id}/{random suffix}"`.
///
/// Take a new one at every start: the master binds sequence numbers to the id, so a restarted producer that reused
/// its old id would have its events from 0 dropped as stale copies of the old instance's.
pub fn new_producer_id(node_id: &str) -> ProducerId {
    Arc::from(format!("{node_id}/{}", uuid::Uuid::new_v4().simple()))
}

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
    /// Decode one envelope: the only place bytes become a [`LocalEnvelope`] (one small function, so a faster
    /// decoder can replace it without touching the rest of the path).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode::<Self>("envelope", bytes)
    }

    /// The node a node-scoped event is about ([`Event::scoped_node`]; `None` for the other events).
    pub fn scoped_node(&self) -> Option<&NodeId> {
        self.event.scoped_node()
    }

    /// Whether only the master may produce this event: a node's disconnection is the master's decision (its
    /// staleness tracker), so no node can disconnect another.
    pub fn master_only(&self) -> bool {
        matches!(self.event, Event::NodeDisconnected(_) | Event::NodeTimedOut(_))
    }
}

/// A producer's first missing sequence number, as [`IngestResult::missing`](crate::master::IngestResult::missing)
/// reports it: the master holds `held` (its highest buffered number), so every copy of `missing` sent before `held`
/// was lost or overtaken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The producer whose events wait.
    pub producer: ProducerId,
    /// The sequence number the master needs next (every lower one is released).
    pub missing: u64,
    /// The highest sequence number the master holds behind the gap.
    pub held: u64,
}
