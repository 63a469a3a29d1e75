//! [`MasterCore`]: the master's ingest path from [`LocalEnvelope`] bytes to indexed, logged, applied, broadcastable
//! events; its plan cycle (staleness → `NodeDisconnected`), catch-up pages and reopening from its log.

use std::collections::{HashMap, HashSet};
use std::fmt;

use super::counters::{Counters, RejectReason};
use super::error::{LogFailure, MasterError};
use super::log_slot::{load_state, next_of, LogSlot};
use super::recent::{RecentIds, DEFAULT_DEDUP_WINDOW};
use crate::apply::apply_mut;
use crate::codec;
use crate::envelope::{Gap, LocalEnvelope, ProducerId};
use crate::events::{Event, IndexedEvent, NodeDisconnected, SessionId};
use crate::ids::{EventId, NodeId};
use crate::json::Case;
use crate::liveness::{NodeStaleness, StalenessTracker, DEFAULT_PERIOD_S, DEFAULT_THRESHOLD};
use crate::log::format::MAX_PAYLOAD;
use crate::log::{EventLog, LogError};
use crate::resequence::{Offer, Resequencer, DEFAULT_CAPACITY};
use crate::state::State;

/// Why `bytes` is not a [`LocalEnvelope`]: an event tag that is not a known one, or anything else. Only called on
/// the failure path, so the second parse costs nothing on valid input.
fn classify(bytes: &[u8]) -> RejectReason {
    if codec::has_unknown_event_tag(bytes) {
        RejectReason::UnknownTag
    } else {
        RejectReason::Malformed
    }
}

/// Decode one envelope, or say why it is refused.
fn decode_envelope(bytes: &[u8]) -> Result<LocalEnvelope, RejectReason> {
    LocalEnvelope::decode(bytes).map_err(|_| classify(bytes))
}

/// What one [`MasterCore::ingest`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestResult {
    /// The newly indexed events, in global-index order: each an [`IndexedEvent`]'s JSON (`snake_case`, `origin` =
    /// the sending node), ready to broadcast. With a log, exactly the records appended by this call.
    pub broadcast: Vec<Vec<u8>>,
    /// `(producer, origin_idx)` of every event applied by this call, then of every stale copy in the batch (an
    /// event applied earlier: the producer missed the acknowledgement and resent it) and of every event a reopened
    /// master found already in its log (see [`Counters::replayed_duplicates`]).
    pub acknowledged: Vec<(ProducerId, u64)>,
    /// `(position in the batch, reason)` of every refused envelope.
    pub rejected: Vec<(usize, RejectReason)>,
    /// For every producer heard from in the batch (in the order first heard) whose events wait behind a gap after
    /// it: the first sequence number the master is missing, to send back with the acknowledgements so that the
    /// producer resends it at once ([`ProducerOutbox::resend_missing`]).
    ///
    /// [`ProducerOutbox::resend_missing`]: crate::producer::ProducerOutbox::resend_missing
    pub missing: Vec<Gap>,
}

/// What one [`MasterCore::plan_cycle`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleResult {
    /// The master's own `NodeDisconnected` events, indexed, applied and logged: [`IndexedEvent`] JSON with
    /// `origin` = the session's master node, ready to broadcast.
    pub broadcast: Vec<Vec<u8>>,
    /// The staleness tracker's decisions (sorted by node id), one per `NodeDisconnected`, whose evidence they carry.
    pub decisions: Vec<NodeStaleness>,
}

/// How to build a [`MasterCore`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MasterOptions {
    /// How many events one producer may have waiting behind a gap (at least 1).
    pub capacity: usize,
    /// The plan-cycle period `T` of the staleness tracker, in seconds.
    pub period_s: f64,
    /// The staleness tracker's threshold `K`: counting cycles without progress before a node is disconnected.
    pub threshold: u32,
    /// How many of the log's last records a reopened master remembers the `event_id` of ([`RecentIds`]).
    pub dedup_window: usize,
}

impl MasterOptions {
    /// Check the options ([`MasterCore::with_options`] and [`MasterCore::open`] do): `capacity` at least 1, and
    /// the staleness tracker's `period_s` and `threshold` (see [`StalenessTracker::new`]).
    pub fn validate(&self) -> Result<(), MasterError> {
        self.tracker().map(drop)
    }

    /// The staleness tracker of valid options.
    fn tracker(&self) -> Result<StalenessTracker, MasterError> {
        if self.capacity == 0 {
            return Err(MasterError::InvalidOptions("capacity must be at least 1"));
        }
        Ok(StalenessTracker::new(self.period_s, self.threshold)?)
    }
}

impl Default for MasterOptions {
    fn default() -> Self {
        Self {
            capacity: DEFAULT_CAPACITY,
            period_s: DEFAULT_PERIOD_S,
            threshold: DEFAULT_THRESHOLD,
            dedup_window: DEFAULT_DEDUP_WINDOW,
        }
    }
}

/// The most events one [`MasterCore::events_since`] page holds, whatever limit is asked for: a page is read into
/// memory, so this bounds the memory of a catch-up request.
pub const MAX_PAGE: usize = 10_000;

/// Events indexed by one call, logged, applied and broadcast together (one append, one fsync).
#[derive(Default)]
struct Staged {
    events: Vec<IndexedEvent>,
    /// Each event's JSON, encoded once: the same bytes are logged and broadcast.
    encoded: Vec<Vec<u8>>,
    /// The acknowledgement each staged event is owed (`None` for the master's own events).
    acks: Vec<Option<(ProducerId, u64)>>,
}

/// The producers heard from in one batch, in the order first heard.
#[derive(Default)]
struct ProducersHeard {
    seen: HashSet<ProducerId>,
    order: Vec<ProducerId>,
}

impl ProducersHeard {
    fn insert(&mut self, producer: &ProducerId) {
        if self.seen.insert(producer.clone()) {
            self.order.push(producer.clone());
        }
    }
}

#[derive(Clone, Debug)]
struct Producer {
    node_id: NodeId,
    buffer: Resequencer<(Event, NodeId)>,
}

/// The master's state core: its session, its State, one [`Resequencer`] per producer, the [`Counters`], the
/// [`StalenessTracker`] and, optionally, its [`EventLog`].
///
/// The next global index is `state.last_event_applied_idx + 1`, which is also the log's next index.
///
/// # Log first, then apply
///
/// Every call that produces events (`ingest`, `plan_cycle`) first indexes them, then appends them to the log in
/// one `append_all`, and only then applies, encodes and acknowledges the ones the log accepted. A failed append
/// (a full disk) therefore never leaves the State, the next index or the acknowledgements ahead of the log: the
/// call returns a [`LogFailure`] whose `done` part covers exactly the records the log holds (none, unless the log
/// had written part of the batch before failing), and the refused events are forgotten — their producers are
/// rewound to them, as if the envelopes had been lost, and resend them since they were never acknowledged.
/// Choosing this over "apply, then restore on failure" avoids copying the State or undoing the resequencers'
/// work on every call to pay for a rare failure.
pub struct MasterCore {
    session: SessionId,
    state: State,
    capacity: usize,
    producers: HashMap<ProducerId, Producer>,
    counters: Counters,
    log: LogSlot,
    tracker: StalenessTracker,
    recent: RecentIds,
    loaded_snapshot: Option<u64>,
    last_log_error: Option<LogError>,
}

impl fmt::Debug for MasterCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MasterCore")
            .field("session", &self.session)
            .field("next_index", &self.next_index())
            .field("producers", &self.producers.len())
            .field("counters", &self.counters)
            .field("log", &self.log)
            .field("recent_ids", &self.recent.len())
            .finish_non_exhaustive()
    }
}

impl MasterCore {
    /// A master of `session` with an empty State and no log, buffering up to [`DEFAULT_CAPACITY`] events per
    /// producer.
    pub fn new(session: SessionId) -> Self {
        Self::build(
            session,
            State::default(),
            DEFAULT_CAPACITY,
            StalenessTracker::default(),
            LogSlot::Detached,
        )
    }

    /// A master of `session` with an empty State and no log, with every option.
    pub fn with_options(session: SessionId, options: MasterOptions) -> Result<Self, MasterError> {
        let tracker = options.tracker()?;
        Ok(Self::build(
            session,
            State::default(),
            options.capacity,
            tracker,
            LogSlot::Detached,
        ))
    }

    /// A master of `session` that owns `log`: its State is the log's (the latest valid snapshot plus a replay of
    /// the records after it) and its global index continues the log's with no gap. For an empty log, this is a
    /// fresh master that persists everything it applies.
    ///
    /// A *reopened* master (a restart) must serve a **new** session (in exo a restart is a new election): the
    /// producer sequence numbers are not in the log, so it starts with no producer table, and the producers
    /// re-address their pending events to the new session, renumbered from 0. To stay exactly once across the
    /// restart, the master remembers the `event_id`s of the log's last `options.dedup_window` records: a released
    /// event among them is acknowledged and counted ([`Counters::replayed_duplicates`]), not applied again.
    ///
    /// The log is dropped (closed) if opening fails.
    pub fn open(session: SessionId, mut log: EventLog, options: MasterOptions) -> Result<Self, MasterError> {
        let tracker = options.tracker()?;
        let loaded = load_state(&mut log)?;
        let recent = RecentIds::load(&mut log, options.dedup_window)?;
        let mut master = Self::build(
            session,
            loaded.state,
            options.capacity,
            tracker,
            LogSlot::Open(Box::new(log)),
        );
        master.recent = recent;
        master.loaded_snapshot = loaded.snapshot;
        Ok(master)
    }

    fn build(session: SessionId, state: State, capacity: usize, tracker: StalenessTracker, log: LogSlot) -> Self {
        Self {
            session,
            state,
            capacity,
            producers: HashMap::new(),
            counters: Counters::default(),
            log,
            tracker,
            recent: RecentIds::default(),
            loaded_snapshot: None,
            last_log_error: None,
        }
    }

    /// The session this master serves.
    pub fn session(&self) -> &SessionId {
        &self.session
    }

    /// The State after every event applied so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The global index the next applied event gets.
    pub fn next_index(&self) -> u64 {
        next_of(&self.state)
    }

    /// The running totals.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next sequence number the master expects from `producer` (`None` for a producer never heard from).
    pub fn producer_next(&self, producer: &str) -> Option<u64> {
        self.producers.get(producer).map(|p| p.buffer.next_index())
    }

    /// The staleness tracker (its settings and per-node status).
    pub fn tracker(&self) -> &StalenessTracker {
        &self.tracker
    }

    /// The event log, while the master has one open.
    pub fn log(&self) -> Option<&EventLog> {
        self.log.log()
    }

    /// The snapshot [`Self::open`] started from, if any.
    pub fn loaded_snapshot_index(&self) -> Option<u64> {
        self.loaded_snapshot
    }

    /// How many `event_id`s of the log's last records a reopened master remembers.
    pub fn recent_ids(&self) -> usize {
        self.recent.len()
    }

    /// Write the State as a snapshot into the log (at the State's last index); returns that index.
    pub fn snapshot(&mut self) -> Result<u64, MasterError> {
        self.log.snapshot(&self.state)
    }

    /// Force every appended record to disk.
    pub fn sync(&mut self) -> Result<(), MasterError> {
        self.log.sync(self.next_index())
    }

    /// Sync and close the log, releasing its directory. Afterwards `ingest` and `plan_cycle` fail with
    /// [`LogError::Closed`] (the master never applies what it cannot persist). A no-op without a log.
    pub fn close(&mut self) -> Result<(), MasterError> {
        self.log.close()
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) events from global index `idx` on, as their `IndexedEvent` JSON (the
    /// bytes that were broadcast), read from the log: a catch-up page for a node that missed broadcasts. An empty
    /// page when `idx` is the next index.
    pub fn events_since(&mut self, idx: u64, limit: usize) -> Result<Vec<Vec<u8>>, MasterError> {
        self.log.events_since(idx, limit)
    }

    /// [`Self::try_ingest`] for a caller that handles a log failure like lost envelopes: the part done before the
    /// failure is returned, the error is kept in [`Self::last_log_error`] and the refused events are counted
    /// [`Counters::unlogged`] (their producers resend them). Without a log it cannot fail. Prefer `try_ingest`
    /// with a log.
    pub fn ingest<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> IngestResult {
        match self.try_ingest(batch) {
            Ok(outcome) => outcome,
            Err(failure) => {
                let LogFailure { error, done } = *failure;
                self.last_log_error = Some(error);
                done
            }
        }
    }

    /// The error of the last log failure that [`Self::ingest`] absorbed, if any.
    pub fn last_log_error(&self) -> Option<&LogError> {
        self.last_log_error.as_ref()
    }

    /// Take a batch of [`LocalEnvelope`] bytes: ignore other sessions', refuse malformed and spoofed ones,
    /// resequence per producer, index, log, apply and return what to broadcast and acknowledge. Never panics and
    /// never applies a refused envelope; the batch is processed in order, so the result is a function of the
    /// sequence of batches. With a log, a failed append returns a [`LogFailure`] (see the type's docs).
    pub fn try_ingest<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> Result<IngestResult, Box<LogFailure<IngestResult>>> {
        if self.log.is_closed() {
            return Err(Box::new(LogFailure {
                error: LogError::Closed,
                done: IngestResult::default(),
            }));
        }
        let mut outcome = IngestResult::default();
        let mut staged = Staged::default();
        let mut reacknowledged = Vec::new();
        let mut heard = ProducersHeard::default();
        for (position, bytes) in batch.iter().enumerate() {
            self.counters.ingested += 1;
            let envelope = match decode_envelope(bytes.as_ref()) {
                Ok(envelope) => envelope,
                Err(reason) => {
                    self.refuse(&mut outcome, position, reason);
                    continue;
                }
            };
            if envelope.session != self.session {
                self.counters.other_session += 1;
                continue;
            }
            if envelope.scoped_node().is_some_and(|node| *node != envelope.node_id)
                || (envelope.master_only() && envelope.node_id != self.session.master_node_id)
            {
                self.refuse(&mut outcome, position, RejectReason::Spoofed);
                continue;
            }
            let capacity = self.capacity;
            let producer = self
                .producers
                .entry(envelope.origin.clone())
                .or_insert_with(|| Producer {
                    node_id: envelope.node_id.clone(),
                    buffer: Resequencer::new(capacity),
                });
            if producer.node_id != envelope.node_id {
                self.refuse(&mut outcome, position, RejectReason::Spoofed);
                continue;
            }
            heard.insert(&envelope.origin);
            let offered = producer
                .buffer
                .offer(envelope.origin_idx, (envelope.event, envelope.node_id));
            match offered {
                Offer::Accepted => {
                    self.counters.buffered += 1;
                    self.release(
                        &envelope.origin,
                        position,
                        &mut staged,
                        &mut outcome,
                        &mut reacknowledged,
                    );
                }
                Offer::Stale => {
                    self.counters.duplicates += 1;
                    reacknowledged.push((envelope.origin, envelope.origin_idx));
                }
                Offer::Duplicate => self.counters.duplicates += 1,
                Offer::Conflict => self.refuse(&mut outcome, position, RejectReason::Conflict),
                Offer::Full => self.refuse(&mut outcome, position, RejectReason::BufferFull),
            }
        }
        let failure = self.commit(staged, &mut outcome.broadcast, &mut outcome.acknowledged);
        outcome.missing = self.gaps(heard.order);
        match failure {
            None => {
                outcome.acknowledged.extend(reacknowledged);
                Ok(outcome)
            }
            Some((error, rewound)) => {
                // A stale copy of an event the log just refused is no longer stale: not acknowledged.
                reacknowledged.retain(|(producer, idx)| rewound.get(producer).is_none_or(|from| idx < from));
                outcome.acknowledged.extend(reacknowledged);
                Err(Box::new(LogFailure { error, done: outcome }))
            }
        }
    }

    /// Run one plan cycle at `now` (seconds of the caller's monotonic clock): the staleness tracker decides which
    /// nodes stopped producing (`crate::liveness`), and each decision becomes a `NodeDisconnected` (its evidence,
    /// a fresh uuid4 `event_id`, `origin` = the session's master node) indexed, logged, applied and returned for
    /// broadcast exactly like an ingested event. With a log, a failed append returns a [`LogFailure`]; the
    /// tracker has then reset the nodes' counts, so they are decided again after another `threshold` cycles.
    pub fn plan_cycle(&mut self, now: f64) -> Result<CycleResult, Box<LogFailure<CycleResult>>> {
        if self.log.is_closed() {
            return Err(Box::new(LogFailure {
                error: LogError::Closed,
                done: CycleResult::default(),
            }));
        }
        let decisions = self.tracker.cycle(&self.state, now, self.state.last_event_applied_idx);
        let mut staged = Staged::default();
        for decision in &decisions {
            let event = Event::NodeDisconnected(NodeDisconnected {
                event_id: EventId::new_random(),
                node_id: decision.node_id.clone(),
                last_index: decision.last_index,
                stale_cycles: u64::from(decision.stale_cycles),
            });
            let origin = Some(self.session.master_node_id.clone());
            if self.stage(&mut staged, origin, event, None).is_err() {
                break; // the global index is exhausted
            }
        }
        let mut outcome = CycleResult {
            broadcast: Vec::with_capacity(decisions.len()),
            decisions,
        };
        let applied_before = self.counters.applied;
        let failure = self.commit(staged, &mut outcome.broadcast, &mut Vec::new());
        self.counters.disconnects += self.counters.applied - applied_before;
        match failure {
            None => Ok(outcome),
            Some((error, _)) => Err(Box::new(LogFailure { error, done: outcome })),
        }
    }

    /// The gap of each of `producers` that has events waiting behind one.
    fn gaps(&self, producers: Vec<ProducerId>) -> Vec<Gap> {
        producers
            .into_iter()
            .filter_map(|producer| {
                let buffer = &self.producers.get(&producer)?.buffer;
                let missing = buffer.gap()?;
                let held = buffer.highest()?;
                Some(Gap {
                    producer,
                    missing,
                    held,
                })
            })
            .collect()
    }

    fn refuse(&mut self, outcome: &mut IngestResult, position: usize, reason: RejectReason) {
        self.counters.reject(reason);
        outcome.rejected.push((position, reason));
    }

    /// Stage every event of `producer` that is ready; an event a reopened master already logged is only
    /// acknowledged.
    fn release(
        &mut self,
        producer: &ProducerId,
        position: usize,
        staged: &mut Staged,
        outcome: &mut IngestResult,
        reacknowledged: &mut Vec<(ProducerId, u64)>,
    ) {
        let Some(entry) = self.producers.get_mut(producer) else {
            return;
        };
        let ready = entry.buffer.drain();
        for (origin_idx, (event, node_id)) in ready {
            self.counters.buffered = self.counters.buffered.saturating_sub(1);
            if self.recent.contains(&event) {
                self.counters.replayed_duplicates += 1;
                reacknowledged.push((producer.clone(), origin_idx));
                continue;
            }
            if let Err(reason) = self.stage(staged, Some(node_id), event, Some((producer.clone(), origin_idx))) {
                self.refuse(outcome, position, reason);
            }
        }
    }

    /// Give `event` the next free global index, encode and stage it. Refused (nothing staged, no index used) when
    /// that index would pass `i64::MAX`, the State's limit, or when the event's JSON is over the log's record limit
    /// ([`MAX_PAYLOAD`]): refusing it here keeps it from failing every later append of its batch.
    fn stage(
        &self,
        staged: &mut Staged,
        origin: Option<NodeId>,
        event: Event,
        ack: Option<(ProducerId, u64)>,
    ) -> Result<(), RejectReason> {
        let idx = self
            .next_index()
            .saturating_add(u64::try_from(staged.events.len()).unwrap_or(u64::MAX));
        if i64::try_from(idx).is_err() {
            return Err(RejectReason::IndexExhausted);
        }
        let indexed = IndexedEvent { idx, origin, event };
        let encoded = codec::encode(&indexed, Case::Snake);
        if encoded.len() > MAX_PAYLOAD as usize {
            return Err(RejectReason::TooLarge);
        }
        staged.events.push(indexed);
        staged.encoded.push(encoded);
        staged.acks.push(ack);
        Ok(())
    }

    /// Log the staged events in one append, then apply, encode and acknowledge the ones the log accepted, in index
    /// order. On a log failure, returns the error and, for each producer, the sequence number it was rewound to
    /// (its first event the log refused).
    fn commit(
        &mut self,
        staged: Staged,
        broadcast: &mut Vec<Vec<u8>>,
        acknowledged: &mut Vec<(ProducerId, u64)>,
    ) -> Option<(LogError, HashMap<ProducerId, u64>)> {
        let Staged {
            events,
            mut encoded,
            acks,
        } = staged;
        if events.is_empty() {
            return None;
        }
        let first = events.first().map_or(0, |first| first.idx);
        let appended = self.log.append(first, &encoded);
        self.counters.appended += appended.written;
        let logged = appended.logged;
        let mut failure = appended.error;
        let mut applied = 0;
        for (event, ack) in events.iter().zip(&acks).take(logged) {
            if let Err(err) = apply_mut(&mut self.state, event) {
                // Cannot happen (indices are assigned from this State); reported rather than ignored.
                failure.get_or_insert(LogError::Apply(err));
                break;
            }
            applied += 1;
            self.counters.applied += 1;
            if let Some(ack) = ack {
                acknowledged.push(ack.clone());
            }
        }
        encoded.truncate(applied);
        if broadcast.is_empty() {
            *broadcast = encoded;
        } else {
            broadcast.append(&mut encoded);
        }
        let error = failure?;
        self.log.close_if_behind(self.next_index());
        let mut rewound: HashMap<ProducerId, u64> = HashMap::new();
        for (producer, origin_idx) in acks.into_iter().skip(applied).flatten() {
            let from = rewound.entry(producer).or_insert(origin_idx);
            *from = (*from).min(origin_idx);
        }
        for (producer, from) in &rewound {
            if let Some(entry) = self.producers.get_mut(producer) {
                entry.buffer.rewind_to(*from);
            }
        }
        self.counters.unlogged += u64::try_from(events.len() - applied).unwrap_or(0);
        Some((error, rewound))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_tells_unknown_tags() {
        assert_eq!(classify(b"{"), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{"Nope":{}}}"#), RejectReason::UnknownTag);
        assert_eq!(classify(br#"{"event":{"TestEvent":{"x":1}}}"#), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{}}"#), RejectReason::Malformed);
    }
}
