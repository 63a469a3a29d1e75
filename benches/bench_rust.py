"""The Rust reducer (``clusterstate.apply`` / ``apply_many``) on the same traces as the reference.

Same sizes (4, 16, 64, 256, 1024 nodes: exo's full LAN mesh up to 64 nodes, from 256 nodes on a
sparse mesh where each node reaches ~16 peers, ``lan_reachability = min(1.0, 16 / nodes)``; see
``benchdata``), same warm State (converted once into a ``CoreState``, outside the timing) and the
same groups as ``bench_reference.py``, so the two implementations sit side by side in the report;
``extra_info["impl"]`` is ``"rust"`` here, ``"reference"`` there.

- ``apply-heartbeat-*``: one ``clusterstate.apply(core_state, indexed_event)`` from Python, the
  event a pydantic ``IndexedEvent`` (converted on every call, as a drop-in caller would pass it);
- ``fold-slice``: ``clusterstate.apply_many`` of the same ``SLICE`` events the reference folds;
- ``decode-apply``: ``clusterstate.apply(core_state, raw_bytes)``, the JSON decoded in Rust;
- ``fold-tail`` (Rust only): ``apply_many`` of up to ``LONG_FOLD`` events of the tail, the
  per-event cost of a long fold of the trace as it is (its mix of events differs with the size:
  at 4 nodes a larger share is the instance's tasks and tokens);
- ``fold-heartbeats`` (Rust only): ``apply_many`` of up to ``LONG_FOLD`` heartbeat samples of the
  tail (re-indexed to follow each other), the same kind of event at every size: the per-event cost
  that should stay flat from 4 to 1024 nodes (target: 1024-node cost <= 2x the 4-node cost); as
  pydantic ``IndexedEvent``s (group ``fold-heartbeats``) and as JSON bytes decoded in Rust
  (``fold-heartbeats-bytes``), since converting pydantic objects is part of the first.

Every bench checks its result against the reference reducer on the same input (a ``CoreState``
compares equal to a pydantic State of the same content).
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import clusterstate
from benchdata import LONG_FOLD, SLICE, BenchTrace
from clusterstate import CoreState, reference
from clusterstate.models import IndexedEvent, MacmonMetrics, MemoryUsage

IMPL = "rust"


@pytest.mark.parametrize("kind", [MacmonMetrics, MemoryUsage], ids=lambda kind: kind.__name__)
def test_apply_heartbeat(
    benchmark: BenchmarkFixture, bench_trace: BenchTrace, kind: type[MacmonMetrics | MemoryUsage]
) -> None:
    heartbeat = bench_trace.heartbeat(kind)
    core = bench_trace.core_warm
    benchmark.group = f"apply-heartbeat-{kind.__name__}"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=1))
    state = benchmark(clusterstate.apply, core, heartbeat)
    assert state == reference.apply(bench_trace.warm, heartbeat)
    assert core == bench_trace.warm  # the input State is untouched


def test_fold_slice(benchmark: BenchmarkFixture, bench_trace: BenchTrace) -> None:
    events = bench_trace.tail[:SLICE]
    core = bench_trace.core_warm
    benchmark.group = "fold-slice"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=len(events)))
    state = benchmark(clusterstate.apply_many, core, events)
    assert state == reference.fold(events, bench_trace.warm)


def test_decode_apply(benchmark: BenchmarkFixture, bench_trace: BenchTrace) -> None:
    heartbeat = bench_trace.heartbeat(MacmonMetrics)
    raw = heartbeat.model_dump_json().encode()
    core = bench_trace.core_warm
    benchmark.group = "decode-apply"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=1))
    benchmark.extra_info["bytes"] = len(raw)
    state = benchmark(clusterstate.apply, core, raw)
    assert state == reference.apply(bench_trace.warm, heartbeat)


def test_fold_tail(benchmark: BenchmarkFixture, bench_trace: BenchTrace) -> None:
    events = bench_trace.tail[:LONG_FOLD]
    core = bench_trace.core_warm
    benchmark.group = "fold-tail"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=len(events)))
    state: CoreState = benchmark.pedantic(  # type: ignore[no-untyped-call]
        clusterstate.apply_many, args=(core, events), rounds=10, iterations=1, warmup_rounds=1
    )
    assert state == reference.fold(events, bench_trace.warm)


@pytest.mark.parametrize("form", ["models", "bytes"])
def test_fold_heartbeats(benchmark: BenchmarkFixture, bench_trace: BenchTrace, form: str) -> None:
    events = bench_trace.heartbeats(LONG_FOLD)
    batch: list[IndexedEvent] | list[bytes] = (
        events if form == "models" else [event.model_dump_json().encode() for event in events]
    )
    core = bench_trace.core_warm
    benchmark.group = "fold-heartbeats" if form == "models" else "fold-heartbeats-bytes"
    benchmark.extra_info.update(bench_trace.extra_info(IMPL, events=len(events)))
    state: CoreState = benchmark.pedantic(  # type: ignore[no-untyped-call]
        clusterstate.apply_many, args=(core, batch), rounds=10, iterations=1, warmup_rounds=1
    )
    assert state == reference.fold(events, bench_trace.warm)
