"""The receiving side every node runs (``clusterstate.NodeCore``): the broadcast in, the State kept.

The master's broadcast is a generated trace's indexed events, delivered in order, shuffled, duplicated
and with holes; the node must apply every event exactly once, in index order, and end with the State
of the reference fold. When it is behind, ``missing`` says where to fetch from, and pages of the
master's event log (or a snapshot plus the tail) bring it level. Bad bytes never reach the State.
"""

from __future__ import annotations

import functools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clusterstate
from clusterstate import CoreState, EventLog, MasterCore, NodeCore, reference
from clusterstate.models import State
from support.envelopes import envelope
from support.traces import trace

PAGE = 50


@functools.cache
def lines() -> list[bytes]:
    """The broadcast: each event's `IndexedEvent` JSON, as the master sends it."""
    return [event.model_dump_json().encode() for event in trace()]


@functools.cache
def folded(n: int) -> State:
    """The reference State after the first `n` events of the trace."""
    return reference.fold(trace()[:n])


def full() -> State:
    return folded(len(trace()))


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EventLog]:
    """The master's log, holding the whole trace."""
    with EventLog(tmp_path / "log", create=True, durability="none", index_every=16) as log:
        log.append_many(trace())
        yield log


def page(log: EventLog, start: int) -> list[bytes]:
    """One bounded page of the log from `start`, as the bytes a catch-up request returns."""
    return [event.model_dump_json().encode() for event in log.read_range(start, start + PAGE)]


def catch_up(node: NodeCore, log: EventLog) -> int:
    """Fetch pages while the node says something is missing; returns how many pages it took."""
    pages = 0
    while (start := node.missing) is not None:
        batch = page(log, start)
        assert 0 < len(batch) <= PAGE
        result = node.receive(batch)
        assert result.rejected == []
        assert result.applied >= 1  # each page starts at the node's next index
        pages += 1
        assert pages <= len(trace())
    return pages


def test_in_order_delivery_applies_the_trace() -> None:
    node = NodeCore()
    result = node.receive(lines())
    assert (result.applied, result.missing, result.rejected) == (len(trace()), None, [])
    assert node.state == full()
    assert isinstance(node.state, CoreState)
    assert node.next_index == len(trace())
    counters = node.counters
    assert counters["received"] == counters["applied"] == len(trace())
    assert counters["duplicates"] == counters["rejected"] == counters["buffered"] == counters["gaps"] == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    batch=st.integers(1, 64),
    holes=st.integers(0, 20),
    capacity=st.sampled_from([8, 64, 4096]),
)
def test_shuffled_duplicated_gapped_delivery_is_exactly_once(seed: int, batch: int, holes: int, capacity: int) -> None:
    rng = random.Random(seed)
    n = len(trace())
    lost = set(rng.sample(range(n), holes))
    # Every event but the lost ones at least once, a third of them twice, in a random order.
    wire = [idx for idx in range(n) if idx not in lost]
    wire += rng.sample(wire, len(wire) // 3)
    rng.shuffle(wire)
    node = NodeCore(capacity=capacity)
    for start in range(0, len(wire), batch):
        result = node.receive([lines()[idx] for idx in wire[start : start + batch]])
        assert result.rejected == []
        assert result.missing == node.missing
    # The lost events are fetched where the node says they are missing, one at a time (a retransmission).
    for _ in range(n):
        if node.missing is None:
            break
        node.receive([lines()[node.missing]])
    if wire and max(wire) == n - 1:
        assert node.missing is None
    else:  # the last events were lost and nothing after them arrived: the node cannot know they exist
        node.note_master_index(n)
        assert node.missing == node.next_index
        node.receive(lines()[node.next_index :])
    assert node.missing is None
    assert node.state == full()
    counters = node.counters
    assert counters["applied"] == n  # exactly once
    assert counters["buffered"] == counters["conflicts"] == counters["rejected"] == 0
    assert counters["received"] == counters["applied"] + counters["duplicates"] + counters["dropped_ahead"]
    if capacity >= n:
        assert counters["dropped_ahead"] == 0
        assert counters["duplicates"] == len(wire) - (n - len(lost))


def test_same_events_any_batching_same_state() -> None:
    rng = random.Random(11)
    wire = list(range(len(trace())))
    rng.shuffle(wire)
    one, two = NodeCore(), NodeCore()
    for start in range(0, len(wire), 7):
        one.receive([lines()[idx] for idx in wire[start : start + 7]])
    two.receive([lines()[idx] for idx in wire])
    assert one.state == two.state == full()


def test_missing_reports_the_gap_and_clears_once_filled() -> None:
    node = NodeCore()
    result = node.receive([*lines()[:10], *lines()[12:20]])
    assert (result.applied, result.missing) == (10, 10)
    assert node.missing == node.next_index == 10
    assert node.counters["buffered"] == 8
    assert node.counters["gaps"] == 1
    assert node.state == folded(10)
    result = node.receive([lines()[11]])  # still waiting for 10
    assert (result.applied, result.missing) == (0, 10)
    result = node.receive([lines()[10]])
    assert (result.applied, result.missing) == (10, None)
    assert node.missing is None
    assert node.state == folded(20)
    assert node.counters["buffered"] == 0
    assert node.counters["gaps"] == 1
    # A heartbeat saying the master is further opens a new gap, even though no event arrived.
    node.note_master_index(25)
    assert node.missing == 20
    assert node.counters["gaps"] == 2
    node.note_master_index(5)  # an older hint changes nothing
    assert node.missing == 20
    node.receive(lines()[20:25])
    assert node.missing is None


def test_too_far_ahead_is_dropped_then_fetched_through_the_gap(log: EventLog) -> None:
    node = NodeCore(capacity=4)
    result = node.receive([lines()[0], lines()[2], lines()[5], lines()[30]])
    assert (result.applied, result.missing) == (1, 1)
    counters = node.counters
    assert (counters["dropped_ahead"], counters["buffered"]) == (2, 1)
    node.receive([lines()[1]])
    assert node.next_index == 3
    assert node.missing == 3  # 5 and 30 were dropped but are known to exist
    assert catch_up(node, log) == 1  # one page from 3 covers everything known to exist
    assert node.next_index == 3 + PAGE
    assert node.state == folded(3 + PAGE)


def test_conflict_keeps_the_first_event() -> None:
    node = NodeCore()
    other = json.dumps({"idx": 1, "origin": None, "event": {"TestEvent": {"event_id": "other"}}}).encode()
    result = node.receive([lines()[1], other, lines()[1]])
    assert result.rejected == []
    assert (node.counters["conflicts"], node.counters["duplicates"]) == (1, 1)
    node.receive([lines()[0]])
    assert node.state == folded(2)
    node.receive([other])  # index 1 is applied: a stale copy now, whatever it holds
    assert node.counters["duplicates"] == 2
    assert node.state == folded(2)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"{}", "malformed"),
        (b'{"idx": 3, "event": {"Nope": {}}}', "unknown_tag"),
        (b'{"idx": 3, "event": {"TestEvent": {"event_id": "e", "extra": 1}}}', "malformed"),
        (b'{"idx": -1, "event": {"TestEvent": {"event_id": "e"}}}', "malformed"),
        (b'{"idx": 9223372036854775808, "event": {"TestEvent": {"event_id": "e"}}}', "malformed"),
        (b'{"idx": "3", "event": {"TestEvent": {"event_id": "e"}}}', "malformed"),
        (b'{"idx": 3, "event": {"TestEvent": {"event_id": "e"}}, "x": 1}', "malformed"),
        (b'{"idx": 3, "event": {"TestEvent": {"event_id": "e"}}', "malformed"),
    ],
)
def test_malformed_bytes_are_rejected_and_counted(data: bytes, reason: str) -> None:
    node = NodeCore()
    node.receive(lines()[:3])
    before = node.state.model_dump_json()
    result = node.receive([data, bytearray(data)])
    assert result.rejected == [(0, reason), (1, reason)]
    assert (result.applied, result.missing) == (0, None)
    assert node.state.model_dump_json() == before
    counters = node.counters
    assert counters["rejected"] == counters[f"rejected_{reason}"] == 2
    assert (counters["received"], counters["buffered"], counters["applied"]) == (5, 0, 3)
    assert node.next_index == 3
    node.receive(lines()[3:])  # the node goes on as if nothing happened
    assert node.state == full()


def test_a_node_that_falls_behind_catches_up_from_pages(log: EventLog) -> None:
    n = len(trace())
    node = NodeCore()
    node.receive(lines()[:100])
    # It misses everything from 100 on, then hears of the master's next index (a heartbeat) and fetches.
    node.note_master_index(log.next_index)
    assert node.missing == 100
    pages = catch_up(node, log)
    assert pages == -(-(n - 100) // PAGE)
    assert node.missing is None
    assert node.state == full()
    assert node.counters["applied"] == n
    assert node.counters["duplicates"] == 0


def test_raw_log_pages_are_received_as_they_are(log: EventLog) -> None:
    node = NodeCore()
    for start in range(0, len(log), PAGE):
        result = node.receive(log.read_range_raw(start, start + PAGE))
        assert result.rejected == []
    assert node.state == full()


def test_join_from_a_snapshot_plus_tail_equals_full_replay(log: EventLog) -> None:
    k = 150
    log.snapshot(folded(k))
    snapshot = log.load_state()  # the newest snapshot plus the records after it: the full State
    assert log.loaded_snapshot_index == k - 1
    assert snapshot == full()
    # A new node starts from the snapshot State (pydantic or Rust) and fetches only the tail.
    node = NodeCore(folded(k))
    assert (node.next_index, node.missing) == (k, None)
    node.note_master_index(log.next_index)
    catch_up(node, log)
    assert node.state == full()
    assert node.counters["applied"] == len(trace()) - k
    rust = NodeCore(CoreState.from_pydantic(folded(k)))
    rust.receive(lines()[k:])
    assert rust.state == full()


def test_join_on_a_running_node_skips_history() -> None:
    node = NodeCore()
    node.receive([*lines()[:5], lines()[40], lines()[120], lines()[121], lines()[200]])
    assert node.counters["buffered"] == 4
    assert node.join(folded(120)) is True  # covers 0..119: 40 dropped, 120 and 121 applied
    assert node.next_index == 122
    assert node.state == folded(122)
    assert node.counters["buffered"] == 1
    assert node.missing == 122  # 200 waits
    assert node.join(folded(100)) is False  # older: ignored
    assert node.join(CoreState.from_pydantic(folded(122))) is False  # equal: ignored
    counters = node.counters
    assert (counters["joins"], counters["joins_ignored"], counters["applied"]) == (1, 2, 7)
    node.receive(lines()[100:])  # the tail, overlapping what the snapshot covered
    assert node.missing is None
    assert node.state == full()


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(0, 386))
def test_join_anywhere_then_tail_equals_full_replay(seed: int, k: int) -> None:
    n = len(trace())
    k = min(k, n)
    rng = random.Random(seed)
    node = NodeCore(capacity=64)
    node.receive([lines()[idx] for idx in rng.sample(range(n), 30)])
    ahead = k - 1 > node.state.last_event_applied_idx
    assert node.join(folded(k)) is ahead
    tail = list(range(k, n))
    rng.shuffle(tail)
    node.receive([lines()[idx] for idx in tail])
    for _ in range(n):
        if node.missing is None:
            break
        node.receive(lines()[node.missing : node.missing + PAGE])
    assert node.missing is None
    assert node.state == full()


def test_nodes_follow_a_master_through_a_lossy_broadcast() -> None:
    master = MasterCore(("master", 1))
    counts: dict[str, int] = {}
    wire = []
    for event in trace():
        sender = str(event.origin) if event.origin is not None else "master"
        wire.append(
            envelope(f"{sender}/0", counts.setdefault(sender, 0), clusterstate.encode_event(event.event), sender)
        )
        counts[sender] += 1
    rng = random.Random(5)
    nodes = [NodeCore(capacity=32) for _ in range(3)]
    broadcast: list[bytes] = []
    for start in range(0, len(wire), 20):
        result = master.ingest(wire[start : start + 20])
        assert result.rejected == []
        broadcast += result.broadcast
        for node in nodes:  # each node gets its own lossy, reordered, duplicated copy of the broadcast
            copy = [line for line in result.broadcast if rng.random() > 0.2]
            copy += rng.sample(copy, len(copy) // 4)
            rng.shuffle(copy)
            node.receive(copy)
            node.note_master_index(master.next_index)  # the master's heartbeat
    for node in nodes:
        while (fetch := node.missing) is not None:  # catch-up pages, served from what the master broadcast
            assert node.receive(broadcast[fetch : fetch + PAGE]).applied >= 1
        assert node.state == master.state
        assert node.next_index == master.next_index == len(trace())


def test_bad_arguments() -> None:
    node = NodeCore()
    with pytest.raises(TypeError, match="event 1"):
        node.receive([lines()[0], "not bytes"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        node.receive([lines()[0], 42])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        node.receive(42)  # type: ignore[arg-type]
    assert node.counters["received"] == 0  # nothing was received
    assert node.next_index == 0
    with pytest.raises(TypeError):
        node.receive(lines()[0])  # type: ignore[arg-type]  # bytes iterate as ints
    assert node.counters["received"] == 0
    result = node.receive(iter([bytearray(lines()[0])]))  # any iterable of bytes or bytearray
    assert result.applied == 1
    with pytest.raises(clusterstate.DecodeError):
        NodeCore(42)  # type: ignore[arg-type]
    with pytest.raises(clusterstate.DecodeError):
        node.join("state")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        NodeCore(capacity=0)
    with pytest.raises(OverflowError):
        node.note_master_index(-1)
    assert NodeCore(capacity=3).capacity == 3
    assert "next_index=1" in repr(node)
    assert "applied=0" in repr(node.receive([]))
