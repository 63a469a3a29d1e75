"""Shared benchmark fixtures: the warmed-up trace of each cluster size (see ``benchdata``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# `--import-mode=importlib` does not put benches/ on sys.path; the helper module lives here.
_BENCHES = str(Path(__file__).resolve().parent)
if _BENCHES not in sys.path:
    sys.path.insert(0, _BENCHES)

from benchdata import BENCH_NODES, BenchTrace, bench_trace_for  # noqa: E402


@pytest.fixture(scope="session", params=BENCH_NODES, ids=lambda nodes: f"{nodes}nodes")
def bench_trace(request: pytest.FixtureRequest) -> BenchTrace:
    """The trace of a cluster of each size in :data:`BENCH_NODES`, warmed up."""
    nodes: int = request.param
    return bench_trace_for(nodes)
