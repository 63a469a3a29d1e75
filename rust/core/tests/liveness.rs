//! The staleness tracker's exact rule (docs/liveness.md), cycle by cycle.

use clusterstate_core::liveness::{CycleKind, NodeStaleness, StalenessTracker, TrackerError};
use clusterstate_core::{apply, IndexedEvent, NodeId, State};
use proptest::prelude::*;

const T: f64 = 10.0;
const K: u32 = 3;

/// A master: a State and the events it indexes.
struct Master {
    state: State,
}

impl Master {
    fn new() -> Self {
        Self {
            state: State::default(),
        }
    }

    fn next_idx(&self) -> i64 {
        self.state.last_event_applied_idx + 1
    }

    fn index(&mut self, json: &str) {
        let event: IndexedEvent = serde_json::from_str(json).expect("test event");
        self.state = apply(&self.state, &event).expect("in order");
    }

    /// An event of any kind produced by `node`.
    fn event(&mut self, node: &str) {
        let idx = self.next_idx();
        self.index(&format!(
            r#"{{"idx":{idx},"origin":"{node}","event":{{"TestEvent":{{"event_id":"e{idx}"}}}}}}"#
        ));
    }

    fn info(&mut self, node: &str, name: &str) {
        let idx = self.next_idx();
        self.index(&format!(
            r#"{{"idx":{idx},"origin":"{node}","event":{{"NodeGatheredInfo":{{"event_id":"e{idx}","node_id":"{node}","info":{{"MiscData":{{"friendly_name":"{name}"}}}}}}}}}}"#
        ));
    }

    fn runner(&mut self, node: &str) {
        let idx = self.next_idx();
        self.index(&format!(
            r#"{{"idx":{idx},"origin":"{node}","event":{{"RunnerStatusUpdated":{{"event_id":"e{idx}","runner_id":"r-{node}","runner_status":{{"RunnerIdle":{{}}}}}}}}}}"#
        ));
    }

    fn edge(&mut self, source: &str, sink: &str) {
        let idx = self.next_idx();
        self.index(&format!(
            r#"{{"idx":{idx},"origin":"{source}","event":{{"TopologyEdgeCreated":{{"event_id":"e{idx}","conn":{{"source":"{source}","sink":"{sink}","edge":{{"sink_multiaddr":{{"address":"/ip4/10.0.0.2/tcp/52415","address_type":"ip4","ip_address":"10.0.0.2","port":52415}}}}}}}}}}}}"#
        ));
    }

    fn disconnect(&mut self, decision: &NodeStaleness) {
        let idx = self.next_idx();
        let last = decision
            .last_index
            .map_or_else(|| "null".to_owned(), |index| index.to_string());
        self.index(&format!(
            r#"{{"idx":{idx},"origin":null,"event":{{"NodeDisconnected":{{"event_id":"e{idx}","node_id":"{}","last_index":{last},"stale_cycles":{}}}}}}}"#,
            decision.node_id, decision.stale_cycles
        ));
    }

    fn global(&self) -> i64 {
        self.state.last_event_applied_idx
    }
}

fn names(decisions: &[NodeStaleness]) -> Vec<&str> {
    decisions.iter().map(|d| d.node_id.as_str()).collect()
}

fn tracker() -> StalenessTracker {
    StalenessTracker::new(T, K).expect("valid")
}

#[test]
fn settings_are_checked() {
    assert_eq!(StalenessTracker::new(0.0, 3).unwrap_err(), TrackerError::Period(0.0));
    assert!(StalenessTracker::new(f64::NAN, 3).is_err());
    assert!(StalenessTracker::new(f64::INFINITY, 3).is_err());
    assert!(StalenessTracker::new(-1.0, 3).is_err());
    assert_eq!(StalenessTracker::new(10.0, 0).unwrap_err(), TrackerError::Threshold);
    let default = StalenessTracker::default();
    assert_eq!((default.period_s(), default.threshold()), (10.0, 3));
}

#[test]
fn silent_for_k_cycles_is_disconnected_at_cycle_k_exactly() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.event("a");
    master.event("b");
    // Cycle 0: grace, both first seen.
    assert!(tracker.cycle(&master.state, 0.0, master.global()).is_empty());
    assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Grace));
    let a_last = master.global();
    master.event("a"); // a's last event, before cycle 1
    let a_last = a_last + 1;
    for cycle in 1..=6_u32 {
        master.event("b"); // b keeps talking, so the master is not idle
        let decisions = tracker.cycle(&master.state, f64::from(cycle) * T, master.global());
        assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Counted));
        // Cycle 1 sees a's advance (count 0); cycles 2, 3, 4 are its 1st, 2nd, 3rd silent cycles.
        let expected = u32::from(cycle > 1) * (cycle - 1);
        match cycle.cmp(&(1 + K)) {
            std::cmp::Ordering::Less => {
                assert!(decisions.is_empty(), "cycle {cycle}");
                assert_eq!(tracker.get("a").unwrap().stale_cycles, expected);
            }
            std::cmp::Ordering::Equal => {
                assert_eq!(
                    decisions,
                    vec![NodeStaleness {
                        node_id: NodeId::from("a"),
                        last_index: Some(u64::try_from(a_last).unwrap()),
                        stale_cycles: K,
                    }],
                );
                // Not disconnected again while the NodeDisconnected is in flight: the count restarts.
                assert_eq!(tracker.get("a").unwrap().stale_cycles, 0);
            }
            std::cmp::Ordering::Greater => {
                assert!(decisions.is_empty(), "cycle {cycle}: in flight, not re-sent");
            }
        }
        assert_eq!(tracker.get("b").unwrap().stale_cycles, 0);
    }
    // Still not applied after K more counting cycles: returned again (the caller re-sends).
    master.event("b");
    let again = tracker.cycle(&master.state, 7.0 * T, master.global());
    assert_eq!(names(&again), ["a"]);
    // Applied: a leaves the State and the tracker.
    master.disconnect(&again[0]);
    master.event("b");
    assert!(tracker.cycle(&master.state, 8.0 * T, master.global()).is_empty());
    assert!(tracker.get("a").is_none());
    assert_eq!(tracker.len(), 1);
}

#[test]
fn threshold_one_and_five() {
    for k in [1_u32, 5] {
        let mut master = Master::new();
        let mut tracker = StalenessTracker::new(T, k).unwrap();
        master.event("a");
        tracker.cycle(&master.state, 0.0, master.global());
        for cycle in 1..=k {
            master.event("b");
            let decisions = tracker.cycle(&master.state, f64::from(cycle) * T, master.global());
            // b is new at cycle 1; a was first seen at cycle 0 and never advanced.
            assert_eq!(decisions.is_empty(), cycle < k, "k={k} cycle={cycle}");
        }
    }
}

#[test]
fn any_event_kind_resets_the_count() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.info("a", "A");
    master.event("b");
    tracker.cycle(&master.state, 0.0, master.global());
    let kinds: [fn(&mut Master); 4] = [
        |m| m.runner("a"),
        |m| m.event("a"),
        |m| m.edge("a", "b"),
        |m| m.info("a", "A"),
    ];
    let mut now = 0.0;
    for produce in kinds {
        // Two silent counting cycles, then one event of this kind: a never reaches K.
        for _ in 0..2 {
            master.event("b");
            now += T;
            assert!(tracker.cycle(&master.state, now, master.global()).is_empty());
        }
        assert_eq!(tracker.get("a").unwrap().stale_cycles, 2);
        produce(&mut master);
        master.event("b");
        now += T;
        assert!(tracker.cycle(&master.state, now, master.global()).is_empty());
        assert_eq!(tracker.get("a").unwrap().stale_cycles, 0);
    }
}

#[test]
fn grace_period_of_a_fresh_tracker() {
    let mut master = Master::new();
    for node in ["a", "b", "c"] {
        master.event(node);
    }
    // A long-running cluster: an old tracker would be about to fire. A new master starts fresh.
    let mut fresh = tracker();
    let decisions = fresh.cycle(&master.state, 1000.0, master.global());
    assert!(decisions.is_empty());
    assert_eq!(fresh.last_cycle_kind(), Some(CycleKind::Grace));
    assert!(fresh.status().iter().all(|s| s.stale_cycles == 0));
    // Silent nodes are disconnected K counting cycles after the first cycle, not earlier.
    let mut at = Vec::new();
    for cycle in 1..=4_u32 {
        master.event("a");
        if !fresh
            .cycle(&master.state, 1000.0 + f64::from(cycle) * T, master.global())
            .is_empty()
        {
            at.push(cycle);
        }
    }
    assert_eq!(at, [K]);
}

#[test]
fn stall_guard_master_indexed_nothing() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.event("a");
    master.event("b");
    tracker.cycle(&master.state, 0.0, master.global());
    // The master indexes nothing for 20 cycles: nobody is counted.
    for cycle in 1..=20_u32 {
        assert!(tracker
            .cycle(&master.state, f64::from(cycle) * T, master.global())
            .is_empty());
        assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::MasterIdle));
    }
    assert!(tracker.status().iter().all(|s| s.stale_cycles == 0));
    // Ingest resumes and only b talks: a is disconnected K counting cycles later.
    let mut fired = Vec::new();
    for cycle in 21..=25_u32 {
        master.event("b");
        let decisions = tracker.cycle(&master.state, f64::from(cycle) * T, master.global());
        if !decisions.is_empty() {
            fired.push((cycle, names(&decisions).join(",")));
        }
    }
    assert_eq!(fired, [(23, "a".to_owned())]);
}

#[test]
fn stall_guard_late_cycle() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.event("a");
    master.event("b");
    tracker.cycle(&master.state, 0.0, master.global());
    master.event("b");
    tracker.cycle(&master.state, T, master.global()); // a: 1
    master.event("b");
    tracker.cycle(&master.state, 2.0 * T, master.global()); // a: 2
                                                            // The master was paused: this cycle starts 150 s after the previous one. It counts against nobody,
                                                            // even though events were indexed meanwhile.
    master.event("b");
    assert!(tracker
        .cycle(&master.state, 2.0 * T + 150.0, master.global())
        .is_empty());
    assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Late));
    assert_eq!(tracker.get("a").unwrap().stale_cycles, 2);
    // Exactly 2·T late still counts (the boundary belongs to "on time").
    master.event("b");
    let decisions = tracker.cycle(&master.state, 4.0 * T + 150.0, master.global());
    assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Counted));
    assert_eq!(names(&decisions), ["a"]);
    // A clock that goes backwards, or a NaN, is late too.
    master.event("b");
    tracker.cycle(&master.state, 0.0, master.global());
    assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Late));
    master.event("b");
    tracker.cycle(&master.state, f64::NAN, master.global());
    assert_eq!(tracker.last_cycle_kind(), Some(CycleKind::Late));
}

#[test]
fn pruning_and_rejoin() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.info("a", "Alice's Mac");
    master.event("b");
    tracker.cycle(&master.state, 0.0, master.global());
    assert_eq!(tracker.len(), 2);
    let mut now = 0.0;
    let decision = loop {
        master.event("b");
        now += T;
        if let Some(decision) = tracker.cycle(&master.state, now, master.global()).pop() {
            break decision;
        }
    };
    master.disconnect(&decision);
    // Identities survive the disconnect.
    assert_eq!(master.state.node_identities["a"].friendly_name, "Alice's Mac");
    assert!(!master.state.last_event_index_by_node.contains_key("a"));
    master.event("b");
    now += T;
    tracker.cycle(&master.state, now, master.global());
    assert!(tracker.get("a").is_none(), "pruned");
    // a rejoins: tracked afresh, keeps its name.
    master.event("a");
    now += T;
    assert!(tracker.cycle(&master.state, now, master.global()).is_empty());
    assert_eq!(tracker.get("a").unwrap().stale_cycles, 0);
    assert_eq!(master.state.node_identities["a"].friendly_name, "Alice's Mac");
}

#[test]
fn ghost_node_added_by_an_edge_is_removed() {
    let mut master = Master::new();
    let mut tracker = tracker();
    master.event("a");
    master.edge("a", "ghost"); // ghost: in the topology, never heard from
    assert!(master.state.topology.contains("ghost"));
    assert!(!master.state.last_event_index_by_node.contains_key("ghost"));
    tracker.cycle(&master.state, 0.0, master.global());
    assert_eq!(tracker.get("ghost").unwrap().last_index, None);
    let mut now = 0.0;
    let mut decisions = Vec::new();
    for _ in 0..K {
        master.event("a");
        now += T;
        decisions = tracker.cycle(&master.state, now, master.global());
    }
    assert_eq!(
        decisions,
        vec![NodeStaleness {
            node_id: NodeId::from("ghost"),
            last_index: None,
            stale_cycles: K,
        }]
    );
    master.disconnect(&decisions[0]);
    assert!(!master.state.topology.contains("ghost"));
    master.event("a");
    now += T;
    tracker.cycle(&master.state, now, master.global());
    assert!(tracker.get("ghost").is_none());
    assert_eq!(master.state.known_nodes(), vec![NodeId::from("a")]);
}

#[test]
fn status_and_decisions_are_sorted() {
    let mut master = Master::new();
    let mut tracker = tracker();
    for node in ["d", "b", "a", "c"] {
        master.event(node);
    }
    master.edge("c", "e");
    tracker.cycle(&master.state, 0.0, master.global());
    let status: Vec<String> = tracker.status().iter().map(|s| s.node_id.to_string()).collect();
    assert_eq!(status, ["a", "b", "c", "d", "e"]);
    let mut decisions = Vec::new();
    for cycle in 1..=K {
        master.event("z");
        decisions = tracker.cycle(&master.state, f64::from(cycle) * T, master.global());
    }
    assert_eq!(names(&decisions), ["a", "b", "c", "d", "e"]);
}

proptest! {
    /// A random script of nodes producing events between cycles, some of them dying: replaying it gives the same
    /// decisions, and a dead node is decided within [K·T, (K+1)·T) of its last event (cycles exactly T apart).
    #[test]
    fn replay_is_deterministic_and_latency_within_window(
        script in proptest::collection::vec(proptest::collection::vec(0_usize..6, 0..8), 1..40),
        death in proptest::collection::vec(0_usize..40, 6),
        offset in 0.0_f64..T,
    ) {
        let run = || {
            let mut master = Master::new();
            let mut tracker = tracker();
            let mut last_event_time = [None::<f64>; 6];
            let mut decisions = Vec::new();
            master.event("keeper"); // keeps the master indexing
            for (cycle, producers) in script.iter().enumerate() {
                let cycle_f = f64::from(u32::try_from(cycle).unwrap());
                let start = cycle_f * T;
                for (slot, &node) in producers.iter().enumerate() {
                    if cycle < death[node] {
                        let name = format!("n{node}");
                        master.event(&name);
                        // Events land strictly between cycle starts.
                        last_event_time[node] = Some(start - T + offset.max(1e-3) * f64::from(u32::try_from(slot + 1).unwrap()) / 9.0);
                    }
                }
                master.event("keeper");
                for decision in tracker.cycle(&master.state, start, master.global()) {
                    let node: usize = decision.node_id.as_str()[1..].parse().unwrap();
                    // The first cycle (0) is a grace period: a node heard before it counts from time 0.
                    let reference = last_event_time[node].map(|last| last.max(0.0));
                    decisions.push((cycle, decision.clone(), reference.map(|r| start - r)));
                    master.disconnect(&decision);
                }
            }
            decisions
        };
        let first = run();
        prop_assert_eq!(&first, &run());
        for (_, decision, latency) in &first {
            prop_assert_ne!(decision.node_id.as_str(), "keeper");
            let latency = latency.unwrap();
            prop_assert!(latency >= f64::from(K) * T - 1e-9, "{latency}");
            prop_assert!(latency < f64::from(K + 1) * T + 1e-9, "{latency}");
        }
    }
}
