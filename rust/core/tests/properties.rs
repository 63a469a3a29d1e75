//! Property tests: the reducer is total, JSON round-trips, and the persistent topology behaves like a naive model.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;
use std::sync::OnceLock;

use clusterstate_core::codec::{decode_indexed_event, decode_state, encode};
use clusterstate_core::cycles::thunderbolt_bridge_cycles;
use clusterstate_core::json::{format_float, to_string, Case};
use clusterstate_core::state::Derived;
use clusterstate_core::topology::{Connection, Edge, Multiaddr, RdmaConnection, SocketConnection};
use clusterstate_core::{apply, IndexedEvent, NodeId, State, Topology};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// Every event of the golden traces: a corpus of realistic events of every kind.
fn corpus() -> &'static Vec<IndexedEvent> {
    static CORPUS: OnceLock<Vec<IndexedEvent>> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/golden");
        let mut events = Vec::new();
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        names.sort();
        for path in names.iter().filter(|p| p.to_string_lossy().ends_with(".events.jsonl")) {
            for line in fs::read_to_string(path).unwrap().lines() {
                events.push(decode_indexed_event(line.as_bytes()).unwrap());
            }
        }
        events
    })
}

fn corpus_lines() -> &'static Vec<String> {
    static LINES: OnceLock<Vec<String>> = OnceLock::new();
    LINES.get_or_init(|| {
        corpus()
            .iter()
            .map(|e| String::from_utf8(encode(e, Case::Snake)).unwrap())
            .collect()
    })
}

fn check_state_round_trip(state: &State) {
    let snake = to_string(state, Case::Snake).unwrap();
    let back = decode_state(snake.as_bytes()).unwrap();
    assert_eq!(&back, state);
    assert_eq!(to_string(&back, Case::Snake).unwrap(), snake);
    let camel = to_string(state, Case::Camel).unwrap();
    assert_eq!(&decode_state(camel.as_bytes()).unwrap(), state);
}

/// A State decoded from JSON has no caches; applying to it gives the same States as applying to the original.
fn check_caches_do_not_matter(events: &[IndexedEvent]) {
    let mut live = State::default();
    for (i, event) in events.iter().enumerate() {
        let decoded = decode_state(to_string(&live, Case::Snake).unwrap().as_bytes()).unwrap();
        let from_decoded = apply(&decoded, event).unwrap();
        live = apply(&live, event).unwrap();
        assert_eq!(
            to_string(&from_decoded, Case::Snake).unwrap(),
            to_string(&live, Case::Snake).unwrap(),
            "{i}"
        );
    }
}

#[test]
fn decoded_states_apply_like_live_ones() {
    // The ring trace has bridge cycles and cable reports, the crash trace disconnects.
    let corpus = corpus();
    let mut events: Vec<IndexedEvent> = corpus.iter().take(600).cloned().collect();
    for (idx, event) in (0u64..).zip(&mut events) {
        event.idx = idx;
    }
    check_caches_do_not_matter(&events);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    /// Any sequence of events from the corpus, in any order and with any origins, applies without error when
    /// re-indexed, the State round-trips through JSON, and earlier States stay as they were.
    #[test]
    fn apply_is_total_on_any_event_order(
        picks in prop::collection::vec((any::<prop::sample::Index>(), prop::option::of(0..4u8)), 0..120),
    ) {
        let corpus = corpus();
        let mut state = State::default();
        let mut history: Vec<(State, String)> = Vec::new();
        for (idx, (pick, origin)) in (0u64..).zip(&picks) {
            let mut event = corpus[pick.index(corpus.len())].clone();
            event.idx = idx;
            event.origin = origin.map(|o| NodeId::from(format!("node{o}")));
            // A wrong index is an error, never a panic, and changes nothing.
            let wrong = IndexedEvent { idx: idx + 1, ..event.clone() };
            prop_assert!(apply(&state, &wrong).is_err());
            let next = apply(&state, &event).unwrap();
            if idx % 16 == 0 {
                history.push((state.clone(), to_string(&state, Case::Snake).unwrap()));
            }
            state = next;
            // The caches apply keeps agree with a recomputation from scratch.
            let cycles = thunderbolt_bridge_cycles(&state.topology, &state.node_thunderbolt_bridge, &state.node_network);
            prop_assert_eq!(&cycles, &*state.thunderbolt_bridge_cycles);
            if let Some(owners) = &state.derived.uuid_owners {
                prop_assert_eq!(owners, &Derived::build_uuid_owners(&state.node_thunderbolt));
            }
        }
        check_state_round_trip(&state);
        for (old, text) in &history {
            prop_assert_eq!(&to_string(old, Case::Snake).unwrap(), text);
        }
    }

    /// Mutated event bytes decode to an error or to an event that re-encodes stably; never a panic.
    #[test]
    fn decoding_mutated_bytes_never_panics(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0..3u8), 1..4),
    ) {
        let lines = corpus_lines();
        let mut bytes = lines[pick.index(lines.len())].clone().into_bytes();
        for (at, byte, kind) in edits {
            let at = at.index(bytes.len() + 1);
            match kind {
                0 if at < bytes.len() => bytes[at] = byte,
                1 => bytes.insert(at, byte),
                _ if at < bytes.len() => { bytes.remove(at); }
                _ => {}
            }
        }
        if let Ok(event) = decode_indexed_event(&bytes) {
            let once = encode(&event, Case::Snake);
            let again = decode_indexed_event(&once).unwrap();
            prop_assert_eq!(encode(&again, Case::Snake), once);
            let first = IndexedEvent { idx: 0, ..event };
            prop_assert!(apply(&State::default(), &first).is_ok());
        }
    }

    /// Opaque JSON payloads re-encode to the same bytes after one normalisation (pydantic's dump).
    #[test]
    fn opaque_json_round_trips(body in json_object()) {
        let event = serde_json::json!({
            "idx": 0, "origin": null,
            "event": {"ChunkGenerated": {"event_id": "e", "command_id": "c", "chunk": {"TokenChunk": body}}},
        });
        let text = serde_json::to_vec(&event).unwrap();
        let decoded = decode_indexed_event(&text).unwrap();
        let once = encode(&decoded, Case::Snake);
        prop_assert_eq!(encode(&decode_indexed_event(&once).unwrap(), Case::Snake), once.clone());
        let reparsed: Value = serde_json::from_slice(&once).unwrap();
        prop_assert_eq!(reparsed, event);
    }

    /// Floats are written so that they parse back to the same bits, always looking like floats.
    #[test]
    fn floats_round_trip(bits in any::<u64>()) {
        let value = f64::from_bits(bits);
        let text = format_float(value);
        if value.is_finite() {
            prop_assert_eq!(text.parse::<f64>().unwrap().to_bits(), value.to_bits());
            prop_assert!(text.contains('.') || text.contains('e'));
            prop_assert!(!text.contains("e0") && !text.contains("e-0") && !text.contains("e+0"));
        } else {
            prop_assert_eq!(text, "null");
        }
    }

    /// The persistent topology gives the same results as a naive multigraph, and old values never change.
    #[test]
    fn topology_matches_a_naive_model(ops in prop::collection::vec(topology_op(), 0..60)) {
        let mut topology = Topology::new();
        let mut model = Model::default();
        for op in ops {
            let before = topology.clone();
            let before_json = to_string(&before, Case::Snake).unwrap();
            let (changed, model_changed) = match &op {
                Op::AddNode(n) => (topology.add_node(&node(*n)), model.add_node(*n)),
                Op::RemoveNode(n) => (topology.remove_node(&node(*n)), model.remove_node(*n)),
                Op::Add(s, t, e) => (topology.add_connection(&conn(*s, *t, *e)), model.add(*s, *t, *e)),
                Op::Remove(s, t, e) => (topology.remove_connection(&conn(*s, *t, *e)), model.remove(*s, *t, *e)),
                Op::SetRdma(s, list) => {
                    let edges: Vec<(NodeId, Edge)> = list.iter().map(|(t, e)| (node(*t), edge(*e + 3))).collect();
                    let rdma: Vec<(u8, u8)> = list.iter().map(|(t, e)| (*t, *e + 3)).collect();
                    (topology.set_rdma_out_edges(&node(*s), &edges), model.set_rdma(*s, &rdma))
                }
            };
            prop_assert_eq!(changed, model_changed, "{:?}", op);
            prop_assert_eq!(changed, !topology.ptr_eq(&before), "{:?}", op);
            prop_assert_eq!(to_string(&topology, Case::Snake).unwrap(), model.json());
            prop_assert_eq!(to_string(&before, Case::Snake).unwrap(), before_json);
        }
        let back: Topology = serde_json::from_str(&to_string(&topology, Case::Snake).unwrap()).unwrap();
        prop_assert_eq!(back, topology);
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,8}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((".{0,6}", inner), 0..4)
                .prop_map(|entries| Value::Object(entries.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((".{0,6}", json_value()), 0..5).prop_map(|entries| entries.into_iter().collect())
}

#[derive(Clone, Debug)]
enum Op {
    AddNode(u8),
    RemoveNode(u8),
    Add(u8, u8, u8),
    Remove(u8, u8, u8),
    SetRdma(u8, Vec<(u8, u8)>),
}

fn topology_op() -> impl Strategy<Value = Op> {
    let n = 0..5u8;
    let e = 0..6u8;
    prop_oneof![
        n.clone().prop_map(Op::AddNode),
        n.clone().prop_map(Op::RemoveNode),
        (n.clone(), n.clone(), e.clone()).prop_map(|(s, t, e)| Op::Add(s, t, e)),
        (n.clone(), n.clone(), e).prop_map(|(s, t, e)| Op::Remove(s, t, e)),
        (n.clone(), prop::collection::vec((n, 0..3u8), 0..4)).prop_map(|(s, l)| Op::SetRdma(s, l)),
    ]
}

fn node(n: u8) -> NodeId {
    NodeId::from(format!("n{n}"))
}

/// Edges 0..3 are socket edges, 3..6 RDMA edges.
fn edge(e: u8) -> Edge {
    if e < 3 {
        let address = format!("/ip4/10.0.0.{e}/tcp/1");
        Edge::Socket(SocketConnection {
            sink_multiaddr: Multiaddr::new(address).unwrap(),
        })
    } else {
        Edge::Rdma(RdmaConnection {
            source_rdma_iface: format!("s{e}"),
            sink_rdma_iface: format!("t{}", 9 - e),
        })
    }
}

fn conn(s: u8, t: u8, e: u8) -> Connection {
    Connection {
        source: node(s),
        sink: node(t),
        edge: edge(e),
    }
}

#[derive(Default)]
struct Model {
    nodes: BTreeSet<u8>,
    edges: BTreeMap<(u8, u8), BTreeSet<u8>>,
}

impl Model {
    fn add_node(&mut self, n: u8) -> bool {
        self.nodes.insert(n)
    }

    fn remove_node(&mut self, n: u8) -> bool {
        self.edges.retain(|(s, t), _| *s != n && *t != n);
        self.nodes.remove(&n)
    }

    fn add(&mut self, s: u8, t: u8, e: u8) -> bool {
        let added = self.edges.entry((s, t)).or_default().insert(e);
        if added {
            self.nodes.insert(s);
            self.nodes.insert(t);
        }
        added
    }

    fn remove(&mut self, s: u8, t: u8, e: u8) -> bool {
        let removed = self.edges.get_mut(&(s, t)).is_some_and(|set| set.remove(&e));
        self.edges.retain(|_, set| !set.is_empty());
        removed
    }

    fn set_rdma(&mut self, s: u8, list: &[(u8, u8)]) -> bool {
        let before = (self.nodes.clone(), self.edges.clone());
        self.nodes.insert(s);
        for ((source, _), set) in &mut self.edges {
            if *source == s {
                set.retain(|e| *e < 3);
            }
        }
        for (t, e) in list {
            self.edges.entry((s, *t)).or_default().insert(*e);
            self.nodes.insert(*t);
        }
        self.edges.retain(|_, set| !set.is_empty());
        before != (self.nodes.clone(), self.edges.clone())
    }

    fn json(&self) -> String {
        // The model's node names sort like the numbers (one digit), and edge numbers sort like `Ord` on `Edge`.
        let nodes: Vec<NodeId> = self.nodes.iter().map(|n| node(*n)).collect();
        let mut connections: BTreeMap<NodeId, BTreeMap<NodeId, Vec<Edge>>> = BTreeMap::new();
        for ((s, t), set) in &self.edges {
            connections
                .entry(node(*s))
                .or_default()
                .insert(node(*t), set.iter().map(|e| edge(*e)).collect());
        }
        to_string(
            &serde_json::json!({"nodes": nodes, "connections": connections}),
            Case::Snake,
        )
        .unwrap()
    }
}
