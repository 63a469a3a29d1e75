"""The runtime's small messages and frames: one function to encode and one to decode each (pure).

- A **frame** (global events, a catch-up page, a batch of envelopes) is newline-joined compact JSON: compact JSON
  never holds a raw newline, so :func:`split_frame` recovers the items.
- An **acknowledgement** on ``s/{S}/ack/{node}``: ``{"upto": U, "acks": [[producer, origin_idx], ...],
  "missing": [[producer, missing, held], ...]}``, where `U` is the master's next index when it was sent.
- A **heartbeat** on ``s/{S}/heartbeat``: ``{"next": N, "commit": C, "lineage": [[term, master, start], ...]}``:
  the master's next index, its commit index (null without a quorum) and the lineage of its log, which a follower
  checks its own replica against before it takes the session's frames.
- A **progress report** on ``s/{S}/progress/{node}``: ``{"node": n, "next": N}``, a replica's next index, from
  which the master computes the commit index.
- A **page request** (the parameters of an ``s/{S}/events`` query): ``since`` and ``limit``, decimal integers.
- A **page error** (an error reply to it): ``{"error": "snapshot_required" | "index_ahead" | "bad_request"}`` with
  ``"index"``: the log's first retained index, the master's next index, or absent.

Every index and sequence number is an integer from 0 to 2**63 - 1.

Decoding anything else raises :class:`~clusterstate.errors.DecodeError` naming the message kind: a step counts and
drops it, a peer's garbage never raises out of a step.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast

from clusterstate.errors import DecodeError

from .errors import InvalidLineageError, InvalidNameError
from .keys import Session, validate_name
from .lineage import Epoch, validate

__all__ = [
    "AckMessage",
    "Gap",
    "Heartbeat",
    "PageError",
    "Pair",
    "Progress",
    "core_session",
    "decode_ack",
    "decode_heartbeat",
    "decode_page_error",
    "decode_page_request",
    "decode_progress",
    "encode_ack",
    "encode_heartbeat",
    "encode_page_error",
    "encode_progress",
    "join_frame",
    "split_frame",
]

Pair = tuple[str, int]  # (producer, origin_idx)
Gap = tuple[str, int, int]  # (producer, missing, held)
PageErrorKind = Literal["snapshot_required", "index_ahead", "bad_request"]
_PAGE_ERRORS = ("snapshot_required", "index_ahead", "bad_request")
MAX_PAGE = 10_000  # the most events one page may ask for (MasterCore.events_since caps there too)
MAX_INDEX = 2**63 - 1  # the largest index or sequence number a message may carry (the cores take 64 bits)


def core_session(session: Session) -> tuple[str, int]:
    """The `(master_node_id, election_clock)` pair the Rust cores take for `session`."""
    return (session.master, session.term)


def join_frame(items: Iterable[bytes]) -> bytes:
    return b"\n".join(items)


def split_frame(payload: bytes) -> list[bytes]:
    """The items of a frame; none for an empty payload."""
    return payload.split(b"\n") if payload else []


@dataclass(frozen=True)
class AckMessage:
    upto: int
    acks: tuple[Pair, ...] = ()
    missing: tuple[Gap, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    next: int
    commit: int | None = None
    lineage: tuple[Epoch, ...] = ()


@dataclass(frozen=True)
class Progress:
    node: str
    next: int


@dataclass(frozen=True)
class PageError:
    error: PageErrorKind
    index: int | None = None


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _loads(what: str, payload: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as e:
        raise DecodeError(what, str(e)) from None
    if not isinstance(raw, dict):
        raise DecodeError(what, "expected a JSON object")
    return raw


def _keys(what: str, raw: dict[str, Any], required: set[str], optional: frozenset[str] = frozenset()) -> None:
    if not required <= set(raw) <= required | optional:
        raise DecodeError(what, f"expected the fields {sorted(required)} (optional: {sorted(optional)})")


def _index(what: str, field: str, value: object) -> int:
    if type(value) is not int or not 0 <= value <= MAX_INDEX:
        raise DecodeError(what, f"{field} must be an integer from 0 to 2**63 - 1")
    return value


def _tuple(what: str, field: str, value: object, size: int) -> tuple[Any, ...]:
    if not isinstance(value, list) or len(value) != size or type(value[0]) is not str:
        raise DecodeError(what, f"each item of {field} must be [producer, then {size - 1} non-negative integers]")
    return (value[0], *(_index(what, field, v) for v in value[1:]))


def encode_ack(message: AckMessage) -> bytes:
    return _dumps({"upto": message.upto, "acks": message.acks, "missing": message.missing})


def decode_ack(payload: bytes) -> AckMessage:
    what = "acknowledgement"
    raw = _loads(what, payload)
    _keys(what, raw, {"upto", "acks", "missing"})
    acks, missing = raw["acks"], raw["missing"]
    if not isinstance(acks, list) or not isinstance(missing, list):
        raise DecodeError(what, "acks and missing must be lists")
    return AckMessage(
        _index(what, "upto", raw["upto"]),
        tuple(cast("Pair", _tuple(what, "acks", a, 2)) for a in acks),
        tuple(cast("Gap", _tuple(what, "missing", m, 3)) for m in missing),
    )


def encode_heartbeat(message: Heartbeat) -> bytes:
    lineage = [[e.session.term, e.session.master, e.start] for e in message.lineage]
    return _dumps({"next": message.next, "commit": message.commit, "lineage": lineage})


def decode_heartbeat(payload: bytes) -> Heartbeat:
    what = "heartbeat"
    raw = _loads(what, payload)
    _keys(what, raw, {"next", "commit", "lineage"})
    commit = raw["commit"]
    epochs = raw["lineage"]
    if not isinstance(epochs, list):
        raise DecodeError(what, "lineage must be a list")
    lineage = []
    for epoch in epochs:
        if not isinstance(epoch, list) or len(epoch) != 3 or type(epoch[1]) is not str:
            raise DecodeError(what, "each lineage epoch must be [term, master, start]")
        try:
            session = Session(_index(what, "lineage", epoch[0]), validate_name("node id", epoch[1]))
        except InvalidNameError as e:
            raise DecodeError(what, str(e)) from None
        lineage.append(Epoch(session, _index(what, "lineage", epoch[2])))
    try:
        checked = validate(lineage)
    except InvalidLineageError as e:
        raise DecodeError(what, str(e)) from None
    return Heartbeat(
        _index(what, "next", raw["next"]), None if commit is None else _index(what, "commit", commit), checked
    )


def encode_progress(message: Progress) -> bytes:
    return _dumps({"node": message.node, "next": message.next})


def decode_progress(payload: bytes) -> Progress:
    what = "progress report"
    raw = _loads(what, payload)
    _keys(what, raw, {"node", "next"})
    if type(raw["node"]) is not str:
        raise DecodeError(what, "node must be a node id")
    try:
        node = validate_name("node id", raw["node"])
    except InvalidNameError as e:
        raise DecodeError(what, str(e)) from None
    return Progress(node, _index(what, "next", raw["next"]))


def encode_page_error(message: PageError) -> bytes:
    raw: dict[str, object] = {"error": message.error}
    if message.index is not None:
        raw["index"] = message.index
    return _dumps(raw)


def decode_page_error(payload: bytes) -> PageError:
    what = "page error"
    raw = _loads(what, payload)
    _keys(what, raw, {"error"}, frozenset({"index"}))
    if raw["error"] not in _PAGE_ERRORS:
        raise DecodeError(what, f"error must be one of {list(_PAGE_ERRORS)}")
    index = raw.get("index")
    return PageError(raw["error"], None if index is None else _index(what, "index", index))


def decode_page_request(parameters: Mapping[str, str]) -> tuple[int, int]:
    """`(since, limit)` of a page query: `since` ≥ 0, 1 ≤ `limit` ≤ 10,000."""
    what = "page request"
    if set(parameters) != {"since", "limit"}:
        raise DecodeError(what, "expected the parameters since and limit")
    values = []
    for name in ("since", "limit"):
        text = parameters[name]
        if not (text.isascii() and text.isdigit()) or len(text) > 19 or int(text) > MAX_INDEX:
            raise DecodeError(what, f"{name} must be a decimal integer from 0 to 2**63 - 1")
        values.append(int(text))
    since, limit = values
    if not 1 <= limit <= MAX_PAGE:
        raise DecodeError(what, f"limit must be between 1 and {MAX_PAGE}")
    return since, limit
