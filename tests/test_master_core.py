"""The master's ingest path (``clusterstate.MasterCore``, issue 6): envelopes in, indexed events out.

Envelopes are built from generated traces (one producer per node, per-node sequence numbers) and
delivered in order, shuffled, duplicated and with gaps; the master must apply every event exactly
once, in each producer's order, and its State must equal the reference replay of what it
broadcast. Bad envelopes (malformed, unknown tag, spoofed, other session) never reach the State.
"""

from __future__ import annotations

import functools
import json
import random
from collections import defaultdict
from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clusterstate
from clusterstate import MasterCore, reference
from clusterstate.models import IndexedEvent, NodeDisconnected, NodeId, NodeTimedOut, SessionId
from clusterstate.trace import generate_trace

SESSION = ("master", 1)
TRACE = {"nodes": 4, "duration_s": 60.0, "seed": 3, "silent_nodes": 1}


def envelope(
    producer: str,
    origin_idx: int,
    event: bytes,
    node: str,
    session: tuple[str, int] = SESSION,
) -> bytes:
    head = json.dumps(
        {
            "origin": producer,
            "origin_idx": origin_idx,
            "session": {"master_node_id": session[0], "election_clock": session[1]},
        }
    ).encode()
    return head[:-1] + b', "event": ' + event + b', "node_id": ' + json.dumps(node).encode() + b"}"


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


def decoded(broadcast: Sequence[bytes]) -> list[IndexedEvent]:
    return [clusterstate.decode_indexed_event(line) for line in broadcast]


def assert_consistent(master: MasterCore, broadcast: Sequence[bytes]) -> list[IndexedEvent]:
    """The master's State is the reference replay of everything it broadcast, indexed 0, 1, 2, ..."""
    events = decoded(broadcast)
    assert [event.idx for event in events] == list(range(len(events)))
    assert master.state == reference.fold(events)
    assert master.next_index == len(events)
    return events


def info_event(node: str, event_id: str = "g") -> bytes:
    return json.dumps(
        {"NodeGatheredInfo": {"event_id": event_id, "node_id": node, "info": {"MiscData": {"friendly_name": node}}}}
    ).encode()


def test_event(event_id: str) -> bytes:
    return json.dumps({"TestEvent": {"event_id": event_id}}).encode()


test_event.__test__ = False  # type: ignore[attr-defined]


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


@functools.cache
def trace() -> list[IndexedEvent]:
    return generate_trace(**TRACE)  # type: ignore[arg-type]


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
    result = master.ingest([envelope("p", 2, test_event("c"), "a"), envelope("p", 1, test_event("b"), "a")])
    assert result.broadcast == []
    assert result.acknowledged == []
    assert master.counters["buffered"] == 2
    assert master.producer_next("p") == 0
    result = master.ingest([envelope("p", 0, test_event("a"), "a")])
    assert [event.event.event_id for event in decoded(result.broadcast)] == ["a", "b", "c"]
    assert result.acknowledged == [("p", 0), ("p", 1), ("p", 2)]
    assert master.counters["buffered"] == 0
    assert master.producer_next("p") == 3


def test_restarted_producer_is_a_new_producer() -> None:
    master = MasterCore(SESSION)
    old = [envelope("a/boot1", i, test_event(f"old{i}"), "a") for i in range(3)]
    new = [envelope("a/boot2", i, test_event(f"new{i}"), "a") for i in range(2)]
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
            envelope("p", 0, test_event("old"), "a", session=("master", 0)),
            envelope("p", 0, test_event("other"), "a", session=("other", 1)),
        ]
    )
    assert result.broadcast == []
    assert result.rejected == []
    assert result.acknowledged == []
    assert master.counters["other_session"] == 2
    assert master.producer_next("p") is None
    assert master.state == clusterstate.CoreState()
    result = master.ingest([envelope("p", 0, test_event("mine"), "a")])
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
        (envelope("p", 0, test_event("e"), "a").replace(b'"origin_idx": 0', b'"origin_idx": -1'), "malformed"),
        (envelope("p", 0, test_event("e"), "a")[:-1], "malformed"),
        (envelope("p", 0, test_event("e"), "a")[:-1] + b', "x": 1}', "malformed"),
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
            envelope("p", 1, test_event("b"), "a"),
            envelope("p", 1, test_event("B"), "a"),  # a different event at a buffered index
            envelope("p", 1, test_event("b"), "a"),  # the same one: a duplicate
            envelope("p", 4, test_event("e"), "a"),  # 4 ahead of 0 with capacity 4
        ]
    )
    assert result.rejected == [(1, "conflict"), (3, "buffer_full")]
    counters = master.counters
    assert (counters["rejected_conflict"], counters["rejected_buffer_full"], counters["duplicates"]) == (1, 1, 1)
    # Once 0 and 1 are out, the window is 2..5: 4 is taken, 6 is not.
    result = master.ingest(
        [
            envelope("p", 0, test_event("a"), "a"),
            envelope("p", 4, test_event("e"), "a"),
            envelope("p", 6, test_event("g"), "a"),
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
        master.ingest([envelope("p", 0, test_event("a"), "a"), "not bytes"])  # type: ignore[list-item]
    assert master.counters["ingested"] == 0  # nothing was ingested
    result = master.ingest([bytearray(envelope("p", 0, test_event("a"), "a"))])
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
        NodeDisconnected(event_id="d", node_id=NodeId("a"), last_index=0, stale_cycles=3),
        NodeTimedOut(event_id="t", node_id=NodeId("a")),
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
