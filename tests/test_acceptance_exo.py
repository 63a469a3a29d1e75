"""exo's acceptance cases (its own tests) that concern events, State and topology.

Re-expressed on clusterstate's API: ``reference.apply`` with ``IndexedEvent{idx, origin, event}``,
the immutable :class:`Topology` value (``with_node``/``with_connection``/``without_connection``/
``without_node`` for exo's ``add_node``/``add_connection``/``remove_connection``/``remove_node``),
and ``EventIndexError`` where exo asserted. Cases exo's suite lacks follow the
shipped ones. Expected values are written out by hand.
"""

from __future__ import annotations

from typing import Any

import pytest

from clusterstate.codec import decode_state
from clusterstate.errors import ClusterStateError, EventIndexError
from clusterstate.models import (
    CommandId,
    DiskUsage,
    DownloadCompleted,
    DownloadPending,
    Host,
    IndexedEvent,
    InstanceCreated,
    InstanceId,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    MlxRingInstance,
    ModelId,
    NetworkInterfaceInfo,
    NodeConfig,
    NodeDiskUsage,
    NodeDownloadProgress,
    NodeId,
    NodeNetworkInterfaces,
    NodeTimedOut,
    RDMAConnection,
    RdmaCtlStatus,
    RunnerId,
    ShardAssignments,
    State,
    StaticNodeInformation,
    SystemPerformanceProfile,
    TaskCreated,
    TaskId,
    TestEvent,
    TextGeneration,
    ThunderboltConnection,
    ThunderboltIdentifier,
    Topology,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
)
from clusterstate.reference import apply, fold
from support.reducer import bridge, gathered, link, socket, step, steps

NODE_1 = NodeId("node-1")
A = NodeId("node-a")
B = NodeId("node-b")
C = NodeId("node-c")

SHARD_A: dict[str, Any] = {
    "PipelineShardMetadata": {"model_card": {"model_id": "llama-3.2-1b"}, "start_layer": 0, "end_layer": 8}
}
SHARD_B: dict[str, Any] = {
    "PipelineShardMetadata": {"model_card": {"model_id": "llama-3.2-1b"}, "start_layer": 8, "end_layer": 16}
}


def memory_sample(ram_total: int, ram_available: int) -> MemoryUsage:
    return MemoryUsage(
        ram_total=Memory(in_bytes=ram_total),
        ram_available=Memory(in_bytes=ram_available),
        swap_total=Memory(in_bytes=0),
        swap_available=Memory(in_bytes=0),
    )


def identifiers_sample(*pairs: tuple[str, str]) -> MacThunderboltIdentifiers:
    return MacThunderboltIdentifiers(
        idents=[ThunderboltIdentifier(rdma_interface=iface, domain_uuid=uuid) for iface, uuid in pairs]
    )


def connections_sample(*pairs: tuple[str, str]) -> MacThunderboltConnections:
    return MacThunderboltConnections(conns=[ThunderboltConnection(source_uuid=s, sink_uuid=t) for s, t in pairs])


def rdma_edge(source_iface: str, sink_iface: str) -> RDMAConnection:
    return RDMAConnection(source_rdma_iface=source_iface, sink_rdma_iface=sink_iface)


# ====================================================================================
# test_apply/test_apply_node_download.py
# ====================================================================================


def test_apply_node_download_progress() -> None:
    progress = DownloadCompleted(node_id=NODE_1, shard_metadata=SHARD_A, total_bytes=Memory(in_bytes=1024))
    state = apply(State(), IndexedEvent(idx=0, event=NodeDownloadProgress(download_progress=progress)))
    assert state.downloads == {NODE_1: [progress]}
    assert state.model_dump(mode="json")["downloads"] == {
        "node-1": [
            {"DownloadCompleted": {"node_id": "node-1", "shard_metadata": SHARD_A, "total_bytes": {"in_bytes": 1024}}}
        ]
    }


def test_apply_two_node_download_progress() -> None:
    shard_a_progress = DownloadPending(node_id=NODE_1, shard_metadata=SHARD_A)
    shard_b_progress = DownloadCompleted(node_id=NODE_1, shard_metadata=SHARD_B, total_bytes=Memory(in_bytes=2048))
    state = State(downloads={NODE_1: [shard_a_progress]})
    state = apply(state, IndexedEvent(idx=0, event=NodeDownloadProgress(download_progress=shard_b_progress)))
    assert state.downloads == {NODE_1: [shard_a_progress, shard_b_progress]}


# ====================================================================================
# test_state_serialization.py
# ====================================================================================


def test_state_serialization_roundtrip() -> None:
    state = State(topology=Topology().with_connection(link(A, B, socket("10.0.0.2"))))
    json_text = state.model_dump_json()
    restored = State.model_validate_json(json_text)
    assert restored.topology.list_nodes() == state.topology.list_nodes() == [A, B]
    assert restored.topology.snapshot().connections.keys() == state.topology.snapshot().connections.keys()
    assert restored.model_dump_json() == json_text
    assert decode_state(json_text).model_dump_json() == json_text
    assert restored == state
    # The topology is written as exo's TopologySnapshot, snake_case, edges untagged.
    assert (
        '"topology":{"nodes":["node-a","node-b"],"connections":{"node-a":{"node-b":[{"sink_multiaddr":'
        '{"address":"/ip4/10.0.0.2/tcp/52415","address_type":"ip4","ip_address":"10.0.0.2","port":52415}}]}}}'
    ) in json_text


def test_state_serialization_roundtrip_of_a_busy_state_is_byte_identical() -> None:
    state = busy_state()
    json_text = state.model_dump_json()
    assert decode_state(json_text).model_dump_json() == json_text
    assert decode_state(json_text) == state
    by_alias = state.model_dump_json(by_alias=True)
    assert '"lastEventIndexByNode"' in by_alias
    assert decode_state(by_alias) == state


# ====================================================================================
# master/tests/test_topology.py, on the Topology value type
# ====================================================================================


def test_add_node() -> None:
    topology = Topology().with_node(A)
    assert topology.list_nodes() == [A]
    assert topology.is_leaf(A)


def test_add_connection() -> None:
    conn = link(A, B, socket("10.0.0.2"))
    topology = Topology().with_node(A).with_node(B).with_connection(conn)
    assert topology.list_connections() == [conn]
    assert topology.is_leaf(A)
    assert topology.is_leaf(B)


def test_remove_connection_still_connected() -> None:
    conn = link(A, B, socket("10.0.0.2"))
    topology = Topology().with_node(A).with_node(B).with_connection(conn).without_connection(conn)
    assert topology.list_connections() == []
    assert topology.out_edges(A) == []
    assert topology.list_nodes() == [A, B]


def test_remove_node_still_connected() -> None:
    conn = link(A, B, socket("10.0.0.2"))
    topology = Topology().with_node(A).with_node(B).with_connection(conn).without_node(B)
    assert topology.out_edges(A) == []
    assert topology.list_connections() == []
    assert topology.list_nodes() == [A]


def test_list_nodes() -> None:
    topology = Topology().with_node(B).with_node(A).with_connection(link(A, B, socket("10.0.0.2")))
    nodes = topology.list_nodes()
    assert nodes == ["node-a", "node-b"]
    assert all(isinstance(node, str) for node in nodes)


def test_topology_values_are_immutable() -> None:
    conn = link(A, B, socket("10.0.0.2"))
    empty = Topology()
    one = empty.with_node(A)
    linked = one.with_connection(conn)
    unlinked = linked.without_connection(conn)
    gone = linked.without_node(A)
    assert (empty.list_nodes(), one.list_nodes(), linked.list_nodes()) == ([], [A], [A, B])
    assert linked.list_connections() == [conn]
    assert unlinked.list_connections() == []
    assert gone.list_nodes() == [B]
    # Unchanged operations give an equal value.
    assert one.with_node(A) == one
    assert linked.with_connection(conn) == linked
    assert empty.without_node(A) == empty


def test_add_connection_adds_missing_endpoints() -> None:
    topology = Topology().with_connection(link(A, B, rdma_edge("rdma_en2", "rdma_en3")))
    assert topology.list_nodes() == [A, B]
    assert topology.successors(A) == [B]
    assert topology.successors(B) == []


# ====================================================================================
# master/tests/test_master.py, at the level of apply: the three indexed events of the run
# ====================================================================================


def test_master_run_events_apply() -> None:
    runner = RunnerId("runner-1")
    instance = MlxRingInstance(
        instance_id=InstanceId("instance-1"),
        shard_assignments=ShardAssignments(
            model_id=ModelId("llama-3.2-1b"),
            runner_to_shard={runner: {"PipelineShardMetadata": {"start_layer": 0, "end_layer": 16, "n_layers": 16}}},
            node_to_runner={NODE_1: runner},
        ),
        hosts_by_node={NODE_1: [Host(ip="0.0.0.0", port=41000)]},
        ephemeral_port=41000,
    )
    task = TextGeneration(
        task_id=TaskId("task-1"),
        instance_id=InstanceId("instance-1"),
        command_id=CommandId("command-1"),
        task_params={"model": "llama-3.2-1b", "input": [{"role": "user", "content": "hello"}]},
    )
    master = NodeId("master")
    log = [
        IndexedEvent(idx=0, origin=NODE_1, event=gathered(NODE_1, memory_sample(16, 8))),
        IndexedEvent(idx=1, origin=master, event=InstanceCreated(instance=instance)),
        IndexedEvent(idx=2, origin=master, event=TaskCreated(task_id=TaskId("task-1"), task=task)),
    ]
    state = fold(log)
    assert state.topology.list_nodes() == [NODE_1]
    assert list(state.node_memory) == [NODE_1]
    assert list(state.instances) == ["instance-1"]
    assert state.tasks == {"task-1": task}
    assert state.model_dump(mode="json")["tasks"]["task-1"]["TextGeneration"]["task_status"] == "Pending"
    assert state.last_event_index_by_node == {NODE_1: 0, master: 2}
    assert state.last_event_applied_idx == 2


# ====================================================================================
# Missing from exo's suite: NodeGatheredInfo of each kind
# ====================================================================================

# kind → (sample, the State field it fills; None for NodeConfig, which only adds the node)
EACH_KIND: dict[str, tuple[Any, str | None]] = {
    "MacmonMetrics": (
        MacmonMetrics(system_profile=SystemPerformanceProfile(gpu_usage=0.5), memory=memory_sample(16, 8)),
        "node_system",
    ),
    "MemoryUsage": (memory_sample(16, 8), "node_memory"),
    "NodeDiskUsage": (
        NodeDiskUsage(disk_usage=DiskUsage(total=Memory(in_bytes=100), available=Memory(in_bytes=50))),
        "node_disk",
    ),
    "NodeConfig": (NodeConfig(), None),
    "MiscData": (MiscData(friendly_name="alpha"), "node_identities"),
    "StaticNodeInformation": (
        StaticNodeInformation(model="Mac mini", chip="Apple M4", os_version="15.3", os_build_version="24D60"),
        "node_identities",
    ),
    "NodeNetworkInterfaces": (
        NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="en0", ip_address="10.0.0.1")]),
        "node_network",
    ),
    "MacThunderboltIdentifiers": (identifiers_sample(("rdma_en2", "uuid-a")), "node_thunderbolt"),
    "MacThunderboltConnections": (connections_sample(("uuid-a", "uuid-b")), None),
    "ThunderboltBridgeInfo": (bridge(True), "node_thunderbolt_bridge"),
    "RdmaCtlStatus": (RdmaCtlStatus(enabled=True), "node_rdma_ctl"),
}

PER_NODE_FIELDS = (
    "node_identities",
    "node_memory",
    "node_disk",
    "node_system",
    "node_network",
    "node_thunderbolt",
    "node_thunderbolt_bridge",
    "node_rdma_ctl",
)


@pytest.mark.parametrize("kind", list(EACH_KIND))
def test_apply_node_gathered_info_of_each_kind(kind: str) -> None:
    sample, field = EACH_KIND[kind]
    state = apply(State(), IndexedEvent(idx=0, event=gathered(A, sample)))
    assert state.topology.list_nodes() == [A]
    assert state.last_event_index_by_node == {A: 0}
    filled = {name for name in PER_NODE_FIELDS if getattr(state, name)}
    if kind == "MacmonMetrics":
        assert filled == {"node_system", "node_memory"}
    else:
        assert filled == ({field} if field else set())
    if field is not None:
        assert list(getattr(state, field)) == [A]


# ====================================================================================
# Missing from exo's suite: NodeTimedOut pruning
# ====================================================================================


def test_node_timed_out_prunes_the_node() -> None:
    state = steps(
        State(),
        gathered(A, MiscData(friendly_name="alpha")),
        gathered(A, memory_sample(16, 8)),
        gathered(A, NodeNetworkInterfaces(ifaces=[NetworkInterfaceInfo(name="en0", ip_address="10.0.0.1")])),
        gathered(A, bridge(True)),
        NodeDownloadProgress(download_progress=DownloadPending(node_id=A, shard_metadata=SHARD_A)),
        gathered(B, memory_sample(32, 16)),
        TopologyEdgeCreated(conn=link(A, B, socket("10.0.0.2"))),
        TopologyEdgeCreated(conn=link(B, A, socket("10.0.0.1"))),
        NodeTimedOut(node_id=A),
    )
    assert state.model_dump(mode="json")["topology"] == {"nodes": ["node-b"], "connections": {}}
    assert (state.downloads, state.node_network, state.node_thunderbolt_bridge) == ({}, {}, {})
    assert list(state.node_memory) == [B]
    assert state.last_event_index_by_node == {B: 7}
    assert state.model_dump(mode="json")["node_identities"] == {
        "node-a": {
            "model_id": "Unknown",
            "chip_id": "Unknown",
            "friendly_name": "alpha",
            "os_version": "Unknown",
            "os_build_version": "Unknown",
        }
    }


# ====================================================================================
# Missing from exo's suite: topology edge created / deleted
# ====================================================================================


def test_topology_edge_created_and_deleted() -> None:
    edge = socket("10.0.0.2")
    state = step(State(), TopologyEdgeCreated(conn=link(A, B, edge)))
    assert state.topology.list_connections() == [link(A, B, edge)]
    state = step(state, TopologyEdgeCreated(conn=link(B, A, edge)))
    state = step(state, TopologyEdgeDeleted(conn=link(A, B, edge)))
    assert state.topology.list_connections() == [link(B, A, edge)]
    assert state.topology.list_nodes() == [A, B]


# ====================================================================================
# Missing from exo's suite: RDMA mapping when the peer's identifiers arrive late
# ====================================================================================


def test_rdma_mapping_when_peer_identifiers_arrive_late() -> None:
    state = steps(
        State(),
        gathered(A, identifiers_sample(("rdma_en2", "uuid-a"))),
        gathered(A, connections_sample(("uuid-a", "uuid-b"))),
        gathered(B, connections_sample(("uuid-b", "uuid-a"))),
    )
    # A's first report: B's controller is unknown. B's report: B's own controller is unknown.
    assert state.topology.list_connections() == []
    state = step(state, gathered(B, identifiers_sample(("rdma_en3", "uuid-b"))))
    assert state.topology.list_connections() == []
    state = step(state, gathered(A, connections_sample(("uuid-a", "uuid-b"))))
    assert state.topology.list_connections() == [link(A, B, rdma_edge("rdma_en2", "rdma_en3"))]
    state = step(state, gathered(B, connections_sample(("uuid-b", "uuid-a"))))
    assert state.topology.list_connections() == [
        link(A, B, rdma_edge("rdma_en2", "rdma_en3")),
        link(B, A, rdma_edge("rdma_en3", "rdma_en2")),
    ]


# ====================================================================================
# Missing from exo's suite: bridge-cycle detection for 2 and 3 nodes
# ====================================================================================


def test_bridge_cycle_detection_two_nodes() -> None:
    state = steps(
        State(),
        gathered(A, bridge(True)),
        gathered(B, bridge(True)),
        TopologyEdgeCreated(conn=link(A, B, rdma_edge("rdma_en2", "rdma_en3"))),
        TopologyEdgeCreated(conn=link(B, A, rdma_edge("rdma_en3", "rdma_en2"))),
    )
    assert state.thunderbolt_bridge_cycles == [["node-a", "node-b"]]


def test_bridge_cycle_detection_three_nodes() -> None:
    state = steps(
        State(),
        gathered(C, bridge(True)),
        gathered(B, bridge(True)),
        gathered(A, bridge(True)),
        TopologyEdgeCreated(conn=link(B, C, rdma_edge("rdma_en2", "rdma_en3"))),
        TopologyEdgeCreated(conn=link(C, A, rdma_edge("rdma_en2", "rdma_en3"))),
        TopologyEdgeCreated(conn=link(A, B, rdma_edge("rdma_en2", "rdma_en3"))),
    )
    assert state.thunderbolt_bridge_cycles == [["node-a", "node-b", "node-c"]]


# ====================================================================================
# Missing from exo's suite: the apply index check (a typed error instead of an assert)
# ====================================================================================


@pytest.mark.parametrize("idx", [0, 1, 3, 9])
def test_apply_index_check(idx: int) -> None:
    state = steps(State(), TestEvent(), TestEvent(), TestEvent())  # last applied: 2, next: 3
    before = state.model_dump_json()
    event = IndexedEvent(idx=idx, event=TestEvent())
    if idx == 3:
        assert apply(state, event).last_event_applied_idx == 3
        return
    with pytest.raises(EventIndexError) as caught:
        apply(state, event)
    assert isinstance(caught.value, ClusterStateError)
    assert isinstance(caught.value, ValueError)
    assert (caught.value.expected, caught.value.got) == (3, idx)
    assert state.model_dump_json() == before


# ====================================================================================
# fold and replay
# ====================================================================================


def busy_log() -> list[IndexedEvent]:
    events: list[Any] = [
        gathered(C, MiscData(friendly_name="charlie")),
        gathered(A, memory_sample(16, 8)),
        gathered(B, memory_sample(32, 16)),
        gathered(A, identifiers_sample(("rdma_en2", "uuid-a"))),
        gathered(B, identifiers_sample(("rdma_en3", "uuid-b"))),
        gathered(A, connections_sample(("uuid-a", "uuid-b"))),
        gathered(B, connections_sample(("uuid-b", "uuid-a"))),
        gathered(A, bridge(True)),
        gathered(B, bridge(True)),
        TopologyEdgeCreated(conn=link(A, C, socket("10.0.0.3"))),
        NodeDownloadProgress(download_progress=DownloadPending(node_id=B, shard_metadata=SHARD_B)),
        TestEvent(),
    ]
    return [IndexedEvent(idx=idx, origin=None, event=event) for idx, event in enumerate(events)]


def busy_state() -> State:
    return fold(busy_log())


def test_fold_equals_applying_one_by_one() -> None:
    log = busy_log()
    state = State()
    for event in log:
        state = apply(state, event)
    folded = fold(log)
    assert folded == state
    assert folded.model_dump_json() == state.model_dump_json()
    assert folded.thunderbolt_bridge_cycles == [["node-a", "node-b"]]
    assert folded.last_event_applied_idx == 11
    assert fold([]) == State()


def test_replaying_the_same_events_twice_gives_identical_states() -> None:
    first, second = fold(busy_log()), fold(busy_log())
    assert first == second
    assert first.model_dump_json().encode() == second.model_dump_json().encode()
