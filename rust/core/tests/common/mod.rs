//! Helpers shared by the integration tests (each test crate uses some of them).
#![allow(dead_code)]

use clusterstate_core::codec;
use clusterstate_core::events::{Event, SessionId};
use clusterstate_core::NodeId;

/// The session of master node `"m"` at election clock `clock`.
pub fn session(clock: u64) -> SessionId {
    SessionId {
        master_node_id: NodeId::from("m"),
        election_clock: clock,
    }
}

/// A `LocalEnvelope`'s JSON for session 1 of master `"m"`: `event` (JSON) from `producer`'s `idx` on `node`.
pub fn envelope(producer: &str, idx: u64, node: &str, event: &str) -> Vec<u8> {
    envelope_in(1, producer, idx, node, event)
}

/// [`envelope`] for the session at election clock `clock`.
pub fn envelope_in(clock: u64, producer: &str, idx: u64, node: &str, event: &str) -> Vec<u8> {
    format!(
        r#"{{"origin":"{producer}","origin_idx":{idx},"session":{{"master_node_id":"m","election_clock":{clock}}},"event":{event},"node_id":"{node}"}}"#
    )
    .into_bytes()
}

/// A `TestEvent`'s JSON with event id `id`.
pub fn test_event(id: &str) -> String {
    format!(r#"{{"TestEvent":{{"event_id":"{id}"}}}}"#)
}

/// A `NodeGatheredInfo` heartbeat's JSON about (and so from) `node`.
pub fn info(node: &str) -> String {
    format!(
        r#"{{"NodeGatheredInfo":{{"event_id":"g-{node}","node_id":"{node}","info":{{"MiscData":{{"friendly_name":"x"}}}}}}}}"#
    )
}

/// The event ids of broadcast `IndexedEvent`s that are `TestEvent`s, the tag of the others.
pub fn test_ids(broadcast: &[Vec<u8>]) -> Vec<String> {
    broadcast
        .iter()
        .map(|bytes| match codec::decode_indexed_event(bytes).unwrap().event {
            Event::TestEvent(test) => test.event_id.as_str().to_owned(),
            other => other.tag().to_owned(),
        })
        .collect()
}
