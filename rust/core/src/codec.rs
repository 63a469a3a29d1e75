//! Decoding bytes into the core's types with a typed [`DecodeError`], and encoding them as pydantic does.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::DecodeError;
use crate::events::{Event, ForwarderEvent, IndexedEvent};
use crate::json::{self, strict, Case};
use crate::state::State;

/// Decode `T` from JSON bytes as pydantic reads them: structs are objects only ([`strict`]).
pub(crate) fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, DecodeError> {
    // One UTF-8 check of the whole input (vectorised) costs less than serde_json's check of every string it reads.
    let text = std::str::from_utf8(bytes).map_err(|err| DecodeError {
        what,
        message: format!("invalid UTF-8: {err}"),
    })?;
    let mut deserializer = serde_json::Deserializer::from_str(text);
    strict::deserialize(&mut deserializer)
        .and_then(|value| deserializer.end().map(|()| value))
        .map_err(|err| DecodeError {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structs_written_as_arrays_are_refused_everywhere() {
        for bad in [
            r#"[2,"n1",{"TestEvent":["e"]}]"#,
            r#"{"idx":0,"event":{"TestEvent":["e"]}}"#,
            r#"{"idx":0,"event":{"NodeTimedOut":[]}}"#,
            r#"{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"ram_total":[5],"ram_available":{"in_bytes":1},"swap_total":{"in_bytes":1},"swap_available":{"in_bytes":1}}}}}"#,
        ] {
            let err = decode_indexed_event(bad.as_bytes()).unwrap_err();
            assert!(err.message.contains("invalid type: sequence"), "{bad}: {err}");
        }
        assert!(decode_state(br#"{"last_event_applied_idx":0,"topology":[[],{}]}"#).is_err());
    }

    #[test]
    fn payload_numbers_survive_a_round_trip() {
        let text = r#"{"idx":0,"origin":null,"event":{"TaskCreated":{"event_id":"e","task_id":"t","task":{"TextGeneration":{"task_id":"t","task_status":"Pending","instance_id":"i","command_id":"c","task_params":{"a":18446744073709551616,"b":-0,"c":2.50},"error_type":null,"error_message":null}}}}}"#;
        let event = decode_indexed_event(text.as_bytes()).unwrap();
        let expected = text.replace("-0,", "0,").replace("2.50", "2.5");
        assert_eq!(String::from_utf8(encode(&event, Case::Snake)).unwrap(), expected);
    }
}
