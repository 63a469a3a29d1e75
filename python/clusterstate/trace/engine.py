"""The discrete-event engine of a trace: simulated time, the global order, and each node's life.

Everything that happens is an action scheduled at a simulated time. Actions run in time order
(ties in scheduling order) and emit events; the engine gives each emitted event the next global
index and records its producer, as the master does when it indexes the events it receives.

A node's actions belong to one *life* of the node (one boot): when the node crashes its epoch
changes and every action still scheduled for the old life silently does nothing, the way a
killed process stops producing. A reboot starts a new life.

The engine also keeps the master's view of the cluster that producers need (which nodes are in
the topology, their advertised IPs, the socket edges), updated as events are emitted, so that
producers react to what the State would show, like exo's workers do.
"""

from __future__ import annotations

import heapq
import itertools
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from clusterstate.models import Event, EventId, IndexedEvent, NodeGatheredInfo, NodeId, TaggedJson

from .cluster import ClusterSpec, NodeSpec
from .config import TraceConfig
from .rand import derive_rng, uuid_str

__all__ = ["Action", "NodeRuntime", "Progress", "Sim", "SweepMemo"]

Action = Callable[[float], None]
Progress = Callable[[float], None]
"""Told the simulated time (seconds) as a trace is generated."""


@dataclass
class SweepMemo:
    """A node's last reachability sweep: the ``view_version`` it saw, the edges it confirmed (sink,
    IP) and whether a dead machine slowed it; ``settled``: the version after the sweep's edges were
    applied (``None`` until they are)."""

    version: int
    confirmed: list[tuple[NodeId, str]]
    slowed: bool
    settled: int | None = None


@dataclass
class NodeRuntime:
    """A node's changing condition: alive or not, what it holds in memory and on disk."""

    spec: NodeSpec
    rng: random.Random
    up: bool = False
    """Alive in the current life; changed only by :meth:`Sim.boot` and :meth:`Sim.crash`."""
    epoch: int = 0
    resident_bytes: int = 0
    """Model weights loaded by this node's runners."""
    generating: int = 0
    """Generation requests this node's runner is working on."""
    downloaded_bytes: int = 0
    """Bytes written to the models directory by downloads so far (they survive a crash)."""
    disk_drift: int = 0
    ram_wobble: int = 0
    temperature: float = 40.0
    on_disk: dict[str, tuple[TaggedJson, int]] = field(default_factory=dict)
    """Shards fully on disk and their sizes, keyed by the shard's canonical JSON: what the rescan reports."""

    @property
    def node_id(self) -> NodeId:
        return self.spec.node_id


class Sim:
    """Runs actions in simulated-time order and indexes the events they emit."""

    def __init__(self, config: TraceConfig, spec: ClusterSpec) -> None:
        self.config = config
        self.spec = spec
        self.master = spec.master
        self.nodes: dict[NodeId, NodeRuntime] = {
            node.node_id: NodeRuntime(spec=node, rng=derive_rng(config.seed, "node", node.index)) for node in spec.nodes
        }
        self._queue: list[tuple[float, int, Action]] = []
        self._order = itertools.count()
        self._emitted: list[IndexedEvent] = []
        self._ids = derive_rng(config.seed, "event-ids")
        self._uuids = derive_rng(config.seed, "uuids")
        self.next_idx = 0
        self.last_idx: dict[NodeId, int] = {}
        """Global index of the last event each node produced."""
        # The master's view, as the State would show it.
        self.in_topology: set[NodeId] = set()
        self.disconnected: set[NodeId] = set()
        self.network: dict[NodeId, tuple[str, ...]] = {}
        """IPs each node advertised in its last NodeNetworkInterfaces (set through :meth:`advertise`)."""
        self.view_version = 0
        """Bumped whenever ``in_topology``, ``network`` or ``down`` change, or a disconnect removes edges:
        a sweep that sees the same version sees the same cluster (clusterstate.trace.network)."""
        self.socket_edges: dict[NodeId, dict[tuple[NodeId, str], None]] = {}
        """Each node's reachability out-edges (sink, IP), in creation order."""
        self.down: set[NodeId] = set(self.nodes)
        """Nodes not up (not booted yet, or crashed): kept by :meth:`boot` and :meth:`crash`."""
        # Static reachability, worked out on first use by the sweeps (clusterstate.trace.network).
        self.probe_peers: dict[NodeId, tuple[NodeRuntime, ...]] = {}
        self.lan_unreachable_from: dict[NodeId, set[NodeId]] | None = None
        self.sweeps: dict[NodeId, SweepMemo] = {}
        """What each node's last sweep found, for reuse while ``view_version`` stays the same."""

    # --- scheduling ---

    def at(self, when: float, action: Action) -> None:
        """Run ``action(when)`` at simulated time ``when``."""
        heapq.heappush(self._queue, (when, next(self._order), action))

    def on_node(self, node: NodeRuntime, when: float, action: Action) -> None:
        """Run ``action`` at ``when`` if the node is still in the life it is in now."""
        epoch = node.epoch

        def guarded(now: float) -> None:
            if node.up and node.epoch == epoch:
                action(now)

        self.at(when, guarded)

    def run(self, progress: Progress | None = None) -> Iterator[IndexedEvent]:
        """Run every action before ``duration_s``, yielding events in index order.

        ``progress``, if given, is called with the simulated time whenever it passes a whole second.
        """
        next_second = 1.0
        while self._queue and self._queue[0][0] < self.config.duration_s:
            when, _, action = heapq.heappop(self._queue)
            if progress is not None and when >= next_second:
                progress(when)
                next_second = math.floor(when) + 1.0
            action(when)
            yield from self._emitted
            self._emitted.clear()

    # --- lives ---

    def boot(self, node: NodeRuntime) -> None:
        """Start a new life of ``node``: everything scheduled for an earlier one no longer runs."""
        node.up = True
        node.epoch += 1
        self.down.discard(node.node_id)
        self.view_version += 1

    def crash(self, node: NodeRuntime) -> None:
        """End the node's life: it stops producing and loses what it held in memory."""
        node.up = False
        node.epoch += 1
        node.resident_bytes = 0
        node.generating = 0
        self.down.add(node.node_id)
        self.view_version += 1

    # --- emitting ---

    def event_id(self) -> EventId:
        return EventId(uuid_str(self._ids))

    def uuid(self) -> str:
        """A fresh seeded id for tasks, instances, runners and commands."""
        return uuid_str(self._uuids)

    def emit(self, origin: NodeId, event: Event) -> None:
        """Index ``event`` as produced by ``origin`` and update the master's view."""
        indexed = IndexedEvent(idx=self.next_idx, origin=origin, event=event)
        self.next_idx += 1
        self.last_idx[origin] = indexed.idx
        if isinstance(event, NodeGatheredInfo) and event.node_id not in self.in_topology:
            # A sample (re)adds its node to the topology, also after a disconnect.
            self.in_topology.add(event.node_id)
            self.disconnected.discard(event.node_id)
            self.view_version += 1
        self._emitted.append(indexed)

    def advertise(self, node_id: NodeId, ips: tuple[str, ...]) -> None:
        """Record the IPs of ``node_id``'s NodeNetworkInterfaces sample."""
        if self.network.get(node_id) != ips:
            self.network[node_id] = ips
            self.view_version += 1

    def disconnect(self, node_id: NodeId) -> None:
        """Forget ``node_id`` as the State does when NodeDisconnected is applied."""
        self.view_version += 1
        self.in_topology.discard(node_id)
        self.disconnected.add(node_id)
        self.last_idx.pop(node_id, None)
        self.network.pop(node_id, None)
        self.socket_edges.pop(node_id, None)
        for edges in self.socket_edges.values():
            for key in [key for key in edges if key[0] == node_id]:
                del edges[key]
