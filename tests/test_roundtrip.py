"""Property tests: every model survives JSON and back, and its JSON is stable (the wire/log contract).

For each value: model -> JSON -> model gives an equal value of the same class, and encoding it again
gives the same bytes. The camelCase form (``by_alias=True``, served to people) decodes back to an
equal value too, and the Python-mode dump validates back (how values cross into Rust).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import TypeAdapter

import strategies as cst
from clusterstate.codec import (
    decode_event,
    decode_forwarder_event,
    decode_indexed_event,
    decode_state,
    encode_event,
)
from clusterstate.models import (
    DownloadProgress,
    Edge,
    Event,
    ForwarderEvent,
    GatheredInfo,
    IndexedEvent,
    Instance,
    RunnerStatus,
    State,
    Task,
)

UNION_STRATEGIES: dict[str, tuple[Any, dict[type, st.SearchStrategy[Any]]]] = {
    "Event": (Event, cst.EVENTS_BY_KIND),
    "GatheredInfo": (GatheredInfo, cst.GATHERED_INFO_BY_KIND),
    "Task": (Task, cst.TASKS_BY_KIND),
    "RunnerStatus": (RunnerStatus, cst.RUNNER_STATUS_BY_KIND),
    "DownloadProgress": (DownloadProgress, cst.DOWNLOAD_PROGRESS_BY_KIND),
    "Instance": (Instance, cst.INSTANCES_BY_KIND),
    "Edge": (Edge, cst.EDGES_BY_KIND),
}


@pytest.mark.parametrize(("union", "by_kind"), UNION_STRATEGIES.values(), ids=UNION_STRATEGIES.keys())
def test_strategies_cover_every_union_member(union: Any, by_kind: dict[type, Any]) -> None:
    # A kind added to a union without a strategy would silently escape every property test.
    assert set(by_kind) == cst.union_members(union)


def test_the_unions_have_exo_sizes() -> None:
    # 19 exo events + NodeDisconnected.
    assert len(cst.union_members(Event)) == 20
    assert len(cst.union_members(GatheredInfo)) == 11
    assert len(cst.union_members(Task)) == 10
    assert len(cst.union_members(RunnerStatus)) == 11
    assert len(cst.union_members(DownloadProgress)) == 4


KINDS = [
    pytest.param(union, kind, strategy, id=f"{name}-{kind.__name__}")
    for name, (union, by_kind) in UNION_STRATEGIES.items()
    for kind, strategy in by_kind.items()
]


@pytest.mark.parametrize(("union", "kind", "strategy"), KINDS)
@given(data=st.data())
def test_every_kind_roundtrips_through_its_union(
    union: Any, kind: type, strategy: st.SearchStrategy[Any], data: st.DataObject
) -> None:
    value = data.draw(strategy)
    adapter: TypeAdapter[Any] = TypeAdapter(union)

    raw = adapter.dump_json(value)
    decoded = adapter.validate_json(raw)

    assert type(decoded) is kind
    assert decoded == value
    assert adapter.dump_json(decoded) == raw
    assert adapter.validate_json(adapter.dump_json(value, by_alias=True)) == value
    assert adapter.validate_python(adapter.dump_python(value)) == value


@given(cst.events())
def test_event_roundtrips_through_the_codec(event: Any) -> None:
    raw = encode_event(event)

    decoded = decode_event(raw)

    assert type(decoded) is type(event)
    assert decoded == event
    assert encode_event(decoded) == raw
    assert event.model_dump_json().encode() == raw


@given(cst.events())
def test_event_camel_case_json_decodes_to_an_equal_event(event: Any) -> None:
    decoded = decode_event(event.model_dump_json(by_alias=True))

    assert decoded == event
    assert encode_event(decoded) == encode_event(event)


@given(cst.indexed_events())
def test_indexed_event_roundtrips(indexed: IndexedEvent) -> None:
    raw = indexed.model_dump_json()

    decoded = decode_indexed_event(raw)

    assert decoded == indexed
    assert decoded.origin == indexed.origin
    assert decoded.model_dump_json() == raw
    assert decode_indexed_event(indexed.model_dump_json(by_alias=True)) == indexed
    assert IndexedEvent.model_validate(indexed.model_dump()) == indexed


@given(cst.forwarder_events())
def test_forwarder_event_roundtrips(forwarded: ForwarderEvent) -> None:
    raw = forwarded.model_dump_json()

    decoded = decode_forwarder_event(raw)

    assert decoded == forwarded
    assert decoded.model_dump_json() == raw
    assert decode_forwarder_event(forwarded.model_dump_json(by_alias=True)) == forwarded
    assert ForwarderEvent.model_validate(forwarded.model_dump()) == forwarded


@given(cst.states())
def test_state_roundtrips(state: State) -> None:
    raw = state.model_dump_json()

    decoded = decode_state(raw)

    assert decoded == state
    assert decoded.topology == state.topology
    assert decoded.model_dump_json() == raw
    assert State.model_validate(state.model_dump()) == state


@given(cst.states())
def test_state_camel_case_json_decodes_to_an_equal_state(state: State) -> None:
    decoded = decode_state(state.model_dump_json(by_alias=True))

    assert decoded == state
    assert decoded.model_dump_json() == state.model_dump_json()


@given(cst.states(), st.randoms(use_true_random=False))
def test_equal_states_write_identical_json_whatever_the_map_insertion_order(state: State, random: Any) -> None:
    fields = {name: getattr(state, name) for name in State.model_fields}
    shuffled = {}
    for name, value in fields.items():
        if isinstance(value, dict):
            items = list(value.items())
            random.shuffle(items)
            value = dict(items)
        shuffled[name] = value
    reordered = State(**shuffled)

    assert reordered == state
    assert reordered.model_dump_json() == state.model_dump_json()
    assert reordered.model_dump_json(by_alias=True) == state.model_dump_json(by_alias=True)
