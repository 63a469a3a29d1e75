//! The staleness tracker: liveness decided by whether a node's event index advances (`docs/liveness.md`).
//!
//! The master calls [`StalenessTracker::cycle`] once per plan cycle (period `T`) with its current [`State`]. The
//! tracker is master-local bookkeeping, not event-sourced: it remembers, for every node the State knows (in the
//! topology or with an event index, including a node only named by a topology edge and never heard from), the index
//! it saw last and for how many *counting* cycles that index has not advanced.
//!
//! # The exact rule
//!
//! At every cycle, for every node `n` of the State (`i` = `state.last_event_index_by_node[n]`, or "none" for a node
//! never heard from):
//!
//! 1. `n` not tracked yet (first sight, or a fresh tracker): start tracking it with `i` and a count of 0;
//! 2. `i` differs from the tracked index (the node produced an event of *any* kind since the previous cycle): record
//!    `i`, count 0;
//! 3. `i` unchanged and the cycle *counts*: count + 1. When the count reaches `K` (the threshold), the node is returned
//!    for disconnection with its evidence (`last_index` = `i`, `stale_cycles` = `K`) and its count goes back to 0.
//!
//! Tracked nodes that are no longer in the State are forgotten (pruned). A cycle **counts** unless it is the
//! tracker's first cycle (grace period: a fresh tracker, e.g. on a new master, has nothing to compare with), or the
//! master-stall guard holds: the master's global index did not advance since the previous cycle (it indexed nothing,
//! so nobody's silence is evidence), or the cycle started more than one period *late*, i.e. more than `2·T` after
//! the previous cycle's start (`now − previous_now > 2·T`; also when `now` went backwards or is not finite). A cycle
//! that does not count still records advances (rule 2) and new nodes (rule 1).
//!
//! So a node is returned at the `K`-th consecutive counting cycle that saw no advance after the cycle that last saw
//! it advance, never at the `(K−1)`-th or `(K+1)`-th. With cycles exactly `T` apart and all counting, a node whose
//! last event was indexed at time `e` is returned at a time in `[e + K·T, e + (K+1)·T)`.
//!
//! # After a decision
//!
//! The caller emits `NodeDisconnected`; once applied, the node leaves the State and is pruned. Until then (the event
//! is in flight) the reset count means the node is returned again only after another `K` counting cycles without
//! progress, not at every cycle.

use std::fmt;

use crate::ids::NodeId;
use crate::state::State;

/// Default plan-cycle period `T`, in seconds.
pub const DEFAULT_PERIOD_S: f64 = 10.0;
/// Default threshold `K`: consecutive counting cycles without progress.
pub const DEFAULT_THRESHOLD: u32 = 3;

/// An invalid tracker setting.
#[derive(Clone, Debug, PartialEq)]
pub enum TrackerError {
    /// The period is not a finite number of seconds greater than 0.
    Period(f64),
    /// The threshold is 0.
    Threshold,
}

impl fmt::Display for TrackerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Period(period) => write!(f, "period_s must be a finite number > 0, got {period}"),
            Self::Threshold => f.write_str("threshold must be at least 1"),
        }
    }
}

impl std::error::Error for TrackerError {}

/// A node's staleness: a decision returned by [`StalenessTracker::cycle`] (the evidence of a `NodeDisconnected`), or
/// an entry of [`StalenessTracker::status`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeStaleness {
    pub node_id: NodeId,
    /// The global index of the node's last event; `None` for a node never heard from.
    pub last_index: Option<u64>,
    /// Consecutive counting cycles that saw no advance (`K` in a decision).
    pub stale_cycles: u32,
}

/// Why a cycle did or did not count against silent nodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CycleKind {
    /// The tracker's first cycle: nothing to compare with.
    Grace,
    /// A normal cycle: silence counts.
    Counted,
    /// The master indexed no event since the previous cycle.
    MasterIdle,
    /// The cycle started more than one period late (or the clock went backwards).
    Late,
}

#[derive(Clone, Debug)]
struct Entry {
    node_id: NodeId,
    last_index: Option<u64>,
    stale_cycles: u32,
}

/// Master-local liveness bookkeeping; see the [module docs](self) for the exact rule.
///
/// ```
/// use clusterstate_core::liveness::StalenessTracker;
/// use clusterstate_core::{apply, IndexedEvent, State};
///
/// let event: IndexedEvent =
///     serde_json::from_str(r#"{"idx":0,"origin":"n","event":{"TestEvent":{"event_id":"e"}}}"#).unwrap();
/// let mut state = apply(&State::default(), &event).unwrap();
/// let mut tracker = StalenessTracker::new(10.0, 3).unwrap();
/// let mut index = 0;
/// let mut decisions = Vec::new();
/// for cycle in 0..=3 {
///     // Somebody else keeps the master busy, `n` stays silent.
///     let other: IndexedEvent = serde_json::from_str(&format!(
///         r#"{{"idx":{},"origin":"m","event":{{"TestEvent":{{"event_id":"e"}}}}}}"#,
///         index + 1
///     ))
///     .unwrap();
///     state = apply(&state, &other).unwrap();
///     index += 1;
///     decisions = tracker.cycle(&state, f64::from(cycle) * 10.0, index);
///     if cycle < 3 {
///         assert!(decisions.is_empty());
///     }
/// }
/// assert_eq!(decisions.len(), 1); // n, silent for 3 counting cycles after the grace cycle
/// assert_eq!(decisions[0].node_id.as_str(), "n");
/// assert_eq!(decisions[0].last_index, Some(0));
/// ```
#[derive(Clone, Debug)]
pub struct StalenessTracker {
    period_s: f64,
    threshold: u32,
    /// Sorted by node id, one per node of the State seen at the last cycle.
    entries: Vec<Entry>,
    previous: Option<(f64, i64)>,
    cycles: u64,
    last_kind: Option<CycleKind>,
}

impl Default for StalenessTracker {
    fn default() -> Self {
        Self {
            period_s: DEFAULT_PERIOD_S,
            threshold: DEFAULT_THRESHOLD,
            entries: Vec::new(),
            previous: None,
            cycles: 0,
            last_kind: None,
        }
    }
}

impl StalenessTracker {
    /// A fresh tracker with period `T = period_s` and threshold `K = threshold`.
    pub fn new(period_s: f64, threshold: u32) -> Result<Self, TrackerError> {
        if !(period_s.is_finite() && period_s > 0.0) {
            return Err(TrackerError::Period(period_s));
        }
        if threshold == 0 {
            return Err(TrackerError::Threshold);
        }
        Ok(Self {
            period_s,
            threshold,
            ..Self::default()
        })
    }

    /// The period `T`, in seconds.
    pub fn period_s(&self) -> f64 {
        self.period_s
    }

    /// The threshold `K`.
    pub fn threshold(&self) -> u32 {
        self.threshold
    }

    /// How many cycles have run.
    pub fn cycles(&self) -> u64 {
        self.cycles
    }

    /// Whether the last cycle counted, and if not why; `None` before the first cycle.
    pub fn last_cycle_kind(&self) -> Option<CycleKind> {
        self.last_kind
    }

    /// How many nodes are tracked.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` if no node is tracked.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Per-node status for operators, sorted by node id.
    pub fn status(&self) -> Vec<NodeStaleness> {
        self.entries
            .iter()
            .map(|entry| NodeStaleness {
                node_id: entry.node_id.clone(),
                last_index: entry.last_index,
                stale_cycles: entry.stale_cycles,
            })
            .collect()
    }

    /// The tracked status of one node.
    pub fn get(&self, node_id: &str) -> Option<NodeStaleness> {
        self.entries
            .binary_search_by(|entry| entry.node_id.as_str().cmp(node_id))
            .ok()
            .and_then(|position| self.entries.get(position))
            .map(|entry| NodeStaleness {
                node_id: entry.node_id.clone(),
                last_index: entry.last_index,
                stale_cycles: entry.stale_cycles,
            })
    }

    /// How the next cycle, starting at `now` with the master's last indexed event `global_index`, would count.
    fn classify(&self, now: f64, global_index: i64) -> CycleKind {
        let Some((previous_now, previous_index)) = self.previous else {
            return CycleKind::Grace;
        };
        let gap = now - previous_now;
        // `!(a <= b)` rather than `a > b`: a NaN gap (a non-finite `now`) is late too.
        if !(gap >= 0.0 && gap <= 2.0 * self.period_s) {
            return CycleKind::Late;
        }
        if global_index <= previous_index {
            return CycleKind::MasterIdle;
        }
        CycleKind::Counted
    }

    /// Run one plan cycle over `state`, which started at `now` (seconds of the caller's monotonic clock, used only by
    /// the stall guard) when the master's last indexed event was `global_index`. Returns the nodes to disconnect,
    /// sorted by node id, with their evidence.
    ///
    /// One pass over the State's nodes and the tracked entries, both sorted: O(n), no hashing, no allocation per
    /// node beyond the new entry list.
    pub fn cycle(&mut self, state: &State, now: f64, global_index: i64) -> Vec<NodeStaleness> {
        let kind = self.classify(now, global_index);
        let counts = kind == CycleKind::Counted;
        let threshold = self.threshold;
        let old = std::mem::take(&mut self.entries);
        let mut entries = Vec::with_capacity(state.topology.len().max(state.last_event_index_by_node.len()));
        let mut decisions = Vec::new();
        let mut old = old.into_iter().peekable();
        for (node_id, index) in StateNodes::new(state) {
            // Skip (prune) tracked nodes that sort before this one: they are gone from the State.
            while old.next_if(|entry| entry.node_id < *node_id).is_some() {}
            let entry = match old.next_if(|entry| entry.node_id == *node_id) {
                None => Entry {
                    node_id: node_id.clone(),
                    last_index: index,
                    stale_cycles: 0,
                },
                Some(mut entry) if entry.last_index != index => {
                    entry.last_index = index;
                    entry.stale_cycles = 0;
                    entry
                }
                Some(mut entry) => {
                    if counts {
                        entry.stale_cycles = entry.stale_cycles.saturating_add(1);
                        if entry.stale_cycles >= threshold {
                            decisions.push(NodeStaleness {
                                node_id: entry.node_id.clone(),
                                last_index: entry.last_index,
                                stale_cycles: entry.stale_cycles,
                            });
                            entry.stale_cycles = 0;
                        }
                    }
                    entry
                }
            };
            entries.push(entry);
        }
        self.entries = entries;
        self.previous = Some((now, global_index));
        self.cycles += 1;
        self.last_kind = Some(kind);
        decisions
    }
}

/// The State's nodes (topology ∪ indexed), sorted and unique, each with its event index: a merge of two sorted maps.
struct StateNodes<'a> {
    topology: std::iter::Peekable<Box<dyn Iterator<Item = &'a NodeId> + 'a>>,
    indexed: std::iter::Peekable<Box<dyn Iterator<Item = (&'a NodeId, &'a u64)> + 'a>>,
}

impl<'a> StateNodes<'a> {
    fn new(state: &'a State) -> Self {
        let topology: Box<dyn Iterator<Item = &'a NodeId> + 'a> = Box::new(state.topology.nodes());
        let indexed: Box<dyn Iterator<Item = (&'a NodeId, &'a u64)> + 'a> =
            Box::new(state.last_event_index_by_node.iter());
        Self {
            topology: topology.peekable(),
            indexed: indexed.peekable(),
        }
    }
}

impl<'a> Iterator for StateNodes<'a> {
    type Item = (&'a NodeId, Option<u64>);

    fn next(&mut self) -> Option<Self::Item> {
        match (self.topology.peek(), self.indexed.peek()) {
            (None, None) => None,
            (Some(_), None) => self.topology.next().map(|node| (node, None)),
            (None, Some(_)) => self.indexed.next().map(|(node, index)| (node, Some(*index))),
            (Some(&node), Some(&(indexed, index))) => match node.cmp(indexed) {
                std::cmp::Ordering::Less => self.topology.next().map(|node| (node, None)),
                std::cmp::Ordering::Greater => self.indexed.next().map(|(node, index)| (node, Some(*index))),
                std::cmp::Ordering::Equal => {
                    let index = *index;
                    self.topology.next();
                    self.indexed.next();
                    Some((node, Some(index)))
                }
            },
        }
    }
}
