"""The pydantic models as a wire contract: exo's example payloads, tagged unions, legacy input, errors, topology.

The JSON examples in ``tests/data`` are in exo's wire format (see tests/data/README.md); expected values here are
written out by hand, never computed by the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import pytest
from hypothesis import given
from pydantic import Tag, TypeAdapter, ValidationError

import strategies as cst
from clusterstate.codec import (
    decode_event,
    decode_forwarder_event,
    decode_indexed_event,
    decode_state,
    encode_event,
)
from clusterstate.errors import ClusterStateError, DecodeError
from clusterstate.models import (
    ChunkGenerated,
    Connection,
    ConnectToGroup,
    DownloadCompleted,
    DownloadProgress,
    Edge,
    Event,
    ForwarderEvent,
    GatheredInfo,
    ImageEdits,
    ImageGeneration,
    Instance,
    InstanceCreated,
    LoadModel,
    MacmonMetrics,
    Memory,
    MemoryUsage,
    MlxRingInstance,
    Multiaddr,
    NodeDisconnected,
    NodeGatheredInfo,
    NodeTimedOut,
    RDMAConnection,
    RunnerFailed,
    RunnerStatus,
    RunnerStatusUpdated,
    ShardAssignments,
    SocketConnection,
    StartWarmup,
    State,
    TaggedModel,
    Task,
    TaskAcknowledged,
    TaskCreated,
    TaskDeleted,
    TextGeneration,
    ThunderboltBridgeStatus,
    Topology,
    TopologyEdgeCreated,
    TopologyEdgeDeleted,
)
from clusterstate.models._base import tag_discriminator

DATA = Path(__file__).parent / "data"

NODE = "12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"

UNIONS: dict[str, Any] = {
    "Event": Event,
    "Task": Task,
    "RunnerStatus": RunnerStatus,
    "DownloadProgress": DownloadProgress,
    "Instance": Instance,
    "GatheredInfo": GatheredInfo,
    "Edge": Edge,
}
ALL_TAGS = frozenset(cls.__name__ for union in UNIONS.values() for cls in cst.union_members(union))


def source(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def compact(value: Any) -> str:
    """JSON as pydantic writes it: no spaces, UTF-8 kept as is."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def leaves(value: Any, path: tuple[Any, ...] = ()) -> dict[tuple[Any, ...], Any]:
    """Every scalar of a JSON value keyed by its path (empty containers count as leaves)."""
    if isinstance(value, dict) and value:
        return {k: v for key, item in value.items() for k, v in leaves(item, (*path, key)).items()}
    if isinstance(value, list) and value:
        return {k: v for index, item in enumerate(value) for k, v in leaves(item, (*path, index)).items()}
    return {path: value}


def double_tags(value: Any) -> list[str]:
    """Tags written twice in a row (``{"X": {"X": ...}}``) anywhere in a JSON value."""
    found: list[str] = []
    if isinstance(value, dict):
        if len(value) == 1:
            ((key, inner),) = value.items()
            if key in ALL_TAGS and isinstance(inner, dict) and len(inner) == 1 and key in inner:
                found.append(key)
        for item in value.values():
            found += double_tags(item)
    elif isinstance(value, list):
        for item in value:
            found += double_tags(item)
    return found


# --- exo's example payloads ---


def test_forwarder_event_with_macmon_sample_decodes() -> None:
    forwarded = decode_forwarder_event((DATA / "forwarder_event_macmon.json").read_bytes())

    assert forwarded.origin_idx == 12345
    assert forwarded.origin == NODE
    assert forwarded.session.master_node_id == NODE
    assert forwarded.session.election_clock == 4
    event = forwarded.event
    assert isinstance(event, NodeGatheredInfo)
    assert event.event_id == "5532806c-8a1f-4f5e-9b3d-0c7e2a41d9f6"
    assert event.node_id == NODE
    assert isinstance(event.info, MacmonMetrics)
    profile = event.info.system_profile
    assert (profile.gpu_usage, profile.temp, profile.sys_power, profile.pcpu_usage, profile.ecpu_usage) == (
        0.12,
        45.3,
        30.1,
        0.2,
        0.1,
    )
    assert event.info.memory.ram_total == Memory(in_bytes=549755813888)
    assert event.info.memory.ram_available == Memory(in_bytes=429496729600)
    assert event.info.memory.swap_total == event.info.memory.swap_available == Memory(in_bytes=0)


def test_forwarder_event_reencodes_identically_except_the_dropped_when() -> None:
    original = source("forwarder_event_macmon.json")
    encoded = decode_forwarder_event(compact(original)).model_dump_json()

    # The one deliberate change: no wall clock in events.
    when = ("event", "NodeGatheredInfo", "when")
    before, after = leaves(original), leaves(json.loads(encoded))
    assert set(before) - set(after) == {when}
    assert set(after) - set(before) == set()
    assert all(after[path] == before[path] for path in after)
    # ... and otherwise byte-identical, field order included.
    expected = json.loads(compact(original))
    del expected["event"]["NodeGatheredInfo"]["when"]
    assert encoded == compact(expected)


def test_token_chunk_event_roundtrips_byte_identically() -> None:
    original = source("chunk_generated_token.json")
    event = decode_event(compact(original).encode())

    assert isinstance(event, ChunkGenerated)
    assert event.command_id == "7c2e9d41-3b5f-4a6e-8d1c-9e0f2a3b4c5d"
    assert event.chunk["TokenChunk"]["text"] == " hello"
    assert encode_event(event).decode() == compact(original)
    assert event.model_dump_json() == compact(original)


def test_state_example_roundtrips_byte_identically() -> None:
    original = source("state.json")
    state = decode_state(compact(original))

    assert state.last_event_index_by_node == {"nodeA": 3, "nodeB": 2}
    assert state.last_event_applied_idx == 3
    assert state.node_memory["nodeA"].ram_available == Memory(in_bytes=60)
    assert state.node_thunderbolt_bridge["nodeB"] == ThunderboltBridgeStatus(
        enabled=True, exists=True, service_name="Thunderbolt Bridge"
    )
    assert state.model_dump_json() == compact(original)


def test_state_example_edges_are_told_apart_by_shape() -> None:
    state = decode_state(compact(source("state.json")))

    assert state.topology.list_nodes() == ["nodeA", "nodeB"]
    assert state.topology.list_connections() == [
        Connection(
            source="nodeA",
            sink="nodeB",
            edge=SocketConnection(sink_multiaddr=Multiaddr(address="/ip4/10.0.0.2/tcp/52415")),
        ),
        Connection(
            source="nodeA", sink="nodeB", edge=RDMAConnection(source_rdma_iface="rdma_en2", sink_rdma_iface="rdma_en3")
        ),
    ]
    socket = state.topology.list_connections()[0].edge
    assert isinstance(socket, SocketConnection)
    assert (socket.sink_multiaddr.address_type, socket.sink_multiaddr.ip_address, socket.sink_multiaddr.port) == (
        "ip4",
        "10.0.0.2",
        52415,
    )


def test_state_example_by_alias_is_camel_case_outside_and_exo_snake_case_inside() -> None:
    state = decode_state(compact(source("state.json")))
    by_alias = source("state_by_alias.json")

    assert state.model_dump_json(by_alias=True) == compact(by_alias)
    # Both spellings decode to the same State.
    assert decode_state(compact(by_alias)) == state


def test_multiaddr_computed_fields_are_written_and_ignored_on_input() -> None:
    original = source("state.json")
    edge = original["topology"]["connections"]["nodeA"]["nodeB"][0]["sink_multiaddr"]
    edge.update(address_type="dns", ip_address="1.1.1.1", port=1)

    state = decode_state(compact(original))

    written = json.loads(state.model_dump_json())["topology"]["connections"]["nodeA"]["nodeB"][0]["sink_multiaddr"]
    assert written == {
        "address": "/ip4/10.0.0.2/tcp/52415",
        "address_type": "ip4",
        "ip_address": "10.0.0.2",
        "port": 52415,
    }


@pytest.mark.parametrize(
    ("address", "parts"),
    [
        ("/ip4/10.0.0.2/tcp/52415", ("ip4", "10.0.0.2", 52415)),
        ("/ip4/169.254.0.1/tcp/0/p2p/12D3KooWQYhT", ("ip4", "169.254.0.1", 0)),
        ("/ip6/fe80::1/tcp/65535", ("ip6", "fe80::1", 65535)),
        ("/ip6/::1/tcp/4001/p2p/Qm123", ("ip6", "::1", 4001)),
        ("/ip6/FE80:0:0::1/tcp/443", ("ip6", "fe80::1", 443)),  # exo writes the canonical IPv6 text
    ],
)
def test_multiaddr_parts(address: str, parts: tuple[str, str, int]) -> None:
    multiaddr = Multiaddr(address=address)

    assert (multiaddr.address_type, multiaddr.ip_address, multiaddr.port) == parts
    assert multiaddr.model_dump() == {
        "address": address,
        "address_type": parts[0],
        "ip_address": parts[1],
        "port": parts[2],
    }


@pytest.mark.parametrize(
    "address",
    [
        "/dns4/node-a.local/tcp/443",  # exo cannot serialise a DNS multiaddr
        "/ip4/10.0.0.256/tcp/1",
        "/ip4/fe80::1/tcp/1",
        "/ip6/10.0.0.1/tcp/1",
        "/ip4/10.0.0.1/tcp/65536",
        "/ip4/10.0.0.1",
        "/ip4/10.0.0.1/udp/1",
    ],
)
def test_multiaddr_rejects_what_exo_cannot_write(address: str) -> None:
    with pytest.raises(ValidationError):
        Multiaddr(address=address)


def test_exo_state_with_last_seen_is_rejected_not_silently_dropped() -> None:
    with pytest.raises(DecodeError, match=r"last_seen: Extra inputs are not permitted"):
        decode_state(compact(source("state_exo.json")))


# --- tagged unions (exo's test_tagged, on our models) ---


class Foo1(TaggedModel):
    x: int


class Foo2(TaggedModel):
    x: int


class Inner(TaggedModel):
    x: int


class Outer(TaggedModel):
    inner: Inner


class Wrapper(TaggedModel):
    outer: Outer
    label: str


class Container(TaggedModel):
    items: list[Inner]
    nested: Wrapper


FOO_UNIONS = {
    # exo's form: a plain union; each member's validator unwraps only its own tag.
    "plain-union": Foo1 | Foo2,
    # Ours: the tag picks the member before any validation.
    "tag-discriminator": Annotated[Annotated[Foo1, Tag("Foo1")] | Annotated[Foo2, Tag("Foo2")], tag_discriminator()],
}


@pytest.mark.parametrize("union", FOO_UNIONS.values(), ids=FOO_UNIONS.keys())
def test_identical_shapes_decode_to_the_class_named_by_the_tag(union: Any) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(union)

    assert Foo1(x=1).model_dump() == {"Foo1": {"x": 1}}
    assert Foo2(x=2).model_dump() == {"Foo2": {"x": 2}}
    first = adapter.validate_json('{"Foo1": {"x": 10}}')
    second = adapter.validate_json('{"Foo2": {"x": 20}}')
    assert type(first) is Foo1
    assert first.x == 10
    assert type(second) is Foo2
    assert second.x == 20
    with pytest.raises(ValidationError):
        adapter.validate_json('{"NotARealTag": {"x": 0}}')


IDENTICAL_SHAPES = [
    pytest.param(
        Event, [TaskDeleted(event_id="e", task_id="t"), TaskAcknowledged(event_id="e", task_id="t")], id="events"
    ),
    pytest.param(
        Event,
        [
            cls(
                event_id="e",
                conn=Connection(source="a", sink="b", edge=RDMAConnection(source_rdma_iface="x", sink_rdma_iface="y")),
            )
            for cls in (TopologyEdgeCreated, TopologyEdgeDeleted)
        ],
        id="edge-events",
    ),
    pytest.param(RunnerStatus, [cls() for cls in cst.RUNNER_STATUS_BY_KIND if cls is not RunnerFailed], id="runners"),
    pytest.param(
        Task, [cls(task_id="t", instance_id="i") for cls in (LoadModel, ConnectToGroup, StartWarmup)], id="tasks"
    ),
    pytest.param(
        Task,
        [
            cls(task_id="t", instance_id="i", command_id="c", task_params={})
            for cls in (TextGeneration, ImageGeneration, ImageEdits)
        ],
        id="generation-tasks",
    ),
]


@pytest.mark.parametrize(("union", "values"), IDENTICAL_SHAPES)
def test_real_models_with_identical_shapes_decode_by_tag(union: Any, values: list[Any]) -> None:
    adapter: TypeAdapter[Any] = TypeAdapter(union)
    bodies = [json.loads(value.model_dump_json())[type(value).__name__] for value in values]
    assert all(body == bodies[0] for body in bodies)  # the shapes really are identical

    for value in values:
        decoded = adapter.validate_json(value.model_dump_json())
        assert type(decoded) is type(value)
        assert decoded == value


@pytest.mark.parametrize("union", UNIONS.values(), ids=UNIONS.keys())
def test_unknown_tag_is_rejected(union: Any) -> None:
    with pytest.raises(ValidationError, match="NotARealTag"):
        TypeAdapter(union).validate_json('{"NotARealTag": {}}')


def test_untagged_event_is_rejected() -> None:
    # exo's untagged fallback would turn this into a NodeTimedOut with a fresh random event_id.
    with pytest.raises(DecodeError):
        decode_event('{"node_id": "x"}')


SAMPLES: dict[str, Any] = {
    "Event": TaskDeleted(event_id="e", task_id="t"),
    "Task": LoadModel(task_id="t", instance_id="i"),
    "RunnerStatus": RunnerFailed(error_message="boom"),
    "DownloadProgress": DownloadCompleted(
        node_id="a", shard_metadata={"PipelineShardMetadata": {}}, total_bytes=Memory(in_bytes=1)
    ),
    "Instance": MlxRingInstance(
        instance_id="i",
        shard_assignments=ShardAssignments(model_id="m", runner_to_shard={}, node_to_runner={}),
        hosts_by_node={},
        ephemeral_port=1,
    ),
    "GatheredInfo": MemoryUsage(
        ram_total=Memory(in_bytes=1),
        ram_available=Memory(in_bytes=1),
        swap_total=Memory(in_bytes=0),
        swap_available=Memory(in_bytes=0),
    ),
    "Edge": RDMAConnection(source_rdma_iface="a", sink_rdma_iface="b"),
}


@pytest.mark.parametrize(
    ("family", "other"), [(a, b) for a in UNIONS for b in UNIONS if a != b], ids=lambda name: str(name)
)
def test_a_payload_of_one_union_family_does_not_decode_as_another(family: str, other: str) -> None:
    payload = TypeAdapter(UNIONS[family]).dump_json(SAMPLES[family])
    assert type(TypeAdapter(UNIONS[family]).validate_json(payload)) is type(SAMPLES[family])

    with pytest.raises(ValidationError):
        TypeAdapter(UNIONS[other]).validate_json(payload)


def test_runner_status_is_not_an_event() -> None:
    with pytest.raises(DecodeError, match="RunnerIdle"):
        decode_event('{"RunnerIdle": {}}')


def test_single_level_tagging() -> None:
    assert Inner(x=10).model_dump() == {"Inner": {"x": 10}}
    restored = Inner.model_validate_json('{"Inner": {"x": 10}}')
    assert restored == Inner(x=10)


def test_two_level_tagging() -> None:
    dumped = Outer(inner=Inner(x=42)).model_dump()

    assert dumped == {"Outer": {"inner": {"Inner": {"x": 42}}}}
    assert Outer.model_validate_json(json.dumps(dumped)) == Outer(inner=Inner(x=42))


def test_three_level_tagging() -> None:
    wrapper = Wrapper(label="deep", outer=Outer(inner=Inner(x=7)))
    dumped = wrapper.model_dump()

    assert dumped == {"Wrapper": {"outer": {"Outer": {"inner": {"Inner": {"x": 7}}}}, "label": "deep"}}
    assert Wrapper.model_validate_json(json.dumps(dumped)) == wrapper


def test_tagging_inside_lists() -> None:
    container = Container(items=[Inner(x=1), Inner(x=2)], nested=Wrapper(label="mix", outer=Outer(inner=Inner(x=9))))
    dumped = container.model_dump()

    assert dumped == {
        "Container": {
            "items": [{"Inner": {"x": 1}}, {"Inner": {"x": 2}}],
            "nested": {"Wrapper": {"outer": {"Outer": {"inner": {"Inner": {"x": 9}}}}, "label": "mix"}},
        }
    }
    assert Container.model_validate_json(json.dumps(dumped)) == container


def test_real_models_nest_single_tags_at_two_and_three_levels_and_in_lists() -> None:
    status = RunnerStatusUpdated(event_id="e", runner_id="r", runner_status=RunnerFailed(error_message="oom"))
    assert json.loads(encode_event(status)) == {
        "RunnerStatusUpdated": {
            "event_id": "e",
            "runner_id": "r",
            "runner_status": {"RunnerFailed": {"error_message": "oom"}},
        }
    }

    shard = {"PipelineShardMetadata": {"device_rank": 0, "world_size": 1}}
    instance = MlxRingInstance(
        instance_id="i",
        shard_assignments=ShardAssignments(model_id="m", runner_to_shard={"r": shard}, node_to_runner={"a": "r"}),
        hosts_by_node={"a": []},
        ephemeral_port=5,
    )
    created = InstanceCreated(event_id="e", instance=instance)
    assert json.loads(encode_event(created)) == {
        "InstanceCreated": {
            "event_id": "e",
            "instance": {
                "MlxRingInstance": {
                    "instance_id": "i",
                    "shard_assignments": {
                        "model_id": "m",
                        "runner_to_shard": {"r": {"PipelineShardMetadata": {"device_rank": 0, "world_size": 1}}},
                        "node_to_runner": {"a": "r"},
                    },
                    "hosts_by_node": {"a": []},
                    "ephemeral_port": 5,
                }
            },
        }
    }
    assert decode_event(encode_event(created)) == created

    progress = DownloadCompleted(node_id="a", shard_metadata=shard, total_bytes=Memory(in_bytes=7))
    state = State(downloads={"a": [progress, progress]})
    assert json.loads(state.model_dump_json())["downloads"] == {
        "a": [
            {"DownloadCompleted": {"node_id": "a", "shard_metadata": shard, "total_bytes": {"in_bytes": 7}}},
            {"DownloadCompleted": {"node_id": "a", "shard_metadata": shard, "total_bytes": {"in_bytes": 7}}},
        ]
    }
    assert decode_state(state.model_dump_json()) == state


def test_repeated_dumps_do_not_double_tag() -> None:
    inner = Inner(x=11)
    assert inner.model_dump() == inner.model_dump() == {"Inner": {"x": 11}}
    outer = Outer(inner=inner)
    assert outer.model_dump() == outer.model_dump() == {"Outer": {"inner": {"Inner": {"x": 11}}}}

    event = TaskCreated(event_id="e", task_id="t", task=LoadModel(task_id="t", instance_id="i"))
    once = encode_event(event)
    assert encode_event(event) == once
    assert encode_event(decode_event(once)) == once
    # Validating an already tagged Python dump (not JSON) does not add a tag either.
    assert TypeAdapter(Event).validate_python(event.model_dump()) == event
    assert json.loads(once) == {
        "TaskCreated": {
            "event_id": "e",
            "task_id": "t",
            "task": {"LoadModel": {"task_id": "t", "task_status": "Pending", "instance_id": "i"}},
        }
    }


def test_a_doubly_tagged_payload_is_rejected() -> None:
    with pytest.raises(DecodeError):
        decode_event('{"TaskDeleted": {"TaskDeleted": {"event_id": "e", "task_id": "t"}}}')


@given(cst.states())
def test_no_state_json_holds_a_tag_twice_in_a_row(state: State) -> None:
    assert double_tags(json.loads(state.model_dump_json())) == []


@given(cst.forwarder_events())
def test_no_event_json_holds_a_tag_twice_in_a_row(forwarded: ForwarderEvent) -> None:
    assert double_tags(json.loads(forwarded.model_dump_json())) == []


# --- legacy and changed events (docs/models.md) ---


def test_legacy_node_timed_out_decodes_and_reencodes() -> None:
    raw = '{"NodeTimedOut":{"event_id":"e1","node_id":"nodeA"}}'

    event = decode_event(raw)

    assert event == NodeTimedOut(event_id="e1", node_id="nodeA")
    assert encode_event(event).decode() == raw


@pytest.mark.parametrize("when", ["2026-02-17 11:48:28.123456+00:00", "2026-02-17T11:00:00Z"])
def test_when_on_node_gathered_info_is_accepted_and_dropped(when: str) -> None:
    raw = {"NodeGatheredInfo": {"event_id": "e", "node_id": "nodeA", "when": when, "info": {"NodeConfig": {}}}}

    event = decode_event(json.dumps(raw))

    assert isinstance(event, NodeGatheredInfo)
    assert "when" not in NodeGatheredInfo.model_fields
    assert (
        encode_event(event).decode()
        == '{"NodeGatheredInfo":{"event_id":"e","node_id":"nodeA","info":{"NodeConfig":{}}}}'
    )


@pytest.mark.parametrize(("last_index", "stale_cycles"), [(41, 3), (None, 5), (0, 0)])
def test_node_disconnected_carries_its_evidence(last_index: int | None, stale_cycles: int) -> None:
    raw = (
        '{"NodeDisconnected":{"event_id":"e","node_id":"nodeA","last_index":'
        f'{json.dumps(last_index)},"stale_cycles":{stale_cycles}}}}}'
    )

    event = decode_event(raw)

    assert isinstance(event, NodeDisconnected)
    assert (event.node_id, event.last_index, event.stale_cycles) == ("nodeA", last_index, stale_cycles)
    assert encode_event(event).decode() == raw


@pytest.mark.parametrize("field", ["last_index", "stale_cycles"])
def test_node_disconnected_rejects_negative_evidence(field: str) -> None:
    body = {"event_id": "e", "node_id": "nodeA", "last_index": 1, "stale_cycles": 1, field: -1}

    with pytest.raises(DecodeError, match=f"NodeDisconnected.{field}"):
        decode_event(json.dumps({"NodeDisconnected": body}))


MEMORY = {
    "ram_total": {"in_bytes": 100},
    "ram_available": {"in_bytes": 60},
    "swap_total": {"in_bytes": 8},
    "swap_available": {"in_bytes": 4},
}


def test_memory_usage_is_untagged_gathered_info() -> None:
    raw = compact({"NodeGatheredInfo": {"event_id": "e", "node_id": "nodeA", "info": MEMORY}})

    event = decode_event(raw)

    assert isinstance(event, NodeGatheredInfo)
    assert event.info == MemoryUsage(
        ram_total=Memory(in_bytes=100),
        ram_available=Memory(in_bytes=60),
        swap_total=Memory(in_bytes=8),
        swap_available=Memory(in_bytes=4),
    )
    assert encode_event(event).decode() == raw
    # camelCase keys are told apart as MemoryUsage too.
    camel = event.model_dump_json(by_alias=True)
    assert '"info":{"ramTotal":{"inBytes":100}' in camel
    assert decode_event(camel) == event


def test_tagged_memory_usage_is_rejected() -> None:
    # exo never tags MemoryUsage; accepting the tag would make two spellings of one event.
    with pytest.raises(DecodeError):
        decode_event(
            compact({"NodeGatheredInfo": {"event_id": "e", "node_id": "nodeA", "info": {"MemoryUsage": MEMORY}}})
        )


# --- errors ---

EVENT_ERRORS = [
    pytest.param(b'{"TestEvent": {', "Invalid JSON", id="malformed-json"),
    pytest.param(b"", "Invalid JSON", id="empty-input"),
    pytest.param(b'{"NodeExploded": {"node_id": "a"}}', "NodeExploded", id="unknown-tag"),
    pytest.param(b"[]", "<root>", id="not-an-object"),
    pytest.param(
        b'{"NodeDisconnected": {"event_id": "e", "node_id": "a", "last_index": "3", "stale_cycles": 1}}',
        "NodeDisconnected.last_index: Input should be a valid integer",
        id="string-for-int",
    ),
    pytest.param(
        b'{"NodeDisconnected": {"event_id": "e", "node_id": "a", "last_index": true, "stale_cycles": 1}}',
        "NodeDisconnected.last_index: Input should be a valid integer",
        id="bool-for-int",
    ),
    pytest.param(
        b'{"NodeDisconnected": {"event_id": "e", "node_id": "a", "last_index": 3.0, "stale_cycles": 1}}',
        "NodeDisconnected.last_index: Input should be a valid integer",
        id="float-for-int",
    ),
    pytest.param(
        b'{"TaskDeleted": {"event_id": "e", "task_id": 5}}',
        "TaskDeleted.task_id: Input should be a valid string",
        id="int-for-str",
    ),
    pytest.param(b'{"TaskDeleted": {"event_id": "e"}}', "TaskDeleted.task_id: Field required", id="missing-field"),
    pytest.param(
        b'{"TaskDeleted": {"event_id": "e", "task_id": "t", "bogus": 1}}',
        "TaskDeleted.bogus: Extra inputs are not permitted",
        id="extra-field",
    ),
    pytest.param(
        b'{"TaskStatusUpdated": {"event_id": "e", "task_id": "t", "task_status": "Exploded"}}',
        "TaskStatusUpdated.task_status",
        id="unknown-task-status",
    ),
    pytest.param(
        b'{"TopologyEdgeCreated": {"event_id": "e", "conn": {"source": "a", "sink": "b",'
        b' "edge": {"sink_multiaddr": {"address": "/ip4/10.0.0.2"}}}}}',
        "TopologyEdgeCreated.conn.edge.SocketConnection.sink_multiaddr",
        id="multiaddr-without-tcp",
    ),
    pytest.param(
        b'{"TopologyEdgeCreated": {"event_id": "e", "conn": {"source": "a", "sink": "b",'
        b' "edge": {"sink_multiaddr": {"address": "/ip4/10.0.0.2/tcp/70000"}}}}}',
        "port out of range",
        id="multiaddr-port-out-of-range",
    ),
    pytest.param(
        b'{"TopologyEdgeCreated": {"event_id": "e", "conn": {"source": "a", "sink": "b", "edge": {"weight": 1}}}}',
        "TopologyEdgeCreated.conn.edge",
        id="edge-of-no-known-shape",
    ),
    pytest.param(
        b'{"TaskCreated": {"event_id": "e", "task_id": "t", "task": {"DownloadModel": {"task_id": "t",'
        b' "instance_id": "i", "shard_metadata": {"FooShardMetadata": {}}}}}}',
        "TaskCreated.task.DownloadModel.shard_metadata: Value error, unknown tag 'FooShardMetadata'",
        id="unknown-shard-metadata-tag",
    ),
    pytest.param(
        b'{"TaskCreated": {"event_id": "e", "task_id": "t", "task": {"DownloadModel": {"task_id": "t",'
        b' "instance_id": "i", "shard_metadata": {"PipelineShardMetadata": {}, "CfgShardMetadata": {}}}}}}',
        "TaskCreated.task.DownloadModel.shard_metadata: Value error, expected one tag",
        id="two-shard-metadata-tags",
    ),
    pytest.param(
        b'{"ChunkGenerated": {"event_id": "e", "command_id": "c", "chunk": {"AudioChunk": {}}}}',
        "ChunkGenerated.chunk: Value error, unknown tag 'AudioChunk'",
        id="unknown-chunk-tag",
    ),
    pytest.param(
        b'{"ChunkGenerated": {"event_id": "e", "command_id": "c", "chunk": {"TokenChunk": "text"}}}',
        "ChunkGenerated.chunk.TokenChunk",
        id="chunk-body-not-an-object",
    ),
    pytest.param(
        b'{"NodeGatheredInfo": {"event_id": "e", "node_id": "a", "info": {"MacmonMetrics": {"system_profile":'
        b' {"gpu_usage": NaN}, "memory": {"ram_total": {"in_bytes": 1}, "ram_available": {"in_bytes": 1},'
        b' "swap_total": {"in_bytes": 1}, "swap_available": {"in_bytes": 1}}}}}}',
        "NodeGatheredInfo.info.MacmonMetrics.system_profile.gpu_usage: Input should be a finite number",
        id="nan-float",
    ),
    pytest.param(
        b'{"NodeGatheredInfo": {"event_id": "e", "node_id": "a", "info": {"MacmonMetrics": {"system_profile":'
        b' {"temp": 1e400}, "memory": {"ram_total": {"in_bytes": 1}, "ram_available": {"in_bytes": 1},'
        b' "swap_total": {"in_bytes": 1}, "swap_available": {"in_bytes": 1}}}}}}',
        "NodeGatheredInfo.info.MacmonMetrics.system_profile.temp: Input should be a finite number",
        id="overflowing-float",
    ),
]


@pytest.mark.parametrize(("payload", "message"), EVENT_ERRORS)
def test_bad_event_raises_decode_error_naming_the_problem(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode_event(payload)

    error = caught.value
    assert isinstance(error, ClusterStateError)
    assert isinstance(error, ValueError)
    assert str(error).startswith("invalid event: ")
    assert message in str(error)
    assert error.errors  # the individual problems are kept for callers


ENVELOPE_ERRORS = [
    pytest.param(
        decode_indexed_event,
        b'{"idx": -1, "event": {"TestEvent": {"event_id": "e"}}}',
        "invalid indexed event: idx:",
        id="idx<0",
    ),
    pytest.param(
        decode_indexed_event,
        b'{"idx": 1, "origin": 7, "event": {"TestEvent": {"event_id": "e"}}}',
        "invalid indexed event: origin:",
        id="origin-not-a-string",
    ),
    pytest.param(
        decode_indexed_event,
        b'{"idx": 1, "event": {"Bogus": {}}}',
        "invalid indexed event: event:",
        id="indexed-unknown-tag",
    ),
    pytest.param(
        decode_forwarder_event,
        b'{"origin_idx": -3, "origin": "a", "session": {"master_node_id": "a", "election_clock": 0},'
        b' "event": {"TestEvent": {"event_id": "e"}}}',
        "invalid forwarder event: origin_idx:",
        id="origin_idx<0",
    ),
    pytest.param(
        decode_forwarder_event,
        b'{"origin_idx": 0, "origin": "a", "event": {"TestEvent": {"event_id": "e"}}}',
        "invalid forwarder event: session: Field required",
        id="missing-session",
    ),
    pytest.param(
        decode_state, b'{"last_event_applied_idx": -2}', "invalid state: last_event_applied_idx:", id="applied-idx<-1"
    ),
    pytest.param(
        decode_state,
        b'{"topology": {"nodes": ["a"], "connections": {"a": {"b": [{"source_rdma_iface": "x"}]}}}}',
        "invalid state: topology.connections.a.b.0.RDMAConnection.sink_rdma_iface: Field required",
        id="half-an-rdma-edge",
    ),
    pytest.param(
        decode_state,
        b'{"topology": {"nodes": [], "connections": {}, "edges": []}}',
        "topology.edges",
        id="snapshot-extra-key",
    ),
    pytest.param(
        decode_state, b'{"last_event_index_by_node": {"a": "3"}}', "last_event_index_by_node.a", id="index-not-int"
    ),
]


@pytest.mark.parametrize(("decode", "payload", "message"), ENVELOPE_ERRORS)
def test_bad_envelope_or_state_raises_decode_error_naming_the_problem(
    decode: Any, payload: bytes, message: str
) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(payload)

    assert isinstance(caught.value, ClusterStateError)
    assert isinstance(caught.value, ValueError)
    assert message in str(caught.value)


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_number_in_opaque_json_is_rejected(number: str) -> None:
    chunk = '{"TokenChunk": {"logprob": ' + number + "}}"
    payload = '{"ChunkGenerated": {"event_id": "e", "command_id": "c", "chunk": ' + chunk + "}}"

    with pytest.raises(DecodeError):
        decode_event(payload)


@pytest.mark.parametrize(
    "kind", [bytes, bytearray, memoryview, lambda raw: raw.decode()], ids=["bytes", "bytearray", "memoryview", "str"]
)
def test_decoders_accept_every_buffer_kind(kind: Any) -> None:
    raw = b'{"TaskDeleted":{"event_id":"e","task_id":"t"}}'

    assert decode_event(kind(raw)) == TaskDeleted(event_id="e", task_id="t")


# --- topology value semantics (exo's test_topology, and what immutability adds) ---

SOCKET = SocketConnection(sink_multiaddr=Multiaddr(address="/ip4/10.0.0.2/tcp/52415"))
OTHER_SOCKET = SocketConnection(sink_multiaddr=Multiaddr(address="/ip4/10.0.0.2/tcp/52416"))
RDMA = RDMAConnection(source_rdma_iface="rdma_en2", sink_rdma_iface="rdma_en3")


def test_a_lone_node_is_a_leaf() -> None:
    topology = Topology().with_node("a")

    assert topology.list_nodes() == ["a"]
    assert topology.list_connections() == []
    assert topology.is_leaf("a")


def test_add_connection_lists_exactly_it_and_both_ends_are_leaves() -> None:
    conn = Connection(source="a", sink="b", edge=SOCKET)

    topology = Topology().with_node("a").with_node("b").with_connection(conn)

    assert topology.list_connections() == [conn]
    assert topology.out_edges("a") == [conn]
    assert topology.out_edges("b") == []
    assert topology.is_leaf("a")
    assert topology.is_leaf("b")


def test_add_connection_adds_unknown_endpoints() -> None:
    topology = Topology().with_connection(Connection(source="b", sink="a", edge=RDMA))

    assert topology.list_nodes() == ["a", "b"]


def test_remove_connection_leaves_no_connection_between_the_pair() -> None:
    conn = Connection(source="a", sink="b", edge=SOCKET)

    topology = Topology().with_connection(conn).without_connection(conn)

    assert topology.list_connections() == []
    assert topology.list_nodes() == ["a", "b"]


def test_remove_connection_removes_only_that_direction_and_that_edge() -> None:
    there = Connection(source="a", sink="b", edge=SOCKET)
    back = Connection(source="b", sink="a", edge=SOCKET)
    rdma = Connection(source="a", sink="b", edge=RDMA)
    topology = Topology().with_connection(there).with_connection(back).with_connection(rdma)

    assert topology.without_connection(there).list_connections() == [rdma, back]


def test_remove_connection_with_unknown_endpoint_is_a_no_op() -> None:
    topology = Topology().with_connection(Connection(source="a", sink="b", edge=SOCKET))

    assert topology.without_connection(Connection(source="a", sink="zzz", edge=SOCKET)) == topology
    assert topology.without_connection(Connection(source="a", sink="b", edge=RDMA)) == topology


def test_remove_node_removes_its_incident_edges() -> None:
    topology = (
        Topology()
        .with_connection(Connection(source="a", sink="b", edge=SOCKET))
        .with_connection(Connection(source="b", sink="c", edge=RDMA))
        .with_connection(Connection(source="c", sink="a", edge=SOCKET))
    )

    without_b = topology.without_node("b")

    assert without_b.list_nodes() == ["a", "c"]
    assert without_b.out_edges("a") == []
    assert without_b.list_connections() == [Connection(source="c", sink="a", edge=SOCKET)]


def test_list_nodes_lists_both_ends() -> None:
    topology = Topology().with_connection(Connection(source="node-2", sink="node-1", edge=SOCKET))

    assert topology.list_nodes() == ["node-1", "node-2"]
    assert "node-1" in topology
    assert "node-3" not in topology
    assert len(topology) == 2


def test_leaf_means_at_most_one_distinct_successor() -> None:
    topology = (
        Topology()
        .with_connection(Connection(source="a", sink="b", edge=SOCKET))
        .with_connection(Connection(source="a", sink="b", edge=RDMA))
    )
    assert topology.is_leaf("a")
    assert topology.successors("a") == ["b"]

    topology = topology.with_connection(Connection(source="a", sink="c", edge=SOCKET))
    assert not topology.is_leaf("a")
    assert topology.successors("a") == ["b", "c"]


def test_changes_return_new_values_and_leave_the_old_one_unchanged() -> None:
    empty = Topology()
    conn = Connection(source="a", sink="b", edge=SOCKET)

    one = empty.with_node("a")
    two = one.with_connection(conn)
    three = two.with_rdma_out_edges("a", [Connection(source="a", sink="b", edge=RDMA)])
    four = three.without_connection(conn)
    five = four.without_node("b")

    assert empty.list_nodes() == []
    assert one.list_nodes() == ["a"]
    assert one.list_connections() == []
    assert two.list_connections() == [conn]
    assert three.list_connections() == [conn, Connection(source="a", sink="b", edge=RDMA)]
    assert four.list_connections() == [Connection(source="a", sink="b", edge=RDMA)]
    assert five.list_nodes() == ["a"]
    assert five.list_connections() == []


def test_state_holding_a_topology_is_unchanged_by_deriving_a_new_topology() -> None:
    state = State(topology=Topology().with_node("a"))
    before = state.model_dump_json()

    state.topology.with_connection(Connection(source="a", sink="b", edge=SOCKET)).without_node("a")

    assert state.model_dump_json() == before


def test_equal_edges_are_kept_once_and_different_ones_in_parallel() -> None:
    first = Connection(source="a", sink="b", edge=SOCKET)
    same = Connection(
        source="a", sink="b", edge=SocketConnection(sink_multiaddr=Multiaddr(address="/ip4/10.0.0.2/tcp/52415"))
    )
    other_port = Connection(source="a", sink="b", edge=OTHER_SOCKET)

    topology = Topology().with_connection(first).with_connection(same)
    assert topology.list_connections() == [first]
    assert topology.with_connection(first) == topology

    topology = topology.with_connection(other_port)
    assert topology.list_connections() == [first, other_port]


def test_rdma_out_edges_are_replaced_and_socket_edges_kept() -> None:
    socket = Connection(source="a", sink="b", edge=SOCKET)
    old_rdma = Connection(source="a", sink="b", edge=RDMA)
    new_rdma = Connection(
        source="a", sink="c", edge=RDMAConnection(source_rdma_iface="rdma_en4", sink_rdma_iface="rdma_en5")
    )
    incoming = Connection(source="b", sink="a", edge=RDMA)
    topology = Topology().with_connection(socket).with_connection(old_rdma).with_connection(incoming)

    replaced = topology.with_rdma_out_edges("a", [new_rdma])

    assert replaced.list_connections() == [socket, new_rdma, incoming]
    assert topology.with_rdma_out_edges("a", []).list_connections() == [socket, incoming]
    assert Topology().with_rdma_out_edges("z", []).list_nodes() == ["z"]


def test_snapshot_order_is_canonical_whatever_the_insertion_order() -> None:
    conns = [
        Connection(source="c", sink="a", edge=SOCKET),
        Connection(source="a", sink="c", edge=RDMA),
        Connection(source="a", sink="b", edge=RDMA),
        Connection(source="a", sink="b", edge=SOCKET),
    ]
    forward = Topology()
    for node in ["d", "c", "b", "a"]:
        forward = forward.with_node(node)
    for conn in conns:
        forward = forward.with_connection(conn)
    backward = Topology()
    for conn in reversed(conns):
        backward = backward.with_connection(conn)
    backward = backward.with_node("d")

    raw = State(topology=forward).model_dump_json()
    snapshot = json.loads(raw)["topology"]
    socket = {
        "sink_multiaddr": {
            "address": "/ip4/10.0.0.2/tcp/52415",
            "address_type": "ip4",
            "ip_address": "10.0.0.2",
            "port": 52415,
        }
    }
    rdma = {"source_rdma_iface": "rdma_en2", "sink_rdma_iface": "rdma_en3"}
    # Nodes sorted; sources, then sinks sorted; socket edges before RDMA edges.
    assert snapshot == {
        "nodes": ["a", "b", "c", "d"],
        "connections": {"a": {"b": [socket, rdma], "c": [rdma]}, "c": {"a": [socket]}},
    }
    assert list(snapshot["connections"]) == ["a", "c"]
    assert list(snapshot["connections"]["a"]) == ["b", "c"]
    assert backward == forward
    assert State(topology=backward).model_dump_json() == raw


def test_parallel_edges_are_ordered_sockets_by_address_then_rdma_by_interfaces() -> None:
    def socket(address: str) -> Connection:
        return Connection(source="a", sink="b", edge=SocketConnection(sink_multiaddr=Multiaddr(address=address)))

    def rdma(source: str, sink: str) -> Connection:
        return Connection(source="a", sink="b", edge=RDMAConnection(source_rdma_iface=source, sink_rdma_iface=sink))

    added = [
        rdma("rdma_en3", "rdma_en2"),
        socket("/ip6/fe80::1/tcp/52415"),
        rdma("rdma_en2", "rdma_en5"),
        socket("/ip4/10.0.0.9/tcp/52415"),
        rdma("rdma_en2", "rdma_en4"),
        socket("/ip4/10.0.0.10/tcp/52415"),
    ]
    topology = Topology()
    for conn in added:
        topology = topology.with_connection(conn)

    assert topology.list_connections() == [
        socket("/ip4/10.0.0.10/tcp/52415"),  # address order is string order, not numeric
        socket("/ip4/10.0.0.9/tcp/52415"),
        socket("/ip6/fe80::1/tcp/52415"),
        rdma("rdma_en2", "rdma_en4"),
        rdma("rdma_en2", "rdma_en5"),
        rdma("rdma_en3", "rdma_en2"),
    ]
    assert topology.out_edges("a") == topology.list_connections()


def test_topologies_compare_by_content() -> None:
    one = Topology().with_node("b").with_node("a")
    other = Topology().with_node("a").with_node("b")

    assert one == other
    assert one != other.with_node("c")
    assert Topology() == Topology()
