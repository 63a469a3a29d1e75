"""The Rust reducer (``clusterstate.apply``) against the reference (``clusterstate.reference.apply``).

Differential: the same event streams through both reducers must give equal States, and
byte-identical JSON, after every event; the same bad input must raise the same error class and
leave the State as it was. Streams come from the trace generator (realistic clusters with crashes,
rejoins, Thunderbolt rings and bridges) and from hypothesis (every event kind, every info kind,
duplicates, unknown keys, disconnects and rejoins, gaps).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import clusterstate
import strategies
from clusterstate import CoreState, reference
from clusterstate.errors import ClusterStateError, DecodeError, EventIndexError
from clusterstate.models import MAX_INDEX, IndexedEvent, NodeId, State
from clusterstate.trace import generate_trace

TRACES = {
    "4 nodes, one crash": {"nodes": 4, "duration_s": 120.0, "seed": 3, "silent_nodes": 1},
    "6 nodes, crash and rejoin": {
        "nodes": 6,
        "duration_s": 150.0,
        "seed": 11,
        "silent_nodes": 2,
        "rejoin_after_s": 40.0,
    },
    "8 nodes, meshed Thunderbolt": {
        "nodes": 8,
        "duration_s": 90.0,
        "seed": 5,
        "tb_wiring": "mesh",
        "mac_fraction": 1.0,
    },
}


def assert_same(rust: CoreState, ref: State, where: str) -> None:
    assert rust.model_dump_json() == ref.model_dump_json(), where
    assert rust == ref, where


def fold_both(events: Sequence[IndexedEvent], as_bytes: bool = False) -> tuple[CoreState, State]:
    rust, ref = CoreState(), State()
    for event in events:
        ref = reference.apply(ref, event)
        rust = clusterstate.apply(rust, event.model_dump_json().encode() if as_bytes else event)
        assert_same(rust, ref, f"after event {event.idx} ({type(event.event).__name__})")
    return rust, ref


@pytest.mark.parametrize("knobs", TRACES.values(), ids=TRACES.keys())
@pytest.mark.parametrize("as_bytes", [False, True], ids=["models", "bytes"])
def test_traces_give_equal_states_after_every_event(knobs: dict[str, Any], as_bytes: bool) -> None:
    events = generate_trace(**knobs)
    rust, ref = fold_both(events, as_bytes)
    assert rust.model_dump_json(by_alias=True) == ref.model_dump_json(by_alias=True)


@pytest.mark.parametrize("knobs", TRACES.values(), ids=TRACES.keys())
def test_apply_many_equals_applying_one_by_one(knobs: dict[str, Any]) -> None:
    events = generate_trace(**knobs)
    half = len(events) // 2
    rust = clusterstate.apply_many(CoreState(), events[:half])
    rust = clusterstate.apply_many(rust, [event.model_dump_json().encode() for event in events[half:]])
    assert_same(rust, reference.fold(events), "after the whole trace")


def _stream(events: list[Any], origins: Sequence[str | None]) -> list[IndexedEvent]:
    return [
        IndexedEvent(idx=idx, origin=None if origin is None else NodeId(origin), event=event)
        for idx, (event, origin) in enumerate(zip(events, origins, strict=True))
    ]


@st.composite
def event_streams(draw: st.DrawFn) -> list[IndexedEvent]:
    """Streams of 35 to 80 events of any kind over a small pool of nodes, so events hit each other's keys.

    With the ``ci`` profile (300 examples) that is more than 10,000 generated events per run.
    """
    events = draw(st.lists(strategies.events(), min_size=35, max_size=80))
    origins = draw(st.lists(st.none() | strategies.node_ids(), min_size=len(events), max_size=len(events)))
    return _stream(events, origins)


@pytest.mark.slow
@given(event_streams())
def test_generated_streams_give_equal_states_after_every_event(events: list[IndexedEvent]) -> None:
    fold_both(events)


@pytest.mark.slow
@given(event_streams(), st.data())
def test_wrong_indices_raise_the_same_error_and_change_nothing(events: list[IndexedEvent], data: st.DataObject) -> None:
    rust, ref = fold_both(events)
    rust_json = rust.model_dump_json()
    wrong = data.draw(
        st.sampled_from([0, len(events) - 1, len(events) + 1, len(events) + 100]).filter(lambda i: i != len(events))
    )
    event = events[-1].model_copy(update={"idx": wrong})
    with pytest.raises(EventIndexError) as from_ref:
        reference.apply(ref, event)
    with pytest.raises(EventIndexError) as from_rust:
        clusterstate.apply(rust, event)
    assert (from_rust.value.expected, from_rust.value.got) == (from_ref.value.expected, from_ref.value.got)
    assert str(from_rust.value) == str(from_ref.value)
    assert rust.model_dump_json() == rust_json


@given(strategies.states())
def test_pydantic_states_convert_both_ways(state: State) -> None:
    rust = CoreState.from_pydantic(state)
    assert rust == state
    assert state == rust
    assert rust.to_pydantic() == state
    assert rust.model_dump_json() == state.model_dump_json()
    assert rust.model_dump_json(by_alias=True) == state.model_dump_json(by_alias=True)
    assert CoreState.from_json(state.model_dump_json(by_alias=True)) == rust


@given(strategies.states(), strategies.events(), st.none() | strategies.node_ids())
def test_apply_on_any_state_matches_the_reference(state: State, event: Any, origin: NodeId | None) -> None:
    assume(state.last_event_applied_idx < MAX_INDEX)  # a State at the last index takes no further event
    indexed = IndexedEvent(idx=state.last_event_applied_idx + 1, origin=origin, event=event)
    assert_same(clusterstate.apply(state, indexed), reference.apply(state, indexed), "after one event")


# --- bad input: typed errors, nothing lost ---

GOOD = b'{"idx":0,"origin":"n","event":{"TestEvent":{"event_id":"e"}}}'
BAD_BYTES = {
    "malformed JSON": b'{"idx":0,',
    "not an object": b"[1, 2]",
    "unknown event tag": b'{"idx":0,"event":{"NoSuchEvent":{"event_id":"e"}}}',
    "unknown info tag": b'{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n","info":{"Nope":{}}}}}',
    "string for an int": b'{"idx":"0","event":{"TestEvent":{"event_id":"e"}}}',
    "negative idx": b'{"idx":-1,"event":{"TestEvent":{"event_id":"e"}}}',
    "int for a str": b'{"idx":0,"event":{"TaskDeleted":{"event_id":"e","task_id":7}}}',
    "missing field": b'{"idx":0,"event":{"TaskDeleted":{"event_id":"e"}}}',
    "extra field": b'{"idx":0,"event":{"TestEvent":{"event_id":"e","x":1}}}',
    "untagged event": b'{"idx":0,"event":{"event_id":"e","node_id":"n"}}',
    "bad multiaddr": (
        b'{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
        b'"edge":{"sink_multiaddr":{"address":"/ip4/1.2.3.4"}}}}}}'
    ),
    "not UTF-8": b'{"idx":0,"event":{"TestEvent":{"event_id":"\xff"}}}',
}


@pytest.mark.parametrize("raw", BAD_BYTES.values(), ids=BAD_BYTES.keys())
def test_bad_bytes_raise_decode_error_like_the_reference_and_keep_the_state(raw: bytes) -> None:
    state = clusterstate.apply(CoreState(), GOOD)
    before = state.model_dump_json()
    with pytest.raises(DecodeError):
        clusterstate.decode_indexed_event(raw)
    with pytest.raises(DecodeError) as caught:
        clusterstate.apply(state, raw.replace(b'"idx":0', b'"idx":1'))
    assert isinstance(caught.value, ClusterStateError)
    assert isinstance(caught.value, ValueError)
    assert state.model_dump_json() == before


def test_a_bad_event_in_a_batch_applies_nothing_and_names_its_position() -> None:
    events = generate_trace(nodes=2, duration_s=5.0, seed=1)
    batch: list[Any] = [*events[:3], b"{not json", *events[3:]]
    with pytest.raises(DecodeError, match="event 3 of the batch"):
        clusterstate.apply_many(CoreState(), batch)
    gapped = [events[0], events[2]]
    with pytest.raises(EventIndexError) as caught:
        clusterstate.apply_many(CoreState(), gapped)
    assert (caught.value.expected, caught.value.got) == (1, 2)


def test_the_last_index_is_the_same_in_both_reducers() -> None:
    full = State(last_event_applied_idx=MAX_INDEX)
    event = IndexedEvent.model_validate({"idx": MAX_INDEX, "event": {"TestEvent": {"event_id": "e"}}})
    for reducer in (reference.apply, clusterstate.apply):
        with pytest.raises(EventIndexError) as caught:
            reducer(full, event)
        assert (caught.value.expected, caught.value.got) == (MAX_INDEX + 1, MAX_INDEX)
    too_big = f'{{"idx":{MAX_INDEX + 1},"event":{{"TestEvent":{{"event_id":"e"}}}}}}'.encode()
    with pytest.raises(DecodeError):
        clusterstate.decode_indexed_event(too_big)
    with pytest.raises(DecodeError):
        clusterstate.apply(CoreState(), too_big)


def test_a_state_argument_that_is_not_a_state_is_a_typed_error() -> None:
    with pytest.raises(DecodeError, match=r"expected a CoreState or a pydantic State, got object"):
        clusterstate.apply(object(), GOOD)  # type: ignore[arg-type]


# --- the Rust State reads like the pydantic one ---


def test_rust_state_fields_are_typed_like_the_pydantic_state() -> None:
    events = generate_trace(nodes=4, duration_s=60.0, seed=2)
    rust, ref = clusterstate.apply_many(CoreState(), events), reference.fold(events)
    for name in State.model_fields:
        assert getattr(rust, name) == getattr(ref, name), name
    node = next(iter(ref.node_memory))
    assert type(rust.node_memory[node]) is type(ref.node_memory[node])
    assert rust.model_dump() == ref.model_dump(mode="json")
    assert rust.model_dump(by_alias=True) == ref.model_dump(mode="json", by_alias=True)
    assert sorted(rust.known_nodes()) == sorted(ref.known_nodes())


def test_old_states_stay_valid_after_apply() -> None:
    events = generate_trace(nodes=3, duration_s=30.0, seed=4)
    states = [CoreState()]
    for event in events:
        states.append(clusterstate.apply(states[-1], event))
    for count in (0, 1, len(events) // 2, len(events)):
        assert states[count] == reference.fold(events[:count])


def test_rust_state_is_not_hashable_and_compares_unequal_to_other_things() -> None:
    state = CoreState()
    assert state == State()
    assert state != CoreState.from_json(clusterstate.apply(state, GOOD).model_dump_json())
    assert state != {"last_event_applied_idx": -1}
    with pytest.raises(TypeError):
        hash(state)


def test_rust_state_calls_itself_core_state() -> None:
    # Not "State": that is the pydantic clusterstate.State, which a reader must not confuse with it.
    assert (CoreState.__name__, CoreState.__qualname__, CoreState.__module__) == (
        "CoreState",
        "CoreState",
        "clusterstate._core",
    )
    empty = "CoreState(last_event_applied_idx=-1, nodes=0, edges=0, instances=0, runners=0, tasks=0)"
    assert repr(CoreState()) == empty
    assert repr(clusterstate.apply(CoreState(), GOOD)).startswith("CoreState(last_event_applied_idx=0, ")
    # It has no pickle or copy protocol; the refusal names it.
    for refuse in (pickle.dumps, copy.copy, copy.deepcopy):
        with pytest.raises(TypeError, match=r"cannot pickle 'clusterstate\._core\.CoreState' object"):
            refuse(CoreState())


def test_concurrent_batches_from_threads_give_equal_states() -> None:
    # apply_many releases the GIL for long batches: threads really overlap and share nothing mutable.
    events = generate_trace(nodes=4, duration_s=60.0, seed=6)
    expected = reference.fold(events)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: clusterstate.apply_many(CoreState(), events), range(8)))
    assert all(result == expected for result in results)
