"""One small generated trace shared by the master, node and outbox tests: 4 nodes, 60 s, one of them crashing."""

from __future__ import annotations

import functools

from clusterstate.models import IndexedEvent
from clusterstate.trace import TraceConfig, generate

__all__ = ["TRACE", "trace"]

TRACE = TraceConfig(nodes=4, duration_s=60.0, seed=3, silent_nodes=1)


@functools.cache
def trace() -> list[IndexedEvent]:
    """The events of :data:`TRACE`, indexed 0, 1, 2, ... (generated once per process; do not mutate)."""
    events = generate(TRACE)
    assert [event.idx for event in events] == list(range(len(events)))
    return events
