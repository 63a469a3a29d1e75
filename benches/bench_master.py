"""The master's ingest path: ``clusterstate.MasterCore.ingest`` against the pure-Python pipeline on the same bytes.

Input: ``LocalEnvelope`` JSON bytes built from the bench traces (``benchdata``'s configs, seed 0; see
``pipeline.build_workload``): one producer per node with its own sequence numbers, and a seeded, mild reordering
(about a quarter of the consecutive pairs of a producer's envelopes inside each block of 1,000 are swapped, so the
later one waits in the producer's buffer; nothing crosses a batch boundary).

Each size is warmed up outside the timing: a ``MasterCore`` (empty State at creation) ingests the envelopes of the
first ``benchdata.WARMUP_S`` simulated seconds, so the timed batches run on a full-size State (every node known,
every edge built). The Python pipeline (``pipeline.PythonMaster``) starts at the same point: that master's State
converted to pydantic, and every producer's next sequence number (``tests/test_bench_pipeline.py`` checks that a
pipeline started so continues byte for byte like the master). Each round ingests the *next* batch of the tail
(``BATCHES``: 1,000 and 10,000 envelopes): the same bytes, in the same order, for both implementations.

Groups ``master-ingest-{batch}`` (no log: ``MasterCore`` without a log, the pipeline without a file) and
``master-ingest-{batch}-log`` (``MasterCore`` with its event log, durability ``none``; the pipeline appending framed
records -- ``bench_log.frame`` -- to a buffered file, no fsync). ``extra_info``: ``impl`` (``rust`` /
``python``), ``nodes``, ``edges``, ``events`` (the batch), ``events_per_s`` (from the median, when timed).

Every bench checks its output: no envelope refused, every envelope of a batch applied; the pipeline's broadcast
bytes equal a fresh ``MasterCore``'s on the same batches. With ``--benchmark-disable`` (CI), the workload is
small: ``SMOKE_WARM`` envelopes of warm-up and one batch of ``SMOKE_TAIL`` (whatever the bench's batch size).
Real numbers::

    CLUSTERSTATE_BENCH_NODES=4,64,1024 python -m pytest benches/bench_master.py --benchmark-enable --benchmark-only \\
        --benchmark-disable-gc -p no:cacheprovider

(``--benchmark-enable``: the project's ``addopts`` disable benchmarks, and pytest-benchmark refuses
``--benchmark-only`` with them disabled.)
"""

from __future__ import annotations

import gc
import struct
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from bench_log import CRC
from clusterstate import EventLog, MasterCore
from clusterstate.models import State
from pipeline import BLOCK, PythonMaster, PythonResult, Workload, build_workload

BATCHES = (1_000, 10_000)
TAIL = 50_000
"""Envelopes after the warm-up: enough for every timed round of every bench."""
ROUNDS = {"rust": {1_000: 20, 10_000: 5}, "python": {1_000: 5, 10_000: 3}}
SMOKE_WARM = 1_000
SMOKE_TAIL = 1_000
"""Smoke runs (``--benchmark-disable``): a short warm-up, and one batch of this many envelopes in every bench."""
WARM_CHUNK = 10_000


assert all(batch % BLOCK == 0 for batch in BATCHES)  # the reordering never crosses a batch boundary


@cache
def workload_for(nodes: int, smoke: bool) -> Workload:
    work = build_workload(nodes, SMOKE_TAIL, warm=SMOKE_WARM) if smoke else build_workload(nodes, TAIL)
    gc.freeze()  # like benchdata's traces: kept for the session, out of the collector's sight
    return work


def new_master(work: Workload, log: Path | None = None) -> MasterCore:
    """A ``MasterCore`` of the workload's session that has ingested the warm-up (with an event log at ``log``)."""
    session = (work.session.master_node_id, work.session.election_clock)
    if log is None:
        master = MasterCore(session)
    else:  # the master takes the log over
        master = MasterCore(session, log=EventLog(log, create=True, durability="none"))
    for start in range(0, len(work.warm), WARM_CHUNK):
        result = master.ingest(work.warm[start : start + WARM_CHUNK])
        assert result.rejected == []
    assert master.next_index == len(work.warm)
    return master


@cache
def warm_state(nodes: int, smoke: bool) -> tuple[State, int]:
    """The warmed-up State as a pydantic State, and its number of edges."""
    state = new_master(workload_for(nodes, smoke)).state.to_pydantic()
    return state, len(state.topology.list_connections())


def describe(
    benchmark: BenchmarkFixture, work: Workload, impl: str, batch: int, events: int, log: bool, smoke: bool
) -> None:
    benchmark.group = f"master-ingest-{batch}" + ("-log" if log else "")
    benchmark.extra_info.update(
        {
            "impl": impl,
            "nodes": work.nodes,
            "edges": warm_state(work.nodes, smoke)[1],
            "events": events,
            "warm_events": len(work.warm),
            "log": log,
        }
    )
    if impl == "python" and log:
        benchmark.extra_info["crc"] = CRC


def record_rate(benchmark: BenchmarkFixture) -> None:
    stats = getattr(getattr(benchmark, "stats", None), "stats", None)
    if stats is not None and stats.median > 0:
        benchmark.extra_info["events_per_s"] = round(benchmark.extra_info["events"] / stats.median)


def timed_batches(work: Workload, impl: str, batch: int, disabled: bool) -> list[list[bytes]]:
    """The tail batches the bench ingests, one per round (a single short one in smoke runs)."""
    if disabled:
        return work.batches(min(batch, SMOKE_TAIL))[:1]
    return work.batches(batch)[: ROUNDS[impl][batch]]


def feeder(batches: list[list[bytes]]) -> Iterator[tuple[tuple[list[bytes]], dict[str, Any]]]:
    for batch in batches:
        yield (batch,), {}


@pytest.mark.parametrize("log", [False, True], ids=["nolog", "log"])
@pytest.mark.parametrize("batch", BATCHES)
def test_ingest_rust(
    benchmark: BenchmarkFixture, tmp_path: Path, disabled: bool, nodes: int, batch: int, log: bool
) -> None:
    work = workload_for(nodes, disabled)
    master = new_master(work, tmp_path / "log" if log else None)
    batches = timed_batches(work, "rust", batch, disabled)
    describe(benchmark, work, "rust", batch, len(batches[0]), log, disabled)
    inputs = feeder(batches)
    outputs: list[int] = []

    def run(envelopes: list[bytes]) -> None:
        result = master.ingest(envelopes)
        outputs.append(len(result.broadcast) if not result.rejected else -1)

    benchmark.pedantic(run, setup=lambda: next(inputs), rounds=len(batches), iterations=1)  # type: ignore[no-untyped-call]
    record_rate(benchmark)
    assert outputs == [len(envelopes) for envelopes in batches]  # every envelope applied, nothing refused
    assert master.counters["buffered"] == 0
    assert master.next_index == len(work.warm) + sum(map(len, batches))
    if log:
        master.close()
        with EventLog(tmp_path / "log") as written:
            assert written.next_index == master.next_index  # every applied event is in the log


@pytest.mark.parametrize("log", [False, True], ids=["nolog", "log"])
@pytest.mark.parametrize("batch", BATCHES)
def test_ingest_python(
    benchmark: BenchmarkFixture, tmp_path: Path, disabled: bool, nodes: int, batch: int, log: bool
) -> None:
    work = workload_for(nodes, disabled)
    state, _ = warm_state(nodes, disabled)
    out: BinaryIO | None = open(tmp_path / "python.seg", "wb") if log else None  # noqa: SIM115 - closed below
    if out is not None:
        out.write(b"CSEVLOG\x01" + struct.pack("<Q", state.last_event_applied_idx + 1))  # bench_log's header
    pipeline = PythonMaster(work.session, log=out, state=state, producers=work.producers)
    batches = timed_batches(work, "python", batch, disabled)
    describe(benchmark, work, "python", batch, len(batches[0]), log, disabled)
    inputs = feeder(batches)
    outputs: list[PythonResult] = []

    def run(envelopes: list[bytes]) -> None:
        outputs.append(pipeline.ingest(envelopes))

    try:
        benchmark.pedantic(run, setup=lambda: next(inputs), rounds=len(batches), iterations=1)  # type: ignore[no-untyped-call]
    finally:
        if out is not None:
            out.close()
    record_rate(benchmark)
    # The same bytes out as the Rust master on the same batches (and nothing refused).
    master = new_master(work)
    for envelopes, result in zip(batches, outputs, strict=True):
        expected = master.ingest(envelopes)
        assert result.rejected == expected.rejected == []
        assert result.broadcast == expected.broadcast
    assert pipeline.next_index == master.next_index
    if out is not None:
        assert (tmp_path / "python.seg").stat().st_size > sum(map(len, (b for r in outputs for b in r.broadcast)))
