"""Generated traces for the benchmarks: one per cluster size, split into a warm-up and a tail.

Each size is generated and folded once per process (with the reference reducer, as a user of
``clusterstate.reference`` would get it; the expensive part is the warm-up of the large sizes),
with the cyclic GC paused, and then frozen (``gc.freeze``) so that later collections skip it.
Clusters of up to 64 nodes have exo's usual full LAN mesh (every node reaches every other one:
~4,000 socket edges at 64 nodes). From :data:`SPARSE_FROM` nodes on, the LAN mesh is sparse:
``lan_reachability = min(1.0, LAN_PEERS / nodes)``, so each node reaches about ``LAN_PEERS``
peers (a full mesh of 1024 nodes would be a million edges, which no real LAN has).
Timed runs use every size of :data:`FULL_NODES`, smoke runs (``--benchmark-disable``) those of
:data:`SMOKE_NODES`; ``CLUSTERSTATE_BENCH_NODES=4,64,1024`` picks the sizes of either.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache, cached_property

from clusterstate import CoreState
from clusterstate.models import IndexedEvent, MacmonMetrics, MemoryUsage, NodeGatheredInfo, State
from clusterstate.reference import fold
from clusterstate.trace import TraceConfig, iter_trace

__all__ = [
    "FULL_NODES",
    "LAN_PEERS",
    "LONG_FOLD",
    "SLICE",
    "SMOKE_NODES",
    "SPARSE_FROM",
    "TAIL_S",
    "WARMUP_S",
    "BenchTrace",
    "bench_nodes",
    "bench_trace_for",
    "lan_reachability",
]

FULL_NODES = (4, 16, 64, 256, 1024)
"""Cluster sizes every benchmark is timed at."""
SMOKE_NODES = (4, 16)
"""Cluster sizes of a smoke run: each benchmark runs once, untimed, to check its output."""
WARMUP_S = 60.0
"""Simulated seconds folded into the starting State: every node known, every edge built."""
TAIL_S = 120.0
"""Simulated seconds of trace after the warm-up, where the benchmarked events come from."""
SPARSE_FROM = 256
"""Clusters of at least this many nodes get a sparse LAN mesh (see :func:`lan_reachability`)."""
LAN_PEERS = 16
"""Peers each node of a sparse LAN mesh reaches, on average."""
SLICE = 500
"""Events folded per round of ``fold-slice``."""
LONG_FOLD = 10_000
"""Events (at most) folded per round of ``fold-tail`` and ``fold-heartbeats``: the Rust per-event cost."""


def bench_nodes(*, smoke: bool) -> tuple[int, ...]:
    """The sizes of this run: ``$CLUSTERSTATE_BENCH_NODES`` (comma-separated) if set, else a timed or smoke run's."""
    chosen = os.environ.get("CLUSTERSTATE_BENCH_NODES")
    if chosen:
        return tuple(int(nodes) for nodes in chosen.split(","))
    return SMOKE_NODES if smoke else FULL_NODES


def lan_reachability(nodes: int) -> float:
    """The trace's ``lan_reachability``: a full mesh below :data:`SPARSE_FROM` nodes, ~:data:`LAN_PEERS` peers above."""
    return 1.0 if nodes < SPARSE_FROM else min(1.0, LAN_PEERS / nodes)


@dataclass(frozen=True)
class BenchTrace:
    """A generated trace split into a warm-up, folded into ``warm``, and the events after it."""

    nodes: int
    warm: State
    core_warm: CoreState
    """``warm`` converted once into the Rust State."""
    warm_events: int
    tail: list[IndexedEvent]

    @cached_property
    def edges(self) -> int:
        return len(self.warm.topology.list_connections())

    def heartbeat(self, kind: type[MacmonMetrics | MemoryUsage]) -> IndexedEvent:
        """The first ``kind`` sample after the warm-up, re-indexed to follow ``warm`` directly."""
        for event in self.tail:
            if isinstance(event.event, NodeGatheredInfo) and isinstance(event.event.info, kind):
                return event.model_copy(update={"idx": self.warm.last_event_applied_idx + 1})
        raise LookupError(f"no {kind.__name__} in the {self.nodes}-node trace")

    def heartbeats(self, limit: int) -> list[IndexedEvent]:
        """Up to ``limit`` heartbeat samples (MacmonMetrics, MemoryUsage) of the tail, in order,
        re-indexed to follow ``warm`` directly: the same kind of stream at every cluster size."""
        samples = [
            event
            for event in self.tail
            if isinstance(event.event, NodeGatheredInfo) and isinstance(event.event.info, MacmonMetrics | MemoryUsage)
        ][:limit]
        first = self.warm.last_event_applied_idx + 1
        return [event.model_copy(update={"idx": first + offset}) for offset, event in enumerate(samples)]

    def extra_info(self, impl: str, events: int) -> dict[str, object]:
        return {
            "impl": impl,
            "nodes": self.nodes,
            "edges": self.edges,
            "events": events,
            "lan_reachability": lan_reachability(self.nodes),
        }


@cache
def bench_trace_for(nodes: int) -> BenchTrace:
    # A trace stopped earlier is a prefix of a longer one with the same config, so the warm-up is
    # exactly the first WARMUP_S seconds of the full trace.
    config = TraceConfig(nodes=nodes, duration_s=WARMUP_S + TAIL_S, seed=0, lan_reachability=lan_reachability(nodes))
    events: list[IndexedEvent] = []
    warm_count: int | None = None

    def mark_warmup(now: float) -> None:
        # Called before the first action at or past each whole simulated second: every event of the warm-up is in.
        nonlocal warm_count
        if warm_count is None and now >= WARMUP_S:
            warm_count = len(events)

    with _collector_paused():
        for event in iter_trace(config, mark_warmup):
            events.append(event)  # noqa: PERF402 - one by one: mark_warmup reads len(events) as the trace runs
        if warm_count is None:
            warm_count = len(events)
        warm = fold(events[:warm_count])
        trace = BenchTrace(
            nodes=nodes,
            warm=warm,
            core_warm=CoreState.from_pydantic(warm),
            warm_events=warm_count,
            tail=events[warm_count:],
        )
    # The traces live for the whole session: move them out of the collector's sight, or every full
    # collection (between benchmarks, in the correctness checks) walks their millions of objects.
    gc.freeze()
    return trace


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause the cyclic GC: folding a trace makes no garbage cycles, only long-lived objects."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()
