"""The reference reducer on the topology: edges, ghosts, RDMA mapping and Thunderbolt-bridge cycles.

exo's rules for TopologyEdgeCreated/Deleted, the RDMA mapping and bridge cycles, with clusterstate's
canonical, always-recomputed cycles. Every expected value is written out by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from clusterstate.models import (
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    NetworkInterfaceInfo,
    NodeDisconnected,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInfo,
    NodeNetworkInterfaces,
    RDMAConnection,
    SocketConnection,
    State,
    ThunderboltBridgeStatus,
    ThunderboltConnection,
    ThunderboltIdentifier,
    Topology,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
)
from clusterstate.reference import thunderbolt_bridge_cycles
from support.reducer import bridge, disconnect, gathered, link, socket, step, steps, without_idx

A = NodeId("node-a")
B = NodeId("node-b")
C = NodeId("node-c")
D = NodeId("node-d")
G = NodeId("node-ghost")


# --- fixture builders ---


def socket_json(ip: str, port: int = 52415) -> dict[str, Any]:
    return {
        "sink_multiaddr": {"address": f"/ip4/{ip}/tcp/{port}", "address_type": "ip4", "ip_address": ip, "port": port}
    }


def rdma(source_iface: str, sink_iface: str) -> RDMAConnection:
    return RDMAConnection(source_rdma_iface=source_iface, sink_rdma_iface=sink_iface)


def rdma_json(source_iface: str, sink_iface: str) -> dict[str, Any]:
    return {"source_rdma_iface": source_iface, "sink_rdma_iface": sink_iface}


def created(source: NodeId, sink: NodeId, edge: SocketConnection | RDMAConnection) -> TopologyEdgeCreated:
    return TopologyEdgeCreated(conn=link(source, sink, edge))


def deleted(source: NodeId, sink: NodeId, edge: SocketConnection | RDMAConnection) -> TopologyEdgeDeleted:
    return TopologyEdgeDeleted(conn=link(source, sink, edge))


def idents(node: NodeId, *pairs: tuple[str, str]) -> NodeGatheredInfo:
    """``pairs`` are (rdma_interface, domain_uuid)."""
    info = MacThunderboltIdentifiers(
        idents=[
            ThunderboltIdentifier(rdma_interface=iface, domain_uuid=uuid, link_speed="80 Gb/s") for iface, uuid in pairs
        ]
    )
    return gathered(node, info)


def cables(node: NodeId, *pairs: tuple[str, str]) -> NodeGatheredInfo:
    """``pairs`` are (source_uuid, sink_uuid)."""
    return gathered(
        node, MacThunderboltConnections(conns=[ThunderboltConnection(source_uuid=s, sink_uuid=t) for s, t in pairs])
    )


def bridge_sample(node: NodeId, enabled: bool) -> NodeGatheredInfo:
    return gathered(node, bridge(enabled))


def interfaces(node: NodeId, *ifaces: tuple[str, str, Any]) -> NodeGatheredInfo:
    info = NodeNetworkInterfaces(
        ifaces=[NetworkInterfaceInfo(name=name, ip_address=ip, interface_type=kind) for name, ip, kind in ifaces]
    )
    return gathered(node, info)


def connections(state: State) -> dict[str, Any]:
    result: dict[str, Any] = state.model_dump(mode="json")["topology"]["connections"]
    return result


# ====================================================================================
# TopologyEdgeCreated / TopologyEdgeDeleted
# ====================================================================================


def test_edge_created_adds_edge_and_both_endpoints() -> None:
    state = step(State(), created(A, B, socket("10.0.0.2")))
    assert state.model_dump(mode="json")["topology"] == {
        "nodes": ["node-a", "node-b"],
        "connections": {"node-a": {"node-b": [socket_json("10.0.0.2")]}},
    }


def test_edge_to_unknown_node_keeps_the_ghost_in_topology_and_known_nodes() -> None:
    state = step(State(), gathered(A, NodeNetworkInterfaces(ifaces=[])))
    state = step(state, created(A, G, socket("10.0.0.9")))
    assert state.topology.list_nodes() == [A, G]
    # Never heard from: no event index, but tracked by the staleness tracker through known_nodes().
    assert state.last_event_index_by_node == {A: 1}
    assert state.known_nodes() == {A, G}


def test_late_edge_resurrects_a_disconnected_node_which_can_be_disconnected_again() -> None:
    state = steps(
        State(),
        gathered(A, NodeNetworkInterfaces(ifaces=[])),
        gathered(B, NodeNetworkInterfaces(ifaces=[])),
        created(A, B, socket("10.0.0.2")),
        disconnect(B),
    )
    assert state.topology.list_nodes() == [A]
    state = step(state, created(A, B, socket("10.0.0.2")))  # from the same window as the disconnect
    assert state.topology.list_nodes() == [A, B]
    assert B in state.known_nodes()
    assert B not in state.last_event_index_by_node
    state = step(state, NodeDisconnected(node_id=B, last_index=None, stale_cycles=3))
    assert state.model_dump(mode="json")["topology"] == {"nodes": ["node-a"], "connections": {}}


def test_duplicate_equal_edge_is_kept_once() -> None:
    before = step(State(), created(A, B, socket("10.0.0.2")))
    after = step(before, created(A, B, socket("10.0.0.2")))
    assert connections(after) == {"node-a": {"node-b": [socket_json("10.0.0.2")]}}
    # Only the indices moved (origin None: the source advanced).
    assert after.last_event_index_by_node == {A: 1}
    assert after.topology == before.topology


def test_parallel_different_edges_are_all_kept_in_canonical_order() -> None:
    state = steps(
        State(),
        created(A, B, rdma("rdma_en2", "rdma_en3")),
        created(A, B, socket("10.0.0.2", port=52416)),  # same IP (exo hashes by IP), different edge
        created(A, B, socket("10.0.0.2")),
        created(A, B, socket("10.0.0.2")),
    )
    assert connections(state) == {
        "node-a": {
            "node-b": [socket_json("10.0.0.2"), socket_json("10.0.0.2", port=52416), rdma_json("rdma_en2", "rdma_en3")]
        }
    }


def test_edge_deleted_removes_only_that_direction() -> None:
    state = steps(State(), created(A, B, socket("10.0.0.2")), created(B, A, socket("10.0.0.2")))
    state = step(state, deleted(A, B, socket("10.0.0.2")))
    assert state.model_dump(mode="json")["topology"] == {
        "nodes": ["node-a", "node-b"],
        "connections": {"node-b": {"node-a": [socket_json("10.0.0.2")]}},
    }


def test_edge_deleted_removes_only_the_equal_parallel_edge() -> None:
    state = steps(
        State(),
        created(A, B, socket("10.0.0.2")),
        created(A, B, socket("10.0.0.2", port=52416)),
        created(A, B, rdma("rdma_en2", "rdma_en3")),
        deleted(A, B, socket("10.0.0.2")),
    )
    assert connections(state) == {
        "node-a": {"node-b": [socket_json("10.0.0.2", port=52416), rdma_json("rdma_en2", "rdma_en3")]}
    }


@pytest.mark.parametrize(
    "event",
    [
        deleted(A, G, socket("10.0.0.2")),  # unknown sink
        deleted(G, A, socket("10.0.0.2")),  # unknown source
        deleted(A, B, socket("10.0.0.3")),  # no such edge between known nodes
        deleted(B, A, socket("10.0.0.2")),  # the other direction does not exist
    ],
    ids=["unknown-sink", "unknown-source", "other-edge", "other-direction"],
)
def test_edge_deleted_that_matches_nothing_is_a_no_op(event: TopologyEdgeDeleted) -> None:
    before = step(State(), created(A, B, socket("10.0.0.2")))
    after = step(before, event)
    assert after.topology == before.topology
    assert after.model_dump(mode="json")["topology"] == {
        "nodes": ["node-a", "node-b"],
        "connections": {"node-a": {"node-b": [socket_json("10.0.0.2")]}},
    }
    assert G not in after.topology


# ====================================================================================
# RDMA mapping (MacThunderboltConnections)
# ====================================================================================


def two_macs() -> State:
    return steps(State(), idents(A, ("rdma_en2", "uuid-a2")), idents(B, ("rdma_en5", "uuid-b5")))


def test_cable_becomes_rdma_edge_from_reporter_to_sink_owner() -> None:
    state = step(two_macs(), cables(A, ("uuid-a2", "uuid-b5")))
    assert connections(state) == {"node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]}}
    state = step(state, cables(B, ("uuid-b5", "uuid-a2")))
    assert connections(state) == {
        "node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]},
        "node-b": {"node-a": [rdma_json("rdma_en5", "rdma_en2")]},
    }


def test_parallel_edge_order_does_not_depend_on_history() -> None:
    # A re-sent cable report (exo sends one every 5 s) removes and re-adds the RDMA edge; the
    # State must not change, and the arrival order of socket vs RDMA edges must not matter.
    cable_first = steps(two_macs(), cables(A, ("uuid-a2", "uuid-b5")), created(A, B, socket("10.0.0.2")))
    socket_first = steps(two_macs(), created(A, B, socket("10.0.0.2")), cables(A, ("uuid-a2", "uuid-b5")))
    resent = step(cable_first, cables(A, ("uuid-a2", "uuid-b5")))
    expected = {"node-a": {"node-b": [socket_json("10.0.0.2"), rdma_json("rdma_en2", "rdma_en5")]}}
    assert connections(cable_first) == connections(socket_first) == connections(resent) == expected
    assert cable_first.topology == socket_first.topology
    assert resent.topology is cable_first.topology


def test_edge_leaves_the_reporter_not_the_owner_of_source_uuid() -> None:
    # C reports a cable whose source controller belongs to A: exo draws the edge from C.
    state = step(two_macs(), cables(C, ("uuid-a2", "uuid-b5")))
    assert connections(state) == {"node-c": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]}}
    assert state.topology.list_nodes() == [A, B, C]


def test_cables_with_unknown_uuids_are_dropped() -> None:
    state = step(
        two_macs(),
        cables(
            A, ("uuid-a2", "uuid-unknown"), ("uuid-unknown", "uuid-b5"), ("uuid-x", "uuid-y"), ("uuid-a2", "uuid-b5")
        ),
    )
    assert connections(state) == {"node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]}}


def test_identifiers_arriving_late_give_the_edge_on_the_next_report() -> None:
    state = steps(State(), idents(A, ("rdma_en2", "uuid-a2")), cables(A, ("uuid-a2", "uuid-b5")))
    assert connections(state) == {}  # B's identifiers are not known yet
    state = step(state, idents(B, ("rdma_en5", "uuid-b5")))
    assert connections(state) == {}  # identifiers alone draw no edge
    state = step(state, cables(A, ("uuid-a2", "uuid-b5")))
    assert connections(state) == {"node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]}}


def test_several_controllers_give_several_edges() -> None:
    state = steps(
        State(),
        idents(A, ("rdma_en2", "uuid-a2"), ("rdma_en3", "uuid-a3")),
        idents(B, ("rdma_en5", "uuid-b5")),
        idents(C, ("rdma_en7", "uuid-c7")),
        cables(A, ("uuid-a2", "uuid-b5"), ("uuid-a3", "uuid-c7")),
    )
    assert connections(state) == {
        "node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")], "node-c": [rdma_json("rdma_en3", "rdma_en7")]}
    }


def test_a_report_replaces_the_reporters_rdma_edges() -> None:
    state = steps(
        two_macs(),
        idents(C, ("rdma_en7", "uuid-c7")),
        cables(A, ("uuid-a2", "uuid-b5")),
        cables(A, ("uuid-a2", "uuid-c7")),
    )
    assert connections(state) == {"node-a": {"node-c": [rdma_json("rdma_en2", "rdma_en7")]}}


def test_empty_report_clears_reporters_rdma_edges_only() -> None:
    state = steps(
        two_macs(),
        created(A, B, socket("10.0.0.2")),
        cables(A, ("uuid-a2", "uuid-b5")),
        cables(B, ("uuid-b5", "uuid-a2")),
        created(A, B, rdma("rdma_en9", "rdma_en9")),  # an RDMA edge that arrived as a topology edge
    )
    assert connections(state) == {
        "node-a": {
            "node-b": [socket_json("10.0.0.2"), rdma_json("rdma_en2", "rdma_en5"), rdma_json("rdma_en9", "rdma_en9")]
        },
        "node-b": {"node-a": [rdma_json("rdma_en5", "rdma_en2")]},
    }
    state = step(state, cables(A))
    assert connections(state) == {
        "node-a": {"node-b": [socket_json("10.0.0.2")]},
        "node-b": {"node-a": [rdma_json("rdma_en5", "rdma_en2")]},
    }


def test_uuid_claimed_twice_belongs_to_the_smaller_node_id() -> None:
    # Canonical rule of the reference (exo followed dict order), so replicas agree.
    state = steps(
        State(),
        idents(C, ("rdma_en7", "uuid-shared")),
        idents(B, ("rdma_en5", "uuid-shared")),
        idents(A, ("rdma_en2", "uuid-a2")),
        cables(A, ("uuid-a2", "uuid-shared")),
    )
    assert connections(state) == {"node-a": {"node-b": [rdma_json("rdma_en2", "rdma_en5")]}}


# ====================================================================================
# Thunderbolt-bridge cycles
# ====================================================================================


def bridged(*nodes: NodeId) -> State:
    return steps(State(), *(bridge_sample(node, True) for node in nodes))


def rdma_pair(source: NodeId, sink: NodeId) -> TopologyEdgeCreated:
    return created(source, sink, rdma(f"rdma-{source}", f"rdma-{sink}"))


def test_two_node_loop() -> None:
    state = steps(bridged(A, B), rdma_pair(A, B))
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == [[A, B]]


def test_three_node_ring_one_direction() -> None:
    state = steps(bridged(C, B, A), rdma_pair(C, A), rdma_pair(B, C), rdma_pair(A, B))
    assert state.thunderbolt_bridge_cycles == [["node-a", "node-b", "node-c"]]


def test_three_node_ring_other_direction() -> None:
    state = steps(bridged(C, B, A), rdma_pair(A, C), rdma_pair(C, B), rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == [["node-a", "node-c", "node-b"]]


def test_three_node_bidirectional_ring() -> None:
    state = bridged(A, B, C)
    for source, sink in ((A, B), (B, A), (B, C), (C, B), (C, A), (A, C)):
        state = step(state, rdma_pair(source, sink))
    assert state.thunderbolt_bridge_cycles == [
        ["node-a", "node-b"],
        ["node-a", "node-b", "node-c"],
        ["node-a", "node-c"],
        ["node-a", "node-c", "node-b"],
        ["node-b", "node-c"],
    ]


def test_open_chain_is_no_cycle() -> None:
    state = steps(bridged(A, B, C), rdma_pair(A, B), rdma_pair(B, C))
    assert state.thunderbolt_bridge_cycles == []


@pytest.mark.parametrize("enabled", [(), (A,)], ids=["none", "one"])
def test_fewer_than_two_enabled_gives_no_cycles(enabled: tuple[NodeId, ...]) -> None:
    state = steps(State(), *(bridge_sample(node, node in enabled) for node in (A, B)), rdma_pair(A, B), rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == []


def test_loop_through_a_disabled_node_does_not_count() -> None:
    state = steps(State(), bridge_sample(A, True), bridge_sample(B, True), bridge_sample(C, False))
    state = steps(state, rdma_pair(A, C), rdma_pair(C, B), rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == []


def test_socket_edges_count_only_over_thunderbolt_interfaces_of_enabled_nodes() -> None:
    state = steps(
        bridged(A, B),
        interfaces(A, ("en0", "192.168.1.1", "ethernet"), ("bridge0", "10.0.0.1", "thunderbolt")),
        interfaces(B, ("en0", "192.168.1.2", "ethernet"), ("bridge0", "10.0.0.2", "thunderbolt")),
        created(A, B, socket("192.168.1.2")),  # ethernet: not a bridge path
        created(B, A, socket("192.168.1.1")),
    )
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, created(A, B, socket("10.0.0.2")))
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, created(B, A, socket("10.0.0.1")))
    assert state.thunderbolt_bridge_cycles == [[A, B]]


def test_thunderbolt_ip_of_a_disabled_node_does_not_count() -> None:
    state = steps(
        State(),
        bridge_sample(A, True),
        bridge_sample(B, True),
        bridge_sample(C, False),
        interfaces(B, ("en0", "10.0.0.2", "ethernet")),
        interfaces(C, ("bridge0", "10.0.0.2", "thunderbolt")),  # same address, typed thunderbolt on C
        created(A, B, socket("10.0.0.2")),
        rdma_pair(B, A),
    )
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, bridge_sample(C, True))  # now 10.0.0.2 is a thunderbolt IP of an enabled node
    assert state.thunderbolt_bridge_cycles == [[A, B]]


def test_rdma_edges_count_without_any_network_information() -> None:
    state = steps(bridged(A, B), rdma_pair(A, B), rdma_pair(B, A))
    assert state.node_network == {}
    assert state.thunderbolt_bridge_cycles == [[A, B]]


def test_rdma_edges_from_cable_reports_count() -> None:
    state = steps(
        bridged(A, B),
        idents(A, ("rdma_en2", "uuid-a2")),
        idents(B, ("rdma_en5", "uuid-b5")),
        cables(A, ("uuid-a2", "uuid-b5")),
        cables(B, ("uuid-b5", "uuid-a2")),
    )
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = step(state, cables(B))  # B unplugs: its RDMA out-edges go
    assert state.thunderbolt_bridge_cycles == []


# --- recomputed whenever an input changes (exo only on bridge flips) ---


def test_recomputed_on_bridge_status_flip() -> None:
    state = steps(State(), bridge_sample(A, True), bridge_sample(B, False), rdma_pair(A, B), rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, bridge_sample(B, True))
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = step(state, bridge_sample(A, False))
    assert state.thunderbolt_bridge_cycles == []


def test_recomputed_on_edge_created_and_deleted() -> None:
    state = steps(bridged(A, B, C), rdma_pair(A, B), rdma_pair(B, A))
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = steps(state, rdma_pair(B, C), rdma_pair(C, A))
    assert state.thunderbolt_bridge_cycles == [[A, B], [A, B, C]]
    state = step(state, deleted(A, B, rdma(f"rdma-{A}", f"rdma-{B}")))
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, deleted(C, A, rdma("rdma-other", "rdma-other")))  # no such edge: nothing changes
    assert state.thunderbolt_bridge_cycles == []


def test_recomputed_on_network_interface_type_and_ip_changes() -> None:
    state = steps(
        bridged(A, B),
        interfaces(A, ("bridge0", "10.0.0.1", "ethernet")),
        interfaces(B, ("bridge0", "10.0.0.2", "ethernet")),
        created(A, B, socket("10.0.0.2")),
        created(B, A, socket("10.0.0.1")),
    )
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, interfaces(A, ("bridge0", "10.0.0.1", "thunderbolt")))
    assert state.thunderbolt_bridge_cycles == []  # B→A counts now, A→B not yet
    state = step(state, interfaces(B, ("bridge0", "10.0.0.2", "thunderbolt")))
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = step(state, interfaces(A, ("bridge0", "10.0.0.1", "maybe_ethernet")))  # type change
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, interfaces(A, ("bridge0", "10.0.0.1", "thunderbolt")))
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = step(state, interfaces(A, ("bridge0", "10.0.0.99", "thunderbolt")))  # IP change
    assert state.thunderbolt_bridge_cycles == []


def test_recomputed_when_a_bridge_node_disconnects() -> None:
    state = bridged(A, B, C)
    for source, sink in ((A, B), (B, A), (B, C), (C, B), (C, A), (A, C)):
        state = step(state, rdma_pair(source, sink))
    state = step(state, disconnect(C))
    assert state.thunderbolt_bridge_cycles == [[A, B]]
    state = step(state, disconnect(A))
    assert state.thunderbolt_bridge_cycles == []


def test_a_rejoining_node_needs_a_new_bridge_report() -> None:
    state = steps(bridged(A, B), rdma_pair(A, B), rdma_pair(B, A), disconnect(B))
    assert state.thunderbolt_bridge_cycles == []
    state = steps(state, rdma_pair(A, B), rdma_pair(B, A))  # B is back in the topology, its bridge status is gone
    assert state.thunderbolt_bridge_cycles == []
    state = step(state, bridge_sample(B, True))
    assert state.thunderbolt_bridge_cycles == [[A, B]]


EDGES_OF_A_FOUR_NODE_CLUSTER = [
    (A, B),
    (B, A),
    (B, C),
    (C, D),
    (D, A),
    (C, A),
    (A, D),
    (D, B),
]


@pytest.mark.parametrize(
    "order",
    [list(range(8)), list(reversed(range(8))), [3, 6, 0, 5, 2, 7, 1, 4]],
    ids=["forward", "backward", "shuffled"],
)
def test_cycles_are_canonical_whatever_the_arrival_order(order: list[int]) -> None:
    state = steps(State(), *(bridge_sample(node, True) for node in (D, B, C, A)))
    for position in order:
        source, sink = EDGES_OF_A_FOUR_NODE_CLUSTER[position]
        state = step(state, rdma_pair(source, sink))
    # Worked out by hand. Successors: A→{B, D}, B→{A, C}, C→{A, D}, D→{A, B}.
    #   through A (written from A): A→B→A, A→B→C→A, A→B→C→D→A, A→D→A, A→D→B→A, A→D→B→C→A;
    #   without A (written from B): B→C→D→B; none without A and B.
    # Each rotated to its smallest node, the list sorted:
    assert state.thunderbolt_bridge_cycles == [
        ["node-a", "node-b"],
        ["node-a", "node-b", "node-c"],
        ["node-a", "node-b", "node-c", "node-d"],
        ["node-a", "node-d"],
        ["node-a", "node-d", "node-b"],
        ["node-a", "node-d", "node-b", "node-c"],
        ["node-b", "node-c", "node-d"],
    ]


def test_cycle_function_on_a_topology_value() -> None:
    topology = (
        Topology()
        .with_connection(link(B, A, socket("10.0.0.1")))
        .with_connection(link(A, B, rdma("rdma_en2", "rdma_en3")))
        .with_node(C)
    )
    status = ThunderboltBridgeStatus(enabled=True, exists=True)
    networks = {
        A: NodeNetworkInfo(
            interfaces=[NetworkInterfaceInfo(name="bridge0", ip_address="10.0.0.1", interface_type="thunderbolt")]
        )
    }
    assert thunderbolt_bridge_cycles(topology, {A: status, B: status, C: status}, networks) == [[A, B]]
    assert thunderbolt_bridge_cycles(topology, {A: status, B: status}, {}) == []
    assert thunderbolt_bridge_cycles(topology, {A: status}, networks) == []
    # A bridge status for a node that is not in the topology does not count.
    assert thunderbolt_bridge_cycles(Topology().with_node(A), {A: status, G: status}, networks) == []


def test_edge_events_that_change_nothing_keep_the_state_equal() -> None:
    before = steps(bridged(A, B), rdma_pair(A, B), rdma_pair(B, A))
    after = step(before, rdma_pair(A, B), origin=A)
    expected = without_idx(before)
    expected["last_event_index_by_node"] = {"node-a": 4, "node-b": 3}
    assert without_idx(after) == expected
