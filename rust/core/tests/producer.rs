//! `ProducerOutbox`'s public API: numbering, acknowledgements, resends with backoff, gap reports, retargeting,
//! and delivery through a lossy network to a `MasterCore`.

mod common;

use std::sync::Arc;

use clusterstate_core::codec;
use clusterstate_core::envelope::{new_producer_id, Gap, LocalEnvelope, ProducerId};
use clusterstate_core::events::{Event, SessionId};
use clusterstate_core::master::MasterCore;
use clusterstate_core::producer::{OutboxError, OutboxOptions, ProducerOutbox};
use clusterstate_core::{NodeId, State};
use common::session;
use proptest::prelude::*;

/// A `TestEvent` with event id `id`.
fn test_event(id: &str) -> Event {
    codec::decode_event(common::test_event(id).as_bytes()).unwrap()
}

fn outbox(options: OutboxOptions) -> ProducerOutbox {
    ProducerOutbox::new(Arc::from("p"), NodeId::from("a"), session(1), options).unwrap()
}

fn options(resend: f64, max: f64, capacity: usize) -> OutboxOptions {
    OutboxOptions {
        resend_after_s: resend,
        max_resend_after_s: max,
        capacity,
    }
}

fn decode(bytes: &[u8]) -> LocalEnvelope {
    serde_json::from_slice(bytes).unwrap()
}

/// The `TestEvent` ids of broadcast `IndexedEvent`s, checking their global indices run from `first`.
fn test_ids(broadcast: &[Vec<u8>], first: u64) -> Vec<String> {
    for (bytes, idx) in broadcast.iter().zip(first..) {
        assert_eq!(codec::decode_indexed_event(bytes).unwrap().idx, idx);
    }
    common::test_ids(broadcast)
}

#[test]
fn options_are_checked() {
    assert_eq!(OutboxOptions::default(), options(2.0, 5.0, 65_536));
    for bad in [
        options(0.0, 30.0, 1),
        options(-1.0, 30.0, 1),
        options(f64::NAN, 30.0, 1),
        options(f64::INFINITY, 30.0, 1),
        options(2.0, f64::NAN, 1),
        options(2.0, 0.0, 1),
        options(2.0, 1.0, 1),
        options(2.0, 30.0, 0),
    ] {
        let err = ProducerOutbox::new(Arc::from("p"), NodeId::from("a"), session(1), bad).unwrap_err();
        assert!(matches!(err, OutboxError::InvalidOptions(_)), "{bad:?}: {err}");
    }
}

#[test]
fn producer_ids_are_fresh_and_name_the_node() {
    let first = new_producer_id("node-a");
    let second = new_producer_id("node-a");
    assert_ne!(first, second);
    let suffix = first.strip_prefix("node-a/").unwrap();
    assert_eq!(suffix.len(), 32);
    assert!(suffix.chars().all(|c| c.is_ascii_hexdigit()));
}

#[test]
fn push_numbers_and_encodes_envelopes() {
    let mut outbox = outbox(OutboxOptions::default());
    let first = outbox.push(test_event("e0"), 0.0).unwrap();
    assert_eq!(
        first,
        br#"{"origin":"p","origin_idx":0,"session":{"master_node_id":"m","election_clock":1},"event":{"TestEvent":{"event_id":"e0"}},"node_id":"a"}"#
    );
    let second = outbox.push_bytes(br#"{"TestEvent":{"event_id":"e1"}}"#, 0.5).unwrap();
    assert_eq!(decode(&second).origin_idx, 1);
    assert_eq!(decode(&second).event, test_event("e1"));
    assert_eq!((outbox.next_seq(), outbox.pending()), (2, 2));
    let counters = outbox.counters();
    assert_eq!((counters.pushed, counters.sent, counters.pending), (2, 2, 2));

    // Bad bytes: refused, nothing changed.
    let err = outbox.push_bytes(b"{\"Nope\":{}}", 1.0).unwrap_err();
    assert!(matches!(err, OutboxError::Decode(_)));
    assert_eq!((outbox.next_seq(), outbox.pending()), (2, 2));
    assert_eq!(outbox.counters().pushed, 2);
}

#[test]
fn an_event_without_id_resends_identically() {
    let mut outbox = outbox(options(1.0, 1.0, 4));
    let sent = outbox.push_bytes(br#"{"TestEvent":{}}"#, 0.0).unwrap();
    assert_eq!(outbox.due(1.0), vec![sent]);
}

#[test]
fn full_outbox_refuses_without_change() {
    let mut outbox = outbox(options(2.0, 30.0, 2));
    outbox.push(test_event("e0"), 0.0).unwrap();
    outbox.push(test_event("e1"), 0.0).unwrap();
    assert_eq!(
        outbox.push(test_event("e2"), 0.0),
        Err(OutboxError::Full { capacity: 2 })
    );
    assert_eq!((outbox.next_seq(), outbox.pending()), (2, 2));
    let counters = outbox.counters();
    assert_eq!((counters.pushed, counters.refused_full), (2, 1));
    assert_eq!(outbox.acknowledge([0]), 1);
    let third = outbox.push(test_event("e2"), 0.0).unwrap();
    assert_eq!(decode(&third).origin_idx, 2);
}

#[test]
fn spoofed_events_are_refused_at_the_source() {
    let mut outbox = outbox(OutboxOptions::default());
    let about_b = br#"{"NodeGatheredInfo":{"event_id":"g","node_id":"b","info":{"MiscData":{"friendly_name":"x"}}}}"#;
    assert_eq!(outbox.push_bytes(about_b, 0.0), Err(OutboxError::Spoofed));
    let disconnect = br#"{"NodeDisconnected":{"event_id":"d","node_id":"b","last_index":0,"stale_cycles":3}}"#;
    assert_eq!(outbox.push_bytes(disconnect, 0.0), Err(OutboxError::Spoofed));
    assert_eq!((outbox.next_seq(), outbox.pending()), (0, 0));
    let about_a = about_b.to_vec();
    let about_a = String::from_utf8(about_a).unwrap().replace("\"b\"", "\"a\"");
    assert!(outbox.push_bytes(about_a.as_bytes(), 0.0).is_ok());
}

#[test]
fn acknowledgements_remove_and_ignore() {
    let mut outbox = outbox(OutboxOptions::default());
    for id in ["e0", "e1", "e2"] {
        outbox.push(test_event(id), 0.0).unwrap();
    }
    assert_eq!(outbox.acknowledge([1, 1, 7]), 1);
    assert_eq!(outbox.pending_seqs().collect::<Vec<_>>(), vec![0, 2]);
    let p: ProducerId = Arc::from("p");
    let q: ProducerId = Arc::from("q");
    let pairs = [(q.clone(), 0), (p.clone(), 2), (q, 2), (p, 1)];
    assert_eq!(outbox.acknowledge_pairs(&pairs), 1);
    assert_eq!(outbox.pending_seqs().collect::<Vec<_>>(), vec![0]);
    // A previous master's acknowledgement: ignored.
    assert_eq!(outbox.acknowledge_from(&session(0), [0]), 0);
    assert_eq!(outbox.pending_seqs().collect::<Vec<_>>(), vec![0]);
    let counters = outbox.counters();
    // 1 and 2 removed; the repeated 1 (twice), the unknown 7, the old session's 0: ignored. q's pairs are not
    // this outbox's.
    assert_eq!(
        (counters.acknowledged, counters.ignored_acks, counters.pending),
        (2, 4, 1)
    );
    assert_eq!(outbox.acknowledge_from(&session(1), [0]), 1);
    assert_eq!(outbox.pending(), 0);
}

#[test]
fn resends_by_age_with_backoff() {
    let mut outbox = outbox(options(2.0, 5.0, 16));
    let e0 = outbox.push(test_event("e0"), 0.0).unwrap();
    let e1 = outbox.push(test_event("e1"), 1.0).unwrap();
    assert!(outbox.due(1.9).is_empty());
    assert_eq!(outbox.due(2.0), vec![e0.clone()]); // e0 is 2 s old; e1 only 1 s
    assert_eq!(outbox.due(3.0), vec![e1.clone()]); // e1 2 s old; e0 resent 1 s ago, next after 4 s
    assert!(outbox.due(5.9).is_empty());
    assert_eq!(outbox.due(6.0), vec![e0.clone()]); // 2 + 4; its interval is now capped at 5
    assert_eq!(outbox.due(7.0), vec![e1.clone()]); // 3 + 4
    assert!(outbox.due(10.9).is_empty());
    assert_eq!(outbox.due(11.0), vec![e0.clone()]); // 6 + 5 (the cap), not 6 + 8
    outbox.acknowledge([1]);
    assert_eq!(outbox.due(100.0), vec![e0]); // an acknowledged envelope is never resent
    assert_eq!(outbox.counters().resent, 6);
}

fn gap(producer: &str, missing: u64, held: u64) -> Gap {
    Gap {
        producer: Arc::from(producer),
        missing,
        held,
    }
}

#[test]
fn the_master_reports_the_first_gap_of_each_producer_heard() {
    let mut master = MasterCore::new(session(1));
    let mut outbox = outbox(options(2.0, 5.0, 16));
    let sent: Vec<Vec<u8>> = (0..5)
        .map(|i| outbox.push(test_event(&format!("e{i}")), 0.0).unwrap())
        .collect();
    let out = master.ingest(&[&sent[0], &sent[2], &sent[4]]);
    assert_eq!(out.missing, vec![gap("p", 1, 4)]);
    // Heard from again (a copy) and still waiting: reported again.
    assert_eq!(master.ingest(&[&sent[2]]).missing, vec![gap("p", 1, 4)]);
    // Not heard from: no report.
    assert!(master.ingest(&Vec::<Vec<u8>>::new()).missing.is_empty());
    let out = master.ingest(&[&sent[1]]);
    assert_eq!(out.missing, vec![gap("p", 3, 4)]);
    assert_eq!(master.ingest(&[&sent[3]]).missing, vec![]);
}

#[test]
fn a_reported_gap_is_resent_once_per_evidence() {
    let mut outbox = outbox(options(2.0, 5.0, 16));
    let e0 = outbox.push(test_event("e0"), 0.0).unwrap();
    outbox.push(test_event("e1"), 0.1).unwrap();
    outbox.push(test_event("e2"), 0.2).unwrap();
    // Other producers' reports and unknown numbers: nothing.
    assert!(outbox.resend_missing(&[gap("q", 0, 1), gap("p", 7, 9)], 0.3).is_empty());
    // The master holds e1, sent after e0: e0 at once, not 2 s after its send.
    assert_eq!(outbox.resend_missing(&[gap("p", 0, 1)], 0.3), vec![e0.clone()]);
    // The same report again (another batch, or a copy): e0 was sent after e1 and e2 since.
    assert!(outbox.resend_missing(&[gap("p", 0, 1), gap("p", 0, 2)], 0.4).is_empty());
    // A later send (a new push) reaching the master while e0 is still missing: new evidence.
    outbox.push(test_event("e3"), 0.5).unwrap();
    assert_eq!(outbox.resend_missing(&[gap("p", 0, 3)], 0.6), vec![e0.clone()]);
    // The backoff interval is untouched (2 s); the resend counts as a send at 0.6.
    let due: Vec<u64> = outbox.due(2.5).iter().map(|bytes| decode(bytes).origin_idx).collect();
    assert_eq!(due, vec![1, 2, 3]);
    assert_eq!(outbox.due(2.6), vec![e0.clone()]);
    // Held acknowledged (the gap was filled meanwhile): a stale report, nothing.
    outbox.acknowledge([1, 2, 3]);
    assert!(outbox.resend_missing(&[gap("p", 0, 3)], 10.0).is_empty());
    // Another session's report: nothing.
    outbox.push(test_event("e4"), 11.0).unwrap();
    assert!(outbox
        .resend_missing_from(&session(0), &[gap("p", 0, 4)], 11.1)
        .is_empty());
    assert_eq!(
        outbox.resend_missing_from(&session(1), &[gap("p", 0, 4)], 11.1),
        vec![e0]
    );
    let counters = outbox.counters();
    assert_eq!((counters.resent_missing, counters.resent), (3, 4));
}

#[test]
fn bad_clocks_count_as_no_time_passed() {
    let mut outbox = outbox(options(2.0, 30.0, 16));
    // Before any valid time: the send is timed from the first valid time seen.
    let e0 = outbox.push(test_event("e0"), f64::NAN).unwrap();
    assert!(outbox.due(f64::INFINITY).is_empty());
    assert!(outbox.due(10.0).is_empty());
    assert!(outbox.due(11.9).is_empty());
    assert_eq!(outbox.due(12.0), vec![e0.clone()]);
    // Time going backwards: the latest time stands, so nothing is due early or twice.
    assert!(outbox.due(0.0).is_empty());
    assert!(outbox.due(f64::NEG_INFINITY).is_empty());
    assert!(outbox.due(15.9).is_empty());
    assert_eq!(outbox.due(16.0), vec![e0]);
    // A push with a bad clock is timed at the latest valid time.
    let e1 = outbox.push(test_event("e1"), f64::NAN).unwrap();
    assert_eq!(outbox.due(18.0), vec![e1]);
}

#[test]
fn retarget_renumbers_for_a_new_master() {
    let mut outbox = outbox(options(2.0, 30.0, 16));
    let mut old = MasterCore::new(session(1));
    let sent: Vec<Vec<u8>> = ["e0", "e1", "e2", "e3"]
        .iter()
        .map(|id| outbox.push(test_event(id), 0.0).unwrap())
        .collect();
    let out = old.ingest(&sent[..2]);
    outbox.acknowledge_pairs(&out.acknowledged[..1]); // e1's acknowledgement is lost
    assert!(outbox.retarget(session(1)).is_empty()); // the same session: nothing to do
    let resent = outbox.retarget(session(2));
    assert_eq!(outbox.session(), &session(2));
    assert_eq!(
        resent.iter().map(|b| decode(b).origin_idx).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
    assert!(resent.iter().all(|b| decode(b).session == session(2)));
    assert_eq!(outbox.next_seq(), 3);
    assert_eq!(decode(&outbox.push(test_event("e4"), 0.0).unwrap()).origin_idx, 3);
    assert!(outbox.due(1.0).is_empty()); // the retargeted envelopes were sent at the latest time (0)
    assert_eq!(outbox.due(2.0).len(), 4);

    let mut new = MasterCore::new(session(2));
    let out = new.ingest(&resent);
    assert_eq!(test_ids(&out.broadcast, 0), vec!["e1", "e2", "e3"]);
    assert_eq!(outbox.acknowledge_pairs(&out.acknowledged), 3);
    assert_eq!(outbox.pending_seqs().collect::<Vec<_>>(), vec![3]);
    assert_eq!(outbox.counters().retargeted, 3);
    // The old master ignores the new session's envelopes.
    assert!(old.ingest(&resent).broadcast.is_empty());
}

#[test]
fn retarget_drops_the_old_masters_decisions() {
    let mut outbox =
        ProducerOutbox::new(Arc::from("pm"), NodeId::from("m"), session(1), OutboxOptions::default()).unwrap();
    let disconnect = br#"{"NodeDisconnected":{"event_id":"d","node_id":"b","last_index":0,"stale_cycles":3}}"#;
    outbox.push_bytes(disconnect, 0.0).unwrap();
    outbox.push(test_event("e"), 0.0).unwrap();
    let other_master = SessionId {
        master_node_id: NodeId::from("x"),
        election_clock: 2,
    };
    let resent = outbox.retarget(other_master);
    assert_eq!(resent.len(), 1);
    assert_eq!(decode(&resent[0]).origin_idx, 0);
    assert_eq!(decode(&resent[0]).event, test_event("e"));
    assert_eq!(outbox.counters().dropped_on_retarget, 1);
    assert_eq!(outbox.next_seq(), 1);
}

#[test]
fn a_restarted_producer_is_a_new_producer() {
    let mut master = MasterCore::new(session(1));
    let mut first = ProducerOutbox::new(
        new_producer_id("a"),
        NodeId::from("a"),
        session(1),
        OutboxOptions::default(),
    )
    .unwrap();
    let out = master.ingest(&[first.push(test_event("old0"), 0.0).unwrap()]);
    assert_eq!(out.broadcast.len(), 1);
    // Restarted: same node, a new id, numbering from 0 again.
    let mut second = ProducerOutbox::new(
        new_producer_id("a"),
        NodeId::from("a"),
        session(1),
        OutboxOptions::default(),
    )
    .unwrap();
    let out = master.ingest(&[
        second.push(test_event("new0"), 0.0).unwrap(),
        second.push(test_event("new1"), 0.0).unwrap(),
    ]);
    assert_eq!(test_ids(&out.broadcast, 1), vec!["new0", "new1"]);
    assert_eq!(second.acknowledge_pairs(&out.acknowledged), 2);
    assert_eq!(first.acknowledge_pairs(&out.acknowledged), 0);
    assert_eq!(first.pending(), 1);
}

/// splitmix64: the channel's dice, seeded by proptest so a failure replays.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `true` with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.next() % (i as u64 + 1)).unwrap();
            items.swap(i, j);
        }
    }
}

/// A lossy, duplicating, reordering network: each message may be dropped or copied; what is in flight arrives
/// in a random order, a random part of it per tick.
struct Channel<T> {
    in_flight: Vec<T>,
    drop_percent: u64,
    copy_percent: u64,
}

impl<T: Clone> Channel<T> {
    fn send(&mut self, dice: &mut Dice, message: T) {
        if dice.chance(self.drop_percent) {
            return;
        }
        if dice.chance(self.copy_percent) {
            self.in_flight.push(message.clone());
        }
        self.in_flight.push(message);
    }

    fn deliver(&mut self, dice: &mut Dice) -> Vec<T> {
        dice.shuffle(&mut self.in_flight);
        let keep = usize::try_from(dice.next() % (self.in_flight.len() as u64 + 1)).unwrap();
        self.in_flight.split_off(keep)
    }
}

proptest! {
    /// A producer pushing through a lossy, duplicating, reordering network to a real master, resending what is
    /// due as simulated time passes and what the master reports missing: every event is applied exactly once, in push order, and the outbox ends
    /// empty.
    #[test]
    fn lossy_network_delivers_exactly_once_in_order(
        seed in any::<u64>(),
        events in 1..60usize,
        capacity in 1..20usize,
        drop_percent in 0..60u64,
        ack_drop_percent in 0..60u64,
        copy_percent in 0..40u64,
    ) {
        let mut dice = Dice(seed);
        let mut outbox = outbox(options(1.0, 8.0, capacity));
        let mut master = MasterCore::new(session(1));
        let mut to_master = Channel { in_flight: Vec::new(), drop_percent, copy_percent };
        let mut to_producer = Channel { in_flight: Vec::new(), drop_percent: ack_drop_percent, copy_percent };
        let mut reports = Channel { in_flight: Vec::new(), drop_percent: ack_drop_percent, copy_percent };
        let mut broadcast = Vec::new();
        let mut pushed = 0;
        let mut tick = 0u32;
        while pushed < events || outbox.pending() > 0 {
            tick += 1;
            prop_assert!(tick < 100_000, "no progress: {} pending", outbox.pending());
            let now = f64::from(tick) * 0.25;
            // The producer pushes up to 3 events a tick, backing off when full.
            for _ in 0..3 {
                if pushed == events {
                    break;
                }
                match outbox.push(test_event(&format!("e{pushed}")), now) {
                    Ok(bytes) => {
                        to_master.send(&mut dice, bytes);
                        pushed += 1;
                    }
                    Err(OutboxError::Full { .. }) => break,
                    Err(err) => prop_assert!(false, "push failed: {err}"),
                }
            }
            for bytes in outbox.due(now) {
                to_master.send(&mut dice, bytes);
            }
            let batch = to_master.deliver(&mut dice);
            let out = master.ingest(&batch);
            prop_assert!(out.rejected.is_empty(), "{:?}", out.rejected);
            broadcast.extend(out.broadcast);
            for ack in out.acknowledged {
                to_producer.send(&mut dice, ack);
            }
            for report in out.missing {
                reports.send(&mut dice, report);
            }
            let acks = to_producer.deliver(&mut dice);
            outbox.acknowledge_pairs(&acks);
            for bytes in outbox.resend_missing(&reports.deliver(&mut dice), now) {
                to_master.send(&mut dice, bytes);
            }
        }
        let expected: Vec<String> = (0..events).map(|i| format!("e{i}")).collect();
        prop_assert_eq!(test_ids(&broadcast, 0), expected);
        prop_assert_eq!(outbox.pending(), 0);
        let counters = outbox.counters();
        prop_assert_eq!(counters.pushed, events as u64);
        prop_assert_eq!(counters.acknowledged, events as u64);
        prop_assert_eq!(master.counters().buffered, 0);
        prop_assert!(master.state() != &State::default());
    }
}

#[test]
fn counters_iter_names_every_counter_once() {
    let mut outbox = outbox(options(2.0, 5.0, 1));
    outbox.push(test_event("e0"), 0.0).unwrap();
    assert!(outbox.push(test_event("e1"), 0.0).is_err());
    assert_eq!(
        outbox.counters().iter().collect::<Vec<_>>(),
        [
            ("pushed", 1),
            ("sent", 1),
            ("resent", 0),
            ("resent_missing", 0),
            ("retargeted", 0),
            ("dropped_on_retarget", 0),
            ("acknowledged", 0),
            ("ignored_acks", 0),
            ("refused_full", 1),
            ("pending", 1),
        ]
    );
}
