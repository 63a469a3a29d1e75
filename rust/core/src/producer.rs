//! [`ProducerOutbox`]: the producer side of the ingest path — one producer instance's sequencer and outbox.
//!
//! The master applies a producer's events strictly in sequence (its [`Resequencer`]), so a producer must number its
//! events `0, 1, 2, ...` without a gap and keep every one until the master acknowledges it: an envelope lost on the
//! way would otherwise hold back every later one forever. The outbox does both:
//!
//! - [`ProducerOutbox::push`] gives an event the next sequence number, encodes its [`LocalEnvelope`] and keeps it;
//! - [`ProducerOutbox::acknowledge`] drops what the master acknowledged (unknown and repeated acknowledgements are
//!   ignored: acknowledgements travel over the same lossy, duplicating network);
//! - [`ProducerOutbox::due`] returns the envelopes whose last send is older than their resend interval, each resend
//!   doubling that envelope's interval up to a cap (exponential backoff: a master that is down is not flooded, and a
//!   single lost envelope is not resent with every unacknowledged one);
//! - [`ProducerOutbox::resend_missing`] answers the master's report of the first sequence number it is missing
//!   ([`Gap`]): that envelope is resent at once, without waiting out its backoff, since every later event of the
//!   producer waits for it in the master's resequencing buffer (and the staleness tracker sees no advance meanwhile);
//! - [`ProducerOutbox::retarget`] follows an election: the new master knows nothing of this producer, so the pending
//!   envelopes are renumbered from 0 under the new session and sent at once.
//!
//! Time is the caller's (`now`, seconds on any monotonic clock): the outbox never reads a clock, so it is
//! deterministic and testable. A `now` that is not finite, or earlier than one already seen, counts as "no time
//! passed" (the outbox keeps the latest time it has seen), so a bad clock can delay a resend but never panic or
//! resend early.
//!
//! A producer id belongs to one producer *instance* ([`new_producer_id`]): a restarted producer takes a fresh id
//! and numbers from 0 again, which the master cannot confuse with the old instance's numbers.
//!
//! [`Resequencer`]: crate::resequence::Resequencer
//! [`new_producer_id`]: crate::envelope::new_producer_id

use std::collections::BTreeMap;
use std::fmt;

use crate::codec;
use crate::envelope::{Gap, LocalEnvelope, ProducerId};
use crate::error::DecodeError;
use crate::events::{Event, SessionId};
use crate::ids::NodeId;
use crate::json::Case;

/// How a [`ProducerOutbox`] resends and how much it holds.
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

/// Why the [`ProducerOutbox`] refused a call. A refused call changes nothing but the refusal counters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OutboxError {
    /// [`OutboxOptions`] the outbox cannot work with.
    InvalidOptions(&'static str),
    /// `capacity` envelopes are unacknowledged: back off until acknowledgements free room.
    Full {
        /// The outbox's capacity.
        capacity: usize,
    },
    /// The event bytes of [`ProducerOutbox::push_bytes`] are not an event.
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

/// Running totals of a [`ProducerOutbox`] since it was created.
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

impl OutboxCounters {
    /// Every counter by name, as the Python `counters` dict has them.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, u64)> {
        [
            ("pushed", self.pushed),
            ("sent", self.sent),
            ("resent", self.resent),
            ("resent_missing", self.resent_missing),
            ("retargeted", self.retargeted),
            ("dropped_on_retarget", self.dropped_on_retarget),
            ("acknowledged", self.acknowledged),
            ("ignored_acks", self.ignored_acks),
            ("refused_full", self.refused_full),
            ("pending", self.pending),
        ]
        .into_iter()
    }
}

/// One unacknowledged envelope.
#[derive(Clone, Debug)]
struct Pending {
    /// Kept to re-encode the envelope under another session and number ([`ProducerOutbox::retarget`]).
    event: Event,
    /// The encoded envelope, resent as is (byte-identical copies are duplicates, never conflicts, at the master).
    bytes: Vec<u8>,
    /// When it was last sent; `None` if no valid time had been seen yet (then the next valid time counts as it).
    last_sent: Option<f64>,
    /// The outbox's send count at its last send: orders sends that happen at the same `now`.
    send_no: u64,
    /// How old its last send must be before it is resent.
    interval_s: f64,
}

/// One producer instance's sequencer and outbox (see the module documentation).
#[derive(Clone, Debug)]
pub struct ProducerOutbox {
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

impl ProducerOutbox {
    /// An empty outbox of `producer` (take it from [`new_producer_id`](crate::envelope::new_producer_id)) running
    /// on `node_id`, addressing the master of `session`; the first event pushed gets sequence number 0.
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
                interval_s: self.options.resend_after_s,
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
    /// [`MasterCore::session`]: crate::master::MasterCore::session
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
    /// [`IngestResult::acknowledged`](crate::master::IngestResult::acknowledged) gives them (every producer's at once);
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
            if clock - last_sent >= pending.interval_s {
                pending.last_sent = Some(clock);
                pending.send_no = sends;
                sends = sends.wrapping_add(1);
                pending.interval_s = (pending.interval_s * 2.0).min(cap);
                out.push(pending.bytes.clone());
            }
        }
        self.sends = sends;
        self.counters.resent += out.len() as u64;
        out
    }

    /// Answer the master's reports of what it is missing ([`IngestResult::missing`], sent back with the
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
    /// [`IngestResult::missing`]: crate::master::IngestResult::missing
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
        let interval_s = self.options.resend_after_s;
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
                    interval_s,
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
    use std::sync::Arc;

    use super::*;

    #[test]
    fn sequence_numbers_never_wrap() {
        let session = SessionId {
            master_node_id: NodeId::from("m"),
            election_clock: 1,
        };
        let mut outbox =
            ProducerOutbox::new(Arc::from("p"), NodeId::from("a"), session, OutboxOptions::default()).unwrap();
        let event = codec::decode_event(br#"{"TestEvent":{"event_id":"e"}}"#).unwrap();
        outbox.next_seq = u64::MAX;
        assert_eq!(outbox.push(event, 0.0), Err(OutboxError::Exhausted));
        assert_eq!((outbox.next_seq(), outbox.pending()), (u64::MAX, 0));
    }
}
