"""The benchmark's pure-Python master pipeline (``benches/pipeline.py``) does what ``MasterCore.ingest`` does.

The master ingest benchmark compares the two on the same envelope bytes; the comparison only means something if
the Python side does the same work with the same result: byte-identical broadcast, the same acknowledgements and
refusals, and the same final State.
"""

from __future__ import annotations

import io
import itertools
import json
import struct
from collections import defaultdict

import pytest

from bench_log import crc
from clusterstate import MasterCore
from clusterstate.models import NodeId, SessionId
from event_bytes import disconnect_event, info_event, noop_event
from pipeline import BLOCK, PythonMaster, Workload, build_workload, envelope

SESSION = SessionId(master_node_id=NodeId("m"), election_clock=1)


def session_tuple(session: SessionId) -> tuple[str, int]:
    return (session.master_node_id, session.election_clock)


@pytest.fixture(scope="module", params=[4, 16], ids=lambda nodes: f"{nodes}nodes")
def workload(request: pytest.FixtureRequest) -> Workload:
    return build_workload(request.param, tail=3 * BLOCK, warm=500, seed=1)


def test_workload_is_reordered_within_blocks(workload: Workload) -> None:
    assert len(workload.warm) == 500
    assert len(workload.tail) == 3 * BLOCK
    nodes = [node for node, _ in workload.producers.values()]
    assert len(set(nodes)) == len(nodes)  # one producer per node
    next_seq = {producer: seq for producer, (_, seq) in workload.producers.items()}
    late = 0
    for start in range(0, len(workload.tail), BLOCK):
        sent: dict[str, list[int]] = defaultdict(list)
        for data in workload.tail[start : start + BLOCK]:
            decoded = json.loads(data)
            sent[decoded["origin"]].append(decoded["origin_idx"])
        for producer, seqs in sent.items():
            first = next_seq.get(producer, 0)
            assert sorted(seqs) == list(range(first, first + len(seqs)))  # no gap, nothing crosses a block boundary
            late += sum(later < earlier for earlier, later in itertools.pairwise(seqs))
            next_seq[producer] = first + len(seqs)
    assert late == workload.reordered > 0


def test_same_broadcast_and_state_as_master_core(workload: Workload) -> None:
    master = MasterCore(session_tuple(workload.session))
    log = io.BytesIO()
    pipeline = PythonMaster(workload.session, log=log)
    batches = [workload.warm, *(workload.tail[start : start + BLOCK] for start in range(0, 3 * BLOCK, BLOCK))]
    broadcast: list[bytes] = []
    acknowledged: list[tuple[str, int]] = []
    for batch in batches:
        expected = master.ingest(batch)
        got = pipeline.ingest(batch)
        assert got.rejected == expected.rejected == []
        assert got.broadcast == expected.broadcast  # byte for byte
        assert got.acknowledged == expected.acknowledged
        broadcast += got.broadcast
        acknowledged += got.acknowledged
    total = len(workload.warm) + len(workload.tail)
    assert len(broadcast) == total
    assert pipeline.state == master.state
    assert pipeline.state.last_event_applied_idx == total - 1
    # Every producer's events were applied in its order, each once.
    per_producer: dict[str, list[int]] = defaultdict(list)
    for producer, seq in acknowledged:
        per_producer[producer].append(seq)
    assert all(seqs == list(range(len(seqs))) for seqs in per_producer.values())
    # The log holds one valid frame per broadcast event, in index order.
    data, offset, frames = log.getvalue(), 0, []
    while offset < len(data):
        length, idx, payload_crc, head_crc = struct.unpack_from("<IQII", data, offset)
        assert head_crc == crc(data[offset : offset + 16])
        payload = data[offset + 20 : offset + 20 + length]
        assert payload_crc == crc(payload)
        frames.append((idx, payload))
        offset += 20 + length
    assert frames == list(enumerate(broadcast))


def test_warm_start_continues_like_the_master(workload: Workload) -> None:
    master = MasterCore(session_tuple(workload.session))
    master.ingest(workload.warm)
    pipeline = PythonMaster(workload.session, state=master.state.to_pydantic(), producers=workload.producers)
    batch = workload.tail[:BLOCK]
    expected = master.ingest(batch)
    got = pipeline.ingest(batch)
    assert got.broadcast == expected.broadcast
    assert len(got.broadcast) == BLOCK
    assert pipeline.state == master.state


def test_refusals_match_master_core() -> None:
    other = SessionId(master_node_id=NodeId("m"), election_clock=0)
    batches = [
        [
            envelope("p", 0, SESSION, info_event("a", "a0"), "a"),
            envelope("p", 2, SESSION, noop_event("c"), "a"),  # waits for 1
            envelope("p", 2, SESSION, noop_event("c"), "a"),  # the same copy: a duplicate
            envelope("p", 2, SESSION, noop_event("C"), "a"),  # another event at a buffered index: conflict
            envelope("p", 9, SESSION, noop_event("z"), "a"),  # capacity 4: too far ahead
            envelope("p", 0, SESSION, info_event("a", "a0"), "a"),  # stale: re-acknowledged
            envelope("q", 0, SESSION, info_event("a", "spoof"), "b"),  # about another node
            envelope("p", 1, SESSION, noop_event("b"), "b"),  # the producer seen from another node
            envelope("q", 0, SESSION, disconnect_event("a"), "b"),  # only the master disconnects
            envelope("x", 0, other, noop_event("o"), "a"),  # another session: ignored
            envelope("p", 1, SESSION, b'{"Nope": {}}', "a"),
            envelope("p", 1, SESSION, b'{"TestEvent": {"event_id": "e", "extra": 1}}', "a"),
            envelope("p", 1, SESSION, noop_event("b"), "a")[:-1],
            envelope("p", 1, SESSION, noop_event("b"), "a").replace(b'"origin_idx":1', b'"origin_idx":-1'),
            envelope("p", 1, SESSION, noop_event("b"), "a"),  # fills the gap: releases 1 and 2
            envelope("m0", 0, SESSION, disconnect_event("a"), "m"),
        ],
        [envelope("p", 3, SESSION, noop_event("d"), "a"), envelope("p", 2, SESSION, noop_event("c"), "a")],
    ]
    master = MasterCore(session_tuple(SESSION), capacity=4)
    pipeline = PythonMaster(SESSION, capacity=4)
    rejected = []
    for batch in batches:
        expected = master.ingest(batch)
        got = pipeline.ingest(batch)
        assert got.rejected == expected.rejected
        assert got.acknowledged == expected.acknowledged
        assert got.broadcast == expected.broadcast
        rejected.append(got.rejected)
    assert rejected == [
        [
            (3, "conflict"),
            (4, "buffer_full"),
            (6, "spoofed"),
            (7, "spoofed"),
            (8, "spoofed"),
            (10, "unknown_tag"),
            (11, "malformed"),
            (12, "malformed"),
            (13, "malformed"),
        ],
        [],
    ]
    assert pipeline.state == master.state
    assert pipeline.next_index == master.next_index == 5
    assert pipeline.counters["other_session"] == master.counters["other_session"] == 1
    assert pipeline.counters["duplicates"] == master.counters["duplicates"]
