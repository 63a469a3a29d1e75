"""The event log (``clusterstate.EventLog``) against a pure-Python baseline writing the same frames.

Scenarios (group names are the scenario; ``extra_info["impl"]`` says ``rust`` or ``python``):

- ``log-append-{fsync,group,none}``: appends of canonical event JSON with each durability policy. Rust:
  ``EventLog.append`` per event for ``fsync`` (an fsync per append), ``append_many`` in batches of
  ``BATCH`` for ``group`` (group commit every 1000 records / 5 ms) and ``none``; each Rust append decodes
  and re-encodes the event (validation). Python: a loop framing the same payload bytes with ``struct`` and
  a CRC (``crc32c`` if installed, else ``zlib.crc32``: the same frame layout and cost class) into a
  buffered file, with ``os.fsync`` per append / every 1000 appends / never.
- ``log-replay``: the whole log folded into a State. Rust: ``EventLog.replay()`` (read, verify, decode,
  apply, all in Rust). Python: reading the frames, ``decode_indexed_event`` and ``reference.apply``, on
  the first ``PY_REPLAY`` events only (it is about 100x slower); compare events/s.
- ``log-open-{events}``: ``EventLog(path)`` alone (lock, verify the last segment, build its index), and
  ``EventLog(path).load_state()`` of the log without a snapshot (a full replay) and with a snapshot
  ``TAIL`` events before the end (open = snapshot + tail).

The log has ``LOG_EVENTS`` events (1,000,000) when benchmarks run, and ``SMOKE_EVENTS`` when they are
disabled (the default ``--benchmark-disable`` smoke run), built by re-indexing a generated 16-node trace.
Events per second = ``extra_info["events"]`` / the mean time. Real numbers:
``pytest benches/bench_log.py --benchmark-enable --benchmark-disable-gc``.
"""

from __future__ import annotations

import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from clusterstate import CoreState, EventLog, reference
from clusterstate.codec import decode_indexed_event
from clusterstate.models import State
from clusterstate.trace import generate_trace

LOG_EVENTS = 1_000_000
SMOKE_EVENTS = 5_000
PY_REPLAY = 20_000
BATCH = 10_000
FSYNC_APPENDS = 200
TAIL = 10_000
# Appends are short (~10 ms a round) and noisy on a shared VM: more rounds, after two warm-up rounds.
APPEND_ROUNDS = 15

try:  # the same checksum as the Rust log if the optional package is there
    from crc32c import crc32c as _crc  # type: ignore[import-not-found, unused-ignore]

    CRC = "crc32c"
except ImportError:  # pragma: no cover - depends on the environment
    _crc = zlib.crc32
    CRC = "zlib.crc32"

crc: Callable[[bytes], int] = _crc


def frame(idx: int, payload: bytes) -> bytes:
    """The Rust log's record frame: len u32 | idx u64 | payload crc u32 | header crc u32 | payload."""
    head = struct.pack("<IQI", len(payload), idx, crc(payload))
    return head + struct.pack("<I", crc(head)) + payload


def reindexed(lines: list[bytes], count: int) -> Iterator[bytes]:
    """``count`` canonical event lines: the trace's lines over and over, with ``idx`` rewritten."""
    bodies = [line[line.index(b",") + 1 :] for line in lines]
    for idx in range(count):
        yield b'{"idx":%d,' % idx + bodies[idx % len(bodies)]


@pytest.fixture(scope="module")
def trace_lines() -> list[bytes]:
    return [event.model_dump_json().encode() for event in generate_trace(16, 120.0, 7)]


@pytest.fixture(scope="module")
def big_log(trace_lines: list[bytes], disabled: bool) -> Iterator[tuple[Path, int]]:
    """A log of ``LOG_EVENTS`` events (``SMOKE_EVENTS`` in smoke runs), with no snapshot."""
    count = SMOKE_EVENTS if disabled else LOG_EVENTS
    root = Path(tempfile.mkdtemp(prefix="cs-bench-log-"))
    with EventLog(root / "log", create=True, durability="none") as log:
        chunk: list[bytes] = []
        for line in reindexed(trace_lines, count):
            chunk.append(line)
            if len(chunk) == BATCH:
                log.append_many(chunk)
                chunk.clear()
        log.append_many(chunk)
    yield root / "log", count
    shutil.rmtree(root)


def extra(benchmark: BenchmarkFixture, impl: str, events: int, **more: Any) -> None:
    benchmark.extra_info.update({"impl": impl, "events": events, **more})


@pytest.mark.parametrize("policy", ["fsync", "group", "none"])
def test_append_rust(benchmark: BenchmarkFixture, trace_lines: list[bytes], tmp_path: Path, policy: str) -> None:
    count = FSYNC_APPENDS if policy == "fsync" else BATCH
    lines = list(reindexed(trace_lines, count))
    benchmark.group = f"log-append-{policy}"
    extra(benchmark, "rust", count)
    state = {"round": 0}

    def setup() -> tuple[tuple[EventLog, list[bytes]], dict[str, Any]]:
        state["round"] += 1
        path = tmp_path / f"r{state['round']}"
        log = EventLog(path, create=True, durability=policy)  # type: ignore[arg-type]
        return (log, lines), {}

    def run(log: EventLog, batch: list[bytes]) -> EventLog:
        if policy == "fsync":
            for line in batch:
                log.append(line)
        else:
            log.append_many(batch)
        return log

    log = benchmark.pedantic(  # type: ignore[no-untyped-call]
        run, setup=setup, rounds=APPEND_ROUNDS, warmup_rounds=2, iterations=1
    )
    assert log.next_index == count
    log.close()


@pytest.mark.parametrize("policy", ["fsync", "group", "none"])
def test_append_python(benchmark: BenchmarkFixture, trace_lines: list[bytes], tmp_path: Path, policy: str) -> None:
    count = FSYNC_APPENDS if policy == "fsync" else BATCH
    lines = list(reindexed(trace_lines, count))
    benchmark.group = f"log-append-{policy}"
    extra(benchmark, "python", count, crc=CRC)
    sync_every = {"fsync": 1, "group": 1000, "none": 0}[policy]
    rounds = {"round": 0}

    def run() -> int:
        rounds["round"] += 1
        with open(tmp_path / f"p{rounds['round']}.seg", "wb") as out:
            out.write(b"CSEVLOG\x01" + struct.pack("<Q", 0))
            for idx, payload in enumerate(lines):
                out.write(frame(idx, payload))
                if sync_every and (idx + 1) % sync_every == 0:
                    out.flush()
                    os.fsync(out.fileno())
            return out.tell()

    written = benchmark.pedantic(  # type: ignore[no-untyped-call]
        run, rounds=APPEND_ROUNDS, warmup_rounds=2, iterations=1
    )
    assert written > count * 20


def test_replay_rust(benchmark: BenchmarkFixture, big_log: tuple[Path, int]) -> None:
    path, count = big_log
    benchmark.group = "log-replay"
    extra(benchmark, "rust", count)
    with EventLog(path) as log:
        state = benchmark.pedantic(log.replay, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert state.last_event_applied_idx == count - 1


def test_replay_python(benchmark: BenchmarkFixture, big_log: tuple[Path, int]) -> None:
    path, count = big_log
    count = min(count, PY_REPLAY)
    benchmark.group = "log-replay"
    extra(benchmark, "python", count)
    segment = sorted(path.glob("*.seg"))[0]

    def replay() -> State:
        state = State()
        with open(segment, "rb") as source:
            source.seek(16)
            for _ in range(count):
                length, _idx, payload_crc, _head_crc = struct.unpack("<IQII", source.read(20))
                payload = source.read(length)
                assert crc(payload) == payload_crc or CRC != "crc32c"
                state = reference.apply(state, decode_indexed_event(payload))
        return state

    state = benchmark.pedantic(replay, rounds=1, iterations=1)  # type: ignore[no-untyped-call]
    assert state.last_event_applied_idx == count - 1


def test_open_only(benchmark: BenchmarkFixture, big_log: tuple[Path, int]) -> None:
    """Opening alone: lock, list segments, verify every record of the last one, build its sparse index."""
    path, count = big_log
    benchmark.group = f"log-open-{count}"
    extra(benchmark, "rust", count, snapshot=False, tail=0)

    def open_close() -> int:
        with EventLog(path) as log:
            return log.next_index

    assert benchmark.pedantic(open_close, rounds=3, iterations=1) == count  # type: ignore[no-untyped-call]


@pytest.mark.parametrize("snapshot", [False, True], ids=["full-replay", "snapshot+tail"])
def test_open(benchmark: BenchmarkFixture, big_log: tuple[Path, int], tmp_path: Path, snapshot: bool) -> None:
    """Open and ``load_state()``: a full replay, or the snapshot ``TAIL`` events before the end plus the tail."""
    source, count = big_log
    path = tmp_path / "log"
    shutil.copytree(source, path)
    tail = min(TAIL, count // 2)
    if snapshot:
        # The snapshot must be at count - tail: fold the prefix in Rust through a shorter copy of the log.
        prefix = tmp_path / "prefix"
        with EventLog(prefix, create=True, durability="none") as short:
            with EventLog(path) as log:
                for start in range(0, count - tail, BATCH):
                    short.append_many(log.read_range_raw(start, min(start + BATCH, count - tail)))
            at = short.replay()
        with EventLog(path) as log:
            log.snapshot(at)
    benchmark.group = f"log-open-{count}"
    extra(benchmark, "rust", count, snapshot=snapshot, tail=tail if snapshot else count)

    def open_and_load() -> CoreState:
        with EventLog(path) as log:
            return log.load_state()

    state = benchmark.pedantic(open_and_load, rounds=3, iterations=1)  # type: ignore[no-untyped-call]
    assert state.last_event_applied_idx == count - 1
