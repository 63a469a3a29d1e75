"""The reference reducer, rule by rule: exo's ``apply`` and clusterstate's changes (docs/models.md).

Every expected value is written out by hand. Topology, RDMA mapping and bridge cycles live in
``test_reference_topology.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import JsonValue

from clusterstate.codec import decode_indexed_event
from clusterstate.errors import ClusterStateError, EventIndexError
from clusterstate.models import (
    ChunkGenerated,
    CommandId,
    DiskUsage,
    DownloadCompleted,
    DownloadOngoing,
    DownloadPending,
    Event,
    Host,
    IndexedEvent,
    InputChunkReceived,
    InstanceCreated,
    InstanceDeleted,
    InstanceId,
    LoadModel,
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
    NodeDisconnected,
    NodeDiskUsage,
    NodeDownloadProgress,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    NodeTimedOut,
    RdmaCtlStatus,
    RunnerDeleted,
    RunnerFailed,
    RunnerId,
    RunnerIdle,
    RunnerReady,
    RunnerShutdown,
    RunnerStatusUpdated,
    ShardAssignments,
    State,
    StaticNodeInformation,
    SystemPerformanceProfile,
    TaskAcknowledged,
    TaskCreated,
    TaskDeleted,
    TaskFailed,
    TaskId,
    TaskStatusUpdated,
    TestEvent,
    TextGeneration,
    ThunderboltConnection,
    ThunderboltIdentifier,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
    TraceEventData,
    TracesCollected,
    TracesMerged,
)
from clusterstate.reference import apply, fold
from support.reducer import bridge, disconnect, gathered, link, socket, step, steps, without_idx

A = NodeId("node-a")
B = NodeId("node-b")
C = NodeId("node-c")
M = NodeId("master-m")
T1 = TaskId("task-1")
T2 = TaskId("task-2")
T9 = TaskId("task-9")
I1 = InstanceId("instance-1")
I2 = InstanceId("instance-2")
R1 = RunnerId("runner-1")
R2 = RunnerId("runner-2")

SHARD_X: dict[str, Any] = {"PipelineShardMetadata": {"model_card": {"model_id": "model-x"}, "start_layer": 0}}
SHARD_Y: dict[str, Any] = {"PipelineShardMetadata": {"model_card": {"model_id": "model-x"}, "start_layer": 8}}

ALL_EVENT_KINDS = (
    "TestEvent",
    "TaskCreated",
    "TaskStatusUpdated",
    "TaskFailed",
    "TaskDeleted",
    "TaskAcknowledged",
    "InstanceCreated",
    "InstanceDeleted",
    "RunnerStatusUpdated",
    "RunnerDeleted",
    "NodeTimedOut",
    "NodeDisconnected",
    "NodeGatheredInfo",
    "NodeDownloadProgress",
    "ChunkGenerated",
    "InputChunkReceived",
    "TopologyEdgeCreated",
    "TopologyEdgeDeleted",
    "TracesCollected",
    "TracesMerged",
)

# --- fixture builders ---


def memory(ram_total: int, ram_available: int, swap_total: int = 0, swap_available: int = 0) -> MemoryUsage:
    return MemoryUsage(
        ram_total=Memory(in_bytes=ram_total),
        ram_available=Memory(in_bytes=ram_available),
        swap_total=Memory(in_bytes=swap_total),
        swap_available=Memory(in_bytes=swap_available),
    )


def macmon(gpu_usage: float, temp: float, ram_total: int, ram_available: int) -> MacmonMetrics:
    profile = SystemPerformanceProfile(gpu_usage=gpu_usage, temp=temp, sys_power=30.5, pcpu_usage=0.25, ecpu_usage=0.5)
    return MacmonMetrics(system_profile=profile, memory=memory(ram_total, ram_available))


def disk(total: int, available: int) -> NodeDiskUsage:
    return NodeDiskUsage(disk_usage=DiskUsage(total=Memory(in_bytes=total), available=Memory(in_bytes=available)))


def network(*ifaces: tuple[str, str, Any]) -> NodeNetworkInterfaces:
    return NodeNetworkInterfaces(
        ifaces=[NetworkInterfaceInfo(name=name, ip_address=ip, interface_type=kind) for name, ip, kind in ifaces]
    )


def tb_idents(*idents: tuple[str, str]) -> MacThunderboltIdentifiers:
    return MacThunderboltIdentifiers(
        idents=[ThunderboltIdentifier(rdma_interface=iface, domain_uuid=uuid) for iface, uuid in idents]
    )


def tb_conns(*links: tuple[str, str]) -> MacThunderboltConnections:
    return MacThunderboltConnections(
        conns=[ThunderboltConnection(source_uuid=source, sink_uuid=sink) for source, sink in links]
    )


def text_task(task_id: TaskId, status: Any = "Pending") -> TextGeneration:
    return TextGeneration(
        task_id=task_id,
        task_status=status,
        instance_id=I1,
        command_id=CommandId(f"cmd-{task_id}"),
        task_params={"model": "model-x", "input": [{"role": "user", "content": "hi"}]},
    )


def load_task(task_id: TaskId) -> LoadModel:
    return LoadModel(task_id=task_id, instance_id=I1)


def ring_instance(instance_id: InstanceId, node: NodeId, runner: RunnerId, port: int = 5000) -> MlxRingInstance:
    return MlxRingInstance(
        instance_id=instance_id,
        shard_assignments=ShardAssignments(
            model_id=ModelId("model-x"), runner_to_shard={runner: SHARD_X}, node_to_runner={node: runner}
        ),
        hosts_by_node={node: [Host(ip="10.0.0.1", port=port)]},
        ephemeral_port=port,
    )


def pending(node: NodeId, shard: dict[str, Any]) -> NodeDownloadProgress:
    return NodeDownloadProgress(download_progress=DownloadPending(node_id=node, shard_metadata=shard))


def completed(node: NodeId, shard: dict[str, Any], total: int) -> NodeDownloadProgress:
    progress = DownloadCompleted(node_id=node, shard_metadata=shard, total_bytes=Memory(in_bytes=total))
    return NodeDownloadProgress(download_progress=progress)


def chunk() -> ChunkGenerated:
    return ChunkGenerated(command_id=CommandId("cmd-1"), chunk={"TokenChunk": {"model": "model-x", "text": " hi"}})


def input_chunk() -> InputChunkReceived:
    payload: dict[str, JsonValue] = {
        "model": "model-x",
        "command_id": "cmd-1",
        "data": "aGk=",
        "chunk_index": 0,
        "total_chunks": 1,
    }
    return InputChunkReceived(command_id=CommandId("cmd-1"), chunk={"InputImageChunk": payload})


def trace() -> TraceEventData:
    return TraceEventData(name="decode", start_us=10, duration_us=5, rank=0, category="gpu")


def dump(state: State) -> dict[str, Any]:
    return state.model_dump(mode="json")


def assert_only_idx_changed(before: State, after: State) -> None:
    assert after.last_event_applied_idx == before.last_event_applied_idx + 1
    assert without_idx(after) == without_idx(before)


MEMORY_JSON_100_40 = {
    "ram_total": {"in_bytes": 100},
    "ram_available": {"in_bytes": 40},
    "swap_total": {"in_bytes": 0},
    "swap_available": {"in_bytes": 0},
}


# --- a populated State (every map filled) and one event of every kind ---


def populated() -> State:
    """A three-node cluster with work on it. Indices by producer: A→16, B→11, C→17, M→14."""
    events: list[tuple[Event, NodeId]] = [
        (gathered(A, MiscData(friendly_name="alpha")), A),  # 0
        (gathered(B, MiscData(friendly_name="bravo")), B),  # 1
        (gathered(C, MiscData(friendly_name="charlie")), C),  # 2
        (gathered(A, memory(100, 40)), A),  # 3
        (gathered(A, bridge(True)), A),  # 4
        (gathered(B, bridge(True)), B),  # 5
        (gathered(C, bridge(True)), C),  # 6
        (gathered(A, tb_idents(("rdma_en2", "uuid-a"))), A),  # 7
        (gathered(B, tb_idents(("rdma_en3", "uuid-b"))), B),  # 8
        (gathered(A, tb_conns(("uuid-a", "uuid-b"))), A),  # 9: RDMA A→B
        (gathered(B, tb_conns(("uuid-b", "uuid-a"))), B),  # 10: RDMA B→A
        (TopologyEdgeCreated(conn=link(B, C, socket("10.0.0.3"))), B),  # 11
        (TaskCreated(task_id=T1, task=text_task(T1)), M),  # 12
        (TaskCreated(task_id=T2, task=load_task(T2)), A),  # 13
        (InstanceCreated(instance=ring_instance(I1, A, R1)), M),  # 14
        (RunnerStatusUpdated(runner_id=R1, runner_status=RunnerIdle()), A),  # 15
        (pending(A, SHARD_X), A),  # 16
        (gathered(C, network(("bridge0", "10.0.0.3", "thunderbolt"))), C),  # 17
    ]
    state = State()
    for idx, (event, origin) in enumerate(events):
        state = apply(state, IndexedEvent(idx=idx, origin=origin, event=event))
    return state


def one_of_each(producer: NodeId) -> dict[str, Event]:
    """One event of every kind, applicable to :func:`populated`; ``producer`` is the node named inside."""
    return {
        "TestEvent": TestEvent(),
        "TaskCreated": TaskCreated(task_id=T9, task=text_task(T9)),
        "TaskStatusUpdated": TaskStatusUpdated(task_id=T1, task_status="Running"),
        "TaskFailed": TaskFailed(task_id=T1, error_type="OOM", error_message="out of memory"),
        "TaskDeleted": TaskDeleted(task_id=T2),
        "TaskAcknowledged": TaskAcknowledged(task_id=T1),
        "InstanceCreated": InstanceCreated(instance=ring_instance(I2, producer, R2)),
        "InstanceDeleted": InstanceDeleted(instance_id=I1),
        "RunnerStatusUpdated": RunnerStatusUpdated(runner_id=R1, runner_status=RunnerReady()),
        "RunnerDeleted": RunnerDeleted(runner_id=R1),
        "NodeTimedOut": NodeTimedOut(node_id=C),
        "NodeDisconnected": NodeDisconnected(node_id=C, last_index=17, stale_cycles=3),
        "NodeGatheredInfo": gathered(producer, memory(200, 50)),
        "NodeDownloadProgress": completed(producer, SHARD_X, 123),
        "ChunkGenerated": chunk(),
        "InputChunkReceived": input_chunk(),
        "TopologyEdgeCreated": TopologyEdgeCreated(conn=link(producer, C, socket("10.0.0.3"))),
        "TopologyEdgeDeleted": TopologyEdgeDeleted(conn=link(producer, C, socket("10.0.0.3"))),
        "TracesCollected": TracesCollected(task_id=T1, rank=0, traces=[trace()]),
        "TracesMerged": TracesMerged(task_id=T1, traces=[trace()]),
    }


def test_fixture_covers_every_event_kind() -> None:
    union_members = typing.get_args(typing.get_args(Event)[0])
    names = {typing.get_args(member)[0].__name__ for member in union_members}
    assert names == set(ALL_EVENT_KINDS)
    assert len(ALL_EVENT_KINDS) == 20
    assert set(one_of_each(A)) == set(ALL_EVENT_KINDS)
    assert {type(event).__name__: name for name, event in one_of_each(A).items()} == {n: n for n in ALL_EVENT_KINDS}


def test_populated_fixture_is_what_it_claims() -> None:
    state = populated()
    assert state.last_event_applied_idx == 17
    assert state.last_event_index_by_node == {A: 16, B: 11, C: 17, M: 14}
    assert state.topology.list_nodes() == [A, B, C]
    assert state.thunderbolt_bridge_cycles == [[A, B]]


# ====================================================================================
# Tasks
# ====================================================================================


def test_task_created_inserts_under_event_task_id() -> None:
    state = step(State(), TaskCreated(task_id=T1, task=text_task(T1)))
    assert dump(state)["tasks"] == {
        "task-1": {
            "TextGeneration": {
                "task_id": "task-1",
                "task_status": "Pending",
                "instance_id": "instance-1",
                "command_id": "cmd-task-1",
                "task_params": {"model": "model-x", "input": [{"role": "user", "content": "hi"}]},
                "error_type": None,
                "error_message": None,
            }
        }
    }


def test_task_created_overwrites() -> None:
    state = steps(State(), TaskCreated(task_id=T1, task=text_task(T1)), TaskCreated(task_id=T1, task=load_task(T1)))
    assert dump(state)["tasks"] == {
        "task-1": {"LoadModel": {"task_id": "task-1", "task_status": "Pending", "instance_id": "instance-1"}}
    }


def test_task_created_key_is_the_event_task_id_not_the_tasks() -> None:
    state = step(State(), TaskCreated(task_id=T2, task=load_task(T1)))
    assert list(state.tasks) == ["task-2"]
    assert state.tasks[T2] == LoadModel(task_id=TaskId("task-1"), instance_id=InstanceId("instance-1"))


def test_task_deleted_drops_the_task() -> None:
    state = steps(State(), TaskCreated(task_id=T1, task=load_task(T1)), TaskCreated(task_id=T2, task=load_task(T2)))
    state = step(state, TaskDeleted(task_id=T1))
    assert list(state.tasks) == ["task-2"]


def test_task_deleted_missing_is_a_no_op() -> None:
    before = step(State(), TaskCreated(task_id=T1, task=load_task(T1)))
    after = step(before, TaskDeleted(task_id=T9))
    assert_only_idx_changed(before, after)


def test_task_status_updated_sets_status_and_clears_errors_of_generation_task() -> None:
    state = steps(
        State(),
        TaskCreated(task_id=T1, task=text_task(T1)),
        TaskFailed(task_id=T1, error_type="OOM", error_message="out of memory"),
        TaskStatusUpdated(task_id=T1, task_status="Running"),
    )
    task = dump(state)["tasks"]["task-1"]["TextGeneration"]
    assert (task["task_status"], task["error_type"], task["error_message"]) == ("Running", None, None)


@pytest.mark.parametrize("status", ["Pending", "Running", "Complete", "TimedOut", "Cancelled"])
def test_task_status_updated_non_failed_clears_errors(status: str) -> None:
    state = steps(
        State(),
        TaskCreated(task_id=T1, task=text_task(T1)),
        TaskFailed(task_id=T1, error_type="E", error_message="m"),
        TaskStatusUpdated(task_id=T1, task_status=status),  # type: ignore[arg-type]
    )
    task = state.tasks[T1]
    assert isinstance(task, TextGeneration)
    assert (task.task_status, task.error_type, task.error_message) == (status, None, None)


def test_task_status_updated_failed_keeps_errors() -> None:
    state = steps(
        State(),
        TaskCreated(task_id=T1, task=text_task(T1)),
        TaskFailed(task_id=T1, error_type="OOM", error_message="out of memory"),
        TaskStatusUpdated(task_id=T1, task_status="Failed"),
    )
    task = dump(state)["tasks"]["task-1"]["TextGeneration"]
    assert (task["task_status"], task["error_type"], task["error_message"]) == ("Failed", "OOM", "out of memory")


def test_task_status_updated_unknown_task_is_a_no_op() -> None:
    before = step(State(), TaskCreated(task_id=T1, task=text_task(T1)))
    after = step(before, TaskStatusUpdated(task_id=T9, task_status="Complete"))
    assert_only_idx_changed(before, after)
    assert T9 not in after.tasks


def test_task_status_updated_non_generation_task_only_changes_status() -> None:
    state = steps(
        State(), TaskCreated(task_id=T2, task=load_task(T2)), TaskStatusUpdated(task_id=T2, task_status="Complete")
    )
    assert dump(state)["tasks"] == {
        "task-2": {"LoadModel": {"task_id": "task-2", "task_status": "Complete", "instance_id": "instance-1"}}
    }


def test_task_failed_sets_error_fields_and_keeps_status() -> None:
    state = steps(
        State(),
        TaskCreated(task_id=T1, task=text_task(T1, status="Running")),
        TaskFailed(task_id=T1, error_type="OOM", error_message="out of memory"),
    )
    task = dump(state)["tasks"]["task-1"]["TextGeneration"]
    assert (task["task_status"], task["error_type"], task["error_message"]) == ("Running", "OOM", "out of memory")


def test_task_failed_unknown_task_is_a_no_op() -> None:
    before = step(State(), TaskCreated(task_id=T1, task=text_task(T1)))
    after = step(before, TaskFailed(task_id=T9, error_type="E", error_message="m"))
    assert_only_idx_changed(before, after)


def test_task_failed_non_generation_task_is_a_no_op() -> None:
    before = step(State(), TaskCreated(task_id=T2, task=load_task(T2)))
    after = step(before, TaskFailed(task_id=T2, error_type="E", error_message="m"))
    assert_only_idx_changed(before, after)
    assert dump(after)["tasks"] == {
        "task-2": {"LoadModel": {"task_id": "task-2", "task_status": "Pending", "instance_id": "instance-1"}}
    }


# ====================================================================================
# Instances and runners
# ====================================================================================


def test_instance_created_keyed_by_instance_id() -> None:
    state = step(State(), InstanceCreated(instance=ring_instance(I1, A, R1)))
    assert dump(state)["instances"] == {
        "instance-1": {
            "MlxRingInstance": {
                "instance_id": "instance-1",
                "shard_assignments": {
                    "model_id": "model-x",
                    "runner_to_shard": {"runner-1": SHARD_X},
                    "node_to_runner": {"node-a": "runner-1"},
                },
                "hosts_by_node": {"node-a": [{"ip": "10.0.0.1", "port": 5000}]},
                "ephemeral_port": 5000,
            }
        }
    }


def test_instance_created_overwrites() -> None:
    state = steps(
        State(),
        InstanceCreated(instance=ring_instance(I1, A, R1, port=5000)),
        InstanceCreated(instance=ring_instance(I1, A, R1, port=6000)),
    )
    assert list(state.instances) == ["instance-1"]
    assert dump(state)["instances"]["instance-1"]["MlxRingInstance"]["ephemeral_port"] == 6000


def test_instance_deleted_drops_only_the_instance() -> None:
    state = steps(
        State(),
        InstanceCreated(instance=ring_instance(I1, A, R1)),
        InstanceCreated(instance=ring_instance(I2, B, R2)),
        RunnerStatusUpdated(runner_id=R1, runner_status=RunnerReady()),
        TaskCreated(task_id=T1, task=text_task(T1)),  # belongs to instance-1
        InstanceDeleted(instance_id=I1),
    )
    assert list(state.instances) == ["instance-2"]
    # Runners and tasks of the deleted instance are not touched.
    assert dump(state)["runners"] == {"runner-1": {"RunnerReady": {}}}
    assert list(state.tasks) == ["task-1"]


def test_instance_deleted_missing_is_a_no_op() -> None:
    before = step(State(), InstanceCreated(instance=ring_instance(I1, A, R1)))
    after = step(before, InstanceDeleted(instance_id=I2))
    assert_only_idx_changed(before, after)


def test_runner_status_updated_sets_and_overwrites() -> None:
    state = step(State(), RunnerStatusUpdated(runner_id=R1, runner_status=RunnerIdle()))
    assert dump(state)["runners"] == {"runner-1": {"RunnerIdle": {}}}
    state = step(state, RunnerStatusUpdated(runner_id=R1, runner_status=RunnerFailed(error_message="crash")))
    assert dump(state)["runners"] == {"runner-1": {"RunnerFailed": {"error_message": "crash"}}}


def test_runner_status_updated_never_removes() -> None:
    # exo at the reference commit: even RunnerShutdown keeps the key.
    state = step(State(), RunnerStatusUpdated(runner_id=R1, runner_status=RunnerShutdown()))
    assert dump(state)["runners"] == {"runner-1": {"RunnerShutdown": {}}}


def test_runner_deleted_drops_the_runner() -> None:
    state = steps(
        State(),
        RunnerStatusUpdated(runner_id=R1, runner_status=RunnerIdle()),
        RunnerStatusUpdated(runner_id=R2, runner_status=RunnerIdle()),
        RunnerDeleted(runner_id=R1),
    )
    assert list(state.runners) == ["runner-2"]


def test_runner_deleted_missing_is_a_no_op_not_a_crash() -> None:
    # exo asserts here (a crash); clusterstate's apply is total.
    before = step(State(), RunnerStatusUpdated(runner_id=R1, runner_status=RunnerIdle()))
    after = step(before, RunnerDeleted(runner_id=R2))
    assert_only_idx_changed(before, after)
    after_empty = step(State(), RunnerDeleted(runner_id=R2))
    assert after_empty.runners == {}
    assert after_empty.last_event_applied_idx == 0


# ====================================================================================
# Downloads
# ====================================================================================

PENDING_X_JSON = {"DownloadPending": {"node_id": "node-a", "shard_metadata": SHARD_X}}
PENDING_Y_JSON = {"DownloadPending": {"node_id": "node-a", "shard_metadata": SHARD_Y}}
COMPLETED_X_JSON = {
    "DownloadCompleted": {"node_id": "node-a", "shard_metadata": SHARD_X, "total_bytes": {"in_bytes": 123}}
}


def test_download_progress_appends_for_a_new_shard() -> None:
    state = steps(State(), pending(A, SHARD_X), pending(A, SHARD_Y))
    assert dump(state)["downloads"] == {"node-a": [PENDING_X_JSON, PENDING_Y_JSON]}


def test_download_progress_replaces_equal_shard_in_place() -> None:
    state = steps(State(), pending(A, SHARD_X), pending(A, SHARD_Y), completed(A, SHARD_X, 123))
    assert dump(state)["downloads"] == {"node-a": [COMPLETED_X_JSON, PENDING_Y_JSON]}


def test_download_progress_replaces_only_the_first_equal_entry() -> None:
    first = DownloadPending(node_id=A, shard_metadata=SHARD_X)
    second = DownloadOngoing(node_id=A, shard_metadata=SHARD_X, download_progress={"speed": 1.5})
    before = State(downloads={A: [first, second]})
    after = step(before, completed(A, SHARD_X, 123))
    assert dump(after)["downloads"] == {
        "node-a": [
            COMPLETED_X_JSON,
            {"DownloadOngoing": {"node_id": "node-a", "shard_metadata": SHARD_X, "download_progress": {"speed": 1.5}}},
        ]
    }


def test_download_progress_keyed_by_node_inside_the_payload() -> None:
    state = step(State(), pending(A, SHARD_X), origin=B)
    assert dump(state)["downloads"] == {"node-a": [PENDING_X_JSON]}
    state = step(state, pending(B, SHARD_X), origin=A)
    assert dump(state)["downloads"] == {
        "node-a": [PENDING_X_JSON],
        "node-b": [{"DownloadPending": {"node_id": "node-b", "shard_metadata": SHARD_X}}],
    }


# ====================================================================================
# NodeGatheredInfo, per info kind
# ====================================================================================

INFO_SAMPLES: dict[str, Any] = {
    "MacmonMetrics": macmon(0.5, 45.0, 100, 40),
    "MemoryUsage": memory(100, 40),
    "NodeDiskUsage": disk(1000, 600),
    "NodeConfig": NodeConfig(),
    "MiscData": MiscData(friendly_name="alpha"),
    "StaticNodeInformation": StaticNodeInformation(
        model="Mac Studio", chip="Apple M3 Ultra", os_version="15.3", os_build_version="24D60"
    ),
    "NodeNetworkInterfaces": network(("en0", "192.168.1.10", "ethernet")),
    "MacThunderboltIdentifiers": tb_idents(("rdma_en2", "uuid-a")),
    "MacThunderboltConnections": tb_conns(("uuid-a", "uuid-b")),
    "ThunderboltBridgeInfo": bridge(True),
    "RdmaCtlStatus": RdmaCtlStatus(enabled=True),
}

EMPTY_NODE_MAPS: dict[str, dict[str, Any]] = {
    "node_identities": {},
    "node_memory": {},
    "node_disk": {},
    "node_system": {},
    "node_network": {},
    "node_thunderbolt": {},
    "node_thunderbolt_bridge": {},
    "node_rdma_ctl": {},
}

# What each kind writes into an empty State, besides adding the node to the topology.
INFO_EFFECTS: dict[str, dict[str, Any]] = {
    "MacmonMetrics": {
        "node_system": {
            "node-a": {"gpu_usage": 0.5, "temp": 45.0, "sys_power": 30.5, "pcpu_usage": 0.25, "ecpu_usage": 0.5}
        },
        "node_memory": {"node-a": MEMORY_JSON_100_40},
    },
    "MemoryUsage": {"node_memory": {"node-a": MEMORY_JSON_100_40}},
    "NodeDiskUsage": {"node_disk": {"node-a": {"total": {"in_bytes": 1000}, "available": {"in_bytes": 600}}}},
    "NodeConfig": {},
    "MiscData": {
        "node_identities": {
            "node-a": {
                "model_id": "Unknown",
                "chip_id": "Unknown",
                "friendly_name": "alpha",
                "os_version": "Unknown",
                "os_build_version": "Unknown",
            }
        }
    },
    "StaticNodeInformation": {
        "node_identities": {
            "node-a": {
                "model_id": "Mac Studio",
                "chip_id": "Apple M3 Ultra",
                "friendly_name": "Unknown",
                "os_version": "15.3",
                "os_build_version": "24D60",
            }
        }
    },
    "NodeNetworkInterfaces": {
        "node_network": {
            "node-a": {"interfaces": [{"name": "en0", "ip_address": "192.168.1.10", "interface_type": "ethernet"}]}
        }
    },
    "MacThunderboltIdentifiers": {
        "node_thunderbolt": {
            "node-a": {"interfaces": [{"rdma_interface": "rdma_en2", "domain_uuid": "uuid-a", "link_speed": ""}]}
        }
    },
    # No identifiers known yet: no edge.
    "MacThunderboltConnections": {},
    "ThunderboltBridgeInfo": {
        "node_thunderbolt_bridge": {"node-a": {"enabled": True, "exists": True, "service_name": "Thunderbolt Bridge"}}
    },
    "RdmaCtlStatus": {"node_rdma_ctl": {"node-a": {"enabled": True}}},
}


def test_info_samples_cover_all_eleven_kinds() -> None:
    assert len(INFO_SAMPLES) == 11
    assert {type(info).__name__ for info in INFO_SAMPLES.values()} == set(INFO_SAMPLES)
    assert set(INFO_EFFECTS) == set(INFO_SAMPLES)


@pytest.mark.parametrize("kind", list(INFO_SAMPLES))
def test_gathered_info_writes_its_maps_and_adds_node_to_topology(kind: str) -> None:
    state = step(State(), gathered(A, INFO_SAMPLES[kind]))
    dumped = dump(state)
    assert dumped["topology"] == {"nodes": ["node-a"], "connections": {}}
    assert {name: dumped[name] for name in EMPTY_NODE_MAPS} == EMPTY_NODE_MAPS | INFO_EFFECTS[kind]
    assert dumped["last_event_index_by_node"] == {"node-a": 0}
    assert dumped["thunderbolt_bridge_cycles"] == []
    assert (dumped["tasks"], dumped["instances"], dumped["runners"], dumped["downloads"]) == ({}, {}, {}, {})


@pytest.mark.parametrize("kind", list(INFO_SAMPLES))
def test_gathered_info_adds_node_to_existing_topology(kind: str) -> None:
    before = step(State(), TopologyEdgeCreated(conn=link(B, C, socket("10.0.0.3"))))
    after = step(before, gathered(A, INFO_SAMPLES[kind]))
    assert after.topology.list_nodes() == [A, B, C]
    assert dump(after)["topology"]["connections"] == dump(before)["topology"]["connections"]


def test_macmon_overwrites_memory_and_system() -> None:
    state = steps(State(), gathered(A, macmon(0.5, 45.0, 100, 40)), gathered(A, macmon(0.75, 50.0, 100, 10)))
    dumped = dump(state)
    assert dumped["node_system"] == {
        "node-a": {"gpu_usage": 0.75, "temp": 50.0, "sys_power": 30.5, "pcpu_usage": 0.25, "ecpu_usage": 0.5}
    }
    assert dumped["node_memory"]["node-a"]["ram_available"] == {"in_bytes": 10}


def test_memory_usage_overwrites_macmon_memory_and_keeps_system() -> None:
    state = steps(State(), gathered(A, macmon(0.5, 45.0, 100, 40)), gathered(A, memory(100, 7)))
    dumped = dump(state)
    assert dumped["node_memory"]["node-a"]["ram_available"] == {"in_bytes": 7}
    assert dumped["node_system"]["node-a"]["gpu_usage"] == 0.5


def test_memory_usage_is_per_node() -> None:
    state = steps(State(), gathered(A, memory(100, 40)), gathered(B, memory(200, 150)))
    assert dump(state)["node_memory"] == {
        "node-a": MEMORY_JSON_100_40,
        "node-b": {
            "ram_total": {"in_bytes": 200},
            "ram_available": {"in_bytes": 150},
            "swap_total": {"in_bytes": 0},
            "swap_available": {"in_bytes": 0},
        },
    }


def test_node_config_changes_only_topology() -> None:
    before = step(State(), gathered(B, memory(100, 40)))
    after = step(before, gathered(A, NodeConfig()))
    expected = without_idx(before)
    expected["topology"] = {"nodes": ["node-a", "node-b"], "connections": {}}
    expected["last_event_index_by_node"] = {"node-a": 1, "node-b": 0}
    assert without_idx(after) == expected


def test_static_information_keeps_friendly_name() -> None:
    state = steps(State(), gathered(A, INFO_SAMPLES["MiscData"]), gathered(A, INFO_SAMPLES["StaticNodeInformation"]))
    assert dump(state)["node_identities"] == {
        "node-a": {
            "model_id": "Mac Studio",
            "chip_id": "Apple M3 Ultra",
            "friendly_name": "alpha",
            "os_version": "15.3",
            "os_build_version": "24D60",
        }
    }


def test_misc_data_keeps_static_information_and_renames() -> None:
    state = steps(
        State(),
        gathered(A, INFO_SAMPLES["StaticNodeInformation"]),
        gathered(A, MiscData(friendly_name="alpha")),
        gathered(A, MiscData(friendly_name="alpha-2")),
    )
    assert dump(state)["node_identities"] == {
        "node-a": {
            "model_id": "Mac Studio",
            "chip_id": "Apple M3 Ultra",
            "friendly_name": "alpha-2",
            "os_version": "15.3",
            "os_build_version": "24D60",
        }
    }


def test_network_interfaces_replace_the_previous_report() -> None:
    state = steps(
        State(),
        gathered(A, network(("en0", "192.168.1.10", "ethernet"), ("bridge0", "10.0.0.1", "thunderbolt"))),
        gathered(A, network(("en1", "192.168.1.11", "wifi"))),
    )
    assert dump(state)["node_network"] == {
        "node-a": {"interfaces": [{"name": "en1", "ip_address": "192.168.1.11", "interface_type": "wifi"}]}
    }


def test_rdma_ctl_status_does_not_gate_rdma_edges() -> None:
    # exo at the reference commit: RdmaCtlStatus is only recorded (gating came later, #2014).
    before = steps(
        State(),
        gathered(A, tb_idents(("rdma_en2", "uuid-a"))),
        gathered(B, tb_idents(("rdma_en3", "uuid-b"))),
        gathered(A, tb_conns(("uuid-a", "uuid-b"))),
    )
    after = step(before, gathered(A, RdmaCtlStatus(enabled=False)))
    assert dump(after)["node_rdma_ctl"] == {"node-a": {"enabled": False}}
    assert dump(after)["topology"] == dump(before)["topology"]
    assert dump(after)["topology"]["connections"] == {
        "node-a": {"node-b": [{"source_rdma_iface": "rdma_en2", "sink_rdma_iface": "rdma_en3"}]}
    }


def test_thunderbolt_bridge_info_overwrites() -> None:
    state = steps(State(), gathered(A, bridge(True)), gathered(A, bridge(False)))
    assert dump(state)["node_thunderbolt_bridge"] == {
        "node-a": {"enabled": False, "exists": True, "service_name": "Thunderbolt Bridge"}
    }


# ====================================================================================
# NodeDisconnected / legacy NodeTimedOut
# ====================================================================================


@pytest.mark.parametrize("make_event", [disconnect, lambda node: NodeTimedOut(node_id=node)], ids=["new", "legacy"])
def test_disconnect_prunes_node_data_and_keeps_identity_and_work(make_event: Callable[[NodeId], Event]) -> None:
    before = steps(
        State(),
        gathered(A, MiscData(friendly_name="alpha")),
        gathered(A, StaticNodeInformation(model="m", chip="c", os_version="o", os_build_version="b")),
        gathered(A, macmon(0.5, 45.0, 100, 40)),
        gathered(A, disk(1000, 600)),
        gathered(A, network(("bridge0", "10.0.0.1", "thunderbolt"))),
        gathered(A, tb_idents(("rdma_en2", "uuid-a"))),
        gathered(A, bridge(True)),
        gathered(A, RdmaCtlStatus(enabled=True)),
        pending(A, SHARD_X),
        gathered(B, memory(200, 50)),
        gathered(B, bridge(True)),
        gathered(B, tb_idents(("rdma_en3", "uuid-b"))),
        gathered(B, tb_conns(("uuid-b", "uuid-a"))),  # RDMA B→A (into A)
        gathered(A, tb_conns(("uuid-a", "uuid-b"))),  # RDMA A→B (out of A)
        TopologyEdgeCreated(conn=link(B, C, socket("10.0.0.3"))),
        TaskCreated(task_id=T1, task=text_task(T1)),
        InstanceCreated(instance=ring_instance(I1, A, R1)),
        RunnerStatusUpdated(runner_id=R1, runner_status=RunnerReady()),
    )
    assert before.thunderbolt_bridge_cycles == [[A, B]]
    after = step(before, make_event(A))

    dumped = dump(after)
    assert dumped["topology"] == {
        "nodes": ["node-b", "node-c"],
        "connections": {
            "node-b": {
                "node-c": [
                    {
                        "sink_multiaddr": {
                            "address": "/ip4/10.0.0.3/tcp/52415",
                            "address_type": "ip4",
                            "ip_address": "10.0.0.3",
                            "port": 52415,
                        }
                    }
                ]
            }
        },
    }
    for name in (
        "downloads",
        "node_memory",
        "node_disk",
        "node_system",
        "node_network",
        "node_thunderbolt",
        "node_thunderbolt_bridge",
        "node_rdma_ctl",
    ):
        assert "node-a" not in dumped[name], name
    assert dumped["node_memory"] == {
        "node-b": {
            "ram_total": {"in_bytes": 200},
            "ram_available": {"in_bytes": 50},
            "swap_total": {"in_bytes": 0},
            "swap_available": {"in_bytes": 0},
        }
    }
    assert dumped["node_thunderbolt_bridge"] == {
        "node-b": {"enabled": True, "exists": True, "service_name": "Thunderbolt Bridge"}
    }
    assert dumped["node_thunderbolt"] == {
        "node-b": {"interfaces": [{"rdma_interface": "rdma_en3", "domain_uuid": "uuid-b", "link_speed": ""}]}
    }
    # origin is None: the producers named inside advanced; the disconnected node is dropped.
    assert dumped["last_event_index_by_node"] == {"node-b": 14}
    # Identities survive (as in exo since exo#1493).
    assert dumped["node_identities"] == {
        "node-a": {
            "model_id": "m",
            "chip_id": "c",
            "friendly_name": "alpha",
            "os_version": "o",
            "os_build_version": "b",
        }
    }
    # Work is untouched.
    assert (dumped["tasks"], dumped["instances"], dumped["runners"]) == (
        dump(before)["tasks"],
        dump(before)["instances"],
        dump(before)["runners"],
    )
    assert list(after.instances) == ["instance-1"]
    assert dumped["runners"] == {"runner-1": {"RunnerReady": {}}}
    # The A↔B bridge loop is gone with A.
    assert dumped["thunderbolt_bridge_cycles"] == []


def test_disconnect_of_unknown_node_is_a_no_op() -> None:
    before = steps(State(), gathered(A, memory(100, 40)), gathered(A, MiscData(friendly_name="alpha")))
    after = step(before, disconnect(B))
    assert_only_idx_changed(before, after)


def test_disconnect_does_not_advance_the_disconnected_node() -> None:
    before = steps(State(), gathered(A, memory(100, 40)), gathered(B, memory(100, 40)))
    assert before.last_event_index_by_node == {A: 0, B: 1}
    after = step(before, NodeDisconnected(node_id=A, last_index=0, stale_cycles=3), origin=M)
    assert after.last_event_index_by_node == {B: 1, M: 2}
    after_no_origin = step(before, NodeDisconnected(node_id=A, last_index=0, stale_cycles=3))
    assert after_no_origin.last_event_index_by_node == {B: 1}


def test_rejoining_node_keeps_its_name() -> None:
    state = steps(
        State(),
        gathered(A, MiscData(friendly_name="alpha")),
        gathered(A, memory(100, 40)),
        disconnect(A),
        gathered(A, NodeConfig()),
    )
    dumped = dump(state)
    assert dumped["node_identities"]["node-a"]["friendly_name"] == "alpha"
    assert dumped["topology"] == {"nodes": ["node-a"], "connections": {}}
    assert dumped["node_memory"] == {}
    assert dumped["last_event_index_by_node"] == {"node-a": 3}


# ====================================================================================
# Pass-through events
# ====================================================================================

PASS_THROUGH: dict[str, Callable[[], Event]] = {
    "TestEvent": TestEvent,
    "TaskAcknowledged": lambda: TaskAcknowledged(task_id=T1),
    "ChunkGenerated": chunk,
    "InputChunkReceived": input_chunk,
    "TracesCollected": lambda: TracesCollected(task_id=T1, rank=1, traces=[trace()]),
    "TracesMerged": lambda: TracesMerged(task_id=T1, traces=[trace()]),
}


@pytest.mark.parametrize("kind", list(PASS_THROUGH))
def test_pass_through_changes_nothing_but_the_index(kind: str) -> None:
    before = populated()
    after = step(before, PASS_THROUGH[kind]())
    assert_only_idx_changed(before, after)
    assert after.last_event_applied_idx == 18


@pytest.mark.parametrize("kind", list(PASS_THROUGH))
def test_pass_through_with_origin_changes_only_the_indices(kind: str) -> None:
    before = populated()
    after = step(before, PASS_THROUGH[kind](), origin=B)
    expected = without_idx(before)
    expected["last_event_index_by_node"] = {"master-m": 14, "node-a": 16, "node-b": 18, "node-c": 17}
    assert without_idx(after) == expected
    assert after.last_event_applied_idx == 18


# ====================================================================================
# No wall clock
# ====================================================================================


def test_state_has_no_wall_clock() -> None:
    assert "last_seen" not in State.model_fields
    assert "last_event_index_by_node" in State.model_fields
    assert "when" not in NodeGatheredInfo.model_fields
    assert "last_seen" not in json.loads(populated().model_dump_json())


def test_legacy_when_is_dropped_and_does_not_reach_state() -> None:
    raw = (
        '{"idx":0,"origin":null,"event":{"NodeGatheredInfo":{"event_id":"e-1","node_id":"node-a",'
        '"when":"2026-02-17 11:48:28.123456+00:00","info":{"NodeConfig":{}}}}}'
    )
    raw_later = raw.replace("11:48:28", "23:59:59")
    first = apply(State(), decode_indexed_event(raw))
    second = apply(State(), decode_indexed_event(raw_later))
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()
    assert "2026" not in first.model_dump_json()
    assert first.last_event_index_by_node == {A: 0}


_REPLAY_SCRIPT = """
import sys
from clusterstate.codec import decode_indexed_event
from clusterstate.reference import fold
events = [decode_indexed_event(line) for line in sys.stdin.read().splitlines() if line]
sys.stdout.write(fold(events).model_dump_json())
"""


def _rich_log() -> list[IndexedEvent]:
    """Events whose outcome could depend on set/dict order: cycles, RDMA owners, many nodes."""
    nodes = [NodeId(name) for name in ("zulu", "alpha", "mike", "bravo", "yankee")]
    events: list[Event] = []
    for number, node in enumerate(nodes):
        events += [
            gathered(node, bridge(True)),
            gathered(node, network(("bridge0", f"10.0.1.{number}", "thunderbolt"))),
            gathered(node, tb_idents((f"rdma_en{number}", f"uuid-{node}"))),
        ]
    for number, node in enumerate(nodes):
        for other_number, other in enumerate(nodes):
            if node != other:
                events.append(TopologyEdgeCreated(conn=link(node, other, socket(f"10.0.1.{other_number}"))))
        events.append(gathered(node, tb_conns((f"uuid-{node}", f"uuid-{nodes[(number + 1) % len(nodes)]}"))))
    events += [
        gathered(NodeId("alpha"), MiscData(friendly_name="a")),
        TaskCreated(task_id=T1, task=text_task(T1)),
        disconnect(NodeId("mike")),
    ]
    return [IndexedEvent(idx=idx, origin=None, event=event) for idx, event in enumerate(events)]


def test_same_events_in_other_processes_give_identical_json() -> None:
    log = _rich_log()
    here = fold(log).model_dump_json()
    stdin = "\n".join(event.model_dump_json() for event in log)
    outputs = set()
    for seed, tz in (("0", "UTC"), ("1", "Asia/Tokyo"), ("12345", "America/Los_Angeles")):
        env = os.environ | {"PYTHONHASHSEED": seed, "TZ": tz}
        result = subprocess.run(
            [sys.executable, "-c", _REPLAY_SCRIPT], input=stdin, capture_output=True, text=True, env=env, check=True
        )
        outputs.add(result.stdout)
    assert outputs == {here}
    # The 4-node remainder (mike is gone) is fully meshed with bridges on: 2-cycles exist.
    assert ["alpha", "bravo"] in json.loads(here)["thunderbolt_bridge_cycles"]


def test_replaying_twice_gives_equal_states_and_identical_json() -> None:
    log = _rich_log()
    first, second = fold(log), fold(log)
    assert first == second
    assert first.model_dump_json() == second.model_dump_json()


# ====================================================================================
# Every event advances its producer's index
# ====================================================================================


@pytest.mark.parametrize("kind", ALL_EVENT_KINDS)
def test_every_event_kind_from_an_origin_advances_it(kind: str) -> None:
    before = populated()
    after = step(before, one_of_each(A)[kind], origin=A)
    assert after.last_event_applied_idx == 18
    expected = {A: 18, B: 11, C: 17, M: 14}
    if kind in ("NodeDisconnected", "NodeTimedOut"):  # they are about C
        del expected[C]
    assert after.last_event_index_by_node == expected


@pytest.mark.parametrize("kind", ALL_EVENT_KINDS)
def test_origin_that_was_never_seen_gets_an_entry(kind: str) -> None:
    newcomer = NodeId("node-new")
    after = step(populated(), one_of_each(A)[kind], origin=newcomer)
    assert after.last_event_index_by_node[newcomer] == 18


PRODUCER_INSIDE = ("NodeGatheredInfo", "NodeDownloadProgress", "TopologyEdgeCreated", "TopologyEdgeDeleted")


@pytest.mark.parametrize("kind", PRODUCER_INSIDE)
def test_without_origin_the_producer_named_inside_advances(kind: str) -> None:
    after = step(populated(), one_of_each(B)[kind])
    assert after.last_event_index_by_node == {A: 16, B: 18, C: 17, M: 14}


@pytest.mark.parametrize("kind", [kind for kind in ALL_EVENT_KINDS if kind not in PRODUCER_INSIDE])
def test_without_origin_events_naming_no_producer_advance_nobody(kind: str) -> None:
    after = step(populated(), one_of_each(B)[kind])
    expected = {A: 16, B: 11, C: 17, M: 14}
    if kind in ("NodeDisconnected", "NodeTimedOut"):
        del expected[C]
    assert after.last_event_index_by_node == expected
    assert after.last_event_applied_idx == 18


def test_origin_wins_over_the_node_named_inside() -> None:
    # A sample relayed under another origin advances the envelope's origin.
    after = step(populated(), gathered(B, memory(1, 1)), origin=C)
    assert after.last_event_index_by_node == {A: 16, B: 11, C: 18, M: 14}


def test_a_busy_node_with_a_stalled_gatherer_stays_current() -> None:
    state = step(State(), gathered(A, memory(100, 40)))
    for _ in range(3):
        state = steps(state, chunk(), RunnerStatusUpdated(runner_id=R1, runner_status=RunnerReady()), origin=A)
    assert state.last_event_index_by_node == {A: 6}


# ====================================================================================
# Totality
# ====================================================================================


@pytest.mark.parametrize(
    ("last_applied", "idx", "expected"),
    [
        (-1, 1, 0),  # empty State, idx ≠ 0
        (-1, 7, 0),
        (2, 4, 3),  # gap
        (2, 2, 3),  # duplicate
        (2, 0, 3),  # stale
    ],
    ids=["empty-1", "empty-7", "gap", "duplicate", "stale"],
)
def test_wrong_index_raises_typed_error_and_leaves_state_unchanged(last_applied: int, idx: int, expected: int) -> None:
    state = State()
    for number in range(last_applied + 1):
        state = step(state, gathered(A, memory(100, number)))
    snapshot = state.model_dump_json()
    event = IndexedEvent(idx=idx, origin=B, event=gathered(B, memory(5, 5)))
    with pytest.raises(EventIndexError) as caught:
        apply(state, event)
    error = caught.value
    assert isinstance(error, ClusterStateError)
    assert isinstance(error, ValueError)
    assert (error.expected, error.got) == (expected, idx)
    assert state.model_dump_json() == snapshot
    assert state.last_event_applied_idx == last_applied


def test_index_error_is_catchable_as_value_error() -> None:
    with pytest.raises(ValueError, match="expected 0"):
        apply(State(), IndexedEvent(idx=3, event=TestEvent()))


def test_last_event_applied_idx_is_set_to_idx() -> None:
    state = apply(State(), IndexedEvent(idx=0, event=TestEvent()))
    assert state.last_event_applied_idx == 0
    state = apply(state, IndexedEvent(idx=1, event=TestEvent()))
    assert state.last_event_applied_idx == 1
    # A State can start at any index (e.g. restored from a snapshot).
    restored = State(last_event_applied_idx=41)
    assert apply(restored, IndexedEvent(idx=42, event=TestEvent())).last_event_applied_idx == 42


@pytest.mark.parametrize("origin", [None, A, M], ids=["no-origin", "origin-a", "origin-m"])
@pytest.mark.parametrize("kind", ALL_EVENT_KINDS)
def test_apply_never_mutates_its_input(kind: str, origin: NodeId | None) -> None:
    before = populated()
    snapshot = before.model_dump_json()
    topology_snapshot = before.topology.snapshot()
    reference = populated()
    after = step(before, one_of_each(A)[kind], origin)
    assert before.model_dump_json() == snapshot
    assert before.topology.snapshot() == topology_snapshot
    assert before == reference
    assert after.last_event_applied_idx == 18
    assert before.last_event_applied_idx == 17


def test_a_failed_apply_does_not_mutate_either() -> None:
    before = populated()
    snapshot = before.model_dump_json()
    for idx in (0, 17, 19, 100):
        with pytest.raises(EventIndexError):
            apply(before, IndexedEvent(idx=idx, origin=A, event=disconnect(A)))
    assert before.model_dump_json() == snapshot


def test_fold_equals_applying_one_by_one() -> None:
    log = _rich_log()
    state = State()
    for event in log:
        state = apply(state, event)
    assert fold(log) == state
    assert fold(log).model_dump_json() == state.model_dump_json()
    # fold continues from a given State.
    assert fold(log[10:], fold(log[:10])) == state
