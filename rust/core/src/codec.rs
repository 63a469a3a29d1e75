//! Decoding bytes into the core's types with a typed [`DecodeError`], and encoding them as pydantic does.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DecodeError;
use crate::events::{Event, ForwarderEvent, IndexedEvent};
use crate::json::{self, Case};
use crate::state::State;

pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    // One UTF-8 check of the whole input (vectorised) costs less than serde_json's check of every string it reads.
    let text = std::str::from_utf8(bytes).map_err(|err| DecodeError {
        what,
        message: format!("invalid UTF-8: {err}"),
    })?;
    serde_json::from_str(text).map_err(|err| DecodeError {
        what,
        message: err.to_string(),
    })
}

/// Decode one tagged event, e.g. `{"NodeGatheredInfo": {...}}`.
pub fn decode_event(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode("event", bytes)
}

/// Decode `{"idx": ..., "origin": ..., "event": {...}}`.
pub fn decode_indexed_event(bytes: &[u8]) -> Result<IndexedEvent, DecodeError> {
    decode("indexed event", bytes)
}

/// Decode exo's wire envelope `{"origin_idx", "origin", "session", "event"}`.
pub fn decode_forwarder_event(bytes: &[u8]) -> Result<ForwarderEvent, DecodeError> {
    decode("forwarder event", bytes)
}

/// Decode a State as written by `State.model_dump_json()` (either key spelling).
pub fn decode_state(bytes: &[u8]) -> Result<State, DecodeError> {
    decode("state", bytes)
}

/// Whether `bytes`, which failed to decode, are an object whose `event` is a single-key object with a tag that is
/// not a known event: the one refusal worth telling apart (a newer peer), the rest being malformed. Parses again,
/// so only for the failure path.
pub fn has_unknown_event_tag(bytes: &[u8]) -> bool {
    let Ok(serde_json::Value::Object(outer)) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return false;
    };
    matches!(
        outer.get("event"),
        Some(serde_json::Value::Object(event))
            if event.len() == 1 && event.keys().all(|tag| !Event::TAGS.contains(&tag.as_str()))
    )
}

/// The JSON of any core value, byte for byte as pydantic's `model_dump_json(by_alias=...)` writes it.
pub fn encode<T: Serialize + ?Sized>(value: &T, case: Case) -> Vec<u8> {
    // Serialising the core's types cannot fail: every map key is a string and nothing writes to a failing sink.
    json::to_vec(value, case).unwrap_or_default()
}
