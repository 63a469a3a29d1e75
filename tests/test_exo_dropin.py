"""``clusterstate.apply`` as a drop-in for exo's: exo-shaped pydantic objects in, a State exo's code can read out.

The foreign classes (``support.exo_shapes``) are the tests' own, with exo's shapes; the stream
(``support.exo_stream``) holds every exo event kind, in exo's schema and in clusterstate's. Each foreign event
must give the State its JSON gives through clusterstate's own decoder and models, and the reference reducer
agrees; values a reader sees are written out by hand.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, field_serializer

import clusterstate
from clusterstate import CoreState, reference
from clusterstate.codec import decode_indexed_event
from clusterstate.errors import DecodeError
from clusterstate.models import IndexedEvent, NodeId, RunnerId, State, TaskId
from support import exo_shapes
from support.exo_stream import EXO_EVENT_KINDS, current_bodies, exo_bodies

Foreign = exo_shapes.IndexedEvent | exo_shapes.CurrentIndexedEvent
A, B, C = NodeId("nodeA"), NodeId("nodeB"), NodeId("nodeC")
SCHEMAS: dict[str, tuple[type[Foreign], Callable[[], list[dict[str, Any]]]]]
SCHEMAS = {
    "exo": (exo_shapes.IndexedEvent, exo_bodies),
    "current": (exo_shapes.CurrentIndexedEvent, current_bodies),
}


def foreign_stream(schema: str) -> list[Foreign]:
    cls, bodies = SCHEMAS[schema]
    return [cls.model_validate_json(json.dumps({"idx": idx, "event": body})) for idx, body in enumerate(bodies())]


def tag(event: BaseModel) -> str:
    return type(event).__name__


def test_the_streams_hold_every_event_kind() -> None:
    assert {tag(item.event) for item in foreign_stream("exo")} == EXO_EVENT_KINDS
    assert {tag(item.event) for item in foreign_stream("current")} == EXO_EVENT_KINDS | {"NodeDisconnected"}
    assert all(not isinstance(item.event, clusterstate.models.TaggedModel) for item in foreign_stream("exo"))


@pytest.fixture
def no_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every foreign model refuses ``model_dump_json``: a conversion that needs it fails."""

    def refuse(self: BaseModel, **_: Any) -> str:
        raise AssertionError(f"{type(self).__name__} went through JSON")

    monkeypatch.setattr(exo_shapes.CamelCaseModel, "model_dump_json", refuse)
    monkeypatch.setattr(exo_shapes.Multiaddr, "model_dump_json", refuse)


@pytest.mark.parametrize("schema", SCHEMAS)
def test_foreign_events_apply_like_clusterstate_models(schema: str) -> None:
    stream = foreign_stream(schema)
    own = [decode_indexed_event(item.model_dump_json()) for item in stream]
    core = CoreState()
    expected = CoreState()
    from_bytes = CoreState()
    pydantic_state = State()
    for item, event in zip(stream, own, strict=True):
        core = clusterstate.apply(core, item)
        expected = clusterstate.apply(expected, event)
        from_bytes = clusterstate.apply(from_bytes, item.model_dump_json().encode())
        pydantic_state = reference.apply(pydantic_state, event)
        assert core == expected, tag(item.event)
        assert core == from_bytes, tag(item.event)
        assert core == pydantic_state, tag(item.event)
    assert clusterstate.apply_many(CoreState(), stream) == expected


@pytest.mark.parametrize("schema", SCHEMAS)
def test_foreign_events_are_read_without_json(schema: str, no_json: None) -> None:
    stream = foreign_stream(schema)
    core = CoreState()
    for item in stream:
        core = clusterstate.apply(core, item)
    assert core.last_event_applied_idx == len(stream) - 1
    assert clusterstate.apply_many(CoreState(), stream) == core


def test_what_exo_events_leave_in_the_state() -> None:
    state = clusterstate.apply_many(CoreState(), foreign_stream("exo"))
    # nodeB timed out: gone from the topology and the per-node maps; nodeA's data stays.
    assert state.topology.list_nodes() == ["nodeA"]
    assert state.node_memory[A].ram_available.in_bytes == 429496729600
    assert "nodeB" not in state.node_memory
    assert state.node_disk[A].available.in_bytes == 4
    assert state.node_identities[A].friendly_name == "studio-a"
    assert state.node_identities[A].chip_id == "M3 Ultra"
    assert state.node_rdma_ctl[A].enabled is True
    assert state.node_system[A].gpu_usage == 0.12
    assert state.instances == {}
    assert state.runners[RunnerId("runner-1")] == clusterstate.models.RunnerLoading()
    assert "runner-2" not in state.runners
    assert list(state.tasks) == ["task-1"]
    task = state.tasks[TaskId("task-1")]
    assert (task.task_status, task.error_type, task.error_message) == ("Running", "RuntimeError", "boom")
    assert [type(progress).__name__ for progress in state.downloads[A]] == ["DownloadCompleted"]
    assert state.last_event_index_by_node == {"nodeA": 34}  # its last event: the edge it deleted
    assert state.last_event_applied_idx == 36


def test_exo_state_with_a_bridge_loop_reads_like_exo_expects() -> None:
    events = foreign_stream("exo")
    # Up to the RDMA links, both bridges and both socket edges: a 2-node Thunderbolt bridge loop.
    state = clusterstate.apply_many(CoreState(), events[:17])
    assert state.thunderbolt_bridge_cycles == [["nodeA", "nodeB"]]
    topology = state.topology
    assert topology.neighbours(A) == [B]
    assert topology.node_is_leaf(A) is True
    assert [len(cycle) for cycle in topology.get_cycles()] == [1, 2, 1]
    two = topology.get_cycles()[1]
    assert list(two) == ["nodeA", "nodeB"]
    assert topology.is_rdma_cycle(two) is True
    mapped = topology.map_connections()
    assert [(c.source, c.sink, type(c.edge).__name__) for c in mapped[A][B]] == [
        (A, B, "SocketConnection"),
        (A, B, "RDMAConnection"),
    ]
    assert topology.get_subgraph_from_nodes([A, C]).list_nodes() == [A]
    assert topology.get_subgraph_from_nodes([A]).list_connections() == []


def test_a_when_of_another_type_goes_through_json() -> None:
    class NodeGatheredInfo(exo_shapes.BaseEvent):  # the wall clock as a datetime: read from its JSON
        node_id: exo_shapes.NodeId
        when: datetime
        info: exo_shapes.GatheredInfo

    class Envelope(exo_shapes.CamelCaseModel):
        idx: int
        event: NodeGatheredInfo

    info = exo_shapes.MiscData(friendly_name="a")
    item = Envelope(idx=0, event=NodeGatheredInfo(node_id=exo_shapes.NodeId("n"), when=datetime.now(UTC), info=info))
    state = clusterstate.apply(CoreState(), item)
    assert state.node_identities[NodeId("n")].friendly_name == "a"
    assert state == clusterstate.apply(CoreState(), item.model_dump_json())


def test_a_model_with_its_own_serializer_goes_through_json() -> None:
    class MiscData(exo_shapes.TaggedModel):
        friendly_name: str

        @field_serializer("friendly_name")
        def _upper(self, value: str) -> str:
            return value.upper()

    class NodeGatheredInfo(exo_shapes.BaseEvent):
        node_id: str
        info: MiscData

    class Envelope(exo_shapes.CamelCaseModel):
        idx: int
        event: NodeGatheredInfo

    item = Envelope(idx=0, event=NodeGatheredInfo(node_id="n", info=MiscData(friendly_name="studio")))
    assert clusterstate.apply(CoreState(), item).node_identities[NodeId("n")].friendly_name == "STUDIO"


def test_a_model_keeping_undeclared_fields_goes_through_json() -> None:
    class Envelope(exo_shapes.CamelCaseModel):
        model_config = ConfigDict(extra="allow")

        idx: int
        event: exo_shapes.TestEvent

    item = Envelope.model_validate({"idx": 0, "event": exo_shapes.TestEvent(event_id="e"), "extra_key": 1})
    assert "extra_key" in str(_error(clusterstate.apply, CoreState(), item))


def _unknown_events() -> tuple[BaseModel, BaseModel]:
    """An event of a kind no schema has (tag ``Unknown``): a foreign one and a clusterstate-based one."""

    class Unknown(exo_shapes.BaseEvent):
        node_id: str

    foreign = Unknown(event_id="e", node_id="n")

    class Unknown(clusterstate.models.TaggedModel):  # type: ignore[no-redef]
        event_id: str
        node_id: str

    return foreign, Unknown(event_id="e", node_id="n")


def _error(call: Any, *args: Any) -> DecodeError:
    with pytest.raises(DecodeError) as caught:
        call(*args)
    return caught.value


def _built(cls: type[BaseModel], **fields: Any) -> BaseModel:
    """``cls`` holding ``fields`` as given, unvalidated (how a wrong shape reaches ``apply``)."""
    return cls.model_construct(**fields)


def _wrong_pairs() -> list[tuple[BaseModel, BaseModel]]:
    """(a foreign indexed event of a wrong shape, a clusterstate one with the same JSON)."""
    foreign_unknown, own_unknown = _unknown_events()
    foreign_status = _built(
        exo_shapes.RunnerStatusUpdated,
        event_id="e",
        runner_id="r",
        runner_status=exo_shapes.MiscData(friendly_name="n"),
    )
    own_status = _built(
        clusterstate.models.RunnerStatusUpdated,
        event_id="e",
        runner_id="r",
        runner_status=clusterstate.models.MiscData(friendly_name="n"),
    )
    return [
        # an event kind no schema has
        (_built(exo_shapes.IndexedEvent, idx=0, event=foreign_unknown), _built(IndexedEvent, idx=0, event=own_unknown)),
        # a negative index
        (
            _built(exo_shapes.IndexedEvent, idx=-1, event=exo_shapes.TestEvent(event_id="e")),
            _built(IndexedEvent, idx=-1, event=clusterstate.models.TestEvent.model_validate({"event_id": "e"})),
        ),
        # gathered info where a runner status belongs
        (_built(exo_shapes.IndexedEvent, idx=0, event=foreign_status), _built(IndexedEvent, idx=0, event=own_status)),
    ]


@pytest.mark.parametrize("case", range(3), ids=["unknown-tag", "negative-index", "wrong-kind"])
def test_a_wrong_shape_fails_as_with_clusterstate_models(case: int) -> None:
    foreign, own = _wrong_pairs()[case]
    foreign_error = _error(clusterstate.apply, CoreState(), foreign)
    own_error = _error(clusterstate.apply, CoreState(), own)
    assert str(foreign_error) == str(own_error)
    assert isinstance(foreign_error, clusterstate.ClusterStateError)
    batch_error = _error(clusterstate.apply_many, CoreState(), [foreign])
    assert "event 0 of the batch" in str(batch_error)


def test_a_foreign_state_converts_and_compares() -> None:
    core = clusterstate.apply_many(CoreState(), foreign_stream("current"))
    foreign = exo_shapes.State.model_validate_json(core.model_dump_json())
    assert CoreState.from_pydantic(foreign) == core
    assert core == foreign
    assert core != exo_shapes.State()
    following = foreign_stream("current")[0].model_copy(update={"idx": core.last_event_applied_idx + 1})
    assert clusterstate.apply(foreign, following) == clusterstate.apply(core, following)


def test_exo_state_with_wall_clocks_must_be_converted() -> None:
    class WallClockState(exo_shapes.CamelCaseModel):
        last_seen: dict[str, datetime]

    wall_clock = WallClockState(last_seen={"nodeA": datetime(2026, 2, 17, 11, tzinfo=UTC)})
    error = _error(CoreState.from_pydantic, wall_clock)
    assert "last_seen" in str(error)
    assert CoreState() != wall_clock


def test_core_state_dumps_and_copies_like_a_pydantic_state() -> None:
    core = clusterstate.apply_many(CoreState(), foreign_stream("exo"))
    pydantic_state = core.to_pydantic()
    for by_alias in (False, True):
        assert core.model_dump(mode="json", by_alias=by_alias) == pydantic_state.model_dump(
            mode="json", by_alias=by_alias
        )
        assert core.model_dump(mode="python", by_alias=by_alias) == pydantic_state.model_dump(by_alias=by_alias)
    assert core.model_dump(by_alias=True)["lastEventAppliedIdx"] == 36
    with pytest.raises(ValueError, match="mode"):
        core.model_dump(mode="yaml")  # type: ignore[arg-type]
    assert core.model_copy() == core
    assert core.model_copy(deep=True) == core
    moved = core.model_copy(update={"last_event_applied_idx": 40})
    assert isinstance(moved, CoreState)
    assert (moved.last_event_applied_idx, core.last_event_applied_idx) == (40, 36)
    assert moved.node_memory == core.node_memory
    with pytest.raises(DecodeError):
        core.model_copy(update={"last_event_applied_idx": -5})
