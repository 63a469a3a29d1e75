"""Checks over a :class:`~clusterstate.runtime.local.LocalCluster` of real node processes (multi-process tests).

- :func:`emit`: events pushed through a node's outbox over ``POST /debug/emit``; each call returns once the event
  was released (its producer let it go), so the ids returned are exactly the events that must never be lost.
- :func:`log_of`: the master's whole log over ``GET /events``.
- :func:`assert_converged`: every released event is in the master's log exactly once, and every node's ``/state``
  equals the pure-Python reference fold of that log.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from clusterstate.models import IndexedEvent, State
from clusterstate.reference import apply
from clusterstate.runtime.local import LocalCluster, LocalNode
from event_bytes import info_event

__all__ = ["assert_converged", "emit", "event_ids", "log_of"]


def emit(node: LocalNode, tag: str, count: int, within: float = 20.0) -> list[str]:
    """Push `count` events about `node` through its outbox; the ids of those released (all of them, or it raises)."""
    ids = []
    for i in range(count):
        event_id = f"{tag}-{node.name}-{i}"
        node.post(f"/debug/emit?within={within}", info_event(node.name, event_id), timeout=within + 5)
        ids.append(event_id)
    return ids


def log_of(node: LocalNode) -> list[IndexedEvent]:
    """The node's whole log (the master's, when `node` is the master), read page by page."""
    events: list[IndexedEvent] = []
    while True:
        page = node.get_bytes(f"/events?since={len(events)}&limit=10000")
        lines = [line for line in page.split(b"\n") if line]
        if not lines:
            return events
        events += [IndexedEvent.model_validate_json(line) for line in lines]


def event_ids(events: Iterable[IndexedEvent]) -> Counter[str]:
    return Counter(str(e.event.event_id) for e in events)


def _fold(events: Iterable[IndexedEvent]) -> dict[str, Any]:
    state = State()
    for event in events:
        state = apply(state, event)
    dumped: dict[str, Any] = json.loads(state.model_dump_json(by_alias=True))
    return dumped


def assert_converged(cluster: LocalCluster, released: Iterable[str], timeout: float = 30.0) -> str:
    """Wait until the cluster settles and every node's State equals the replay of the master's log, then check
    that every released event is in that log exactly once; the master's name."""
    released = list(released)
    mismatch: list[str] = []

    def converged() -> tuple[str, list[IndexedEvent]] | None:
        master = cluster.settled()
        if master is None:
            return None
        log = log_of(cluster.nodes[master])
        expected = _fold(log)
        mismatch[:] = [n.name for n in cluster.running() if json.loads(n.get_bytes("/state")) != expected]
        return None if mismatch else (master, log)

    try:
        master, log = cluster.wait_for("one master, every State equal to the replay of its log", converged, timeout)
    except TimeoutError as e:
        raise AssertionError(f"{e}; statuses {cluster.statuses()}; States differing: {mismatch}") from None
    assert [e.idx for e in log] == list(range(len(log))), "the master's log has a gap"
    counts = event_ids(log)
    for event_id in released:
        assert counts[event_id] == 1, f"released event {event_id} is in the log {counts[event_id]} times"
    return master
