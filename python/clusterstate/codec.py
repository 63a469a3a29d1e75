"""Decoding wire and log bytes into models, with typed errors.

Every decoder raises :class:`clusterstate.errors.DecodeError` (a ``ValueError``) for malformed
JSON, an unknown tag, a field of the wrong type or a duplicate key in any object (pydantic alone
would keep the last; the Rust core refuses it), and never returns a partial value. Encoding is
``model.model_dump_json()`` (snake_case, the wire and log form) or
``model_dump_json(by_alias=True)`` (camelCase, for people).
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import TypeAdapter, ValidationError

from .errors import DecodeError
from .models import Event, ForwarderEvent, IndexedEvent, State

__all__ = ["decode_event", "decode_forwarder_event", "decode_indexed_event", "decode_state", "encode_event"]

T = TypeVar("T")

_EVENT: TypeAdapter[Event] = TypeAdapter(Event)
_INDEXED: TypeAdapter[IndexedEvent] = TypeAdapter(IndexedEvent)
_FORWARDER: TypeAdapter[ForwarderEvent] = TypeAdapter(ForwarderEvent)
_STATE: TypeAdapter[State] = TypeAdapter(State)


def _decode(adapter: TypeAdapter[T], what: str, data: bytes | bytearray | memoryview | str) -> T:
    if isinstance(data, memoryview):
        data = data.tobytes()
    try:
        value = adapter.validate_json(data)
    except ValidationError as exc:
        errors: list[dict[str, Any]] = [dict(error) for error in exc.errors(include_url=False, include_input=False)]
        summary = "; ".join(f"{'.'.join(map(str, e['loc'])) or '<root>'}: {e['msg']}" for e in errors[:5])
        if len(errors) > 5:
            summary += f"; and {len(errors) - 5} more"
        raise DecodeError(what, summary, errors) from exc
    # Valid JSON by now: a second, plain parse looks for duplicate keys, which pydantic's parser merges.
    json.loads(data, object_pairs_hook=lambda pairs: _no_duplicates(what, pairs))
    return value


def _no_duplicates(what: str, pairs: list[tuple[str, Any]]) -> None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise DecodeError(what, f"duplicate key {key!r}")
        seen.add(key)


def decode_event(data: bytes | bytearray | memoryview | str) -> Event:
    """Decode one tagged event, e.g. ``{"NodeGatheredInfo": {...}}``."""
    return _decode(_EVENT, "event", data)


def decode_indexed_event(data: bytes | bytearray | memoryview | str) -> IndexedEvent:
    """Decode ``{"idx": ..., "origin": ..., "event": {...}}``."""
    return _decode(_INDEXED, "indexed event", data)


def decode_forwarder_event(data: bytes | bytearray | memoryview | str) -> ForwarderEvent:
    """Decode exo's wire envelope ``{"origin_idx", "origin", "session", "event"}``."""
    return _decode(_FORWARDER, "forwarder event", data)


def decode_state(data: bytes | bytearray | memoryview | str) -> State:
    """Decode a State as written by ``State.model_dump_json()`` (either key spelling)."""
    return _decode(_STATE, "state", data)


def encode_event(event: Event) -> bytes:
    """The wire/log form of an event: tagged, snake_case JSON."""
    return _EVENT.dump_json(event)
