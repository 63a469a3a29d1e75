"""A node's replica log (``NodeCore(log=...)``): every event logged before it is applied, and the log
handed over between a ``NodeCore`` and a ``MasterCore`` so that a new master continues the same history.

The broadcast is the generated trace's `IndexedEvent` JSON (the bytes a master sends), delivered
shuffled, copied, with garbage and in any cuts; the replica log must hold each event once, in index
order, byte for byte, and the reference replay of the log must equal the node's State.
"""

from __future__ import annotations

import errno
import functools
import json
import random
from pathlib import Path
from typing import Literal

import pytest

from clusterstate import EventLog, MasterCore, NodeCore, ReceiveResult, reference
from clusterstate.errors import (
    IndexAheadError,
    LogClosedError,
    LogFullError,
    LogUsageError,
    NoLogError,
    OptionsError,
    SnapshotRequiredError,
)
from clusterstate.models import IndexedEvent
from event_bytes import noop_event
from support.envelopes import decoded, envelope
from support.traces import trace

SECOND = ("node-b", 2)
"""The session of the node elected after the first master."""


@functools.cache
def lines() -> list[bytes]:
    """The broadcast: each trace event's `IndexedEvent` JSON, as the master sends it."""
    return [event.model_dump_json().encode() for event in trace()]


def noop_line(idx: int, padding: int = 0) -> bytes:
    """A broadcast `TestEvent` at `idx` (its JSON padded by `padding` bytes)."""
    event = json.loads(noop_event(f"{idx:05d}" + "x" * padding))
    return json.dumps({"idx": idx, "origin": "a", "event": event}, separators=(",", ":")).encode()


def logged(path: Path) -> list[bytes]:
    """Every record of the log in `path`, as bytes, read by a fresh `EventLog` (its owner must be closed)."""
    with EventLog(path) as log:
        return log.read_range_raw(0, log.next_index)


def wire(seed: int) -> list[list[bytes]]:
    """The broadcast shuffled, a third of it copied, garbage mixed in, cut into batches of 1 to 40."""
    rng = random.Random(seed)
    items = lines() + rng.sample(lines(), len(lines()) // 3) + [b"junk", b'{"idx": 0}', b""]
    rng.shuffle(items)
    batches = []
    while items:
        cut = rng.randint(1, 40)
        batches.append(items[:cut])
        items = items[cut:]
    return batches


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_any_delivery_is_logged_once_in_index_order_and_replays_to_the_state(tmp_path: Path, seed: int) -> None:
    node = NodeCore(log=EventLog(tmp_path / "log", create=True, durability="none"))
    assert node.has_log
    assert node.next_index == 0
    assert node.loaded_snapshot_index is None
    for batch in wire(seed):
        result = node.receive(batch)
        # Log first: whatever is applied is in the log already, nothing more.
        last = max(node.next_index - 1, 0)
        assert node.events_since(last, 2) == lines()[last : node.next_index]
        assert result.missing == node.missing
    assert node.missing is None
    counters = node.counters
    assert counters["appended"] == counters["applied"] == len(lines())
    assert counters["unlogged"] == 0
    assert counters["rejected"] == 3
    node.close()
    assert not node.has_log
    records = logged(tmp_path / "log")
    assert records == lines()  # each once, in index order, the very bytes the master broadcast
    assert reference.fold(decoded(records)) == node.state


def test_events_since_pages_the_replica_log(tmp_path: Path) -> None:
    path = tmp_path / "log"
    node = NodeCore(log=EventLog(path, create=True, durability="none", segment_bytes=4096))
    node.receive(lines())
    pages: list[bytes] = []
    while page := node.events_since(len(pages), 97):
        assert len(page) <= 97
        pages += page
    assert node.events_since(3, 0) == []
    with pytest.raises(IndexAheadError) as ahead:
        node.events_since(len(lines()) + 1)
    assert (ahead.value.idx, ahead.value.next_index) == (len(lines()) + 1, len(lines()))
    assert node.snapshot() == len(lines()) - 1
    node.close()
    with EventLog(path) as log:
        assert pages == log.read_range_raw(0, log.next_index)
    # Drop the first segment, as a compaction behind the snapshot would: the pages before it are gone.
    segments = sorted(path.glob("*.seg"))
    assert len(segments) > 2
    segments[0].unlink()
    first = int(segments[1].name.removesuffix(".seg"))
    reopened = NodeCore(log=EventLog(path))
    assert reopened.loaded_snapshot_index == len(lines()) - 1
    assert reopened.state == node.state
    with pytest.raises(SnapshotRequiredError) as before:
        reopened.events_since(first - 1)
    assert (before.value.idx, before.value.first_index) == (first - 1, first)
    assert reopened.events_since(first, 5) == pages[first : first + 5]
    reopened.close()
    without = NodeCore()
    for call in (lambda: without.events_since(0), without.snapshot, without.sync):
        with pytest.raises(NoLogError):
            call()
    without.close()  # a no-op


def test_the_node_takes_the_log_over_and_refuses_misuse(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", create=True)
    with pytest.raises(OptionsError):
        NodeCore(reference.fold(trace()[:3]), log=log)
    with pytest.raises(OptionsError):
        NodeCore(capacity=0, log=log)
    assert log.next_index == 0  # refused before the log was taken: still usable
    node = NodeCore(log=log)
    with pytest.raises(LogClosedError, match="NodeCore"):
        log.append(trace()[0])
    with pytest.raises(LogClosedError):
        NodeCore(log=log)
    node.receive(lines()[:5])
    with pytest.raises(LogUsageError, match="snapshot"):
        node.join(reference.fold(trace()[:10]))
    assert node.next_index == 5
    node.close()
    with pytest.raises(LogClosedError):
        node.receive(lines()[5:6])
    with pytest.raises(LogUsageError):
        node.join(reference.fold(trace()[:10]))
    assert node.next_index == 5
    assert node.state == reference.fold(trace()[:5])
    node.close()  # a no-op


def test_the_log_is_handed_over_to_a_master_and_back(tmp_path: Path) -> None:
    path = tmp_path / "log"
    n = len(lines())
    node = NodeCore(log=EventLog(path, create=True, durability="group"))
    node.receive(lines()[n // 2 :])  # out of order: waits for the first half
    node.receive(lines()[: n // 2])
    node.close()

    # The node is elected: it opens its replica log as the master's log and continues the history and index.
    master = MasterCore(SECOND, log=EventLog(path))
    assert master.next_index == n
    assert master.state == node.state
    assert master.events_since(0, 10_000) == lines()
    more = [envelope("p", i, noop_event(f"m{i}"), "a", session=SECOND) for i in range(5)]
    broadcast = master.ingest(more).broadcast
    assert [event.idx for event in decoded(broadcast)] == list(range(n, n + 5))
    state = master.state
    master.close()

    # And back: a node on the master's closed log has everything and continues the index.
    node = NodeCore(log=EventLog(path))
    assert node.next_index == n + 5
    assert node.state == state
    extra = noop_line(n + 5)
    assert node.receive([extra]).applied == 1
    assert node.events_since(0, 10_000) == [*lines(), *broadcast, extra]
    node.close()
    records = logged(path)
    assert reference.fold(decoded(records)) == node.state


@pytest.mark.parametrize("durability", ["none", "group"])
def test_a_node_dropped_without_close_recovers_what_its_log_holds(
    tmp_path: Path, durability: Literal["group", "none"]
) -> None:
    path = tmp_path / "log"
    node = NodeCore(log=EventLog(path, create=True, durability=durability))
    node.receive(lines()[:100])
    del node  # a crash of the process would lose at most the unsynced tail; what the disk has is reopened
    reopened = NodeCore(log=EventLog(path))
    assert reopened.next_index == 100
    assert reopened.state == reference.fold(trace()[:100])
    assert reopened.receive(lines()[100:]).applied == len(lines()) - 100
    reopened.close()
    assert logged(path) == lines()


def test_a_full_disk_leaves_the_node_consistent_with_its_log(tiny_disk: Path) -> None:
    mount = tiny_disk
    ballast = mount / "ballast"
    ballast.write_bytes(b"\0" * 16384)  # freed later, so that the disk works again
    node = NodeCore(log=EventLog(mount / "log", create=True))  # fsync on every append
    events = [noop_line(i, 200) for i in range(400)]
    node.receive([events[399]])  # out of order: waits behind everything else
    failure = None
    for i in range(0, 392, 8):
        try:
            node.receive(events[i : i + 8])
        except LogFullError as err:
            failure = (i, err)
            break
    assert failure is not None, "the tmpfs never filled up"
    at, full = failure
    assert full.errno == errno.ENOSPC
    done = full.result  # type: ignore[attr-defined]
    assert isinstance(done, ReceiveResult)
    # Nothing the log refused was applied: the State and the next index follow the log.
    held = node.next_index
    assert at <= held < at + 8
    assert done.applied == held - at
    assert done.missing == held
    assert node.state == reference.fold(decoded(events[:held]))
    counters = node.counters
    assert counters["unlogged"] == at + 8 - held
    assert counters["buffered"] == 1  # the out-of-order event stayed buffered
    ballast.unlink()
    result = node.receive(events[held : at + 8])  # the dropped events, fetched again once the disk has room
    assert (result.applied, result.missing) == (at + 8 - held, at + 8)
    node.close()
    records = logged(mount / "log")
    assert records == [IndexedEvent.model_validate_json(line).model_dump_json().encode() for line in events[: at + 8]]
    assert reference.fold(decoded(records)) == node.state


def test_a_full_disk_under_buffered_durability_makes_the_node_let_go_of_its_log(tiny_disk: Path) -> None:
    mount = tiny_disk
    # Buffered: records reach the disk only when the 1 MiB write buffer fills, long after they were applied;
    # the write that finds the disk full loses them.
    node = NodeCore(log=EventLog(mount / "log", create=True, durability="none"))
    events = [noop_line(i, 200) for i in range(8000)]
    failure = None
    for i in range(0, len(events), 100):
        try:
            node.receive(events[i : i + 100])
        except LogFullError as err:
            failure = err
            break
    assert failure is not None, "the tmpfs never filled up"
    with pytest.raises(LogClosedError):  # the log lost records the State holds: the node let go of it
        node.receive([events[0]])
    records = logged(mount / "log")  # the directory is free again
    assert len(records) < node.next_index
    reopened = NodeCore(log=EventLog(mount / "log"))  # what the disk holds, nothing more
    assert reopened.next_index == len(records)
    assert reopened.state == reference.fold(decoded(records))
    reopened.close()
