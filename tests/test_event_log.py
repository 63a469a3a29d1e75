"""The event log (``clusterstate.EventLog``): round trips, errors, recovery and fault injection.

Fault injection: the last segment cut at every byte offset of its last records reopens to the longest
valid prefix (the cut bytes saved and a warning logged); a flipped bit in the middle raises
``LogCorruptedError`` naming the segment and offset; a child process killed with SIGKILL while appending
with ``durability="fsync"`` reopens with every acknowledged record, and its replayed State equals the
reference fold of the recovered prefix; a snapshot plus the tail equals a full replay. On a small tmpfs: a
disk that fills up at a segment rotation resumes once space is freed (directly and through ``MasterCore``
with a ``ProducerOutbox`` resending), a read-only open works on the full disk, and a later cut never
overwrites the bytes an earlier cut saved.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import clusterstate
from clusterstate import CoreState, EventLog, MasterCore, ProducerOutbox, reference
from clusterstate.codec import decode_indexed_event
from clusterstate.errors import (
    ClusterStateError,
    EventIndexError,
    LogClosedError,
    LogCorruptedError,
    LogFullError,
    LogIndexError,
    LogLockedError,
    LogNotFoundError,
    LogReadOnlyError,
    LogUsageError,
)
from clusterstate.models import IndexedEvent
from event_bytes import noop_event
from support.processes import Processes

GOLDEN = Path(__file__).resolve().parent / "data" / "golden"
TRACE = GOLDEN / "trace_crash4.events.jsonl"
RECORD_HEADER = 20
SEGMENT_HEADER = 16


@pytest.fixture(scope="module")
def lines() -> list[bytes]:
    return TRACE.read_bytes().splitlines()


@pytest.fixture(scope="module")
def events(lines: list[bytes]) -> list[IndexedEvent]:
    return [decode_indexed_event(line) for line in lines]


@pytest.fixture
def log_dir(tmp_path: Path) -> Path:
    return tmp_path / "log"


def segments(path: Path) -> list[Path]:
    return sorted(path.glob("*.seg"))


def record_ends(data: bytes) -> list[int]:
    """The byte offsets where the records of a segment end (the first is the segment header's end)."""
    ends, at = [SEGMENT_HEADER], SEGMENT_HEADER
    while at < len(data):
        at += RECORD_HEADER + int.from_bytes(data[at : at + 4], "little")
        ends.append(at)
    assert at == len(data)
    return ends


@pytest.mark.parametrize("name", sorted(p.name for p in GOLDEN.glob("*.events.jsonl")))
def test_golden_records_round_trip_and_replay_like_the_reference(log_dir: Path, name: str) -> None:
    raw = (GOLDEN / name).read_bytes().splitlines()
    models = [decode_indexed_event(line) for line in raw]
    with EventLog(log_dir, create=True, segment_bytes=16384, index_every=8) as log:
        assert log.append_many(models[: len(models) // 2]) == len(models) // 2 - 1
        for line in raw[len(models) // 2 :]:
            log.append(line)
        assert log.segment_count > 1
    with EventLog(log_dir) as log:
        assert len(log) == len(raw)
        assert log.read_range_raw(0, 10**9) == raw
        assert log.read_range(0, len(raw)) == models
        assert list(log.iter(raw=True)) == raw
        state = log.replay()
        assert state == reference.fold(models)
        assert state.model_dump_json() == reference.fold(models).model_dump_json()
        assert CoreState().replay(log) == state


def test_random_access_and_iteration_start_anywhere(log_dir: Path, events: list[IndexedEvent]) -> None:
    with EventLog(log_dir, create=True, durability="none", segment_bytes=8192, index_every=4) as log:
        log.append_many(events)
        for start, end in [(0, 1), (17, 18), (100, 333), (400, 10_000), (512, 513), (20, 20)]:
            assert log.read_range(start, end) == events[start:end]
        assert list(log.iter(300)) == events[300:]
        assert [e.idx for e in log.iter(510) if isinstance(e, IndexedEvent)] == [510, 511, 512]
        middle = clusterstate.apply_many(CoreState(), events[:250])
        assert log.replay(middle) == log.replay() == reference.fold(events)


def test_durability_policies_and_durable_index(log_dir: Path, events: list[IndexedEvent]) -> None:
    with EventLog(log_dir, create=True) as log:
        assert log.durability == "fsync"
        assert (log.last_index, log.durable_index) == (-1, -1)
        log.append(events[0])
        assert log.durable_index == 0
    shutil.rmtree(log_dir)
    with EventLog(log_dir, create=True, durability="group", group_records=10, group_ms=60_000) as log:
        log.append_many(events[:9])
        assert log.durable_index == -1
        log.append(events[9])
        assert log.durable_index == 9
        log.append(events[10])
        assert log.durable_index == 9
        log.sync()
        assert log.durable_index == 10
    shutil.rmtree(log_dir)
    with EventLog(log_dir, create=True, durability="none") as log:
        log.append_many(events)
        assert (log.last_index, log.durable_index) == (512, -1)
        log.sync()
        assert log.durable_index == 512
    with EventLog(log_dir, durability="none") as log:
        assert log.durable_index == 512  # what survived a restart is on disk


def test_typed_errors(log_dir: Path, events: list[IndexedEvent]) -> None:
    with pytest.raises(LogNotFoundError) as missing:
        EventLog(log_dir)
    assert isinstance(missing.value, FileNotFoundError)
    assert isinstance(missing.value, ClusterStateError)
    log = EventLog(log_dir, create=True)
    with pytest.raises(LogLockedError) as locked:
        EventLog(log_dir)
    assert isinstance(locked.value, OSError)
    with pytest.raises(LogIndexError) as wrong:
        log.append(events[3])
    assert isinstance(wrong.value, EventIndexError)
    assert (wrong.value.expected, wrong.value.got) == (0, 3)
    with pytest.raises(LogIndexError):
        log.append_many([events[0], events[2]])
    assert len(log) == 0  # all or nothing
    with pytest.raises(clusterstate.DecodeError):
        log.append(b'{"idx": 0}')
    with pytest.raises(clusterstate.DecodeError, match="event 1 of the batch"):
        log.append_many([events[0], b'{"idx": 1}'])
    log.append_many(events[:5])
    with pytest.raises(LogUsageError):
        log.snapshot(CoreState())
    with pytest.raises(LogUsageError):
        log.replay(clusterstate.apply_many(CoreState(), events[:7]))
    with pytest.raises(LogUsageError):
        EventLog(log_dir / "x", create=True, durability="sometimes")  # type: ignore[arg-type]
    log.close()
    log.close()
    assert log.closed
    with pytest.raises(LogClosedError):
        log.append(events[5])
    with EventLog(log_dir) as again:  # the lock went with close()
        assert again.next_index == 5


def test_a_second_process_cannot_open_a_locked_log(log_dir: Path, processes: Processes) -> None:
    with EventLog(log_dir, create=True):
        code = textwrap.dedent(
            """
            import sys, clusterstate
            try:
                clusterstate.EventLog(sys.argv[1])
            except clusterstate.errors.LogLockedError:
                sys.exit(3)
            """
        )
        result = processes.run([sys.executable, "-c", code, str(log_dir)], timeout=60)
        assert result.returncode == 3


def test_full_disk_is_a_clear_error(tiny_disk: Path, events: list[IndexedEvent]) -> None:
    mount = tiny_disk
    with EventLog(mount / "log", create=True) as log:

        def fill() -> None:
            for event in events:
                log.append(event)

        with pytest.raises(LogFullError) as full:
            fill()
        assert full.value.errno == 28
        assert isinstance(full.value, OSError)
        appended = log.next_index
        assert 0 < appended < len(events)
    with EventLog(mount / "log") as log:  # nothing half-written is left behind
        assert log.next_index == appended
        assert log.replay() == reference.fold(events[:appended])
    shutil.rmtree(mount / "log")
    # Buffered records that cannot be written are dropped from the log (next_index says where it ends).
    log = EventLog(mount / "log", create=True, durability="none")
    log.append_many(events)
    with pytest.raises(LogFullError):
        log.sync()
    kept = log.next_index
    assert kept < len(events)
    log.close()
    with EventLog(mount / "log") as log:
        assert log.next_index == kept
    shutil.rmtree(mount / "log")
    # A long JSON batch, framed on several threads, after a short one that reached the disk: the write that
    # finds the disk full drops what it was writing, and the log ends where the disk did.
    batch = [
        event.model_copy(update={"idx": idx}).model_dump_json().encode()
        for idx, event in zip(range(8000), itertools.cycle(events), strict=False)
    ]
    assert sum(map(len, batch[:40])) < 32 * 1024  # fits on the 64 KiB disk
    assert sum(map(len, batch)) > 16 * 64 * 1024  # does not, by far
    log = EventLog(mount / "log", create=True, durability="none")
    log.append_many(batch[:40])
    log.flush()
    with pytest.raises(LogFullError):
        log.append_many(batch[40:])
    assert log.next_index == 40
    log.close()
    with EventLog(mount / "log") as log:
        assert log.next_index == 40
        assert log.replay() == reference.fold(decode_indexed_event(line) for line in batch[:40])


def copy_log(source: Path, target: Path) -> None:
    target.mkdir()
    for path in segments(source):
        shutil.copy(path, target / path.name)


@pytest.mark.slow
def test_a_tail_cut_at_every_byte_reopens_to_the_longest_valid_prefix(
    tmp_path: Path, events: list[IndexedEvent], caplog: pytest.LogCaptureFixture
) -> None:
    source = tmp_path / "source"
    with EventLog(source, create=True, durability="none", segment_bytes=32768) as log:
        log.append_many(events)
    last = segments(source)[-1]
    data = last.read_bytes()
    first_idx = int(last.stem)
    ends = record_ends(data)
    for cut in range(ends[-4], len(data)):
        work = tmp_path / f"cut{cut}"
        copy_log(source, work)
        (work / last.name).write_bytes(data[:cut])
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="clusterstate.log"), EventLog(work) as log:
            whole = sum(1 for end in ends[1:] if end <= cut)
            assert log.next_index == first_idx + whole, cut
            valid_end = max(end for end in ends if end <= cut)
            if cut == valid_end:
                assert log.recovery["cuts"] == []
            else:
                [report] = log.recovery["cuts"]
                assert report["torn"]
                assert report["offset"] == valid_end
                assert report["saved_to"] is not None
                assert Path(report["saved_to"]).read_bytes() == data[valid_end:cut]
                assert "torn tail" in caplog.text
            if cut % 50 == 0 or cut == len(data) - 1:
                assert log.replay() == reference.fold(events[: log.next_index])
        shutil.rmtree(work)


def test_a_flipped_bit_in_the_middle_is_corruption(tmp_path: Path, events: list[IndexedEvent]) -> None:
    path = tmp_path / "log"
    with EventLog(path, create=True, durability="none") as log:
        log.append_many(events)
    [segment] = segments(path)
    clean = segment.read_bytes()
    ends = record_ends(clean)
    for position in [ends[100] + 2, ends[200] + 7, ends[300] + RECORD_HEADER + 40, len(clean) // 2]:
        damaged = bytearray(clean)
        damaged[position] ^= 0x04
        segment.write_bytes(damaged)
        with pytest.raises(LogCorruptedError) as corrupted:
            EventLog(path)
        assert corrupted.value.segment == str(segment)
        record_start = max(end for end in ends if end <= position)
        assert corrupted.value.offset == record_start
        assert isinstance(corrupted.value, ValueError)
        with EventLog(path, repair=True) as log:  # on request: cut there, keep the bytes
            assert log.next_index == ends.index(record_start)
            assert not log.recovery["cuts"][0]["torn"]
        segment.write_bytes(clean)
        for side in path.glob("*.cut-*"):
            side.unlink()


def test_snapshot_plus_tail_equals_full_replay(log_dir: Path, events: list[IndexedEvent]) -> None:
    with EventLog(log_dir, create=True, durability="group", segment_bytes=16384) as log:
        log.append_many(events[:200])
        assert log.snapshot(log.replay()) == 199
        log.append_many(events[200:400])
        assert log.snapshot(reference.fold(events[:400])) == 399
        log.append_many(events[400:])
        assert log.latest_snapshot_index == 399
    with EventLog(log_dir) as log:
        state = log.load_state()
        assert log.loaded_snapshot_index == 399
        assert state == log.replay() == reference.fold(events)
    # A damaged newest snapshot is skipped, with a warning, for the one before it.
    snapshot = log_dir / f"{399:020}.snap"
    data = bytearray(snapshot.read_bytes())
    data[-3] ^= 0xFF
    snapshot.write_bytes(data)
    with EventLog(log_dir) as log:
        assert log.load_state() == reference.fold(events)
        assert log.loaded_snapshot_index == 199


def test_concurrent_replays_release_the_gil_and_agree(log_dir: Path, events: list[IndexedEvent]) -> None:
    with EventLog(log_dir, create=True, durability="none") as log:
        log.append_many(events)
        results: list[CoreState] = []
        threads = [threading.Thread(target=lambda: results.append(log.replay())) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert all(state == results[0] for state in results)


CHILD = textwrap.dedent(
    """
    import sys
    from clusterstate import EventLog
    lines = open(sys.argv[2], "rb").read().splitlines()
    with EventLog(sys.argv[1], create=True, durability="fsync", segment_bytes=8192) as log:
        for _ in range(1000):
            for line in lines:
                if log.next_index >= len(lines):
                    break
                idx = log.append(line)
                print(idx, flush=True)
            if log.next_index >= len(lines):
                break
    """
)


def acknowledged(stdout: Iterator[str], until: int) -> int:
    last = -1
    for line in stdout:
        last = int(line)
        if last >= until:
            break
    return last


@pytest.mark.slow
@pytest.mark.parametrize("kill_after", [37, 150, 333])
def test_sigkill_while_appending_loses_nothing_acknowledged(
    log_dir: Path, events: list[IndexedEvent], kill_after: int, processes: Processes
) -> None:
    with processes.popen(
        [sys.executable, "-c", CHILD, str(log_dir), str(TRACE)], stdout=subprocess.PIPE, text=True
    ) as child:
        assert child.stdout is not None
        last_acked = acknowledged(child.stdout, kill_after)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        # Acknowledged records still in the pipe count too: the child printed them after append returned.
        rest = child.stdout.read().split()
    assert child.returncode == -signal.SIGKILL
    last_acked = max([last_acked, *map(int, rest)])
    assert last_acked >= kill_after
    with EventLog(log_dir) as log:
        assert log.next_index >= last_acked + 1
        recovered = log.next_index
        assert log.read_range(0, recovered) == events[:recovered]
        assert log.replay() == reference.fold(events[:recovered])
        log.append_many(events[recovered:])  # and it goes on
        assert log.replay() == reference.fold(events)


def test_the_torn_tail_warning_names_the_cut_once(log_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    with EventLog(log_dir, create=True) as log:
        log.append_many([indexed_test_event(idx) for idx in range(3)])
    [segment] = segments(log_dir)
    data = segment.read_bytes()
    segment.write_bytes(data[:-5])
    offset = record_ends(data)[2]
    with caplog.at_level(logging.WARNING, logger="clusterstate.log"), EventLog(log_dir) as log:
        assert log.next_index == 2
    saved = log_dir / f"{segment.name}.cut-{offset}"
    assert caplog.messages == [
        f"event log {log_dir}: cut {len(data) - 5 - offset} bytes of {segment} at offset {offset} "
        f"(torn tail: the record is incomplete (the file ends inside it)); saved to {saved}"
    ]


def indexed_test_event(idx: int) -> bytes:
    """The JSON of a small ``IndexedEvent`` (a ``TestEvent``) at ``idx``."""
    return json.dumps({"idx": idx, "origin": None, "event": json.loads(noop_event(f"event-{idx:03d}"))}).encode()


def test_a_later_cut_never_overwrites_what_an_earlier_cut_saved(tiny_disk: Path) -> None:
    path = tiny_disk / "log"
    with EventLog(path, create=True, durability="none") as log:
        log.append_many([indexed_test_event(idx) for idx in range(100)])
    [segment] = segments(path)
    data = bytearray(segment.read_bytes())
    record_50 = record_ends(bytes(data))[50]
    data[record_50 + RECORD_HEADER + 3] ^= 0x01  # a flipped bit in record 50's payload
    segment.write_bytes(data)
    with EventLog(path, repair=True) as log:
        [repair] = log.recovery["cuts"]
        assert (repair["offset"], repair["torn"], log.next_index) == (record_50, False, 50)
        log.append(indexed_test_event(50))
    first = path / f"{segment.name}.cut-{record_50}"
    assert first.read_bytes() == data[record_50:]  # records 50-99, as they were on disk
    again = segment.read_bytes()
    segment.write_bytes(again[:-5])  # a torn tail at the same offset
    with EventLog(path) as log:
        [torn] = log.recovery["cuts"]
        assert (torn["offset"], torn["torn"], log.next_index) == (record_50, True, 50)
    second = path / f"{segment.name}.cut-{record_50}.1"
    assert torn["saved_to"] == str(second)
    assert first.read_bytes() == data[record_50:]
    assert second.read_bytes() == again[record_50:-5]
    assert sorted(path.glob("*.cut-*")) == [first, second]


@pytest.mark.parametrize("tiny_disk", ["2m"], indirect=True)
def test_what_a_full_disk_leaves_of_a_long_fsync_batch_is_durable(tiny_disk: Path, lines: list[bytes]) -> None:
    # Longer than the log's 1 MiB write buffer and than the disk: the first flushes land, a later one fails. The
    # written part counts as appended (a master acknowledges it), so under "fsync" it must be on disk.
    batch = []
    for idx in range(12 * len(lines)):
        record = json.loads(lines[idx % len(lines)])
        record["idx"] = idx
        batch.append(json.dumps(record).encode())
    with EventLog(tiny_disk / "log", create=True, durability="fsync") as log:
        with pytest.raises(LogFullError):
            log.append_many(batch)
        written = log.next_index
        assert 0 < written < len(batch)
        assert log.durable_index == log.last_index == written - 1
    with EventLog(tiny_disk / "log", read_only=True) as log:
        assert log.next_index == written


def test_a_full_disk_at_rotation_resumes_once_space_is_freed(tiny_disk: Path, events: list[IndexedEvent]) -> None:
    path = tiny_disk / "log"
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 16384)  # freed later, so that the disk works again
    log = EventLog(path, create=True, segment_bytes=4096)  # fsync on every append

    # A segment fits one tmpfs page: every record lands in a page its segment holds, and the disk fills up
    # when a rotation writes the next segment's header.
    def fill() -> None:
        for event in events:
            log.append(event)

    with pytest.raises(LogFullError) as full:
        fill()
    appended = log.next_index
    assert 0 < appended < len(events) - 16
    assert full.value.filename == str(path / f"{appended:020}.seg.tmp")
    files = sorted(p.name for p in path.iterdir())
    assert files == sorted(["LOCK", *(p.name for p in segments(path))])  # no new segment, no temporary left behind
    assert log.segment_count == len(files) - 1
    with pytest.raises(LogFullError):  # still full: refused again the same way
        log.append(events[appended])
    log.close()
    # An empty segment as a crash while creating one leaves it: it holds nothing and must not wedge the log.
    (path / f"{appended:020}.seg").touch()
    with EventLog(path, read_only=True) as reader:  # reading needs no space
        assert reader.read_only
        assert (reader.next_index, reader.durable_index) == (appended, appended - 1)
        assert reader.read_range(0, appended) == events[:appended]
        assert reader.replay() == reader.load_state() == reference.fold(events[:appended])
        with pytest.raises(LogReadOnlyError) as refused:
            reader.append(events[appended])
        assert isinstance(refused.value, LogUsageError)
        with pytest.raises(LogReadOnlyError):
            reader.snapshot(reader.replay())
    master = MasterCore(("master", 2), log=EventLog(path, read_only=True))
    assert master.events_since(appended - 3) == [
        event.model_dump_json().encode() for event in events[appended - 3 : appended]
    ]
    master.close()
    log = EventLog(path, segment_bytes=4096)  # a writable open on the full disk works too
    assert log.recovery["cuts"] == []
    assert log.recovery["removed_segments"] == [str(path / f"{appended:020}.seg.cut")]
    with pytest.raises(LogFullError):
        log.append(events[appended])
    ballast.unlink()
    log.append_many(events[appended : appended + 4])
    for event in events[appended + 4 : appended + 16]:
        log.append(event)
    assert log.segment_count > len(files)  # rotated again
    log.close()
    with EventLog(path, verify_all=True) as log:
        assert log.recovery == {"cuts": [], "removed_segments": []}
        assert log.read_range(0, 10**9) == events[: appended + 16]


def test_producers_resends_are_logged_exactly_once_after_a_full_disk(tiny_disk: Path) -> None:
    path = tiny_disk / "log"
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(b"\0" * 16384)
    session = ("master", 1)
    master = MasterCore(session, log=EventLog(path, create=True, segment_bytes=4096))
    outbox = ProducerOutbox(ProducerOutbox.new_producer_id("a"), "a", session)
    ids: list[str] = []
    now, full = 0.0, None
    while full is None and len(ids) < 2000:
        batch = [f"{len(ids) + k:05d}" + "x" * 200 for k in range(4)]
        ids += batch
        envelopes = [outbox.push(noop_event(event_id), now=now) for event_id in batch]
        try:
            outbox.acknowledge(master.ingest(envelopes).acknowledged, session=master.session)
        except LogFullError as err:
            full = err
            outbox.acknowledge(err.result.acknowledged, session=master.session)  # type: ignore[attr-defined]
    assert full is not None, "the tmpfs never filled up"
    assert str(full.filename).endswith(".seg.tmp")  # at a rotation
    assert 0 < outbox.pending <= 4
    now += 60.0
    with pytest.raises(LogFullError):  # still full: the resend is refused, nothing acknowledged
        master.ingest(outbox.due(now=now))
    ballast.unlink()
    while outbox.pending:
        now += 60.0
        outbox.acknowledge(master.ingest(outbox.due(now=now)).acknowledged, session=master.session)
    assert master.counters["applied"] == len(ids)
    master.close()
    with EventLog(path, read_only=True) as log:
        logged = log.read_range(0, 10**9)
    assert [event.event.event_id for event in logged] == ids  # every event once, in order
