"""Each worker's reachability sweep: the socket edges of the topology.

Every sweep, a node probes ``http://<ip>:52415/node_id`` on every IP of every other node that
the State shows in the topology with network interfaces. A reply from the expected node confirms
the edge "this node reaches that one at that IP"; new confirmations become
``TopologyEdgeCreated``, socket out-edges no longer confirmed become ``TopologyEdgeDeleted``. The
next sweep starts 10 s after one ends. A probe of a dead machine only fails after 3 attempts with
a 5 s timeout and 1 s pauses, so a sweep that meets one takes about 17 s longer.
"""

from __future__ import annotations

from collections import defaultdict

from clusterstate.models import (
    Connection,
    Multiaddr,
    NodeId,
    SocketConnection,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
)

from .engine import NodeRuntime, Sim, SweepMemo

__all__ = ["API_PORT", "reachable", "start_sweeps"]

API_PORT = 52415
_SWEEP_PAUSE_S = 10.0
_DEAD_PROBE_S = 17.0


def reachable(sim: Sim, source: NodeRuntime, sink: NodeRuntime, ip: str) -> bool:
    """Whether ``source`` gets ``sink``'s node id back when probing ``ip`` now."""
    if not sink.up:
        return False
    if ip == sink.spec.lan_ip:
        return frozenset((source.node_id, sink.node_id)) not in sim.spec.lan_unreachable
    if ip == sink.spec.bridge_ip:
        # The Thunderbolt Bridge forwards within a cabled group whose members all enabled it.
        return source.spec.bridge_enabled and source.spec.tb_group == sink.spec.tb_group
    # Loopback, docker and link-local addresses answer with the prober's own id, or not at all.
    return False


def start_sweeps(sim: Sim, node: NodeRuntime, boot: float) -> None:
    """Start the node's sweep loop for the life that begins at ``boot``."""
    sim.on_node(node, boot + node.rng.uniform(0.5, 3.0), lambda now: _sweep(sim, node, now))


def _sweep(sim: Sim, node: NodeRuntime, start: float) -> None:
    memo = sim.sweeps.get(node.node_id)
    if memo is None or memo.version != sim.view_version:
        memo = SweepMemo(sim.view_version, _confirmations(sim, node), _slowed(sim))
        sim.sweeps[node.node_id] = memo
    duration = node.rng.uniform(0.02, 0.25) + (_DEAD_PROBE_S if memo.slowed else 0.0)
    confirmed = memo.confirmed

    def finish(now: float) -> None:
        # The edges already match this sweep's confirmations if nothing changed since they were applied.
        if memo.settled != sim.view_version:
            _apply(sim, node, confirmed)
            memo.settled = sim.view_version
        sim.on_node(node, now + _SWEEP_PAUSE_S, lambda later: _sweep(sim, node, later))

    sim.on_node(node, start + duration, finish)


def _confirmations(sim: Sim, node: NodeRuntime) -> list[tuple[NodeId, str]]:
    # Only peers the node can reach at some IP (LAN or bridge) can confirm an edge; probing the
    # others fails whatever the State shows, so they are skipped: the confirmations come out the
    # same, in the same order, without touching every node of a large sparse cluster each sweep.
    in_topology, network = sim.in_topology, sim.network
    return [
        (peer.node_id, ip)
        for peer in _probe_peers(sim, node)
        if peer.node_id in in_topology
        for ip in network.get(peer.node_id, ())
        if reachable(sim, node, peer, ip)
    ]


def _slowed(sim: Sim) -> bool:
    """Whether a probe meets a dead machine the State still shows (with an IP to probe)."""
    in_topology, network = sim.in_topology, sim.network
    return any(peer_id in in_topology and network.get(peer_id) for peer_id in sim.down)


def _apply(sim: Sim, node: NodeRuntime, confirmed: list[tuple[NodeId, str]]) -> None:
    """Create the newly confirmed socket out-edges of ``node`` and delete those no longer confirmed."""
    edges = sim.socket_edges.setdefault(node.node_id, {})
    # A peer the master dropped during the sweep is not re-added (it would be a ghost node).
    fresh = [key for key in confirmed if key not in edges and key[0] in sim.in_topology]
    still = set(confirmed)
    stale = [key for key in edges if key not in still]
    for key in fresh:
        edges[key] = None
        sim.emit(node.node_id, TopologyEdgeCreated(event_id=sim.event_id(), conn=_connection(node.node_id, *key)))
    for key in stale:
        del edges[key]
        sim.emit(node.node_id, TopologyEdgeDeleted(event_id=sim.event_id(), conn=_connection(node.node_id, *key)))


def _probe_peers(sim: Sim, node: NodeRuntime) -> tuple[NodeRuntime, ...]:
    """The other nodes ``node`` reaches at some IP when they are up, in node order (static, so cached)."""
    peers = sim.probe_peers.get(node.node_id)
    if peers is None:
        if sim.lan_unreachable_from is None:
            unreachable_from: defaultdict[NodeId, set[NodeId]] = defaultdict(set)
            for a, b in sim.spec.lan_unreachable:
                unreachable_from[a].add(b)
                unreachable_from[b].add(a)
            sim.lan_unreachable_from = dict(unreachable_from)
        spec = node.spec
        ids = sim.nodes.keys() - sim.lan_unreachable_from.get(node.node_id, set()) - {node.node_id}
        if spec.bridge_enabled:
            # The Thunderbolt Bridge reaches the rest of the cabled group, with or without the LAN.
            ids |= {
                peer.node_id
                for peer in sim.nodes.values()
                if peer is not node and peer.spec.bridge_ip is not None and peer.spec.tb_group == spec.tb_group
            }
        peers = tuple(sorted((sim.nodes[peer_id] for peer_id in ids), key=lambda peer: peer.spec.index))
        sim.probe_peers[node.node_id] = peers
    return peers


def _connection(source: NodeId, sink: NodeId, ip: str) -> Connection:
    address = Multiaddr(address=f"/ip4/{ip}/tcp/{API_PORT}")
    return Connection(source=source, sink=sink, edge=SocketConnection(sink_multiaddr=address))
