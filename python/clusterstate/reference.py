"""The pure-Python reducer: clusterstate's readable specification of ``apply``.

It follows exo's ``apply`` (``src/exo/shared/apply.py``) with clusterstate's changes (docs/models.md):

- every event advances its producer's entry in ``last_event_index_by_node`` (not only hardware
  samples): a node whose gatherer stalls while its runners work is alive;
- ``NodeDisconnected`` (and legacy ``NodeTimedOut``) drop the node's topology vertex and
  per-node data but keep ``node_identities``, so a node that rejoins keeps its name;
- ``apply`` is total: a wrong index raises :class:`EventIndexError` and changes nothing; an event
  about an unknown task, instance or runner is a no-op; nothing asserts;
- Thunderbolt-bridge cycles are canonical (each rotated to its smallest node id, the list sorted)
  and recomputed whenever one of their inputs changes: the topology, the bridge statuses or the
  nodes' network interfaces;
- a topology edge to an unknown node still adds that node (the staleness tracker tracks it, so
  it cannot become a ghost that never leaves).

``apply`` never mutates its input: it returns a new State that shares every unchanged part with
the old one. The Rust reducer (``clusterstate.apply``) must give equal results on every input.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

import networkx as nx

from .errors import EventIndexError
from .models import (
    GENERATION_TASKS,
    NODE_MAPS,
    ChunkGenerated,
    Connection,
    Event,
    IndexedEvent,
    InputChunkReceived,
    InstanceCreated,
    InstanceDeleted,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDisconnected,
    NodeDiskUsage,
    NodeDownloadProgress,
    NodeGatheredInfo,
    NodeId,
    NodeIdentity,
    NodeNetworkInfo,
    NodeNetworkInterfaces,
    NodeRdmaCtlStatus,
    NodeThunderboltInfo,
    NodeTimedOut,
    RDMAConnection,
    RdmaCtlStatus,
    RunnerDeleted,
    RunnerStatusUpdated,
    State,
    StaticNodeInformation,
    TaskAcknowledged,
    TaskCreated,
    TaskDeleted,
    TaskFailed,
    TaskStatusUpdated,
    TestEvent,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
    ThunderboltConnection,
    Topology,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
    TracesCollected,
    TracesMerged,
    origin_node,
)

__all__ = ["apply", "fold", "thunderbolt_bridge_cycles"]

K = TypeVar("K")
V = TypeVar("V")


def apply(state: State, indexed_event: IndexedEvent) -> State:
    """Fold one indexed event into ``state`` and return the new State.

    Raises:
        EventIndexError: ``indexed_event.idx`` is not ``state.last_event_applied_idx + 1``; the
            State is unchanged (it is immutable) and the caller decides what to do.
    """
    idx = indexed_event.idx
    expected = state.last_event_applied_idx + 1
    if idx != expected:
        raise EventIndexError(expected=expected, got=idx)

    before = state
    producer = origin_node(indexed_event)
    if producer is not None:
        state = _set(state, last_event_index_by_node=_with(state.last_event_index_by_node, producer, idx))
    state = _apply_event(state, indexed_event.event)
    if (
        state.topology is not before.topology
        or state.node_thunderbolt_bridge is not before.node_thunderbolt_bridge
        or state.node_network is not before.node_network
    ):
        cycles = thunderbolt_bridge_cycles(state.topology, state.node_thunderbolt_bridge, state.node_network)
        if cycles != state.thunderbolt_bridge_cycles:
            state = _set(state, thunderbolt_bridge_cycles=cycles)
    return _set(state, last_event_applied_idx=idx)


def fold(events: Iterable[IndexedEvent], state: State | None = None) -> State:
    """Apply ``events`` in order, starting from ``state`` (an empty State by default)."""
    result = State() if state is None else state
    for event in events:
        result = apply(result, event)
    return result


def _apply_event(state: State, event: Event) -> State:
    match event:
        case TaskCreated():
            return _set(state, tasks=_with(state.tasks, event.task_id, event.task))
        case TaskDeleted():
            return _set(state, tasks=_without(state.tasks, event.task_id))
        case TaskStatusUpdated():
            return _task_status_updated(state, event)
        case TaskFailed():
            return _task_failed(state, event)
        case InstanceCreated():
            return _set(state, instances=_with(state.instances, event.instance.instance_id, event.instance))
        case InstanceDeleted():
            return _set(state, instances=_without(state.instances, event.instance_id))
        case RunnerStatusUpdated():
            return _set(state, runners=_with(state.runners, event.runner_id, event.runner_status))
        case RunnerDeleted():
            return _set(state, runners=_without(state.runners, event.runner_id))
        case NodeDisconnected() | NodeTimedOut():
            return _node_disconnected(state, event.node_id)
        case NodeGatheredInfo():
            return _node_gathered_info(state, event)
        case NodeDownloadProgress():
            return _node_download_progress(state, event)
        case TopologyEdgeCreated():
            return _set(state, topology=state.topology.with_connection(event.conn))
        case TopologyEdgeDeleted():
            return _set(state, topology=state.topology.without_connection(event.conn))
        case (
            TestEvent()
            | TaskAcknowledged()
            | ChunkGenerated()
            | InputChunkReceived()
            | TracesCollected()
            | TracesMerged()
        ):
            # Pass-through: streamed to clients, never part of State (they still prove liveness).
            return state


# --- tasks ---


def _task_status_updated(state: State, event: TaskStatusUpdated) -> State:
    task = state.tasks.get(event.task_id)
    if task is None:
        return state
    update: dict[str, object] = {"task_status": event.task_status}
    if event.task_status != "Failed" and isinstance(task, GENERATION_TASKS):
        # Leaving the Failed state clears the error (exo: only generation tasks carry one).
        update |= {"error_type": None, "error_message": None}
    return _set(state, tasks=_with(state.tasks, event.task_id, task.model_copy(update=update)))


def _task_failed(state: State, event: TaskFailed) -> State:
    task = state.tasks.get(event.task_id)
    if not isinstance(task, GENERATION_TASKS):
        # Unknown task, or a kind without error fields (exo sets undeclared, unserialised attributes).
        return state
    # exo leaves the status unchanged; a TaskStatusUpdated(Failed) usually accompanies it.
    failed = task.model_copy(update={"error_type": event.error_type, "error_message": event.error_message})
    return _set(state, tasks=_with(state.tasks, event.task_id, failed))


# --- nodes ---


def _node_disconnected(state: State, node_id: NodeId) -> State:
    dropped = {name: _without(getattr(state, name), node_id) for name in NODE_MAPS}
    return _set(
        state,
        topology=state.topology.without_node(node_id),
        last_event_index_by_node=_without(state.last_event_index_by_node, node_id),
        **dropped,
    )


def _node_download_progress(state: State, event: NodeDownloadProgress) -> State:
    progress = event.download_progress
    entries = list(state.downloads.get(progress.node_id, ()))
    for position, existing in enumerate(entries):
        if existing.shard_metadata == progress.shard_metadata:
            entries[position] = progress
            break
    else:
        entries.append(progress)
    return _set(state, downloads=_with(state.downloads, progress.node_id, entries))


def _node_gathered_info(state: State, event: NodeGatheredInfo) -> State:
    node_id = event.node_id
    state = _set(state, topology=state.topology.with_node(node_id))
    info = event.info
    match info:
        case MacmonMetrics():
            return _set(
                state,
                node_system=_with(state.node_system, node_id, info.system_profile),
                node_memory=_with(state.node_memory, node_id, info.memory),
            )
        case MemoryUsage():
            return _set(state, node_memory=_with(state.node_memory, node_id, info))
        case NodeDiskUsage():
            return _set(state, node_disk=_with(state.node_disk, node_id, info.disk_usage))
        case NodeConfig():
            return state
        case MiscData():
            return _merge_identity(state, node_id, friendly_name=info.friendly_name)
        case StaticNodeInformation():
            return _merge_identity(
                state,
                node_id,
                model_id=info.model,
                chip_id=info.chip,
                os_version=info.os_version,
                os_build_version=info.os_build_version,
            )
        case NodeNetworkInterfaces():
            network = NodeNetworkInfo(interfaces=info.ifaces)
            return _set(state, node_network=_with(state.node_network, node_id, network))
        case MacThunderboltIdentifiers():
            thunderbolt = NodeThunderboltInfo(interfaces=info.idents)
            return _set(state, node_thunderbolt=_with(state.node_thunderbolt, node_id, thunderbolt))
        case MacThunderboltConnections():
            return _set(state, topology=_with_rdma_links(state, node_id, info.conns))
        case ThunderboltBridgeInfo():
            return _set(state, node_thunderbolt_bridge=_with(state.node_thunderbolt_bridge, node_id, info.status))
        case RdmaCtlStatus():
            rdma = NodeRdmaCtlStatus(enabled=info.enabled)
            return _set(state, node_rdma_ctl=_with(state.node_rdma_ctl, node_id, rdma))


def _merge_identity(state: State, node_id: NodeId, **fields: str) -> State:
    identity = state.node_identities.get(node_id, NodeIdentity()).model_copy(update=fields)
    return _set(state, node_identities=_with(state.node_identities, node_id, identity))


def _with_rdma_links(state: State, reporter: NodeId, links: Iterable[ThunderboltConnection]) -> Topology:
    """exo's RDMA mapping: cables reported by ``reporter`` become its RDMA out-edges.

    A cable is known by the controllers' domain UUIDs at both ends; it becomes an edge only once
    both UUIDs appear in some node's identifiers. If two nodes claim one UUID, the smaller node
    id owns it (exo followed dict order; a canonical rule keeps replicas equal).
    """
    owners: dict[str, tuple[NodeId, str]] = {}
    for owner, info in sorted(state.node_thunderbolt.items()):
        for ident in info.interfaces:
            owners.setdefault(ident.domain_uuid, (owner, ident.rdma_interface))
    edges = []
    for link in links:
        source, sink = owners.get(link.source_uuid), owners.get(link.sink_uuid)
        if source is None or sink is None:
            continue  # the peer's identifiers have not arrived yet
        edge = RDMAConnection(source_rdma_iface=source[1], sink_rdma_iface=sink[1])
        edges.append(Connection(source=reporter, sink=sink[0], edge=edge))
    return state.topology.with_rdma_out_edges(reporter, edges)


def thunderbolt_bridge_cycles(
    topology: Topology,
    bridges: Mapping[NodeId, ThunderboltBridgeStatus],
    networks: Mapping[NodeId, NodeNetworkInfo],
) -> list[list[NodeId]]:
    """Loops of Macs with Thunderbolt Bridge enabled (they cause broadcast storms).

    The graph holds the bridge-enabled nodes of the topology and their edges that run over
    Thunderbolt: RDMA edges, and socket edges whose address is a Thunderbolt interface of an
    enabled node. Every simple cycle of two or more nodes is returned, rotated to start at its
    smallest node id, the list sorted.
    """
    enabled = sorted(node for node, status in bridges.items() if status.enabled and node in topology)
    if len(enabled) < 2:
        return []
    tb_ips = {
        iface.ip_address
        for node in enabled
        for iface in (networks[node].interfaces if node in networks else ())
        if iface.interface_type == "thunderbolt"
    }
    members = set(enabled)
    graph: nx.DiGraph[NodeId] = nx.DiGraph()
    graph.add_nodes_from(enabled)
    for node in enabled:
        for conn in topology.out_edges(node):
            edge = conn.edge
            over_thunderbolt = isinstance(edge, RDMAConnection) or edge.sink_multiaddr.ip_address in tb_ips
            if conn.sink in members and conn.sink != node and over_thunderbolt:
                graph.add_edge(node, conn.sink)
    cycles = []
    for cycle in nx.simple_cycles(graph):
        if len(cycle) >= 2:
            start = cycle.index(min(cycle))
            cycles.append(cycle[start:] + cycle[:start])
    return sorted(cycles)


# --- immutable helpers: every update builds new containers and shares the rest ---


def _set(state: State, **fields: object) -> State:
    changed = {name: value for name, value in fields.items() if value is not getattr(state, name)}
    return state.model_copy(update=changed) if changed else state


def _with(mapping: dict[K, V], key: K, value: V) -> dict[K, V]:
    # An equal re-report (interfaces every 10 s, bridge status, ...) keeps the very same map, so
    # nothing downstream (bridge cycles) is recomputed for it.
    if key in mapping and mapping[key] == value:
        return mapping
    return {**mapping, key: value}


def _without(mapping: dict[K, V], key: K) -> dict[K, V]:
    if key not in mapping:
        return mapping
    return {k: v for k, v in mapping.items() if k != key}
