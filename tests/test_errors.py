"""How every core error reaches Python: the ``clusterstate.errors`` class of its kind, with the builtin a caller
would catch (one case per core error kind, as ``rust/py/src/errors.rs`` maps them)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from clusterstate import CoreState, EventLog, MasterCore, NodeCore, ProducerOutbox, StalenessTracker, apply
from clusterstate.errors import (
    ClusterStateError,
    DecodeError,
    EventIndexError,
    EventRefusedError,
    IndexAheadError,
    LogClosedError,
    LogIndexError,
    LogLockedError,
    LogNotFoundError,
    LogReadOnlyError,
    LogUsageError,
    NoLogError,
    OptionsError,
    OutboxFullError,
)
from event_bytes import info_event, noop_event

SESSION = ("master", 1)


def indexed(idx: int) -> bytes:
    return json.dumps({"idx": idx, "origin": None, "event": json.loads(noop_event(f"e{idx}"))}).encode()


def log_at(tmp_path: Path, **options: bool) -> EventLog:
    return EventLog(tmp_path / "log", create=True, durability="none", **options)


def locked(tmp_path: Path) -> None:
    with log_at(tmp_path):
        log_at(tmp_path)


def closed(tmp_path: Path) -> None:
    log = log_at(tmp_path)
    log.close()
    log.append(indexed(0))


def read_only(tmp_path: Path) -> None:
    log_at(tmp_path).close()
    with EventLog(tmp_path / "log", read_only=True) as log:
        log.append(indexed(0))


def full_outbox(_: Path) -> None:
    box = ProducerOutbox("p", "a", SESSION, capacity=1)
    box.push(noop_event("e0"), now=0.0)
    box.push(noop_event("e1"), now=0.0)


CASES: dict[str, tuple[Callable[[Path], object], type[ClusterStateError], type[Exception]]] = {
    "decode": (lambda _: apply(CoreState(), b"{"), DecodeError, ValueError),
    "apply": (lambda _: apply(CoreState(), indexed(1)), EventIndexError, ValueError),
    "log not found": (lambda tmp: EventLog(tmp / "missing"), LogNotFoundError, FileNotFoundError),
    "log locked": (locked, LogLockedError, OSError),
    "log index": (lambda tmp: log_at(tmp).append(indexed(3)), LogIndexError, ValueError),
    "log decode": (lambda tmp: log_at(tmp).append(b"{"), DecodeError, ValueError),
    "log usage": (lambda tmp: EventLog(tmp, durability="sometimes"), LogUsageError, ValueError),  # type: ignore[arg-type]
    "log closed": (closed, LogClosedError, ValueError),
    "log read-only": (read_only, LogReadOnlyError, ValueError),
    "master without log": (lambda _: MasterCore(SESSION).events_since(0), NoLogError, ValueError),
    "master ahead of log": (
        lambda tmp: MasterCore(SESSION, log=log_at(tmp)).events_since(5),
        IndexAheadError,
        ValueError,
    ),
    "master tracker options": (lambda _: MasterCore(SESSION, threshold=0), OptionsError, ValueError),
    "master capacity": (lambda _: MasterCore(SESSION, capacity=0), OptionsError, ValueError),
    "node capacity": (lambda _: NodeCore(capacity=0), OptionsError, ValueError),
    "tracker options": (lambda _: StalenessTracker(period_s=0.0), OptionsError, ValueError),
    "outbox options": (lambda _: ProducerOutbox("p", "a", SESSION, resend_after_s=-1.0), OptionsError, ValueError),
    "outbox full": (full_outbox, OutboxFullError, BlockingIOError),
    "outbox decode": (lambda _: ProducerOutbox("p", "a", SESSION).push(b"{", now=0.0), DecodeError, ValueError),
    "outbox spoofed": (
        lambda _: ProducerOutbox("p", "a", SESSION).push(info_event("b"), now=0.0),
        EventRefusedError,
        ValueError,
    ),
}


@pytest.mark.parametrize("case", CASES)
def test_each_core_error_kind_raises_its_typed_error_and_builtin(tmp_path: Path, case: str) -> None:
    trigger, error, builtin = CASES[case]
    with pytest.raises(error) as raised:
        trigger(tmp_path)
    assert type(raised.value) is error
    assert isinstance(raised.value, ClusterStateError)
    assert isinstance(raised.value, builtin)


def test_a_full_outbox_is_a_would_block_error_with_its_capacity() -> None:
    with pytest.raises(BlockingIOError) as raised:
        full_outbox(Path())
    assert isinstance(raised.value, OutboxFullError)
    assert raised.value.capacity == 1
    assert raised.value.errno == 11  # EAGAIN
    assert "producer outbox is full (1 unacknowledged envelopes)" in str(raised.value)
