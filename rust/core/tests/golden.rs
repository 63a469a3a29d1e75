//! Cross-language golden tests: the Python reference's traces (`tests/golden.py` writes them into
//! `tests/data/golden/`) replayed by the Rust core, which must produce the same bytes.

use std::fs;
use std::path::{Path, PathBuf};

use clusterstate_core::codec::{decode_indexed_event, decode_state, encode};
use clusterstate_core::json::{to_string, Case};
use clusterstate_core::{apply, ApplyError, IndexedEvent, State};

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/golden")
}

fn read(name: &str) -> String {
    let path = golden_dir().join(name);
    fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// zlib's CRC-32 (what Python's `zlib.crc32` computes).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn trace_names() -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(golden_dir())
        .expect("golden dir")
        .filter_map(|entry| {
            entry
                .ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".events.jsonl")
                .map(str::to_owned)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 4, "golden traces missing: {names:?}");
    names
}

fn check_trace(name: &str) {
    let events = read(&format!("{name}.events.jsonl"));
    let crcs = read(&format!("{name}.crc32.txt"));
    let crcs: Vec<&str> = crcs.lines().collect();
    let mut state = State::default();
    let mut count = 0;
    for (line_no, line) in events.lines().enumerate() {
        let event = decode_indexed_event(line.as_bytes()).unwrap_or_else(|err| panic!("{name}:{line_no}: {err}"));
        assert_eq!(
            String::from_utf8(encode(&event, Case::Snake)).unwrap(),
            line,
            "{name}:{line_no}: the event does not re-encode byte for byte"
        );
        let before = state.clone();
        state = apply(&state, &event).unwrap_or_else(|err| panic!("{name}:{line_no}: {err}"));
        // The old State is untouched, and the same event again is a duplicate.
        assert_eq!(before.last_event_applied_idx + 1, state.last_event_applied_idx);
        assert!(matches!(apply(&state, &event), Err(ApplyError::EventIndex { .. })));
        let json = to_string(&state, Case::Snake).unwrap();
        let crc = format!("{:08x}", crc32(json.as_bytes()));
        if crc != crcs[line_no] {
            let dump = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("golden-{name}-{line_no}.json"));
            fs::write(&dump, &json).unwrap();
            panic!(
                "{name}:{line_no}: the State after the event differs; ours is in {}",
                dump.display()
            );
        }
        count += 1;
    }
    assert!(count > 100, "{name}: only {count} events");
    assert_eq!(
        to_string(&state, Case::Snake).unwrap(),
        read(&format!("{name}.state.json")),
        "{name}"
    );
    assert_eq!(
        to_string(&state, Case::Camel).unwrap(),
        read(&format!("{name}.state.alias.json")),
        "{name}"
    );
    // The golden States decode to the replayed one, in both spellings.
    assert_eq!(
        decode_state(read(&format!("{name}.state.json")).as_bytes()).unwrap(),
        state
    );
    assert_eq!(
        decode_state(read(&format!("{name}.state.alias.json")).as_bytes()).unwrap(),
        state
    );
}

#[test]
fn golden_traces_replay_to_the_same_bytes() {
    for name in trace_names() {
        check_trace(&name);
    }
}

#[test]
fn golden_states_round_trip_and_apply() {
    let text = read("states.jsonl");
    let mut count = 0;
    for (line_no, line) in text.lines().enumerate() {
        let (snake, alias, events, after): (String, String, Vec<String>, String) = serde_json::from_str(line).unwrap();
        let state = decode_state(snake.as_bytes()).unwrap_or_else(|err| panic!("states:{line_no}: {err}"));
        assert_eq!(to_string(&state, Case::Snake).unwrap(), snake, "states:{line_no}");
        assert_eq!(to_string(&state, Case::Camel).unwrap(), alias, "states:{line_no}");
        assert_eq!(decode_state(alias.as_bytes()).unwrap(), state, "states:{line_no}");
        // Applying events to an arbitrary State (stale cycles included) gives the reference's result.
        let mut state = state;
        for event in &events {
            let event = decode_indexed_event(event.as_bytes()).unwrap();
            state = apply(&state, &event).unwrap_or_else(|err| panic!("states:{line_no}: {err}"));
        }
        assert_eq!(to_string(&state, Case::Snake).unwrap(), after, "states:{line_no}");
        count += 1;
    }
    assert!(count >= 10);
}

#[test]
fn golden_inputs_decode_like_pydantic() {
    #[derive(serde::Deserialize)]
    struct Case_ {
        input: String,
        output: Option<String>,
        alias: Option<String>,
        error: Option<String>,
    }
    let text = read("inputs.jsonl");
    let mut failures = Vec::new();
    for line in text.lines() {
        let case: Case_ = serde_json::from_str(line).unwrap();
        let decoded = decode_indexed_event(case.input.as_bytes());
        match (&case.output, &case.error, decoded) {
            (Some(output), _, Ok(event)) => {
                let ours = String::from_utf8(encode(&event, Case::Snake)).unwrap();
                if &ours != output {
                    failures.push(format!("{}\n  pydantic: {output}\n  rust:     {ours}", case.input));
                }
                let camel = String::from_utf8(encode(&event, Case::Camel)).unwrap();
                if case.alias.as_ref() != Some(&camel) {
                    failures.push(format!(
                        "{}\n  pydantic by_alias: {:?}\n  rust camelCase:    {camel}",
                        case.input, case.alias
                    ));
                }
                // The camelCase form decodes to the same event.
                if decode_indexed_event(camel.as_bytes()).ok().as_ref() != Some(&event) {
                    failures.push(format!("{camel}: does not decode back"));
                }
            }
            (Some(_), _, Err(err)) => failures.push(format!("{}\n  rust refused: {err}", case.input)),
            (None, Some(_), Ok(event)) => failures.push(format!("{}\n  rust accepted: {event:?}", case.input)),
            (None, _, Err(_)) => {}
            (None, None, Ok(_)) => failures.push(format!("{}: bad golden line", case.input)),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_floats_format_like_pydantic() {
    let (reprs, dump): (Vec<String>, String) = serde_json::from_str(&read("floats.json")).unwrap();
    let values: Vec<f64> = reprs.iter().map(|r| r.parse().unwrap()).collect();
    assert!(values.len() >= 1000);
    let ours = to_string(&values, Case::Snake).unwrap();
    let theirs: Vec<&str> = dump.trim_matches(['[', ']']).split(',').collect();
    for (value, (ours, theirs)) in values.iter().zip(ours.trim_matches(['[', ']']).split(',').zip(theirs)) {
        assert_eq!(ours, theirs, "{value:e}");
    }
    assert_eq!(ours, dump);
    // And the dump parses back to the same bits.
    let back: Vec<f64> = serde_json::from_str(&dump).unwrap();
    assert!(back.iter().zip(&values).all(|(a, b)| a.to_bits() == b.to_bits()));
}

#[test]
fn index_errors_leave_the_state_alone() {
    let events: Vec<IndexedEvent> = read("trace_ring4.events.jsonl")
        .lines()
        .map(|line| decode_indexed_event(line.as_bytes()).unwrap())
        .collect();
    let state = clusterstate_core::fold(&State::default(), &events[..10]).unwrap();
    let snapshot = to_string(&state, Case::Snake).unwrap();
    let gap = apply(&state, &events[11]).unwrap_err();
    assert_eq!(gap, ApplyError::EventIndex { expected: 10, got: 11 });
    assert_eq!(
        gap.to_string(),
        "event index 11 does not follow the state (gap): expected 10"
    );
    let duplicate = apply(&state, &events[3]).unwrap_err();
    assert_eq!(
        duplicate.to_string(),
        "event index 3 does not follow the state (duplicate or stale): expected 10"
    );
    assert_eq!(to_string(&state, Case::Snake).unwrap(), snapshot);
    let (partial, err) = clusterstate_core::replay(&State::default(), &[&events[..5], &events[6..8]].concat());
    assert_eq!(partial.last_event_applied_idx, 4);
    assert_eq!(err, Some(ApplyError::EventIndex { expected: 5, got: 6 }));
}

#[test]
fn exo_examples_in_tests_data_decode() {
    let data = golden_dir().join("..");
    let read = |name: &str| fs::read(data.join(name)).unwrap_or_else(|err| panic!("{name}: {err}"));
    let forwarder = clusterstate_core::codec::decode_forwarder_event(&read("forwarder_event_macmon.json")).unwrap();
    assert_eq!(forwarder.event.tag(), "NodeGatheredInfo");
    assert!(clusterstate_core::codec::decode_event(&read("chunk_generated_token.json")).is_ok());
    // state.json and its hand-written by_alias form hold the same State, and our dumps are those JSON values.
    let state = decode_state(&read("state.json")).unwrap();
    assert_eq!(decode_state(&read("state_by_alias.json")).unwrap(), state);
    let value = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    assert_eq!(
        value(to_string(&state, Case::Snake).unwrap().as_bytes()),
        value(&read("state.json"))
    );
    assert_eq!(
        value(to_string(&state, Case::Camel).unwrap().as_bytes()),
        value(&read("state_by_alias.json"))
    );
    // exo's own State (with `last_seen`) is not a clusterstate State.
    assert!(decode_state(&read("state_exo.json")).is_err());
}
