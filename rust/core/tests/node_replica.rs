//! `NodeCore`'s replica log: log first, then apply; catch-up pages from it; a refused write; the hand-over of the
//! log between a `NodeCore` and a `MasterCore`, both ways.

mod common;

use clusterstate_core::codec;
use clusterstate_core::events::IndexedEvent;
use clusterstate_core::log::{Durability, EventLog, LogError, Options, MIN_SEGMENT_BYTES};
use clusterstate_core::master::{MasterCore, MasterError, MasterOptions};
use clusterstate_core::node::{JoinRefused, NodeCore};
use clusterstate_core::{fold, State};
use common::{envelope, envelope_in, info, session, test_event};

fn open_log(dir: &std::path::Path, segment_bytes: u64) -> EventLog {
    let options = Options {
        create: true,
        segment_bytes,
        durability: Durability::None,
        ..Options::default()
    };
    EventLog::open(dir, options).unwrap()
}

fn replica(dir: &std::path::Path) -> NodeCore {
    NodeCore::open(open_log(dir, 64 << 20), 64).unwrap()
}

/// Global event `idx` as the master broadcasts it (canonical `snake_case` JSON): every third one a
/// `NodeGatheredInfo` about its origin, so that the State changes.
fn broadcast(idx: u64) -> Vec<u8> {
    let origin = ["a", "b", "c"][usize::try_from(idx % 3).unwrap()];
    let event = if idx % 3 == 0 {
        info(origin)
    } else {
        test_event(&format!("e{idx}"))
    };
    format!(r#"{{"idx":{idx},"origin":"{origin}","event":{event}}}"#).into_bytes()
}

fn decoded(raw: &[Vec<u8>]) -> Vec<IndexedEvent> {
    raw.iter()
        .map(|bytes| codec::decode_indexed_event(bytes).unwrap())
        .collect()
}

fn replay(raw: &[Vec<u8>]) -> State {
    fold(&State::default(), &decoded(raw)).unwrap()
}

#[test]
fn every_applied_event_is_logged_once_in_index_order_before_it_is_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = replica(dir.path());
    assert_eq!((node.next_index(), node.loaded_snapshot_index()), (0, None));
    let out = node
        .try_receive(&[broadcast(2), b"junk".to_vec(), broadcast(0), broadcast(0)])
        .unwrap();
    assert_eq!((out.applied, out.missing), (1, Some(1)));
    assert_eq!(node.log().unwrap().next_index(), 1); // 2 waits for 1 and is not logged yet
    let out = node
        .try_receive(&[broadcast(3), broadcast(1), broadcast(2), broadcast(4)])
        .unwrap();
    assert_eq!((out.applied, out.missing), (4, None));
    let logged = node.events_since(0, 100).unwrap();
    assert_eq!(logged, (0..5).map(broadcast).collect::<Vec<_>>());
    assert_eq!(replay(&logged), *node.state());
    let counters = node.counters();
    assert_eq!((counters.appended, counters.applied, counters.unlogged), (5, 5, 0));
    assert_eq!((counters.duplicates, counters.rejected_total()), (2, 1));
    // Pages, as the master serves them.
    assert_eq!(node.events_since(3, 1).unwrap(), [broadcast(3)]);
    assert!(node.events_since(5, 10).unwrap().is_empty());
    assert!(matches!(
        node.events_since(6, 10),
        Err(MasterError::AheadOfLog { idx: 6, next_index: 5 })
    ));
}

#[test]
fn the_log_holds_the_canonical_bytes_of_what_was_applied() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = replica(dir.path());
    let spaced = br#"{ "event": {"TestEvent": {"event_id": "x"}}, "idx": 0 }"#;
    node.try_receive(&[spaced]).unwrap();
    assert_eq!(
        node.events_since(0, 1).unwrap(),
        [br#"{"idx":0,"origin":null,"event":{"TestEvent":{"event_id":"x"}}}"#.to_vec()]
    );
}

#[test]
fn without_a_log_the_replica_calls_say_so_and_join_works() {
    let mut node = NodeCore::new();
    assert!(matches!(node.events_since(0, 10), Err(MasterError::NoLog)));
    assert!(matches!(node.snapshot(), Err(MasterError::NoLog)));
    assert!(matches!(node.sync(), Err(MasterError::NoLog)));
    node.close().unwrap();
    assert_eq!(node.try_receive(&[broadcast(0)]).unwrap().applied, 1);
    assert_eq!(node.join(replay(&(0..3).map(broadcast).collect::<Vec<_>>())), Ok(true));
}

#[test]
fn a_node_with_a_log_refuses_to_join_from_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = replica(dir.path());
    node.try_receive(&[broadcast(0)]).unwrap();
    let ahead = replay(&(0..3).map(broadcast).collect::<Vec<_>>());
    assert_eq!(node.join(ahead.clone()), Err(JoinRefused));
    assert_eq!(node.next_index(), 1);
    node.close().unwrap();
    assert_eq!(node.join(ahead), Err(JoinRefused));
}

#[test]
fn a_refused_write_leaves_the_state_equal_to_the_log_and_a_later_receive_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log");
    // Segments of one record: the second record of a run needs a new segment file, which cannot be created once
    // the directory is gone, after the first one was written.
    let mut node = NodeCore::open(open_log(&path, MIN_SEGMENT_BYTES), 64).unwrap();
    let big = |idx: u64| {
        let id = format!("e{idx}-{}", "x".repeat(usize::try_from(MIN_SEGMENT_BYTES / 2).unwrap()));
        format!(r#"{{"idx":{idx},"origin":"a","event":{}}}"#, test_event(&id)).into_bytes()
    };
    std::fs::remove_dir_all(&path).unwrap();
    let failure = node.try_receive(&[big(5), big(1), big(0), big(2)]).unwrap_err();
    assert!(matches!(failure.error, LogError::Io { .. }), "{:?}", failure.error);
    assert_eq!((failure.done.applied, failure.done.missing), (1, Some(1)));
    assert_eq!(node.log().unwrap().next_index(), 1);
    assert_eq!(node.next_index(), 1);
    let counters = node.counters();
    assert_eq!(
        (
            counters.appended,
            counters.applied,
            counters.unlogged,
            counters.buffered
        ),
        (1, 1, 2, 1)
    );
    // Once the disk works again, the refused events are accepted when fetched again; 5 stayed buffered.
    std::fs::create_dir_all(&path).unwrap();
    let out = node.try_receive(&[big(1), big(2), big(3), big(4)]).unwrap();
    assert_eq!((out.applied, out.missing), (5, None));
    // Record 0's segment went with the directory; the log holds the rest, each once, in order.
    let logged = node.events_since(1, 10).unwrap();
    assert_eq!(logged, (1..6).map(big).collect::<Vec<_>>());
    assert_eq!(replay(&[vec![big(0)], logged].concat()), *node.state());
    // The infallible form keeps the error.
    std::fs::remove_dir_all(&path).unwrap();
    assert_eq!(node.receive(&[big(6)]).applied, 0);
    assert!(node.last_log_error().is_some());
    assert_eq!(node.missing(), Some(6));
}

#[test]
fn the_log_is_handed_over_to_a_master_and_back() {
    let dir = tempfile::tempdir().unwrap();
    // The first master broadcasts 6 events; the node receives them shuffled, with copies.
    let mut first = MasterCore::new(session(1));
    let envelopes: Vec<Vec<u8>> = (0..6)
        .map(|i| envelope("p", i, "a", &test_event(&format!("e{i}"))))
        .collect();
    let sent = first.try_ingest(&envelopes).unwrap().broadcast;
    let mut node = replica(dir.path());
    let shuffled = [&sent[4], &sent[0], &sent[1], &sent[5], &sent[0], &sent[3], &sent[2]];
    assert_eq!(node.try_receive(&shuffled).unwrap().applied, 6);
    assert_eq!(node.snapshot().unwrap(), 5);
    assert_eq!(*node.state(), *first.state());
    node.close().unwrap();
    assert!(matches!(
        node.try_receive(&[broadcast(6)]).unwrap_err().error,
        LogError::Closed
    ));
    assert_eq!(node.next_index(), 6);

    // The node is elected: its replica log continues as the master's log, the same history and index.
    let mut master = MasterCore::open(session(2), open_log(dir.path(), 64 << 20), MasterOptions::default()).unwrap();
    assert_eq!((master.next_index(), master.loaded_snapshot_index()), (6, Some(5)));
    assert_eq!(*master.state(), *node.state());
    assert_eq!(master.events_since(0, 10).unwrap(), sent);
    let more = master
        .try_ingest(&[
            envelope_in(2, "q", 0, "b", &info("b")),
            envelope_in(2, "q", 1, "b", &test_event("f")),
        ])
        .unwrap()
        .broadcast;
    assert_eq!(decoded(&more).iter().map(|e| e.idx).collect::<Vec<_>>(), [6, 7]);
    let state = master.state().clone();
    master.close().unwrap();

    // And back: a node on the master's log has everything and continues the index.
    let mut node = replica(dir.path());
    assert_eq!((node.next_index(), node.loaded_snapshot_index()), (8, Some(5)));
    assert_eq!(*node.state(), state);
    let next = format!(r#"{{"idx":8,"origin":"b","event":{}}}"#, test_event("g")).into_bytes();
    assert_eq!(node.try_receive(std::slice::from_ref(&next)).unwrap().applied, 1);
    let logged = node.events_since(0, 100).unwrap();
    assert_eq!(logged, [sent, more, vec![next]].concat());
    assert_eq!(replay(&logged), *node.state());
}

#[test]
fn a_node_dropped_without_close_reopens_with_what_the_log_holds() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = replica(dir.path());
    node.try_receive(&(0..4).map(broadcast).collect::<Vec<_>>()).unwrap();
    drop(node);
    let mut node = replica(dir.path());
    assert_eq!(node.next_index(), 4);
    assert_eq!(replay(&node.events_since(0, 10).unwrap()), *node.state());
    assert_eq!(node.try_receive(&[broadcast(4)]).unwrap().applied, 1);
}
