//! `MasterCore`'s public API: resequencing, indexing and applying envelopes, refusals, the event log, reopening,
//! the plan cycle and catch-up pages.

mod common;

use std::sync::Arc;

use clusterstate_core::codec;
use clusterstate_core::envelope::ProducerId;
use clusterstate_core::events::{Event, IndexedEvent};
use clusterstate_core::liveness::NodeStaleness;
use clusterstate_core::log::format::MAX_PAYLOAD;
use clusterstate_core::log::{EventLog, LogError, MIN_SEGMENT_BYTES};
use clusterstate_core::master::{CycleResult, MasterCore, MasterError, MasterOptions, RejectReason, MAX_PAGE};
use clusterstate_core::{fold, NodeId, State};
use common::{envelope, envelope_in, info, session, test_event, test_ids};
use proptest::prelude::{Just, Strategy};

/// Broadcast or logged event bytes, decoded.
fn decoded(raw: &[Vec<u8>]) -> Vec<IndexedEvent> {
    raw.iter()
        .map(|bytes| codec::decode_indexed_event(bytes).unwrap())
        .collect()
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
    let options = MasterOptions {
        capacity: 2,
        ..MasterOptions::default()
    };
    let mut master = MasterCore::with_options(session(1), options).unwrap();
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
fn an_event_over_the_record_limit_is_refused_without_using_an_index() {
    let huge = format!(
        r#"{{"NodeGatheredInfo":{{"event_id":"big","node_id":"a","info":{{"MiscData":{{"friendly_name":"{}"}}}}}}}}"#,
        "x".repeat(MAX_PAYLOAD as usize)
    );
    let mut master = MasterCore::new(session(1));
    let out = master.ingest(&[
        envelope("p", 0, "a", &test_event("e0")),
        envelope("p", 1, "a", &huge),
        envelope("p", 2, "a", &test_event("e2")),
    ]);
    assert_eq!(out.rejected, vec![(1, RejectReason::TooLarge)]);
    let indices: Vec<u64> = out
        .broadcast
        .iter()
        .map(|bytes| codec::decode_indexed_event(bytes).unwrap().idx)
        .collect();
    assert_eq!(indices, vec![0, 1]); // e2 follows e0 directly
    assert_eq!(master.counters().rejected(RejectReason::TooLarge), 1);
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

/// An event id long enough that a segment of [`MIN_SEGMENT_BYTES`] holds one record of it.
fn big_id(id: &str) -> String {
    format!("{id}-{}", "x".repeat(usize::try_from(MIN_SEGMENT_BYTES / 2).unwrap()))
}

fn open_log(dir: &std::path::Path, segment_bytes: u64) -> EventLog {
    let options = clusterstate_core::log::Options {
        create: true,
        segment_bytes,
        durability: clusterstate_core::log::Durability::None,
        ..clusterstate_core::log::Options::default()
    };
    EventLog::open(dir, options).unwrap()
}

fn logged_master(dir: &std::path::Path, clock: u64, options: MasterOptions) -> MasterCore {
    MasterCore::open(session(clock), open_log(dir, 64 << 20), options).unwrap()
}
#[test]
fn every_applied_event_is_logged_in_index_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = logged_master(dir.path(), 1, MasterOptions::default());
    let mut broadcast = Vec::new();
    let batches = [
        vec![
            envelope("p", 1, "a", &test_event("e1")),
            b"junk".to_vec(),
            envelope("p", 0, "a", &info("a")),
        ],
        vec![
            envelope("q", 0, "b", &info("b")),
            envelope("p", 1, "a", &test_event("e1")),
        ],
        vec![
            envelope("q", 0, "a", &info("b")),
            envelope("q", 1, "b", &test_event("e2")),
        ],
    ];
    for batch in &batches {
        broadcast.extend(master.try_ingest(batch).unwrap().broadcast);
    }
    assert_eq!(
        test_ids(&broadcast),
        ["NodeGatheredInfo", "e1", "NodeGatheredInfo", "e2"]
    );
    assert_eq!(master.counters().rejected_total(), 2); // the junk and q's spoofed envelope
    assert_eq!(master.counters().appended, 4);
    let logged = master.events_since(0, 100).unwrap();
    assert_eq!(logged, broadcast); // the very bytes that were broadcast, in index order
    assert_eq!(master.log().unwrap().next_index(), 4);
    assert_eq!(fold(&State::default(), &decoded(&logged)).unwrap(), *master.state());
    assert_eq!(master.next_index(), 4);
}

#[test]
fn a_refused_append_leaves_the_master_consistent_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    // One record per segment: the second record of a batch needs a new segment file, which cannot be created
    // once the directory is gone, after the first one was written.
    let mut master =
        MasterCore::open(session(1), open_log(&path, MIN_SEGMENT_BYTES), MasterOptions::default()).unwrap();
    std::fs::remove_dir_all(&path).unwrap();
    let batch = [
        envelope("p", 0, "a", &test_event(&big_id("e0"))),
        envelope("p", 1, "a", &test_event(&big_id("e1"))),
        envelope("p", 2, "a", &test_event(&big_id("e2"))),
        envelope("p", 0, "a", &test_event(&big_id("e0"))), // stale copies: acknowledged again only if logged
        envelope("p", 1, "a", &test_event(&big_id("e1"))),
    ];
    let failure = master.try_ingest(&batch).unwrap_err();
    assert!(matches!(failure.error, LogError::Io { .. }), "{:?}", failure.error);
    assert_eq!(test_ids(&failure.done.broadcast), [big_id("e0")]);
    let p: ProducerId = Arc::from("p");
    assert_eq!(failure.done.acknowledged, vec![(p.clone(), 0), (p.clone(), 0)]);
    assert_eq!(master.next_index(), 1);
    assert_eq!(master.log().unwrap().next_index(), 1);
    assert_eq!(master.state().last_event_applied_idx, 0);
    assert_eq!(master.producer_next("p"), Some(1)); // rewound: e1 and e2 count as never received
    let counters = master.counters();
    assert_eq!((counters.appended, counters.applied, counters.unlogged), (1, 1, 2));
    // Once the disk works again, the producer's resend is applied, not taken for a stale copy.
    std::fs::create_dir_all(&path).unwrap();
    let out = master.try_ingest(&batch[1..3]).unwrap();
    assert_eq!(test_ids(&out.broadcast), [big_id("e1"), big_id("e2")]);
    assert_eq!(out.acknowledged, vec![(p.clone(), 1), (p, 2)]);
    assert_eq!(master.next_index(), 3);
    // The infallible form absorbs the error into the counters and `last_log_error`.
    std::fs::remove_dir_all(&path).unwrap();
    let out = master.ingest(&[envelope("p", 3, "a", &test_event(&big_id("e3")))]);
    assert!(out.broadcast.is_empty() && out.acknowledged.is_empty());
    assert!(master.last_log_error().is_some());
    assert_eq!(master.producer_next("p"), Some(3));
}

#[test]
fn a_reopened_master_continues_the_index_and_does_not_apply_resent_events_again() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = logged_master(dir.path(), 1, MasterOptions::default());
    let first: Vec<Vec<u8>> = (0..3)
        .map(|i| envelope("p", i, "a", &test_event(&format!("e{i}"))))
        .collect();
    master.try_ingest(&first).unwrap();
    assert_eq!(master.snapshot().unwrap(), 2);
    let more: Vec<Vec<u8>> = (3..5)
        .map(|i| envelope("p", i, "a", &test_event(&format!("e{i}"))))
        .collect();
    master.try_ingest(&more).unwrap(); // e3 and e4's acknowledgements are lost in the crash
    let state = master.state().clone();
    master.close().unwrap();
    let closed = master.try_ingest(&more).unwrap_err();
    assert!(matches!(closed.error, LogError::Closed));
    assert_eq!(master.plan_cycle(0.0).unwrap_err().done, CycleResult::default());

    // The new master (a new session) starts from the snapshot plus the tail.
    let mut master = logged_master(dir.path(), 2, MasterOptions::default());
    assert_eq!(master.loaded_snapshot_index(), Some(2));
    assert_eq!(*master.state(), state);
    assert_eq!(master.next_index(), 5);
    assert_eq!(master.recent_ids(), 5);
    assert_eq!(master.producer_next("p"), None);
    // The producer re-addresses its pending events e3, e4 and a new e5, renumbered from 0.
    let resent: Vec<Vec<u8>> = ["e3", "e4", "e5"]
        .iter()
        .zip(0..)
        .map(|(id, i)| envelope_in(2, "p", i, "a", &test_event(id)))
        .collect();
    let out = master.try_ingest(&resent).unwrap();
    let p: ProducerId = Arc::from("p");
    assert_eq!(test_ids(&out.broadcast), ["e5"]);
    assert_eq!(codec::decode_indexed_event(&out.broadcast[0]).unwrap().idx, 5); // no gap
    assert_eq!(out.acknowledged, vec![(p.clone(), 2), (p.clone(), 0), (p, 1)]);
    assert_eq!(master.counters().replayed_duplicates, 2);
    assert_eq!(master.counters().applied, 1);
    let events = decoded(&master.events_since(0, 100).unwrap());
    assert_eq!(events.iter().map(|e| e.idx).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
    assert_eq!(fold(&State::default(), &events).unwrap(), *master.state());
    master.close().unwrap();

    // The window is bounded: remembering only the last record, an older resend is applied again.
    let options = MasterOptions {
        dedup_window: 1,
        ..MasterOptions::default()
    };
    let mut master = logged_master(dir.path(), 3, options);
    assert_eq!(master.recent_ids(), 1);
    let out = master
        .try_ingest(&[
            envelope_in(3, "p", 0, "a", &test_event("e4")),
            envelope_in(3, "p", 1, "a", &test_event("e5")),
        ])
        .unwrap();
    assert_eq!(test_ids(&out.broadcast), ["e4"]);
    assert_eq!(master.counters().replayed_duplicates, 1);
}

#[test]
fn plan_cycle_disconnects_a_silent_node_through_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let options = MasterOptions {
        threshold: 2,
        ..MasterOptions::default()
    };
    let mut master = logged_master(dir.path(), 1, options);
    master
        .try_ingest(&[envelope("pa", 0, "a", &info("a")), envelope("pb", 0, "b", &info("b"))])
        .unwrap();
    let mut decided_at = Vec::new();
    let mut broadcast = Vec::new();
    for cycle in 0..4u32 {
        // a keeps producing, b is silent from here on.
        let event = test_event(&format!("a{cycle}"));
        master
            .try_ingest(&[envelope("pa", u64::from(cycle) + 1, "a", &event)])
            .unwrap();
        let out = master.plan_cycle(f64::from(cycle) * 10.0).unwrap();
        if !out.decisions.is_empty() {
            decided_at.push(cycle);
        }
        assert_eq!(out.decisions.len(), out.broadcast.len());
        broadcast.extend(out.broadcast);
        if cycle == 2 {
            assert_eq!(
                out.decisions,
                vec![NodeStaleness {
                    node_id: NodeId::from("b"),
                    last_index: Some(1),
                    stale_cycles: 2
                }]
            );
        }
    }
    // Cycle 0 is the grace cycle; cycles 1 and 2 count; b is gone after the second.
    assert_eq!(decided_at, vec![2]);
    assert_eq!(broadcast.len(), 1);
    let event = codec::decode_indexed_event(&broadcast[0]).unwrap();
    assert_eq!(event.origin, Some(NodeId::from("m")));
    let Event::NodeDisconnected(disconnected) = &event.event else {
        panic!("not a NodeDisconnected: {event:?}")
    };
    assert_eq!(
        (
            disconnected.node_id.as_str(),
            disconnected.last_index,
            disconnected.stale_cycles
        ),
        ("b", Some(1), 2)
    );
    assert_eq!(disconnected.event_id.as_str().len(), 36); // a uuid4
    assert!(!master.state().topology.contains("b"));
    assert!(master.state().topology.contains("a"));
    assert_eq!(master.counters().disconnects, 1);
    assert_eq!(master.events_since(event.idx, 1).unwrap()[0], broadcast[0]);
    let events = decoded(&master.events_since(0, 100).unwrap());
    assert_eq!(fold(&State::default(), &events).unwrap(), *master.state());
}

#[test]
fn events_since_pages_cover_the_log() {
    let mut master = MasterCore::new(session(1));
    assert!(matches!(master.events_since(0, 10), Err(MasterError::NoLog)));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    // One record per segment, so that the first segments can be dropped below (as a compaction would).
    let mut master =
        MasterCore::open(session(1), open_log(&path, MIN_SEGMENT_BYTES), MasterOptions::default()).unwrap();
    let batch: Vec<Vec<u8>> = (0..7)
        .map(|i| envelope("p", i, "a", &test_event(&big_id(&format!("e{i}")))))
        .collect();
    let broadcast = master.try_ingest(&batch).unwrap().broadcast;
    let mut pages = Vec::new();
    let mut idx = 0;
    loop {
        let page = master.events_since(idx, 3).unwrap();
        assert!(page.len() <= 3);
        if page.is_empty() {
            break;
        }
        idx += page.len() as u64;
        pages.push(page);
    }
    assert_eq!(pages.iter().map(Vec::len).collect::<Vec<_>>(), vec![3, 3, 1]);
    assert_eq!(pages.concat(), broadcast);
    assert_eq!(master.events_since(5, 0).unwrap().len(), 0);
    assert!(matches!(
        master.events_since(8, 10),
        Err(MasterError::AheadOfLog { idx: 8, next_index: 7 })
    ));
    master.snapshot().unwrap();
    master.close().unwrap();
    for first in 0..3 {
        std::fs::remove_file(path.join(clusterstate_core::log::format::segment_name(first))).unwrap();
    }
    let mut master =
        MasterCore::open(session(2), open_log(&path, MIN_SEGMENT_BYTES), MasterOptions::default()).unwrap();
    assert_eq!(master.next_index(), 7);
    assert!(matches!(
        master.events_since(2, 10),
        Err(MasterError::BeforeLog { idx: 2, first_index: 3 })
    ));
    assert_eq!(master.events_since(3, 10).unwrap(), broadcast[3..]);
}

#[test]
fn events_since_caps_the_page() {
    let dir = tempfile::tempdir().unwrap();
    let mut master = logged_master(dir.path(), 1, MasterOptions::default());
    let batch: Vec<Vec<u8>> = (0..=MAX_PAGE as u64)
        .map(|i| envelope("p", i, "a", &test_event(&i.to_string())))
        .collect();
    master.try_ingest(&batch).unwrap();
    assert_eq!(master.events_since(0, usize::MAX).unwrap().len(), MAX_PAGE);
    assert_eq!(master.events_since(1, usize::MAX).unwrap().len(), MAX_PAGE);
    assert_eq!(master.events_since(2, usize::MAX).unwrap().len(), MAX_PAGE - 1);
}

#[test]
fn bad_tracker_options_are_refused() {
    let options = MasterOptions {
        threshold: 0,
        ..MasterOptions::default()
    };
    assert!(matches!(
        MasterCore::with_options(session(1), options),
        Err(MasterError::Tracker(_))
    ));
    let options = MasterOptions {
        period_s: f64::NAN,
        ..MasterOptions::default()
    };
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        MasterCore::open(session(1), open_log(dir.path(), 1 << 20), options),
        Err(MasterError::Tracker(_))
    ));
}

#[test]
fn a_capacity_of_zero_is_refused() {
    let options = MasterOptions {
        capacity: 0,
        ..MasterOptions::default()
    };
    assert!(matches!(options.validate(), Err(MasterError::InvalidOptions(_))));
    let err = MasterCore::with_options(session(1), options).unwrap_err();
    assert_eq!(err.to_string(), "capacity must be at least 1");
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(
        MasterCore::open(session(1), open_log(dir.path(), 1 << 20), options),
        Err(MasterError::InvalidOptions(_))
    ));
    assert!(MasterOptions::default().validate().is_ok());
}
