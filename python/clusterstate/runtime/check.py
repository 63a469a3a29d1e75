"""Whether a :class:`~.local.LocalCluster` lost nothing: its log read back, replayed, and released events counted.

``clusterstate demo``, ``benches/cluster_figures.py`` and the multi-process tests share these checks:

- :func:`emit`: events pushed through a node's outbox over ``POST /debug/emit`` (a node started with
  ``--debug-api``); each call returns once the event was released (its producer let it go), so the ids returned
  are exactly the events that must never be lost.
- :func:`log_of`: a node's whole log over ``GET /events``, page by page.
- :func:`converge`: waits until the cluster settles and every node's ``/state`` equals the pure-Python reference
  replay of the master's log, then counts every released event in that log: a :class:`Verdict`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from clusterstate.models import IndexedEvent
from clusterstate.reference import fold

from .local import LocalCluster, LocalNode

__all__ = ["PAGE", "Verdict", "converge", "emit", "event_ids", "log_of", "replay", "verdict_of"]

PAGE = 10_000
"""Events asked for per ``GET /events`` page."""


def emit(node: LocalNode, tag: str, count: int, event: Callable[[str], bytes], within: float = 20.0) -> list[str]:
    """Push `count` events ``event(event_id)`` through `node`'s outbox; the ids released (all, or it raises).

    Raises:
        urllib.error.HTTPError: the node refused an event or did not release it within `within` seconds.
        OSError: the node did not answer.
    """
    ids = []
    for i in range(count):
        event_id = f"{tag}-{node.name}-{i}"
        node.post(f"/debug/emit?within={within:g}", event(event_id), timeout=within + 5)
        ids.append(event_id)
    return ids


def log_of(node: LocalNode) -> list[IndexedEvent]:
    """The node's whole log (the master's, when `node` is the master), read page by page."""
    events: list[IndexedEvent] = []
    while True:
        page = node.get_bytes(f"/events?since={len(events)}&limit={PAGE}")
        lines = [line for line in page.split(b"\n") if line]
        if not lines:
            return events
        events += [IndexedEvent.model_validate_json(line) for line in lines]


def event_ids(events: Iterable[IndexedEvent]) -> Counter[str]:
    """How many times each event id occurs in `events`."""
    return Counter(str(e.event.event_id) for e in events)


def replay(events: Iterable[IndexedEvent]) -> dict[str, Any]:
    """The reference fold of `events` from an empty State, as the JSON document ``GET /state`` answers."""
    dumped: dict[str, Any] = json.loads(fold(events).model_dump_json(by_alias=True))
    return dumped


@dataclass(frozen=True)
class Verdict:
    """What :func:`converge` found; :attr:`ok` when nothing was lost and every State is the replay of the log."""

    master: str | None
    """The settled master, or None when the cluster did not settle."""
    log_length: int
    contiguous: bool
    """The log's indices are 0, 1, 2, ... with no gap."""
    lost: tuple[str, ...]
    """Released events missing from the master's log."""
    duplicated: tuple[tuple[str, int], ...]
    """Released events in the log more than once, with their count."""
    differing: tuple[str, ...]
    """Nodes whose State differs from the replay of the log (every node, when the cluster did not settle)."""

    @property
    def states_equal(self) -> bool:
        return self.master is not None and not self.differing

    @property
    def ok(self) -> bool:
        return self.states_equal and self.contiguous and not self.lost and not self.duplicated


def verdict_of(
    master: str | None, log: list[IndexedEvent], released: Iterable[str], differing: Iterable[str]
) -> Verdict:
    """Count every released event in `log` (exactly once each, or it is lost or duplicated)."""
    counts = event_ids(log)
    released = list(released)
    return Verdict(
        master=master,
        log_length=len(log),
        contiguous=[e.idx for e in log] == list(range(len(log))),
        lost=tuple(event_id for event_id in released if counts[event_id] == 0),
        duplicated=tuple((event_id, counts[event_id]) for event_id in released if counts[event_id] > 1),
        differing=tuple(differing),
    )


def converge(cluster: LocalCluster, released: Iterable[str], timeout: float = 30.0) -> Verdict:
    """Wait until the cluster settles and every node's State equals the replay of the master's log (at most
    `timeout` seconds), then count every released event in that log. When the cluster does not settle, the log
    counted is that of a node saying it is master (none: an empty log), and every node counts as differing."""
    released = list(released)
    found: list[Verdict] = []

    def converged() -> bool:
        master = cluster.settled()
        if master is None:
            return False
        log = log_of(cluster.nodes[master])
        expected = replay(log)
        differing = [n.name for n in cluster.running() if json.loads(n.get_bytes("/state")) != expected]
        found[:] = [verdict_of(master, log, released, differing)]
        return not differing

    try:
        cluster.wait_for("one master, every State equal to the replay of its log", converged, timeout)
    except TimeoutError:
        if not found:
            claimant = next(iter(sorted(cluster.masters())), None)
            log = log_of(cluster.nodes[claimant]) if claimant is not None else []
            return verdict_of(None, log, released, [n.name for n in cluster.running()])
    return found[0]
