"""The pure-Python reference reducer on generated cluster traces: the baseline the Rust reducer beats.

Scenarios, each at every size of ``benchdata.bench_nodes`` (4, 16, 64, 256, 1024 nodes when timed, 4 and 16 in a
smoke run; a sparse LAN mesh from 256 nodes on, see ``benchdata``), from the State after ``WARMUP_S`` simulated
seconds:

- ``apply-heartbeat``: one ``NodeGatheredInfo`` sample (MacmonMetrics or MemoryUsage), the
  event a cluster applies most (about one per node per second);
- ``fold-slice``: the next ``SLICE`` events of the trace, whatever they are (heartbeats,
  Thunderbolt reports, tokens, tasks, ...);
- ``decode-apply``: a heartbeat arriving as JSON bytes, decoded and applied.

Groups are named by scenario so that other implementations benchmarked under the same group
(``bench_rust.py``) sit next to these in the report; ``extra_info["impl"]`` says which is which.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchdata import SLICE, BenchTrace
from clusterstate.codec import decode_indexed_event
from clusterstate.models import IndexedEvent, MacmonMetrics, MemoryUsage, NodeGatheredInfo, State
from clusterstate.reference import apply, fold

IMPL = "reference"


@pytest.mark.parametrize("kind", [MacmonMetrics, MemoryUsage], ids=lambda kind: kind.__name__)
def test_apply_heartbeat(
    benchmark: BenchmarkFixture, bench_trace: BenchTrace, kind: type[MacmonMetrics | MemoryUsage]
) -> None:
    heartbeat = bench_trace.heartbeat(kind)
    benchmark.group = f"apply-heartbeat-{kind.__name__}"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=1))
    state = benchmark(apply, bench_trace.warm, heartbeat)
    assert isinstance(heartbeat.event, NodeGatheredInfo)
    assert state.last_event_applied_idx == heartbeat.idx
    assert state.node_memory[heartbeat.event.node_id] != bench_trace.warm.node_memory[heartbeat.event.node_id]


def test_fold_slice(benchmark: BenchmarkFixture, bench_trace: BenchTrace) -> None:
    events = bench_trace.tail[:SLICE]
    benchmark.group = "fold-slice"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=len(events)))

    def setup() -> tuple[tuple[list[IndexedEvent], State], dict[str, object]]:
        # apply never mutates a State, so every round can start from the same warm one.
        return (events, bench_trace.warm), {}

    state = benchmark.pedantic(fold, setup=setup, rounds=5, iterations=1, warmup_rounds=0)  # type: ignore[no-untyped-call]
    assert state.last_event_applied_idx == events[-1].idx


def test_decode_apply(benchmark: BenchmarkFixture, bench_trace: BenchTrace) -> None:
    heartbeat = bench_trace.heartbeat(MacmonMetrics)
    raw = heartbeat.model_dump_json().encode()
    warm = bench_trace.warm
    benchmark.group = "decode-apply"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=1))
    benchmark.extra_info["bytes"] = len(raw)

    def decode_and_apply() -> State:
        return apply(warm, decode_indexed_event(raw))

    state = benchmark(decode_and_apply)
    assert state == apply(warm, heartbeat)
