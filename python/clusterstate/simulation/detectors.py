"""The three liveness detectors compared by the simulation, each the plan loop of its own master.

- :class:`WallClockDetector`: exo's ``last_seen > 30 s`` rule (``Master._plan``), with its
  apply-before-stamp quirk: the master applies a ``NodeGatheredInfo`` before it
  overwrites ``when`` with its own clock, so the master's ``last_seen[node]`` is the *worker's* clock
  at sending, and the plan loop compares it with the *master's* clock. Only hardware samples count.
  Its bookkeeping is a dict ``node → last_seen`` updated per sample, standing in for exo's State
  field; a decision removes the node's entry (as applying ``NodeTimedOut`` did) until its next sample.
- :class:`FirstProposalDetector`: the index rule first proposed for exo (exo#1451). Its master indexes events into a
  ``CoreState`` through the real reducer, but without the envelope's ``origin``: the reducer then
  falls back to the producer named inside the event, which makes only ``NodeGatheredInfo`` advance
  a node (no topology edges happen in these scenarios). Each cycle snapshots
  ``last_event_index_by_node`` and disconnects a node unchanged for 3 cycles; no stall guard, no
  tracking of nodes without an index.
- :class:`TrackerDetector`: clusterstate: every event indexed with its origin into a ``CoreState``
  and a :class:`clusterstate.StalenessTracker` (the Rust one) deciding.

Each detector's decisions go back into its own State (a ``NodeDisconnected`` applied at once), as
its master would do. A new master term starts the detector's bookkeeping afresh.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import clusterstate
from clusterstate import CoreState, StalenessTracker
from clusterstate.models import NodeDisconnected, NodeId

from .stream import Delivery, node_id

__all__ = ["Detector", "FirstProposalDetector", "TrackerDetector", "WallClockDetector"]

EXO_TIMEOUT_S = 30.0


class Detector(ABC):
    """A master's liveness decisions over the delivered event stream."""

    name: str
    label: str

    @abstractmethod
    def deliver(self, batch: Sequence[Delivery]) -> None:
        """Index ``batch`` (in order)."""

    @abstractmethod
    def cycle(self, now: float) -> list[int]:
        """Run the plan cycle starting at true time ``now``; returns the nodes it disconnects."""

    @abstractmethod
    def new_term(self, master: int) -> None:
        """A new master (``master``) takes over with fresh bookkeeping."""


class WallClockDetector(Detector):
    """exo: ``now - last_seen > 30 s``, ``last_seen`` from the worker's clock (apply-before-stamp)."""

    name = "wall-clock"
    label = "exo wall clock (last_seen > 30 s)"

    def __init__(self, offsets: Sequence[float], timeout_s: float = EXO_TIMEOUT_S) -> None:
        self.offsets = offsets
        self.timeout_s = timeout_s
        self.master = 0
        self.last_seen: dict[int, float] = {}

    def deliver(self, batch: Sequence[Delivery]) -> None:
        for delivery in batch:
            if delivery.gathered:
                # The worker's `when`: its own clock when it sent the sample.
                self.last_seen[delivery.node] = delivery.sent + self.offsets[delivery.node]

    def cycle(self, now: float) -> list[int]:
        master_now = now + self.offsets[self.master]
        gone = sorted(node for node, seen in self.last_seen.items() if master_now - seen > self.timeout_s)
        for node in gone:
            del self.last_seen[node]
        return gone

    def new_term(self, master: int) -> None:
        # exo's new master starts from an empty State (its log restarts at 0).
        self.master = master
        self.last_seen = {}


class _Indexed(Detector):
    """A master that indexes every delivery into a ``CoreState`` through ``clusterstate.apply_many``."""

    with_origin: bool

    def __init__(self) -> None:
        self.state = CoreState()

    def deliver(self, batch: Sequence[Delivery]) -> None:
        if not batch:
            return
        idx = self.state.last_event_applied_idx + 1
        events = []
        for delivery in batch:
            origin = b'"%s"' % node_id(delivery.node).encode() if self.with_origin else b"null"
            events.append(b'{"idx":%d,"origin":%s,"event":%s}' % (idx, origin, delivery.event))
            idx += 1
        self.state = clusterstate.apply_many(self.state, events)

    def _disconnect(self, node: str, last_index: int | None, stale_cycles: int) -> None:
        event = NodeDisconnected(node_id=NodeId(node), last_index=last_index, stale_cycles=stale_cycles)
        idx = self.state.last_event_applied_idx + 1
        indexed = b'{"idx":%d,"origin":null,"event":%s}' % (idx, event.model_dump_json().encode())
        self.state = clusterstate.apply(self.state, indexed)


def _index_of(node: str) -> int:
    return int(node.rsplit("-", 1)[1])


class FirstProposalDetector(_Indexed):
    """The first proposal: only hardware samples advance the index; 3 unchanged snapshots disconnect."""

    name = "first-proposal"
    label = "first index proposal (NodeGatheredInfo only, no guard)"
    with_origin = False

    def __init__(self, threshold: int = 3) -> None:
        super().__init__()
        self.threshold = threshold
        self.seen: dict[str, int] = {}
        self.stale: dict[str, int] = {}

    def cycle(self, now: float) -> list[int]:
        del now
        gone = []
        for node, index in self.state.last_event_index_by_node.items():
            if self.seen.get(node) != index:
                self.seen[node], self.stale[node] = index, 0
                continue
            self.stale[node] += 1
            if self.stale[node] >= self.threshold:
                cycles = self.stale.pop(node)
                del self.seen[node]
                self._disconnect(node, index, cycles)
                gone.append(_index_of(node))
        return sorted(gone)

    def new_term(self, master: int) -> None:
        del master
        self.seen, self.stale = {}, {}


class TrackerDetector(_Indexed):
    """clusterstate: any event advances its producer; the Rust ``StalenessTracker`` decides."""

    name = "tracker"
    label = "clusterstate StalenessTracker"
    with_origin = True

    def __init__(self, period_s: float = 10.0, threshold: int = 3) -> None:
        super().__init__()
        self.period_s = period_s
        self.threshold = threshold
        self.tracker = StalenessTracker(period_s, threshold)

    def cycle(self, now: float) -> list[int]:
        decisions = self.tracker.cycle(self.state, now=now, global_index=self.state.last_event_applied_idx)
        for decision in decisions:
            self._disconnect(decision.node_id, decision.last_index, decision.stale_cycles)
        return [_index_of(decision.node_id) for decision in decisions]

    def new_term(self, master: int) -> None:
        del master
        self.tracker = StalenessTracker(self.period_s, self.threshold)
