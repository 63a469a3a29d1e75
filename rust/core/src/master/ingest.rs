//! [`MasterCore`]: the master's ingest path from [`LocalEnvelope`] bytes to indexed, logged, applied, broadcastable
//! events; its plan cycle (staleness → `NodeDisconnected`), catch-up pages and reopening from its log.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::counters::{Counters, RejectReason};
use super::error::{LogFailure, MasterError};
use super::recent::{RecentIds, DEFAULT_DEDUP_WINDOW};
use super::resequence::{Offer, Resequencer};
use crate::apply::apply_mut;
use crate::codec;
use crate::events::{Event, IndexedEvent, NodeDisconnected, SessionId};
use crate::ids::{EventId, NodeId};
use crate::json::Case;
use crate::liveness::{Staleness, StalenessTracker, DEFAULT_PERIOD_S, DEFAULT_THRESHOLD};
use crate::log::format::MAX_PAYLOAD;
use crate::log::{EventLog, LogError};
use crate::state::State;

/// A producer's id: one per event source instance (a fresh one after every restart), so that
/// its sequence numbers restart at 0 without being taken for stale copies of the old instance's events.
pub type ProducerId = Arc<str>;

/// How many events one producer may have waiting behind a gap, by default.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A local event on its way to the master (`snake_case` keys; `camelCase` aliases accepted; no other key allowed):
///
/// ```json
/// {"origin": "producer id", "origin_idx": 0,
///  "session": {"master_node_id": "m", "election_clock": 1},
///  "event": {"NodeGatheredInfo": {...}},
///  "node_id": "the sending node"}
/// ```
///
/// - `origin`: the [`ProducerId`]; `origin_idx`: the producer's sequence number, `0, 1, 2, ...` without gaps;
/// - `session`: the master session the producer addresses (other sessions' envelopes are ignored);
/// - `event`: one externally tagged [`Event`];
/// - `node_id`: the node the producer runs on. It becomes the broadcast event's `origin`, and every node-scoped
///   event must be about it (the sampled node, the downloading node, the source of a topology edge).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalEnvelope {
    pub origin: ProducerId,
    #[serde(alias = "originIdx")]
    pub origin_idx: u64,
    pub session: SessionId,
    pub event: Event,
    #[serde(alias = "nodeId")]
    pub node_id: NodeId,
}

impl LocalEnvelope {
    /// The node a node-scoped event is about ([`Event::scoped_node`]; `None` for the other events).
    pub fn scoped_node(&self) -> Option<&NodeId> {
        self.event.scoped_node()
    }

    /// Whether only the master may produce this event: a node's disconnection is the master's decision (its
    /// staleness tracker), so no node can disconnect another.
    pub fn master_only(&self) -> bool {
        matches!(self.event, Event::NodeDisconnected(_) | Event::NodeTimedOut(_))
    }
}

/// Why `bytes` is not a [`LocalEnvelope`]: an event tag that is not a known one, or anything else. Only called on
/// the failure path, so the second parse costs nothing on valid input.
fn classify(bytes: &[u8]) -> RejectReason {
    if codec::has_unknown_event_tag(bytes) {
        RejectReason::UnknownTag
    } else {
        RejectReason::Malformed
    }
}

/// Decode one envelope: the only place bytes become a [`LocalEnvelope`] (one small function, so a faster decoder
/// can replace it without touching the rest of the path).
fn decode_envelope(bytes: &[u8]) -> Result<LocalEnvelope, RejectReason> {
    codec::decode::<LocalEnvelope>("envelope", bytes).map_err(|_| classify(bytes))
}

/// What one [`MasterCore::ingest`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IngestOutcome {
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
    /// producer resends it at once ([`Outbox::resend_missing`](super::Outbox::resend_missing)).
    pub missing: Vec<Gap>,
}

/// A producer's first missing sequence number, as [`IngestOutcome::missing`] reports it: the master holds
/// `held` (its highest buffered number), so every copy of `missing` sent before `held` was lost or overtaken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The producer whose events wait.
    pub producer: ProducerId,
    /// The sequence number the master needs next (every lower one is released).
    pub missing: u64,
    /// The highest sequence number the master holds behind the gap.
    pub held: u64,
}

/// What one [`MasterCore::plan_cycle`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CycleOutcome {
    /// The master's own `NodeDisconnected` events, indexed, applied and logged: [`IndexedEvent`] JSON with
    /// `origin` = the session's master node, ready to broadcast.
    pub broadcast: Vec<Vec<u8>>,
    /// The staleness tracker's decisions (sorted by node id), one per `NodeDisconnected`, whose evidence they carry.
    pub decisions: Vec<Staleness>,
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

/// The master's event log, if it has one.
enum LogSlot {
    /// Built without a log: nothing is persisted.
    Detached,
    /// The open log: every event is appended to it before it is applied.
    Open(Box<EventLog>),
    /// The log was closed: the master refuses to apply anything it could not persist.
    Closed,
}

impl fmt::Debug for LogSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Detached => f.write_str("Detached"),
            Self::Open(log) => write!(f, "Open({:?}, next_index={})", log.dir(), log.next_index()),
            Self::Closed => f.write_str("Closed"),
        }
    }
}

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

/// The index after `state`'s last one.
fn next_of(state: &State) -> u64 {
    u64::try_from(i128::from(state.last_event_applied_idx) + 1).unwrap_or(u64::MAX)
}

impl MasterCore {
    /// A master of `session` with an empty State and no log, buffering up to [`DEFAULT_CAPACITY`] events per
    /// producer.
    pub fn new(session: SessionId) -> Self {
        Self::with_capacity(session, DEFAULT_CAPACITY)
    }

    /// A master of `session`, without a log, whose producers may each have up to `capacity` (at least 1) events
    /// waiting.
    pub fn with_capacity(session: SessionId, capacity: usize) -> Self {
        Self::build(
            session,
            State::default(),
            capacity,
            StalenessTracker::default(),
            LogSlot::Detached,
        )
    }

    /// A master of `session` with an empty State and no log, with every option.
    pub fn with_options(session: SessionId, options: MasterOptions) -> Result<Self, MasterError> {
        let tracker = StalenessTracker::new(options.period_s, options.threshold)?;
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
        let tracker = StalenessTracker::new(options.period_s, options.threshold)?;
        let loaded = log.load_state()?;
        let state_next = next_of(&loaded.state);
        if state_next != log.next_index() {
            return Err(MasterError::IndexMismatch {
                log_next: log.next_index(),
                state_next,
            });
        }
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
            capacity: capacity.max(1),
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
        match &self.log {
            LogSlot::Open(log) => Some(log),
            LogSlot::Detached | LogSlot::Closed => None,
        }
    }

    /// The snapshot [`Self::open`] started from, if any.
    pub fn loaded_snapshot(&self) -> Option<u64> {
        self.loaded_snapshot
    }

    /// How many `event_id`s of the log's last records a reopened master remembers.
    pub fn recent_ids(&self) -> usize {
        self.recent.len()
    }

    fn log_mut(&mut self) -> Result<&mut EventLog, MasterError> {
        match &mut self.log {
            LogSlot::Open(log) => Ok(log),
            LogSlot::Detached => Err(MasterError::NoLog),
            LogSlot::Closed => Err(MasterError::Log(LogError::Closed)),
        }
    }

    /// Write the State as a snapshot into the log (at the State's last index); returns that index.
    pub fn snapshot(&mut self) -> Result<u64, MasterError> {
        let state = self.state.clone();
        let written = self.log_mut()?.snapshot(&state);
        if written.is_err() {
            self.close_log_if_behind();
        }
        Ok(written?)
    }

    /// Force every appended record to disk.
    pub fn sync(&mut self) -> Result<(), MasterError> {
        let synced = self.log_mut()?.sync();
        if synced.is_err() {
            self.close_log_if_behind();
        }
        Ok(synced?)
    }

    /// Sync and close the log, releasing its directory. Afterwards `ingest` and `plan_cycle` fail with
    /// [`LogError::Closed`] (the master never applies what it cannot persist). A no-op without a log.
    pub fn close_log(&mut self) -> Result<(), MasterError> {
        match std::mem::replace(&mut self.log, LogSlot::Closed) {
            LogSlot::Open(log) => Ok(log.close()?),
            LogSlot::Detached => {
                self.log = LogSlot::Detached;
                Ok(())
            }
            LogSlot::Closed => Ok(()),
        }
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) events from global index `idx` on, as their `IndexedEvent` JSON (the
    /// bytes that were broadcast), read from the log: a catch-up page for a node that missed broadcasts. An empty
    /// page when `idx` is the next index.
    pub fn events_since(&mut self, idx: u64, limit: usize) -> Result<Vec<Vec<u8>>, MasterError> {
        let log = self.log_mut()?;
        let next_index = log.next_index();
        if idx > next_index {
            return Err(MasterError::AheadOfLog { idx, next_index });
        }
        let first_index = log.first_index();
        if idx < first_index {
            return Err(MasterError::BeforeLog { idx, first_index });
        }
        let limit = u64::try_from(limit.min(MAX_PAGE)).unwrap_or(0);
        let page = log.read_raw(idx, idx.saturating_add(limit))?;
        Ok(page.into_iter().map(|(_, payload)| payload).collect())
    }

    /// [`Self::try_ingest`] for a caller that handles a log failure like lost envelopes: the part done before the
    /// failure is returned, the error is kept in [`Self::last_log_error`] and the refused events are counted
    /// [`Counters::unlogged`] (their producers resend them). Without a log it cannot fail. Prefer `try_ingest`
    /// with a log.
    pub fn ingest<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> IngestOutcome {
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
    pub fn try_ingest<B: AsRef<[u8]>>(&mut self, batch: &[B]) -> Result<IngestOutcome, Box<LogFailure<IngestOutcome>>> {
        if matches!(self.log, LogSlot::Closed) {
            return Err(Box::new(LogFailure {
                error: LogError::Closed,
                done: IngestOutcome::default(),
            }));
        }
        let mut outcome = IngestOutcome::default();
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
    pub fn plan_cycle(&mut self, now: f64) -> Result<CycleOutcome, Box<LogFailure<CycleOutcome>>> {
        if matches!(self.log, LogSlot::Closed) {
            return Err(Box::new(LogFailure {
                error: LogError::Closed,
                done: CycleOutcome::default(),
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
        let mut outcome = CycleOutcome {
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

    fn refuse(&mut self, outcome: &mut IngestOutcome, position: usize, reason: RejectReason) {
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
        outcome: &mut IngestOutcome,
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

    /// After a failed write: when buffered durability made the log drop records that earlier calls had already
    /// applied and acknowledged, the State is ahead of the log for good. The master then lets go of the log and
    /// refuses further work ([`LogError::Closed`]) until it is reopened from what the log holds.
    fn close_log_if_behind(&mut self) {
        if let LogSlot::Open(log) = &self.log {
            if log.next_index() < self.next_index() {
                self.log = LogSlot::Closed;
            }
        }
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
        let mut failure = None;
        let mut logged = events.len();
        if let LogSlot::Open(log) = &mut self.log {
            let before = log.next_index();
            // `append_encoded` trusts the indices; they come from the State, which `open` checked against the log.
            let in_step = events.first().is_some_and(|first| first.idx == before);
            let appended = if in_step {
                log.append_encoded(&encoded)
            } else {
                Err(LogError::EventIndex {
                    expected: before,
                    got: events.first().map_or(before, |first| first.idx),
                })
            };
            if let Err(error) = appended {
                // The log ends where it managed to write: where it was, after part of this batch, or (buffered
                // durability: records of earlier calls not yet written are dropped too) before it was.
                let written = log.next_index().saturating_sub(before);
                logged = usize::try_from(written).map_or(0, |written| written.min(events.len()));
                failure = Some(error);
            }
            self.counters.appended += u64::try_from(logged).unwrap_or(0);
        }
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
        self.close_log_if_behind();
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
    use proptest::prelude::{Just, Strategy};

    use super::*;

    fn session(clock: u64) -> SessionId {
        SessionId {
            master_node_id: NodeId::from("m"),
            election_clock: clock,
        }
    }

    fn envelope(producer: &str, idx: u64, node: &str, event: &str) -> Vec<u8> {
        format!(
            r#"{{"origin":"{producer}","origin_idx":{idx},"session":{{"master_node_id":"m","election_clock":1}},"event":{event},"node_id":"{node}"}}"#
        )
        .into_bytes()
    }

    fn test_event(id: &str) -> String {
        format!(r#"{{"TestEvent":{{"event_id":"{id}"}}}}"#)
    }

    fn info(node: &str) -> String {
        format!(
            r#"{{"NodeGatheredInfo":{{"event_id":"g-{node}","node_id":"{node}","info":{{"MiscData":{{"friendly_name":"x"}}}}}}}}"#
        )
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
        let mut master = MasterCore::with_capacity(session(1), 2);
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

    #[test]
    fn classify_tells_unknown_tags() {
        assert_eq!(classify(b"{"), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{"Nope":{}}}"#), RejectReason::UnknownTag);
        assert_eq!(classify(br#"{"event":{"TestEvent":{"x":1}}}"#), RejectReason::Malformed);
        assert_eq!(classify(br#"{"event":{}}"#), RejectReason::Malformed);
    }

    fn envelope_in(clock: u64, producer: &str, idx: u64, node: &str, event: &str) -> Vec<u8> {
        let bytes = envelope(producer, idx, node, event);
        String::from_utf8(bytes)
            .unwrap()
            .replacen("\"election_clock\":1", &format!("\"election_clock\":{clock}"), 1)
            .into_bytes()
    }

    fn open_log(dir: &std::path::Path, segment_bytes: u64) -> EventLog {
        let options = crate::log::Options {
            create: true,
            segment_bytes,
            durability: crate::log::Durability::None,
            ..crate::log::Options::default()
        };
        EventLog::open(dir, options).unwrap()
    }

    fn logged_master(dir: &std::path::Path, clock: u64, options: MasterOptions) -> MasterCore {
        MasterCore::open(session(clock), open_log(dir, 64 << 20), options).unwrap()
    }

    fn test_ids(broadcast: &[Vec<u8>]) -> Vec<String> {
        broadcast
            .iter()
            .map(|bytes| match codec::decode_indexed_event(bytes).unwrap().event {
                Event::TestEvent(test) => test.event_id.as_str().to_owned(),
                other => other.tag().to_owned(),
            })
            .collect()
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
        let log = master.log_mut().unwrap();
        let logged: Vec<Vec<u8>> = log.read_raw(0, 100).unwrap().into_iter().map(|(_, raw)| raw).collect();
        assert_eq!(logged, broadcast); // the very bytes that were broadcast, in index order
        let events = log.read_range(0, 100).unwrap();
        assert_eq!(log.next_index(), 4);
        assert_eq!(crate::apply::fold(&State::default(), &events).unwrap(), *master.state());
        assert_eq!(master.next_index(), 4);
    }

    #[test]
    fn a_refused_append_leaves_the_master_consistent_with_its_log() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // One record per segment: the second record of a batch needs a new segment file, which cannot be created
        // once the directory is gone, after the first one was written.
        let mut master = MasterCore::open(session(1), open_log(&path, 1), MasterOptions::default()).unwrap();
        std::fs::remove_dir_all(&path).unwrap();
        let batch = [
            envelope("p", 0, "a", &test_event("e0")),
            envelope("p", 1, "a", &test_event("e1")),
            envelope("p", 2, "a", &test_event("e2")),
            envelope("p", 0, "a", &test_event("e0")), // stale copies: acknowledged again only if logged
            envelope("p", 1, "a", &test_event("e1")),
        ];
        let failure = master.try_ingest(&batch).unwrap_err();
        assert!(matches!(failure.error, LogError::Io { .. }), "{:?}", failure.error);
        assert_eq!(test_ids(&failure.done.broadcast), ["e0"]);
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
        assert_eq!(test_ids(&out.broadcast), ["e1", "e2"]);
        assert_eq!(out.acknowledged, vec![(p.clone(), 1), (p, 2)]);
        assert_eq!(master.next_index(), 3);
        // The infallible form absorbs the error into the counters and `last_log_error`.
        std::fs::remove_dir_all(&path).unwrap();
        let out = master.ingest(&[envelope("p", 3, "a", &test_event("e3"))]);
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
        master.close_log().unwrap();
        let closed = master.try_ingest(&more).unwrap_err();
        assert!(matches!(closed.error, LogError::Closed));
        assert_eq!(master.plan_cycle(0.0).unwrap_err().done, CycleOutcome::default());

        // The new master (a new session) starts from the snapshot plus the tail.
        let mut master = logged_master(dir.path(), 2, MasterOptions::default());
        assert_eq!(master.loaded_snapshot(), Some(2));
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
        let log = master.log_mut().unwrap();
        let events = log.read_range(0, 100).unwrap();
        assert_eq!(events.iter().map(|e| e.idx).collect::<Vec<_>>(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(crate::apply::fold(&State::default(), &events).unwrap(), *master.state());
        master.close_log().unwrap();

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
                    vec![Staleness {
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
        let log = master.log_mut().unwrap();
        assert_eq!(log.read_raw(event.idx, event.idx + 1).unwrap()[0].1, broadcast[0]);
        let events = log.read_range(0, 100).unwrap();
        assert_eq!(crate::apply::fold(&State::default(), &events).unwrap(), *master.state());
    }

    #[test]
    fn events_since_pages_cover_the_log() {
        let mut master = MasterCore::new(session(1));
        assert!(matches!(master.events_since(0, 10), Err(MasterError::NoLog)));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        // One record per segment, so that the first segments can be dropped below (as a compaction would).
        let mut master = MasterCore::open(session(1), open_log(&path, 1), MasterOptions::default()).unwrap();
        let batch: Vec<Vec<u8>> = (0..7)
            .map(|i| envelope("p", i, "a", &test_event(&format!("e{i}"))))
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
        master.close_log().unwrap();
        for first in 0..3 {
            std::fs::remove_file(path.join(crate::log::format::segment_name(first))).unwrap();
        }
        let mut master = MasterCore::open(session(2), open_log(&path, 1), MasterOptions::default()).unwrap();
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
}
