"""exo's own pydantic objects into ``clusterstate.apply``, against clusterstate's models, in the same run.

``apply-exo-heartbeat``: one ``clusterstate.apply(core_state, indexed_event)`` of the same
``NodeGatheredInfo(MacmonMetrics)`` heartbeat on the warm ``CoreState`` of each size, the event
either a clusterstate ``IndexedEvent`` (``extra_info["impl"] == "clusterstate-models"``) or the
tests' exo-shaped foreign classes (``support.exo_shapes``, exo's schema with its wall-clock
``when``; ``"exo-models"``). Both are read from their fields, without JSON; the foreign class's
kind is worked out on its first call and cached. docs/exo.md reports the ratio (target: the
foreign call within 1.5x of the clusterstate one).
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

import clusterstate
from benchdata import BenchTrace
from clusterstate import reference
from clusterstate.models import MacmonMetrics
from support import exo_shapes
from support.exo_stream import exo_json


@pytest.mark.parametrize("impl", ["clusterstate-models", "exo-models"])
def test_apply_exo_heartbeat(benchmark: BenchmarkFixture, bench_trace: BenchTrace, impl: str) -> None:
    heartbeat = bench_trace.heartbeat(MacmonMetrics)
    event = (
        heartbeat if impl == "clusterstate-models" else exo_shapes.IndexedEvent.model_validate_json(exo_json(heartbeat))
    )
    benchmark.group = "apply-exo-heartbeat"
    benchmark.extra_info.update(bench_trace.extra_info(impl, events=1))
    state = benchmark(clusterstate.apply, bench_trace.core_warm, event)
    assert state == reference.apply(bench_trace.warm, heartbeat)
