"""The master's ingest path (``clusterstate.MasterCore``): envelopes in, indexed events out.

Envelopes are built from generated traces (one producer per node, per-node sequence numbers) and
delivered in order, shuffled, duplicated and with gaps; the master must apply every event exactly
once, in each producer's order, and its State must equal the reference replay of what it
broadcast. Bad envelopes (malformed, unknown tag, spoofed, other session) never reach the State.
"""

from __future__ import annotations

import errno
import random
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clusterstate
from clusterstate import EventLog, IngestResult, MasterCore, NodeStaleness, reference
from clusterstate.errors import IndexAheadError, LogClosedError, LogFullError, NoLogError, SnapshotRequiredError
from clusterstate.models import EventId, IndexedEvent, NodeDisconnected, NodeId, NodeTimedOut, SessionId
from event_bytes import info_event, noop_event
from support.envelopes import SESSION, assert_consistent, decoded, envelope
from support.traces import trace


def trace_envelopes(events: Sequence[IndexedEvent], restart_every: int = 0) -> list[tuple[str, int, bytes]]:
    """`(producer, origin_idx, envelope)` for every event, sent by its origin node (the master if none).

    With `restart_every`, a node's producer restarts (a new id, sequence numbers from 0) every so many events.
    """
    counts: dict[str, int] = defaultdict(int)
    out = []
    for event in events:
        node = str(event.origin) if event.origin is not None else SESSION[0]
        n = counts[node]
        counts[node] += 1
        generation, seq = divmod(n, restart_every) if restart_every else (0, n)
        producer = f"{node}/{generation}"
        out.append((producer, seq, envelope(producer, seq, clusterstate.encode_event(event.event), node)))
    return out


def test_in_order_delivery_applies_the_trace() -> None:
    events = trace()
    sent = trace_envelopes(events)
    master = MasterCore(SESSION)
    result = master.ingest([bytes_ for _, _, bytes_ in sent])
    assert result.rejected == []
    assert result.acknowledged == [(producer, seq) for producer, seq, _ in sent]
    out = assert_consistent(master, result.broadcast)
    assert [event.event for event in out] == [event.event for event in events]
    assert [event.origin for event in out] == [event.origin or SESSION[0] for event in events]
    assert master.counters["applied"] == master.counters["ingested"] == len(events)
    assert master.counters["rejected"] == master.counters["buffered"] == master.counters["duplicates"] == 0


def deliver(master: MasterCore, batches: Sequence[Sequence[bytes]]) -> tuple[list[bytes], list[tuple[str, int]]]:
    """Ingest every batch; the broadcast events and, aligned with them, their `(producer, origin_idx)`."""
    broadcast: list[bytes] = []
    applied: list[tuple[str, int]] = []
    for batch in batches:
        result = master.ingest(batch)
        assert result.rejected == []
        broadcast += result.broadcast
        # The acknowledgements of the applied events come first, in broadcast order; re-acknowledgements follow.
        applied += result.acknowledged[: len(result.broadcast)]
    return broadcast, applied


def streams(producers: Sequence[str], events: Sequence[IndexedEvent]) -> dict[str, list[object]]:
    """Each producer's events, in order."""
    out: dict[str, list[object]] = defaultdict(list)
    for producer, event in zip(producers, events, strict=True):
        out[producer].append(event.event)
    return dict(out)


@settings(max_examples=20)
@given(seed=st.integers(0, 2**32 - 1), batch=st.integers(1, 64), restart_every=st.sampled_from([0, 7]))
def test_shuffled_duplicated_gapped_delivery_is_exactly_once(seed: int, batch: int, restart_every: int) -> None:
    events = trace()
    sent = trace_envelopes(events, restart_every)
    rng = random.Random(seed)
    # Every envelope at least once, a third of them twice, in a random order: gaps, out-of-order, duplicates.
    wire = [bytes_ for _, _, bytes_ in sent]
    wire += rng.sample(wire, len(wire) // 3)
    rng.shuffle(wire)
    master = MasterCore(SESSION, capacity=len(sent))
    broadcast, applied = deliver(master, [wire[i : i + batch] for i in range(0, len(wire), batch)])
    out = assert_consistent(master, broadcast)
    assert len(out) == len(events)  # exactly once
    # Each producer's events come out in the producer's order, each acknowledged once as applied.
    assert sorted(applied) == sorted((producer, seq) for producer, seq, _ in sent)
    assert streams([producer for producer, _ in applied], out) == streams([p for p, _, _ in sent], events)
    counters = master.counters
    assert counters["applied"] == len(events)
    assert counters["duplicates"] == len(wire) - len(events)
    assert counters["buffered"] == counters["rejected"] == 0


def test_same_delivery_gives_the_same_state() -> None:
    events = trace()
    wire = [bytes_ for _, _, bytes_ in trace_envelopes(events)]
    rng = random.Random(7)
    wire += rng.sample(wire, 50)
    rng.shuffle(wire)
    first, second = MasterCore(SESSION), MasterCore(SESSION)
    one, _ = deliver(first, [wire[i : i + 16] for i in range(0, len(wire), 16)])
    two, _ = deliver(second, [wire[i : i + 5] for i in range(0, len(wire), 5)])
    assert one == two  # the result depends on the order of the envelopes, not on how they are batched
    assert first.state == second.state
    # In-order delivery of the resequenced stream (each producer's order kept) gives the same State.
    replay = MasterCore(SESSION)
    nodes_seq: dict[str, int] = defaultdict(int)
    rebuilt = []
    for event in decoded(one):
        node = str(event.origin)
        rebuilt.append(envelope(f"{node}/0", nodes_seq[node], clusterstate.encode_event(event.event), node))
        nodes_seq[node] += 1
    deliver(replay, [rebuilt])
    assert replay.state == first.state


def test_gap_waits_then_fills() -> None:
    master = MasterCore(SESSION)
    result = master.ingest([envelope("p", 2, noop_event("c"), "a"), envelope("p", 1, noop_event("b"), "a")])
    assert result.broadcast == []
    assert result.acknowledged == []
    assert master.counters["buffered"] == 2
    assert master.producer_next("p") == 0
    result = master.ingest([envelope("p", 0, noop_event("a"), "a")])
    assert [event.event.event_id for event in decoded(result.broadcast)] == ["a", "b", "c"]
    assert result.acknowledged == [("p", 0), ("p", 1), ("p", 2)]
    assert master.counters["buffered"] == 0
    assert master.producer_next("p") == 3


def test_restarted_producer_is_a_new_producer() -> None:
    master = MasterCore(SESSION)
    old = [envelope("a/boot1", i, noop_event(f"old{i}"), "a") for i in range(3)]
    new = [envelope("a/boot2", i, noop_event(f"new{i}"), "a") for i in range(2)]
    broadcast, _ = deliver(master, [old, new])
    assert [event.event.event_id for event in decoded(broadcast)] == ["old0", "old1", "old2", "new0", "new1"]
    # A late resend of the old instance is a stale copy: dropped, acknowledged again, not applied.
    result = master.ingest([old[0]])
    assert result.broadcast == []
    assert result.acknowledged == [("a/boot1", 0)]
    assert master.counters["duplicates"] == 1
    assert master.producer_next("a/boot1") == 3
    assert master.producer_next("a/boot2") == 2
    assert_consistent(master, broadcast)


def test_other_sessions_are_ignored() -> None:
    master = MasterCore(SessionId(master_node_id=NodeId("master"), election_clock=1))
    assert master.session == SESSION
    result = master.ingest(
        [
            envelope("p", 0, noop_event("old"), "a", session=("master", 0)),
            envelope("p", 0, noop_event("other"), "a", session=("other", 1)),
        ]
    )
    assert result.broadcast == []
    assert result.rejected == []
    assert result.acknowledged == []
    assert master.counters["other_session"] == 2
    assert master.producer_next("p") is None
    assert master.state == clusterstate.CoreState()
    result = master.ingest([envelope("p", 0, noop_event("mine"), "a")])
    assert [event.event.event_id for event in decoded(result.broadcast)] == ["mine"]


@pytest.mark.parametrize(
    "kind", ["NodeGatheredInfo", "NodeDownloadProgress", "TopologyEdgeCreated", "TopologyEdgeDeleted"]
)
def test_spoofed_node_scoped_events_are_rejected(kind: str) -> None:
    event = next(event for event in trace() if type(event.event).__name__ == kind)
    data = clusterstate.encode_event(event.event)
    master = MasterCore(SESSION)
    result = master.ingest([envelope("p", 0, data, "intruder"), envelope("q", 0, data, str(event.origin))])
    assert result.rejected == [(0, "spoofed")]
    assert len(result.broadcast) == 1  # the same event from the node it is about is applied
    assert master.counters["rejected_spoofed"] == master.counters["rejected"] == 1
    assert master.producer_next("p") is None
    assert_consistent(master, result.broadcast)


def test_a_producer_id_is_bound_to_its_node() -> None:
    master = MasterCore(SESSION)
    result = master.ingest([envelope("p", 0, info_event("a"), "a"), envelope("p", 1, info_event("b"), "b")])
    assert len(result.broadcast) == 1
    assert result.rejected == [(1, "spoofed")]
    assert master.state.node_identities.keys() == {"a"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "malformed"),
        (b"\xff\xfe", "malformed"),
        (b"[1, 2]", "malformed"),
        (b"{}", "malformed"),
        (envelope("p", 0, b'{"Nope": {}}', "a"), "unknown_tag"),
        (envelope("p", 0, b'{"TestEvent": {"event_id": "e", "extra": 1}}', "a"), "malformed"),
        (envelope("p", 0, noop_event("e"), "a").replace(b'"origin_idx":0', b'"origin_idx":-1'), "malformed"),
        (envelope("p", 0, noop_event("e"), "a")[:-1], "malformed"),
        (envelope("p", 0, noop_event("e"), "a")[:-1] + b', "x": 1}', "malformed"),
    ],
)
def test_malformed_bytes_are_rejected_and_counted(data: bytes, reason: str) -> None:
    master = MasterCore(SESSION)
    master.ingest([envelope("p", 0, info_event("a"), "a")])
    before = master.state
    result = master.ingest([data, data])
    assert result.rejected == [(0, reason), (1, reason)]
    assert result.broadcast == []
    assert result.acknowledged == []
    assert master.state.model_dump_json() == before.model_dump_json()
    assert master.counters["rejected"] == master.counters[f"rejected_{reason}"] == 2
    assert master.counters["ingested"] == 3
    assert master.next_index == 1


def test_conflicts_and_the_bound_are_rejected() -> None:
    master = MasterCore(SESSION, capacity=4)
    result = master.ingest(
        [
            envelope("p", 1, noop_event("b"), "a"),
            envelope("p", 1, noop_event("B"), "a"),  # a different event at a buffered index
            envelope("p", 1, noop_event("b"), "a"),  # the same one: a duplicate
            envelope("p", 4, noop_event("e"), "a"),  # 4 ahead of 0 with capacity 4
        ]
    )
    assert result.rejected == [(1, "conflict"), (3, "buffer_full")]
    counters = master.counters
    assert (counters["rejected_conflict"], counters["rejected_buffer_full"], counters["duplicates"]) == (1, 1, 1)
    # Once 0 and 1 are out, the window is 2..5: 4 is taken, 6 is not.
    result = master.ingest(
        [
            envelope("p", 0, noop_event("a"), "a"),
            envelope("p", 4, noop_event("e"), "a"),
            envelope("p", 6, noop_event("g"), "a"),
        ]
    )
    assert len(result.broadcast) == 2
    assert result.rejected == [(2, "buffer_full")]
    assert master.counters["buffered"] == 1
    assert master.producer_next("p") == 2
    assert [event.event.event_id for event in decoded(result.broadcast)] == ["a", "b"]  # the first one was kept


def test_bad_arguments() -> None:
    master = MasterCore(SESSION)
    with pytest.raises(TypeError):
        master.ingest([envelope("p", 0, noop_event("a"), "a"), "not bytes"])  # type: ignore[list-item]
    assert master.counters["ingested"] == 0  # nothing was ingested
    result = master.ingest([bytearray(envelope("p", 0, noop_event("a"), "a"))])
    assert len(result.broadcast) == 1
    with pytest.raises(clusterstate.DecodeError):
        MasterCore(("master",))  # type: ignore[arg-type]
    with pytest.raises(clusterstate.DecodeError):
        MasterCore(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="capacity"):
        MasterCore(SESSION, capacity=0)
    assert "next_index=1" in repr(master)


@pytest.mark.parametrize(
    "event",
    [
        NodeDisconnected(event_id=EventId("d"), node_id=NodeId("a"), last_index=0, stale_cycles=3),
        NodeTimedOut(event_id=EventId("t"), node_id=NodeId("a")),
    ],
    ids=["NodeDisconnected", "NodeTimedOut"],
)
def test_only_the_master_disconnects_nodes(event: NodeDisconnected | NodeTimedOut) -> None:
    master = MasterCore(SESSION)
    joined = master.ingest([envelope("pa", 0, info_event("a"), "a")])
    data = clusterstate.encode_event(event)
    result = master.ingest([envelope("pb", 0, data, "b"), envelope("pm", 0, data, SESSION[0])])
    assert result.rejected == [(0, "spoofed")]
    assert len(result.broadcast) == 1
    assert "a" not in master.state.topology
    assert_consistent(master, [*joined.broadcast, *result.broadcast])


# The event log, the plan cycle, catch-up pages and reopening.


def log_master(path: Path, session: tuple[str, int] = SESSION, **options: Any) -> MasterCore:
    return MasterCore(session, log=EventLog(path, create=True, durability="none"), **options)


def logged_events(path: Path) -> list[IndexedEvent]:
    """Every record of the log in `path`, read back by a fresh `EventLog` (the master must be closed)."""
    with EventLog(path) as log:
        return log.read_range(0, log.next_index)


def test_every_applied_event_is_logged_in_index_order(tmp_path: Path) -> None:
    events = trace()
    wire = [bytes_ for _, _, bytes_ in trace_envelopes(events)]
    rng = random.Random(11)
    wire += [*rng.sample(wire, 40), b"junk", envelope("p", 0, b'{"Nope": {}}', "a")]
    rng.shuffle(wire)
    master = log_master(tmp_path / "log", capacity=len(wire))
    broadcast, _ = deliver_allowing_rejects(master, [wire[i : i + 32] for i in range(0, len(wire), 32)])
    assert master.counters["appended"] == master.counters["applied"] == len(events)
    assert master.counters["rejected"] == 2
    state = master.state
    master.close()
    assert not master.has_log
    logged = logged_events(tmp_path / "log")
    assert [event.idx for event in logged] == list(range(len(events)))
    assert reference.fold(logged) == state  # the reference replay of the log is the master's State
    with EventLog(tmp_path / "log") as log:
        assert log.read_range_raw(0, log.next_index) == broadcast  # the log holds the broadcast bytes
    with pytest.raises(LogClosedError):
        master.ingest([envelope("late", 0, noop_event("x"), "a")])
    master.close()  # closing twice is a no-op


def deliver_allowing_rejects(master: MasterCore, batches: Sequence[Sequence[bytes]]) -> tuple[list[bytes], int]:
    broadcast: list[bytes] = []
    rejected = 0
    for batch in batches:
        result = master.ingest(batch)
        broadcast += result.broadcast
        rejected += len(result.rejected)
    return broadcast, rejected


def test_the_master_owns_the_log_it_is_given(tmp_path: Path) -> None:
    log = EventLog(tmp_path / "log", create=True)
    with pytest.raises(ValueError, match="threshold"):
        MasterCore(SESSION, log=log, threshold=0)
    assert not log.closed  # a bad option does not take the log
    master = MasterCore(SESSION, log=log)
    assert master.has_log
    assert log.closed
    with pytest.raises(LogClosedError, match="MasterCore"):
        log.append(IndexedEvent.model_validate({"idx": 0, "event": {"TestEvent": {}}}))
    with pytest.raises(LogClosedError, match="MasterCore"):
        _ = log.next_index
    with pytest.raises(LogClosedError, match="MasterCore"):
        MasterCore(SESSION, log=log)
    log.close()  # a no-op: the master closes it
    master.close()
    with EventLog(tmp_path / "log") as reopened:  # the directory is free again
        assert reopened.next_index == 0


def test_malformed_bytes_touch_neither_the_state_nor_the_log(tmp_path: Path) -> None:
    master = log_master(tmp_path / "log")
    master.ingest([envelope("p", 0, info_event("a"), "a")])
    before = master.state
    bad = [b"", b"{}", envelope("p", 1, b'{"Nope": {}}', "a"), envelope("q", 0, info_event("b"), "a")]
    result = master.ingest(bad)
    assert [reason for _, reason in result.rejected] == ["malformed", "malformed", "unknown_tag", "spoofed"]
    assert result.broadcast == []
    assert master.state == before
    assert master.counters["appended"] == 1
    assert master.next_index == 1
    assert len(master.events_since(0)) == 1
    master.close()
    assert len(logged_events(tmp_path / "log")) == 1


@pytest.mark.parametrize("snapshot", [False, True], ids=["tail-only", "snapshot-midway"])
def test_a_reopened_master_continues_the_index_without_a_gap(tmp_path: Path, snapshot: bool) -> None:
    events = trace()
    sent = [bytes_ for _, _, bytes_ in trace_envelopes(events)]
    half = len(sent) // 2
    master = log_master(tmp_path / "log")
    first = master.ingest(sent[:half]).broadcast
    if snapshot:
        assert master.snapshot() == half - 1
    first += master.ingest(sent[half:]).broadcast
    state, next_index = master.state, master.next_index
    assert next_index == len(events)
    master.close()

    restarted = MasterCore(("master", 2), log=EventLog(tmp_path / "log"))
    assert restarted.loaded_snapshot_index == (half - 1 if snapshot else None)
    assert restarted.state == state
    assert restarted.next_index == next_index
    assert restarted.producer_next("a/0") is None  # no producer table: a new session, producers re-address
    result = restarted.ingest(
        [envelope("n/new", i, noop_event(f"new{i}"), "n", session=("master", 2)) for i in range(3)]
    )
    assert [event.idx for event in decoded(result.broadcast)] == [next_index, next_index + 1, next_index + 2]
    assert restarted.events_since(0, 10_000) == first + result.broadcast
    restarted.close()
    logged = logged_events(tmp_path / "log")
    assert [event.idx for event in logged] == list(range(next_index + 3))
    assert reference.fold(logged) == restarted.state


def test_events_resent_after_a_restart_are_not_applied_twice(tmp_path: Path) -> None:
    master = log_master(tmp_path / "log")
    ids = [f"e{i}" for i in range(6)]
    result = master.ingest([envelope("a/boot", i, noop_event(ids[i]), "a") for i in range(5)])
    assert len(result.broadcast) == 5  # ... and the master dies before e3's and e4's acknowledgements go out
    master.close()

    new_session = ("master", 2)
    restarted = MasterCore(new_session, log=EventLog(tmp_path / "log"), dedup_window=3)
    # The producer re-addresses its unacknowledged e3, e4 (and a new e5) to the new session, renumbered from 0.
    resent = [envelope("a/boot", n, noop_event(ids[3 + n]), "a", session=new_session) for n in range(3)]
    result = restarted.ingest(resent)
    assert [event.event.event_id for event in decoded(result.broadcast)] == ["e5"]
    assert decoded(result.broadcast)[0].idx == 5
    assert sorted(result.acknowledged) == [("a/boot", 0), ("a/boot", 1), ("a/boot", 2)]
    assert restarted.counters["replayed_duplicates"] == 2
    assert restarted.counters["applied"] == 1
    assert restarted.ingest(resent[:1]).acknowledged == [("a/boot", 0)]  # a later copy is merely stale
    restarted.close()
    logged = logged_events(tmp_path / "log")
    assert [event.event.event_id for event in logged] == ids  # each exactly once
    assert reference.fold(logged) == restarted.state
    # The window is bounded: a resend older than the last `dedup_window` records is not recognised.
    again = MasterCore(("master", 3), log=EventLog(tmp_path / "log"), dedup_window=2)
    result = again.ingest([envelope("a/boot", 0, noop_event("e3"), "a", session=("master", 3))])
    assert len(result.broadcast) == 1
    assert again.counters["replayed_duplicates"] == 0


def test_plan_cycle_disconnects_a_node_that_stops_producing(tmp_path: Path) -> None:
    master = log_master(tmp_path / "log", period_s=10.0, threshold=3)
    joined = master.ingest([envelope("a/0", 0, info_event("a"), "a"), envelope("b/0", 0, info_event("b"), "b")])
    broadcast = list(joined.broadcast)
    disconnected_at = []
    for cycle in range(6):
        # a keeps producing; b has been silent since its first event (index 1).
        broadcast += master.ingest([envelope("a/0", cycle + 1, noop_event(f"a{cycle}"), "a")]).broadcast
        result = master.plan_cycle(cycle * 10.0)
        assert len(result.broadcast) == len(result.decisions)
        if result.decisions:
            disconnected_at.append(cycle)
            assert result.decisions == [NodeStaleness("b", 1, 3)]
            out = decoded(result.broadcast)
            assert out[0].origin == SESSION[0]  # produced by the master itself
            assert isinstance(out[0].event, NodeDisconnected)
            assert (out[0].event.node_id, out[0].event.last_index, out[0].event.stale_cycles) == ("b", 1, 3)
            assert master.events_since(out[0].idx, 1) == result.broadcast  # logged
        broadcast += result.broadcast
    # Cycle 0 is the grace cycle; cycles 1, 2 and 3 count: b is disconnected at the third, once.
    assert disconnected_at == [3]
    assert master.counters["disconnects"] == 1
    assert "b" not in master.state.topology
    assert "a" in master.state.topology
    master.close()
    logged = logged_events(tmp_path / "log")
    assert [event.idx for event in logged] == list(range(len(broadcast)))
    assert reference.fold(logged) == master.state
    assert reference.fold(decoded(broadcast)) == master.state


def test_a_master_that_indexes_nothing_disconnects_nobody() -> None:
    master = MasterCore(SESSION, threshold=1)
    master.ingest([envelope("a/0", 0, info_event("a"), "a")])
    # The global index does not advance between these cycles: silence is no evidence (the stall guard).
    assert [master.plan_cycle(t).decisions for t in (0.0, 10.0, 20.0)] == [[], [], []]
    assert master.counters["disconnects"] == 0


def test_events_since_pages_cover_the_log(tmp_path: Path) -> None:
    with pytest.raises(NoLogError):
        MasterCore(SESSION).events_since(0)
    with pytest.raises(NoLogError):
        MasterCore(SESSION).snapshot()
    events = trace()
    path = tmp_path / "log"
    master = MasterCore(SESSION, log=EventLog(path, create=True, durability="none", segment_bytes=4096))
    broadcast = master.ingest([bytes_ for _, _, bytes_ in trace_envelopes(events)]).broadcast
    pages = []
    idx = 0
    while page := master.events_since(idx, 97):
        assert len(page) <= 97
        pages.append(page)
        idx += len(page)
    assert idx == master.next_index == len(events)
    assert [len(page) for page in pages[:-1]] == [97] * (len(pages) - 1)
    assert [line for page in pages for line in page] == broadcast
    assert master.events_since(3, 0) == []
    assert len(master.events_since(0, 10**9)) == min(len(events), 10_000)
    with pytest.raises(IndexAheadError) as ahead:
        master.events_since(len(events) + 1)
    assert (ahead.value.idx, ahead.value.next_index) == (len(events) + 1, len(events))
    master.snapshot()
    master.close()
    # Drop the first segment, as a compaction behind the snapshot would: the pages before it are gone.
    segments = sorted(path.glob("*.seg"))
    assert len(segments) > 2
    segments[0].unlink()
    first = int(segments[1].name.removesuffix(".seg"))
    reopened = MasterCore(("master", 2), log=EventLog(path))
    with pytest.raises(SnapshotRequiredError) as before:
        reopened.events_since(first - 1)
    assert (before.value.idx, before.value.first_index) == (first - 1, first)
    assert reopened.events_since(first, 5) == broadcast[first : first + 5]
    reopened.close()
    with pytest.raises(LogClosedError):
        reopened.events_since(first)


def test_a_full_disk_leaves_the_master_consistent_with_its_log(tiny_disk: Path) -> None:
    mount = tiny_disk
    ballast = mount / "ballast"
    ballast.write_bytes(b"\0" * 16384)  # freed later, so that the disk works again
    master = MasterCore(SESSION, log=EventLog(mount / "log", create=True))  # fsync on every append
    broadcast: list[bytes] = []
    acknowledged: list[tuple[str, int]] = []
    sent = [envelope("p", i, noop_event(f"{i:04d}" + "x" * 200), "a") for i in range(400)]
    failure = None
    for i in range(0, len(sent), 8):
        try:
            result = master.ingest(sent[i : i + 8])
        except LogFullError as err:
            failure = (i, err)
            break
        broadcast += result.broadcast
        acknowledged += result.acknowledged
    assert failure is not None, "the tmpfs never filled up"
    at, full = failure
    assert isinstance(full, OSError)
    assert full.errno == errno.ENOSPC
    done = full.result  # type: ignore[attr-defined]
    assert isinstance(done, IngestResult)
    broadcast += done.broadcast
    acknowledged += done.acknowledged
    # Nothing the log refused was applied or acknowledged: State, index and acknowledgements follow the log.
    assert master.next_index == len(broadcast) == len(acknowledged)
    assert acknowledged == [("p", i) for i in range(len(broadcast))]
    assert master.state == reference.fold(decoded(broadcast))
    assert master.producer_next("p") == len(broadcast)  # rewound: the refused events will be accepted again
    assert master.counters["unlogged"] == at + 8 - len(broadcast)
    ballast.unlink()
    result = master.ingest(sent[len(broadcast) : at + 8])  # the producer resends what was not acknowledged
    assert [event.idx for event in decoded(result.broadcast)] == list(range(len(broadcast), at + 8))
    broadcast += result.broadcast
    master.close()
    logged = logged_events(mount / "log")
    assert [event.idx for event in logged] == list(range(at + 8))
    assert reference.fold(logged) == master.state


def test_a_full_disk_under_buffered_durability_makes_the_master_let_go_of_its_log(tiny_disk: Path) -> None:
    mount = tiny_disk
    # Buffered: records reach the disk only when the 1 MiB write buffer fills, long after they were applied
    # and acknowledged; the write that finds the disk full loses them.
    master = MasterCore(SESSION, log=EventLog(mount / "log", create=True, durability="none"))
    sent = [envelope("p", i, noop_event(f"{i:05d}" + "x" * 200), "a") for i in range(8000)]
    failure = None
    for i in range(0, len(sent), 100):
        try:
            master.ingest(sent[i : i + 100])
        except LogFullError as err:
            failure = err
            break
    assert failure is not None, "the tmpfs never filled up"
    with pytest.raises(LogClosedError):  # the log lost records the State holds: the master let go of it
        master.ingest([sent[0]])
    logged = logged_events(mount / "log")  # the directory is free again
    assert len(logged) < master.next_index  # acknowledged events the disk never got
    reopened = MasterCore(("master", 2), log=EventLog(mount / "log"))  # what the disk holds, nothing more
    assert reopened.next_index == len(logged)
    assert reopened.state == reference.fold(logged)
    reopened.close()
