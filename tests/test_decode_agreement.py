"""The Rust decoder against the reference on hostile input: differential fuzzing of both input forms.

Valid events (``strategies.indexed_events()``) are made hostile at a random spot: a struct written
as an array, integers beyond 64 bits, ``-0``, deep nesting, duplicate keys, lone surrogates,
non-ASCII digits, wrong types, extra keys. The rule checked: the reference refuses exactly when
Rust does (both with ``DecodeError``), and what both accept they store identically (same dump, byte
for byte). Bytes go through ``clusterstate.apply``, ``apply_many``, ``NodeCore.receive`` and
``MasterCore.ingest``; pydantic objects built from the same data through ``apply`` and
``CoreState.from_pydantic``.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import clusterstate
import strategies
from clusterstate import CoreState, MasterCore, NodeCore, reference
from clusterstate.codec import decode_event, decode_indexed_event, decode_state
from clusterstate.errors import DecodeError
from clusterstate.models import IndexedEvent, State

HOSTILE_VALUES: list[Any] = [
    2**64,
    2**63,
    -(2**63) - 1,
    -(10**30),
    1.5,
    -0.0,
    "\u0668\u0660",
    None,
    True,
    [],
    {},
    {"x": 1},
    [[[[[[[[1]]]]]]]],
]
HOSTILE_TEXTS = ["-0", "18446744073709551616", "-99999999999999999999999", "1E400", '"\\ud800"', "1e5", "7" * 4301]
DEEP = 70  # beyond the opaque JSON depth limit (64)


def _paths(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            out.extend(_paths(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out.extend(_paths(item, (*path, index)))
    return out


def _replace(value: Any, path: tuple[Any, ...], new: Any) -> Any:
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        return {key: _replace(item, rest, new) if key == head else item for key, item in value.items()}
    return [_replace(item, rest, new) if index == head else item for index, item in enumerate(value)]


def _get(value: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        value = value[part]
    return value


VARIANTS = 16  # hostile inputs made from each drawn event (drawing the event costs the most)


@st.composite
def hostile(draw: st.DrawFn) -> list[bytes]:
    """A valid indexed event's JSON, changed at one random spot in each of ``VARIANTS`` ways."""
    event = draw(strategies.indexed_events())
    data = json.loads(event.model_dump_json())
    return [_variant(draw, data) for _ in range(VARIANTS)]


def _variant(draw: st.DrawFn, data: Any) -> bytes:
    path = draw(st.sampled_from(_paths(data)))
    target = _get(data, path)
    kind = draw(st.sampled_from(["array", "value", "text", "deep", "extra", "duplicate", "keep"]))
    marker = "\x00MARK\x00"
    if kind == "array" and isinstance(target, dict):
        data = _replace(data, path, list(target.values()))
    elif kind == "value":
        data = _replace(data, path, draw(st.sampled_from(HOSTILE_VALUES)))
    elif kind == "deep":
        nested: Any = 1
        for _ in range(draw(st.integers(DEEP - 8, DEEP + 2))):
            nested = [nested]
        data = _replace(data, path, nested)
    elif kind == "extra" and isinstance(target, dict):
        data = _replace(data, path, {**target, draw(st.sampled_from(["x", "when", "port"])): marker})
    elif kind == "text":
        data = _replace(data, path, marker)
    text = json.dumps(data, ensure_ascii=False)
    if kind == "duplicate" and isinstance(target, dict) and target:
        key = next(iter(target))
        inner = json.dumps({key: target[key]}, ensure_ascii=False)[1:-1]
        text = json.dumps(_replace(data, path, {**target, marker: 0}), ensure_ascii=False)
        text = text.replace(f'"{marker}": 0', inner)
    if marker in text:
        text = text.replace(json.dumps(marker), draw(st.sampled_from(HOSTILE_TEXTS)))
    return text.encode()


def _reference(raw: bytes) -> str | None:
    """The reference's State dump after the event, or None if it refuses."""
    try:
        event = decode_indexed_event(raw)
    except DecodeError:
        return None
    return _fold(event)


def _fold(event: IndexedEvent) -> str:
    state = State(last_event_applied_idx=event.idx - 1)
    return reference.apply(state, event).model_dump_json()


def _rust(raw: bytes, idx: int | None) -> str | None:
    start = CoreState.from_json(State(last_event_applied_idx=(idx or 0) - 1).model_dump_json())
    try:
        one = clusterstate.apply(start, raw)
    except DecodeError:
        with pytest.raises(DecodeError):
            clusterstate.apply_many(start, [raw])
        return None
    assert clusterstate.apply_many(start, [raw]).model_dump_json() == one.model_dump_json()
    return one.model_dump_json()


def _node_refuses(raw: bytes, idx: int | None) -> bool:
    node = NodeCore(CoreState.from_json(State(last_event_applied_idx=(idx or 0) - 1).model_dump_json()))
    result = node.receive([raw])
    return bool(result.rejected)


def _master_refuses(raw: bytes) -> tuple[bool, bool]:
    """(the master refuses the envelope as malformed, the reference refuses its event)."""
    try:
        data = json.loads(raw)
    except ValueError:
        return True, True
    if not isinstance(data, dict) or not isinstance(data.get("event"), (dict, list)):
        return True, True
    event = json.dumps(data["event"], ensure_ascii=False).encode()
    if b"\\ud800" in raw or b'"idx":' in event:
        return True, True  # json round trip loses the surrogate / duplicate; not an event-only case
    try:
        decode_event(event)
        ref_refuses = False
    except DecodeError:
        ref_refuses = True
    envelope = (
        b'{"origin":"p","origin_idx":0,"session":{"master_node_id":"m","election_clock":1},"event":'
        + event
        + b',"node_id":"n"}'
    )
    result = MasterCore(("m", 1)).ingest([envelope])
    return any(reason in ("malformed", "unknown_tag") for _, reason in result.rejected), ref_refuses


@given(batch=hostile())
def test_bytes_agree(batch: list[bytes]) -> None:
    for raw in batch:
        try:
            idx: int | None = json.loads(raw).get("idx")
            idx = idx if isinstance(idx, int) and 0 <= idx < 2**63 else None
        except (ValueError, AttributeError):
            idx = None
        ref = _reference(raw)
        rust = _rust(raw, idx)
        assert rust == ref, raw
        assert _node_refuses(raw, idx) == (ref is None), raw
        master, master_ref = _master_refuses(raw)
        assert master == master_ref, raw


@given(batch=hostile())
def test_objects_agree(batch: list[bytes]) -> None:
    """What the reference accepts as a pydantic object, Rust takes from the object and stores alike."""
    for raw in batch:
        try:
            event = decode_indexed_event(raw)
        except DecodeError:
            continue
        expected = _fold(event)
        start = State(last_event_applied_idx=event.idx - 1)
        assert clusterstate.apply(start, event).model_dump_json() == expected
        after = reference.apply(start, event)
        assert CoreState.from_pydantic(after).model_dump_json() == expected
        assert CoreState.from_json(expected).model_dump_json() == expected


_TASK = (
    '{"idx":0,"origin":"n1","event":{"TaskCreated":{"event_id":"e","task_id":"t","task":{"TextGeneration":'
    '{"task_id":"t","instance_id":"i","command_id":"c","task_params":%s}}}}}'
)
_MEMORY = '{"ram_total":%s,"ram_available":{"in_bytes":1},"swap_total":{"in_bytes":1},"swap_available":{"in_bytes":1}}'
_INFO = '{"idx":0,"event":{"NodeGatheredInfo":{"event_id":"e","node_id":"n",%s"info":%s}}}'
_EDGE = (
    '{"idx":0,"event":{"TopologyEdgeCreated":{"event_id":"e","conn":{"source":"a","sink":"b",'
    '"edge":{"sink_multiaddr":{"address":"/ip4/1.2.3.4/tcp/%s"}}}}}}'
)
_DISCONNECTED = (
    '{"idx":0,"event":{"NodeDisconnected":{"event_id":"e","node_id":"n","last_index":%s,"stale_cycles":%s}}}'
)

REFUSED = {
    "struct as array": '[2,"n1",{"TestEvent":["e"]}]',
    "struct variant as array": '{"idx":0,"event":{"NodeTimedOut":[]}}',
    "nested struct as array": _INFO % ("", _MEMORY % "[5]"),
    "payload deeper than 64": _TASK % ('{"x":' + "[" * 64 + "]" * 64 + "}"),
    "payload float beyond float64": _TASK % '{"a":1E400}',
    "payload int of 4301 digits": _TASK % ('{"a":' + "9" * 4301 + "}"),
    "duplicate payload key": _TASK % '{"a":1,"a":2}',
    "duplicate field": '{"idx":0,"idx":0,"event":{"TestEvent":{"event_id":"e"}}}',
    "index beyond i64": _DISCONNECTED % (2**63, 1),
    "u64 beyond 64 bits": _DISCONNECTED % (1, 2**64),
    "i64 beyond 64 bits": _INFO % ("", _MEMORY % '{"in_bytes":9223372036854775808}'),
    "lone surrogate in an ignored field": _INFO % ('"when":"\\ud800",', '{"NodeConfig":{}}'),
    "ignored field deeper than 64": _INFO % ('"when":' + "[" * 65 + "]" * 65 + ",", '{"NodeConfig":{}}'),
    "non-ASCII port digits": _EDGE % "\u0668\u0660",
}
KEPT = {
    "payload ints of any size, -0 as 0": (
        _TASK % '{"a":18446744073709551616,"b":-99999999999999999999999,"c":-0,"d":-0.0,"e":1E5}',
        '{"a":18446744073709551616,"b":-99999999999999999999999,"c":0,"d":-0.0,"e":100000.0}',
    ),
    "payload at depth 64": (_TASK % ('{"x":' + "[" * 63 + "]" * 63 + "}"), '{"x":' + "[" * 63 + "]" * 63 + "}"),
}


@pytest.mark.parametrize("raw", REFUSED.values(), ids=REFUSED.keys())
def test_both_refuse(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_indexed_event(raw)
    with pytest.raises(DecodeError):
        clusterstate.apply(CoreState(), raw.encode())
    assert NodeCore().receive([raw.encode()]).rejected == [(0, "malformed")]


@pytest.mark.parametrize(("raw", "params"), KEPT.values(), ids=KEPT.keys())
def test_both_keep(raw: str, params: str) -> None:
    ref = reference.apply(State(), decode_indexed_event(raw))
    assert params in ref.model_dump_json()
    for event in (raw.encode(), decode_indexed_event(raw)):
        rust = clusterstate.apply(CoreState(), event)
        assert rust.model_dump_json() == ref.model_dump_json()
        assert rust == ref
        assert CoreState.from_json(rust.model_dump_json()).model_dump_json() == ref.model_dump_json()


@pytest.mark.parametrize(
    "raw",
    [
        '{"last_event_applied_idx":3,"last_event_index_by_node":{"a":1,"a":2}}',
        '{"last_event_applied_idx":3,"last_event_applied_idx":3}',
        '{"topology":[[],{}]}',
    ],
)
def test_states_both_refuse(raw: str) -> None:
    with pytest.raises(DecodeError):
        decode_state(raw)
    with pytest.raises(DecodeError):
        CoreState.from_json(raw)
