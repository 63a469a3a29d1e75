"""``StalenessTracker.cycle`` over a 10,000-node State (target: ≤ 1 ms per cycle).

The State is built once from JSON: 10,000 nodes in the topology, 9,000 of them with an event index
(1,000 are ghosts named only by topology edges, never heard from). Two such States alternate, one
where every indexed node advanced since the other, so each timed cycle walks every node, updates
9,000 entries and counts the ghosts (cycle times T apart, the global index advancing: every cycle
counts). ``steady`` is the common case of a tracker already tracking every node.
"""

from __future__ import annotations

import itertools
import json

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from clusterstate import CoreState, NodeStaleness, StalenessTracker

NODES = 10_000
GHOSTS = 1_000
T = 10.0


def _state(offset: int) -> CoreState:
    nodes = [f"12D3KooW{i:044d}" for i in range(NODES)]
    indexed = nodes[GHOSTS:]
    last_idx = NODES * 2 + offset
    document = {
        "last_event_index_by_node": {node: offset + position for position, node in enumerate(indexed)},
        "topology": {"nodes": nodes, "connections": {}},
        "last_event_applied_idx": last_idx,
    }
    return CoreState.from_json(json.dumps(document))


@pytest.fixture(scope="module")
def states() -> tuple[CoreState, CoreState]:
    return _state(0), _state(NODES)


def test_cycle_10k_nodes(benchmark: BenchmarkFixture, states: tuple[CoreState, CoreState]) -> None:
    tracker = StalenessTracker(period_s=T, threshold=1_000_000)  # counts, never decides: every cycle does the same
    tracker.cycle(states[0], now=0.0)
    turns = itertools.count(1)
    decided: list[NodeStaleness] = []

    def one_cycle() -> None:
        turn = next(turns)
        state = states[turn % 2]
        # The global index must advance for the cycle to count: pass an increasing one explicitly.
        decided.extend(tracker.cycle(state, now=turn * T, global_index=3 * NODES + turn))

    benchmark.group = "tracker-cycle"
    benchmark.extra_info.update({"nodes": NODES, "ghosts": GHOSTS})
    benchmark(one_cycle)
    assert decided == []
    assert len(tracker) == NODES
    assert tracker.last_cycle == "counted"
    status = tracker.status()
    assert status[f"12D3KooW{GHOSTS:044d}"].stale_cycles == 0
    assert status[f"12D3KooW{0:044d}"].stale_cycles == tracker.cycles - 1  # a ghost, silent since the first


def test_cycle_10k_nodes_with_decisions(benchmark: BenchmarkFixture, states: tuple[CoreState, CoreState]) -> None:
    """K = 1: the 1,000 ghosts are returned at every counting cycle (each decision a Python object)."""
    tracker = StalenessTracker(period_s=T, threshold=1)
    tracker.cycle(states[0], now=0.0)
    turns = itertools.count(1)

    def one_cycle() -> list[NodeStaleness]:
        turn = next(turns)
        return tracker.cycle(states[turn % 2], now=turn * T, global_index=3 * NODES + turn)

    benchmark.group = "tracker-cycle"
    benchmark.extra_info.update({"nodes": NODES, "ghosts": GHOSTS, "decisions": GHOSTS})
    decisions = benchmark(one_cycle)
    assert len(decisions) == GHOSTS
    assert all(decision.last_index is None for decision in decisions)
