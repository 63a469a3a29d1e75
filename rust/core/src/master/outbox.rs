//! [`Outbox`]: the producer side of the ingest path — one producer instance's sequencer and outbox.
//!
//! The master applies a producer's events strictly in sequence (its [`Resequencer`](super::Resequencer)), so a
//! producer must number its events `0, 1, 2, ...` without a gap and keep every one until the master acknowledges
//! it: an envelope lost on the way would otherwise hold back every later one forever. The outbox does both:
//!
//! - [`Outbox::push`] gives an event the next sequence number, encodes its [`LocalEnvelope`] and keeps it;
//! - [`Outbox::acknowledge`] drops what the master acknowledged (unknown and repeated acknowledgements are
//!   ignored: acknowledgements travel over the same lossy, duplicating network);
//! - [`Outbox::due`] returns the envelopes whose last send is older than their resend interval, each resend doubling
//!   that envelope's interval up to a cap (exponential backoff: a master that is down is not flooded, and a single
//!   lost envelope is not resent with every unacknowledged one);
//! - [`Outbox::resend_missing`] answers the master's report of the first sequence number it is missing
//!   ([`Gap`]): that envelope is resent at once, without waiting out its backoff, since every later event of the
//!   producer waits for it in the master's resequencing buffer (and the staleness tracker sees no advance meanwhile);
//! - [`Outbox::retarget`] follows an election: the new master knows nothing of this producer, so the pending
//!   envelopes are renumbered from 0 under the new session and sent at once.
//!
//! Time is the caller's (`now`, seconds on any monotonic clock): the outbox never reads a clock, so it is
//! deterministic and testable. A `now` that is not finite, or earlier than one already seen, counts as "no time
//! passed" (the outbox keeps the latest time it has seen), so a bad clock can delay a resend but never panic or
//! resend early.
//!
//! A producer id belongs to one producer *instance* ([`new_producer_id`]): a restarted producer takes a fresh id
//! and numbers from 0 again, which the master cannot confuse with the old instance's numbers.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use super::ingest::{Gap, LocalEnvelope, ProducerId};
use crate::codec;
use crate::error::DecodeError;
use crate::events::{Event, SessionId};
use crate::ids::NodeId;
use crate::json::Case;

/// A fresh producer id for a producer instance running on `node_id`: `"{node_id}/{random suffix}"`.
///
/// Take a new one at every start: the master binds sequence numbers to the id, so a restarted producer that reused
/// its old id would have its events from 0 dropped as stale copies of the old instance's.
pub fn new_producer_id(node_id: &str) -> ProducerId {
    Arc::from(format!("{node_id}/{}", uuid::Uuid::new_v4().simple()))
}

/// How an [`Outbox`] resends and how much it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OutboxOptions {
    /// Seconds after its first send an unacknowledged envelope is resent (default 2).
    pub resend_after_s: f64,
    /// The cap of an envelope's resend interval, which doubles at every resend (default 5).
    ///
    /// Keep it well below the staleness tracker's period `T` (default 10 s): a producer whose last event is lost
    /// and that pushes nothing after it (so the master sees no gap to report) gets that event through only by
    /// these resends, and the master's detection window for it starts when it arrives. With the default, every
    /// pending envelope is sent at least twice per period.
    pub max_resend_after_s: f64,
    /// Unacknowledged envelopes kept at most; a push beyond it is refused with [`OutboxError::Full`] (default 65 536).
    pub capacity: usize,
}

impl Default for OutboxOptions {
    fn default() -> Self {
        Self {
            resend_after_s: 2.0,
            max_resend_after_s: 5.0,
            capacity: 65_536,
        }
    }
}

impl OutboxOptions {
    /// Refuse options an outbox cannot work with: a resend time that is not a positive finite number of seconds,
    /// a cap below the first interval, or room for no envelope.
    pub fn validate(&self) -> Result<(), OutboxError> {
        let positive = |s: f64| s.is_finite() && s > 0.0;
        if !positive(self.resend_after_s) {
            return Err(OutboxError::InvalidOptions(
                "resend_after must be a positive finite number of seconds",
            ));
        }
        if !positive(self.max_resend_after_s) {
            return Err(OutboxError::InvalidOptions(
                "max_resend_after must be a positive finite number of seconds",
            ));
        }
        if self.max_resend_after_s < self.resend_after_s {
            return Err(OutboxError::InvalidOptions(
                "max_resend_after must not be less than resend_after",
            ));
        }
        if self.capacity == 0 {
            return Err(OutboxError::InvalidOptions("capacity must be at least 1"));
        }
        Ok(())
    }
}

/// Why the [`Outbox`] refused a call. A refused call changes nothing but the refusal counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxError {
    /// [`OutboxOptions`] the outbox cannot work with.
    InvalidOptions(&'static str),
    /// `capacity` envelopes are unacknowledged: back off until acknowledgements free room.
    Full {
        /// The outbox's capacity.
        capacity: usize,
    },
    /// The event bytes of [`Outbox::push_bytes`] are not an event.
    Decode(DecodeError),
    /// An event the master would refuse as `spoofed` (docs/master.md): a node-scoped event about another node than
    /// the outbox's, or a node disconnection from a node that is not the session's master. Kept, it would never be
    /// acknowledged and would hold back every later event of this producer.
    Spoofed,
    /// The sequence numbers are used up (`u64::MAX` events under one session).
    Exhausted,
}

impl fmt::Display for OutboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidOptions(message) => write!(f, "invalid outbox options: {message}"),
            Self::Full { capacity } => write!(
                f,
                "producer outbox is full ({capacity} unacknowledged envelopes): back off until acknowledgements free room"
            ),
            Self::Decode(err) => err.fmt(f),
            Self::Spoofed => f.write_str(
                "the master would refuse this event as spoofed: it is about another node than the producer's, \
                 or only the session's master may send it",
            ),
            Self::Exhausted => f.write_str("the producer's sequence numbers are used up"),
        }
    }
}

impl std::error::Error for OutboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Decode(err) => Some(err),
            _ => None,
        }
    }
}

impl From<DecodeError> for OutboxError {
    fn from(err: DecodeError) -> Self {
        Self::Decode(err)
    }
}

/// Running totals of an [`Outbox`] since it was created.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxCounters {
    /// Events accepted by `push` (each sent once right away).
    pub pushed: u64,
    /// First sends: envelopes returned by `push`.
    pub sent: u64,
    /// Envelopes returned again by `due`.
    pub resent: u64,
    /// Envelopes returned again by `resend_missing` (the master reported them missing).
    pub resent_missing: u64,
    /// Envelopes renumbered and returned by `retarget` (sends to a new master).
    pub retargeted: u64,
    /// Master-only events (`NodeDisconnected`, `NodeTimedOut`) dropped by `retarget` because the new session's
    /// master is another node: the decision belonged to the old master, and the new one would refuse them.
    pub dropped_on_retarget: u64,
    /// Pending envelopes removed by an acknowledgement.
    pub acknowledged: u64,
    /// Acknowledgements of a sequence number that is not pending (unknown, or acknowledged already).
    pub ignored_acks: u64,
    /// Pushes refused because the outbox was full.
    pub refused_full: u64,
    /// Envelopes waiting for an acknowledgement now (a gauge, not a total).
    pub pending: u64,
}

/// One unacknowledged envelope.
#[derive(Clone, Debug)]
struct Pending {
    /// Kept to re-encode the envelope under another session and number ([`Outbox::retarget`]).
    event: Event,
    /// The encoded envelope, resent as is (byte-identical copies are duplicates, never conflicts, at the master).
    bytes: Vec<u8>,
    /// When it was last sent; `None` if no valid time had been seen yet (then the next valid time counts as it).
    last_sent: Option<f64>,
    /// The outbox's send count at its last send: orders sends that happen at the same `now`.
    send_no: u64,
    /// How old its last send must be before it is resent.
    interval: f64,
}

/// One producer instance's sequencer and outbox (see the module documentation).
#[derive(Clone, Debug)]
pub struct Outbox {
    producer: ProducerId,
    node_id: NodeId,
    session: SessionId,
    options: OutboxOptions,
    next_seq: u64,
    pending: BTreeMap<u64, Pending>,
    /// The latest valid `now` seen (`None` before the first one).
    clock: Option<f64>,
    /// Envelopes sent so far (first sends and resends): the `send_no` of the next send.
    sends: u64,
    counters: OutboxCounters,
}

impl Outbox {
    /// An empty outbox of `producer` (take it from [`new_producer_id`]) running on `node_id`, addressing the
    /// master of `session`; the first event pushed gets sequence number 0.
    pub fn new(
        producer: ProducerId,
        node_id: NodeId,
        session: SessionId,
        options: OutboxOptions,
    ) -> Result<Self, OutboxError> {
        options.validate()?;
        Ok(Self {
            producer,
            node_id,
            session,
            options,
            next_seq: 0,
            pending: BTreeMap::new(),
            clock: None,
            sends: 0,
            counters: OutboxCounters::default(),
        })
    }

    /// The producer id every envelope carries as `origin`.
    pub fn producer(&self) -> &ProducerId {
        &self.producer
    }

    /// The node this producer runs on (every envelope's `node_id`).
    pub fn node_id(&self) -> &NodeId {
        &self.node_id
    }

    /// The master session addressed.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The options the outbox was made with.
    pub fn options(&self) -> &OutboxOptions {
        &self.options
    }

    /// The sequence number the next pushed event gets.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many envelopes wait for an acknowledgement.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// The sequence numbers waiting for an acknowledgement, in order.
    pub fn pending_seqs(&self) -> impl Iterator<Item = u64> + '_ {
        self.pending.keys().copied()
    }

    /// The running totals (with `pending` up to date).
    pub fn counters(&self) -> OutboxCounters {
        OutboxCounters {
            pending: self.pending.len() as u64,
            ..self.counters.clone()
        }
    }

    /// Take `now` into the clock: only a finite time not before the latest one moves it. The clock then.
    fn observe(&mut self, now: f64) -> Option<f64> {
        if now.is_finite() && self.clock.is_none_or(|clock| now > clock) {
            self.clock = Some(now);
        }
        self.clock
    }

    /// Number one send.
    fn next_send(&mut self) -> u64 {
        let send_no = self.sends;
        self.sends = self.sends.wrapping_add(1);
        send_no
    }

    fn envelope(&self, seq: u64, event: Event) -> LocalEnvelope {
        LocalEnvelope {
            origin: self.producer.clone(),
            origin_idx: seq,
            session: self.session.clone(),
            event,
            node_id: self.node_id.clone(),
        }
    }

    /// Whether the master of the outbox's session would refuse `envelope` as spoofed (see [`OutboxError::Spoofed`]).
    fn spoofed(&self, envelope: &LocalEnvelope) -> bool {
        envelope.scoped_node().is_some_and(|node| *node != self.node_id)
            || (envelope.master_only() && self.node_id != self.session.master_node_id)
    }

    /// Give `event` the next sequence number, keep its envelope until acknowledged and return the envelope's bytes
    /// (`LocalEnvelope` JSON, `snake_case`) to send now. `now` is the caller's clock in seconds.
    ///
    /// Refused, with nothing changed: [`OutboxError::Full`] when `capacity` envelopes are unacknowledged (back off
    /// and push again later), [`OutboxError::Spoofed`] for an event the master would refuse,
    /// [`OutboxError::Exhausted`] past `u64::MAX` sequence numbers.
    pub fn push(&mut self, event: Event, now: f64) -> Result<Vec<u8>, OutboxError> {
        if self.pending.len() >= self.options.capacity {
            self.counters.refused_full += 1;
            return Err(OutboxError::Full {
                capacity: self.options.capacity,
            });
        }
        let seq = self.next_seq;
        let next_seq = seq.checked_add(1).ok_or(OutboxError::Exhausted)?;
        let envelope = self.envelope(seq, event);
        if self.spoofed(&envelope) {
            return Err(OutboxError::Spoofed);
        }
        let bytes = codec::encode(&envelope, Case::Snake);
        let last_sent = self.observe(now);
        let send_no = self.next_send();
        self.pending.insert(
            seq,
            Pending {
                event: envelope.event,
                bytes: bytes.clone(),
                last_sent,
                send_no,
                interval: self.options.resend_after_s,
            },
        );
        self.next_seq = next_seq;
        self.counters.pushed += 1;
        self.counters.sent += 1;
        Ok(bytes)
    }

    /// [`push`](Self::push) an event given as its JSON (`{"Tag": {...}}`, as `clusterstate.encode_event` writes
    /// it). Bytes that are not an event are refused with [`OutboxError::Decode`], nothing changed.
    ///
    /// An event without `event_id` gets a random one here, once: every resend of it is then the same bytes.
    pub fn push_bytes(&mut self, event_json: &[u8], now: f64) -> Result<Vec<u8>, OutboxError> {
        let event = codec::decode_event(event_json)?;
        self.push(event, now)
    }

    /// Take the master's acknowledgements of this producer's sequence numbers: each pending one is removed (the
    /// master applied it, or had applied it when a copy arrived). A sequence number that is not pending (never
    /// pushed, or acknowledged already: acknowledgements get duplicated too) is ignored and counted. Returns how
    /// many envelopes were removed.
    ///
    /// Only acknowledgements from the master of the outbox's *current* session may be given: after a
    /// [`retarget`](Self::retarget) the numbers mean other events (compare [`MasterCore::session`] first).
    ///
    /// [`MasterCore::session`]: super::MasterCore::session
    pub fn acknowledge<I: IntoIterator<Item = u64>>(&mut self, seqs: I) -> usize {
        let mut removed = 0;
        for seq in seqs {
            if self.pending.remove(&seq).is_some() {
                removed += 1;
                self.counters.acknowledged += 1;
            } else {
                self.counters.ignored_acks += 1;
            }
        }
        removed
    }

    /// [`acknowledge`](Self::acknowledge) `seqs` if they come from the master of `session` and that is still the
    /// outbox's session; otherwise (a previous master's late acknowledgements) ignore and count them all.
    pub fn acknowledge_from<I: IntoIterator<Item = u64>>(&mut self, session: &SessionId, seqs: I) -> usize {
        if *session == self.session {
            return self.acknowledge(seqs);
        }
        self.counters.ignored_acks += seqs.into_iter().count() as u64;
        0
    }

    /// [`acknowledge`](Self::acknowledge) the `(producer, origin_idx)` pairs that are this producer's, as
    /// [`IngestOutcome::acknowledged`](super::IngestOutcome::acknowledged) gives them (every producer's at once);
    /// the other producers' pairs are skipped, not counted.
    pub fn acknowledge_pairs<'a, I>(&mut self, pairs: I) -> usize
    where
        I: IntoIterator<Item = &'a (ProducerId, u64)>,
    {
        let producer = self.producer.clone();
        self.acknowledge(
            pairs
                .into_iter()
                .filter(|(origin, _)| *origin == producer)
                .map(|(_, seq)| *seq),
        )
    }

    /// The envelopes to resend at `now`: every pending one whose last send is at least its resend interval old,
    /// lowest sequence number first. Each one returned counts as sent at `now` and its interval doubles, up to
    /// `max_resend_after_s`.
    ///
    /// A `now` that is not finite or earlier than a time already seen counts as the latest time seen (no time
    /// passed): nothing becomes due early and nothing panics.
    pub fn due(&mut self, now: f64) -> Vec<Vec<u8>> {
        let Some(clock) = self.observe(now) else {
            return Vec::new();
        };
        let cap = self.options.max_resend_after_s;
        let mut out = Vec::new();
        let mut sends = self.sends;
        for pending in self.pending.values_mut() {
            let Some(last_sent) = pending.last_sent else {
                // Sent before any valid time was seen: count that send as made now.
                pending.last_sent = Some(clock);
                continue;
            };
            if clock - last_sent >= pending.interval {
                pending.last_sent = Some(clock);
                pending.send_no = sends;
                sends = sends.wrapping_add(1);
                pending.interval = (pending.interval * 2.0).min(cap);
                out.push(pending.bytes.clone());
            }
        }
        self.sends = sends;
        self.counters.resent += out.len() as u64;
        out
    }

    /// Answer the master's reports of what it is missing ([`IngestOutcome::missing`], sent back with the
    /// acknowledgements): for each report of this producer (other producers' are skipped), the missing envelope is
    /// returned to send now if it is pending and its last send came before the last send of the envelope the
    /// master holds (`held`) — the master has received something sent after that copy, so the copy was lost or
    /// overtaken. A report the outbox has answered already (the missing envelope was sent again since `held`), or
    /// one that no longer applies (`held` is acknowledged: the gap was filled), resends nothing, so a gap reported
    /// by many batches is resent once per new evidence, not once per report. Each envelope returned counts as sent
    /// at `now` (counted `resent_missing`); its resend interval is left as it is.
    ///
    /// Only reports from the master of the outbox's *current* session may be given (see
    /// [`resend_missing_from`](Self::resend_missing_from)).
    ///
    /// [`IngestOutcome::missing`]: super::IngestOutcome::missing
    pub fn resend_missing<'a, I>(&mut self, reports: I, now: f64) -> Vec<Vec<u8>>
    where
        I: IntoIterator<Item = &'a Gap>,
    {
        let clock = self.observe(now);
        let mut out = Vec::new();
        for report in reports {
            if report.producer != self.producer {
                continue;
            }
            let Some(held) = self.pending.get(&report.held).map(|held| held.send_no) else {
                continue;
            };
            let send_no = self.sends;
            let Some(missing) = self.pending.get_mut(&report.missing) else {
                continue;
            };
            if missing.send_no < held {
                missing.send_no = send_no;
                missing.last_sent = clock;
                out.push(missing.bytes.clone());
                self.sends = self.sends.wrapping_add(1);
            }
        }
        self.counters.resent_missing += out.len() as u64;
        out
    }

    /// [`resend_missing`](Self::resend_missing) if the reports come from the master of `session` and that is still
    /// the outbox's session; otherwise (a previous master's late reports: the numbers meant other events) nothing.
    pub fn resend_missing_from<'a, I>(&mut self, session: &SessionId, reports: I, now: f64) -> Vec<Vec<u8>>
    where
        I: IntoIterator<Item = &'a Gap>,
    {
        if *session == self.session {
            return self.resend_missing(reports, now);
        }
        Vec::new()
    }

    /// Follow an election: address the master of `session`, which knows nothing of this producer. The pending
    /// envelopes are renumbered `0, 1, ...` in their order, re-stamped with `session` and all returned to send now
    /// (their resend intervals start over); later pushes continue the new numbering.
    ///
    /// Pending master-only events (`NodeDisconnected`, `NodeTimedOut`) are dropped (counted `dropped_on_retarget`)
    /// when the new master is another node: it would refuse them, and they were the old master's decision.
    /// `session` equal to the current one changes nothing and returns nothing (renumbering would make the master
    /// take the new numbers for copies of events it already applied).
    ///
    /// Events the old master applied but whose acknowledgement never came are sent to the new master too: each
    /// pending event reaches the new master's State exactly once, which is what the new master's State holds.
    pub fn retarget(&mut self, session: SessionId) -> Vec<Vec<u8>> {
        if session == self.session {
            return Vec::new();
        }
        self.session = session;
        let last_sent = self.clock;
        let interval = self.options.resend_after_s;
        let old = std::mem::take(&mut self.pending);
        let mut out = Vec::with_capacity(old.len());
        let mut seq = 0;
        for pending in old.into_values() {
            let envelope = self.envelope(seq, pending.event);
            if self.spoofed(&envelope) {
                self.counters.dropped_on_retarget += 1;
                continue;
            }
            let bytes = codec::encode(&envelope, Case::Snake);
            out.push(bytes.clone());
            let send_no = self.next_send();
            self.pending.insert(
                seq,
                Pending {
                    event: envelope.event,
                    bytes,
                    last_sent,
                    send_no,
                    interval,
                },
            );
            seq += 1;
        }
        self.next_seq = seq;
        self.counters.retargeted += out.len() as u64;
        out
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::events::IndexedEvent;
    use crate::master::MasterCore;
    use crate::state::State;

    fn session(clock: u64) -> SessionId {
        SessionId {
            master_node_id: NodeId::from("m"),
            election_clock: clock,
        }
    }

    fn test_event(id: &str) -> Event {
        codec::decode_event(format!(r#"{{"TestEvent":{{"event_id":"{id}"}}}}"#).as_bytes()).unwrap()
    }

    fn outbox(options: OutboxOptions) -> Outbox {
        Outbox::new(Arc::from("p"), NodeId::from("a"), session(1), options).unwrap()
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
        broadcast
            .iter()
            .zip(first..)
            .map(|(bytes, idx)| {
                let event: IndexedEvent = codec::decode_indexed_event(bytes).unwrap();
                assert_eq!(event.idx, idx);
                let Event::TestEvent(test) = event.event else {
                    panic!("not a TestEvent")
                };
                test.event_id.as_str().to_owned()
            })
            .collect()
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
            let err = Outbox::new(Arc::from("p"), NodeId::from("a"), session(1), bad).unwrap_err();
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
        let about_b =
            br#"{"NodeGatheredInfo":{"event_id":"g","node_id":"b","info":{"MiscData":{"friendly_name":"x"}}}}"#;
        assert_eq!(outbox.push_bytes(about_b, 0.0), Err(OutboxError::Spoofed));
        let disconnect = br#"{"NodeDisconnected":{"event_id":"d","node_id":"b","last_index":0,"stale_cycles":3}}"#;
        assert_eq!(outbox.push_bytes(disconnect, 0.0), Err(OutboxError::Spoofed));
        assert_eq!((outbox.next_seq(), outbox.pending()), (0, 0));
        let about_a = about_b.to_vec();
        let about_a = String::from_utf8(about_a).unwrap().replace("\"b\"", "\"a\"");
        assert!(outbox.push_bytes(about_a.as_bytes(), 0.0).is_ok());
    }

    #[test]
    fn sequence_numbers_never_wrap() {
        let mut outbox = outbox(OutboxOptions::default());
        outbox.next_seq = u64::MAX;
        assert_eq!(outbox.push(test_event("e"), 0.0), Err(OutboxError::Exhausted));
        assert_eq!((outbox.next_seq(), outbox.pending()), (u64::MAX, 0));
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
        let mut outbox = Outbox::new(Arc::from("pm"), NodeId::from("m"), session(1), OutboxOptions::default()).unwrap();
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
        let mut first = Outbox::new(
            new_producer_id("a"),
            NodeId::from("a"),
            session(1),
            OutboxOptions::default(),
        )
        .unwrap();
        let out = master.ingest(&[first.push(test_event("old0"), 0.0).unwrap()]);
        assert_eq!(out.broadcast.len(), 1);
        // Restarted: same node, a new id, numbering from 0 again.
        let mut second = Outbox::new(
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
}
