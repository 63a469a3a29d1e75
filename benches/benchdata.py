"""Generated traces for the benchmarks: one per cluster size, split into a warm-up and a tail.

Each size is generated and folded once per process (the 64-node warm-up is the expensive part:
the reference reducer copies the topology graph for each of the ~4,000 reachability edges).
``CLUSTERSTATE_BENCH_NODES=4,16`` restricts the sizes for a quick run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cache

from clusterstate.models import IndexedEvent, MacmonMetrics, MemoryUsage, NodeGatheredInfo, State
from clusterstate.reference import fold
from clusterstate.trace import TraceConfig, generate

__all__ = ["BENCH_NODES", "TAIL_S", "WARMUP_S", "BenchTrace", "bench_trace_for"]

BENCH_NODES = tuple(int(n) for n in os.environ.get("CLUSTERSTATE_BENCH_NODES", "4,16,64").split(","))
"""Cluster sizes every benchmark runs at."""
WARMUP_S = 60.0
"""Simulated seconds folded into the starting State: every node known, every edge built."""
TAIL_S = 120.0
"""Simulated seconds of trace after the warm-up, where the benchmarked events come from."""


@dataclass(frozen=True)
class BenchTrace:
    """A generated trace split into a warm-up, folded into ``warm``, and the events after it."""

    nodes: int
    warm: State
    warm_events: int
    tail: list[IndexedEvent]

    @property
    def edges(self) -> int:
        return len(self.warm.topology.list_connections())

    def heartbeat(self, kind: type[MacmonMetrics | MemoryUsage]) -> IndexedEvent:
        """The first ``kind`` sample after the warm-up, re-indexed to follow ``warm`` directly."""
        for event in self.tail:
            if isinstance(event.event, NodeGatheredInfo) and isinstance(event.event.info, kind):
                return event.model_copy(update={"idx": self.warm.last_event_applied_idx + 1})
        raise LookupError(f"no {kind.__name__} in the {self.nodes}-node trace")

    def extra_info(self, events: int) -> dict[str, int]:
        return {"nodes": self.nodes, "edges": self.edges, "events": events}


@cache
def bench_trace_for(nodes: int) -> BenchTrace:
    # A trace stopped earlier is a prefix of a longer one with the same seed, so the warm-up is
    # exactly the first WARMUP_S seconds of the full trace.
    config = TraceConfig(nodes=nodes, duration_s=WARMUP_S + TAIL_S, seed=0)
    events = generate(config)
    warm_count = len(generate(TraceConfig(nodes=nodes, duration_s=WARMUP_S, seed=0)))
    return BenchTrace(nodes=nodes, warm=fold(events[:warm_count]), warm_events=warm_count, tail=events[warm_count:])
