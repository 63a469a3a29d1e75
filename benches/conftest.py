"""Shared benchmark fixtures: the cluster sizes, the warmed-up trace of each size (see ``benchdata``), and whether
this run times anything.

A test taking a ``nodes`` argument, or the ``bench_trace`` fixture, runs once per size of :func:`bench_nodes`:
every size when timing, the small ones in a smoke run (``--benchmark-disable``, the project's default).
"""

from __future__ import annotations

import pytest

from benchdata import BenchTrace, bench_nodes, bench_trace_for


def _disabled(config: pytest.Config) -> bool:
    return bool(config.getoption("benchmark_disable") and not config.getoption("benchmark_enable"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    sizes = bench_nodes(smoke=_disabled(metafunc.config))
    for name in ("nodes", "bench_trace"):
        if name in metafunc.fixturenames:
            metafunc.parametrize(
                name, sizes, ids=lambda nodes: f"{nodes}nodes", indirect=name == "bench_trace", scope="session"
            )


@pytest.fixture(scope="session")
def disabled(request: pytest.FixtureRequest) -> bool:
    """A smoke run: benchmarks run once each, untimed, so the benches use small workloads."""
    return _disabled(request.config)


@pytest.fixture(scope="session")
def bench_trace(request: pytest.FixtureRequest) -> BenchTrace:
    """The trace of a cluster of each size in :func:`bench_nodes`, warmed up."""
    nodes: int = request.param
    return bench_trace_for(nodes)
