"""The producer side (``clusterstate.ProducerOutbox``): numbering, keeping, resending, retargeting.

Every envelope an outbox writes must be accepted by ``MasterCore.ingest``, and whatever the network does
(loss, copies, reordering, lost acknowledgements) every pushed event must end applied exactly once, in push
order, with the master's State the reference replay of its broadcast. Times are explicit ``now`` values.
"""

from __future__ import annotations

import json
import math
import random
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

import pytest

import clusterstate
from clusterstate import MasterCore, ProducerOutbox
from clusterstate.errors import ClusterStateError, DecodeError, OutboxFullError
from clusterstate.models import NodeId, SessionId, TestEvent
from event_bytes import info_event, noop_event
from support.envelopes import SESSION, assert_consistent
from support.traces import trace

T = TypeVar("T")


def outbox(
    producer: str = "p", node: str = "a", session: tuple[str, int] = SESSION, **options: float
) -> ProducerOutbox:
    return ProducerOutbox(producer, node, session, **options)  # type: ignore[arg-type]


def seqs(envelopes: Sequence[bytes]) -> list[int]:
    return [json.loads(envelope)["origin_idx"] for envelope in envelopes]


def broadcast_ids(broadcast: Sequence[bytes]) -> list[str]:
    """The `event_id`s of broadcast `TestEvent`s, checking the global indices run 0, 1, 2, ..."""
    events = [clusterstate.decode_indexed_event(line) for line in broadcast]
    assert [event.idx for event in events] == list(range(len(events)))
    out = []
    for event in events:
        assert isinstance(event.event, TestEvent)
        out.append(str(event.event.event_id))
    return out


def test_push_numbers_events_into_envelopes() -> None:
    box = outbox()
    assert (box.producer_id, box.node_id, box.session, box.next_seq, box.pending) == ("p", "a", SESSION, 0, 0)
    first = box.push(TestEvent(event_id="e0"), now=0.0)  # type: ignore[arg-type]
    assert json.loads(first) == {
        "origin": "p",
        "origin_idx": 0,
        "session": {"master_node_id": "master", "election_clock": 1},
        "event": {"TestEvent": {"event_id": "e0"}},
        "node_id": "a",
    }
    second = box.push(noop_event("e1"), now=0.0)
    third = box.push(bytearray(info_event("a")), now=0.0)
    assert seqs([first, second, third]) == [0, 1, 2]
    assert (box.next_seq, box.pending) == (3, 3)
    assert box.counters == {
        "pushed": 3,
        "sent": 3,
        "resent": 0,
        "resent_missing": 0,
        "retargeted": 0,
        "dropped_on_retarget": 0,
        "acknowledged": 0,
        "ignored_acks": 0,
        "refused_full": 0,
        "pending": 3,
    }


def test_a_trace_pushed_through_outboxes_is_applied_by_the_master() -> None:
    events = trace()
    boxes: dict[str, ProducerOutbox] = {}
    sent = []
    for event in events:
        node = str(event.origin)
        if node not in boxes:
            boxes[node] = ProducerOutbox(
                ProducerOutbox.new_producer_id(node), node, SessionId(master_node_id=NodeId("master"), election_clock=1)
            )
        sent.append(boxes[node].push(event.event, now=0.0))
    master = MasterCore(SESSION)
    result = master.ingest(sent)
    assert result.rejected == []
    out = assert_consistent(master, result.broadcast)
    assert [event.event for event in out] == [event.event for event in events]
    assert [event.origin for event in out] == [event.origin for event in events]
    for box in boxes.values():
        assert box.acknowledge(result.acknowledged) == box.counters["pushed"]
        assert box.pending == 0
        assert box.due(1e9) == []


def test_acknowledgements_remove_and_the_rest_is_ignored() -> None:
    box = outbox()
    for n in range(4):
        box.push(noop_event(f"e{n}"), now=0.0)
    assert box.acknowledge([1, 1, 9, -3, 2**70]) == 1
    assert box.acknowledge([("q", 0), ("p", 2), ("q", 3)]) == 1
    assert box.pending == 2
    with pytest.raises(TypeError):
        box.acknowledge([0, "3"])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        box.acknowledge([("p",)])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        box.acknowledge([3, ("q", "x")])  # type: ignore[list-item]
    with pytest.raises(TypeError):
        box.acknowledge([True])
    assert box.pending == 2  # a bad item: nothing acknowledged
    # A previous master's acknowledgement is ignored when the session is given.
    assert box.acknowledge([0], session=("master", 0)) == 0
    assert box.acknowledge([0], session=SessionId(master_node_id=NodeId("master"), election_clock=1)) == 1
    counters = box.counters
    # Removed: 1, 2, 0. Ignored: the repeated 1, 9, -3, 2**70, the old session's 0. q's pairs are not p's.
    assert (counters["acknowledged"], counters["ignored_acks"], counters["pending"]) == (3, 5, 1)
    assert seqs(box.due(10.0)) == [3]


def test_resend_is_by_age_with_backoff() -> None:
    box = outbox(resend_after_s=2.0, max_resend_after_s=5.0)
    e0 = box.push(noop_event("e0"), now=10.0)
    e1 = box.push(noop_event("e1"), now=11.0)
    assert box.due(11.9) == []
    assert box.due(12.0) == [e0]  # e0 is 2 s old, e1 only 1 s
    assert box.due(13.0) == [e1]  # e1 2 s old; e0 resent 1 s ago, next after 4 s
    assert box.due(15.9) == []
    assert box.due(16.0) == [e0]  # 12 + 4; its next interval is capped at 5
    assert box.due(17.0) == [e1]
    assert box.due(20.9) == []
    assert box.due(21.0) == [e0]  # 16 + 5 (the cap), not 16 + 8
    assert box.acknowledge([0]) == 1
    assert box.due(1000.0) == [e1]  # an acknowledged envelope is never resent
    assert box.counters["resent"] == 6
    assert box.counters["sent"] == 2


def test_the_master_reports_a_gap_and_the_outbox_resends_it_at_once() -> None:
    master = MasterCore(SESSION)
    box = outbox(resend_after_s=2.0, max_resend_after_s=5.0)
    e0, e1, e2 = (box.push(noop_event(f"e{i}"), now=0.0) for i in range(3))
    result = master.ingest([e2, e1])  # e0 lost
    assert (result.broadcast, result.acknowledged, result.missing) == ([], [], [("p", 0, 2)])
    assert box.resend_missing([("q", 0, 2)], now=0.1) == []  # another producer's report
    assert box.resend_missing(result.missing, now=0.1, session=("master", 0)) == []  # another session's
    assert box.resend_missing(result.missing, now=0.1) == [e0]  # at once, not 2 s after its send
    assert box.resend_missing(result.missing, now=0.2, session=SESSION) == []  # answered already
    result = master.ingest([e0])
    assert result.missing == []
    assert broadcast_ids(result.broadcast) == ["e0", "e1", "e2"]
    assert box.acknowledge(result.acknowledged) == 3
    assert (box.counters["resent_missing"], box.counters["resent"]) == (1, 0)
    with pytest.raises(TypeError, match="missing report 1"):
        box.resend_missing([("p", 0, 1), ("p", -1, 1)], now=1.0)


def test_a_bad_clock_counts_as_no_time_passed() -> None:
    box = outbox(resend_after_s=2.0)
    e0 = box.push(noop_event("e0"), now=100.0)
    assert box.due(math.nan) == []
    assert box.due(math.inf) == []
    assert box.due(50.0) == []  # backwards
    assert box.due(101.9) == []
    assert box.due(102.0) == [e0]
    assert box.due(0.0) == []
    assert box.due(105.9) == []
    assert box.due(106.0) == [e0]


def test_a_full_outbox_refuses_and_changes_nothing() -> None:
    box = outbox(capacity=2, resend_after_s=1.0)
    e0 = box.push(noop_event("e0"), now=0.0)
    e1 = box.push(noop_event("e1"), now=0.0)
    with pytest.raises(OutboxFullError) as info:
        box.push(noop_event("e2"), now=0.5)
    assert isinstance(info.value, ClusterStateError)
    assert info.value.capacity == 2
    assert (box.next_seq, box.pending, box.counters["pushed"], box.counters["refused_full"]) == (2, 2, 2, 1)
    assert box.due(1.0) == [e0, e1]  # the refused push was not kept
    box.acknowledge([0])
    assert seqs([box.push(noop_event("e2"), now=1.0)]) == [2]


def test_bad_arguments() -> None:
    for options in (
        {"resend_after_s": 0.0},
        {"resend_after_s": math.nan},
        {"max_resend_after_s": math.inf},
        {"resend_after_s": 3.0, "max_resend_after_s": 2.0},
        {"capacity": 0},
    ):
        with pytest.raises(ValueError, match="invalid outbox options"):
            outbox(**options)
    with pytest.raises(DecodeError):
        ProducerOutbox("p", "a", "not a session")  # type: ignore[arg-type]
    box = outbox()
    with pytest.raises(DecodeError):
        box.push(b"not json", now=0.0)
    with pytest.raises(DecodeError):
        box.push(json.dumps({"Nope": {}}).encode(), now=0.0)
    with pytest.raises(DecodeError):
        box.push(object(), now=0.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="spoofed"):
        box.push(info_event("b"), now=0.0)  # about another node: the master would refuse it
    assert (box.next_seq, box.pending, box.counters["pushed"]) == (0, 0, 0)


def test_retarget_sends_every_pending_event_once_to_a_new_master() -> None:
    box = outbox()
    old = MasterCore(SESSION)
    sent = [box.push(noop_event(f"e{n}"), now=0.0) for n in range(5)]
    result = old.ingest(sent[:3])
    assert broadcast_ids(result.broadcast) == ["e0", "e1", "e2"]
    box.acknowledge(result.acknowledged[:1])  # the acknowledgements of e1 and e2 are lost
    assert box.retarget(SESSION) == []  # the same session: nothing to do

    resent = box.retarget(("master-2", 2))
    assert box.session == ("master-2", 2)
    assert seqs(resent) == [0, 1, 2, 3]
    assert all(
        json.loads(envelope)["session"] == {"master_node_id": "master-2", "election_clock": 2} for envelope in resent
    )
    assert box.next_seq == 4
    assert seqs([box.push(noop_event("e5"), now=0.0)]) == [4]
    # The old master's late acknowledgements of its numbers must not remove the renumbered envelopes.
    assert box.acknowledge(result.acknowledged, session=SESSION) == 0
    assert box.pending == 5

    new = MasterCore(("master-2", 2))
    broadcast: list[bytes] = []
    for batch in (resent[::-1], resent, box.due(2.0), box.due(2.0)):  # reordered, copied, resent
        outcome = new.ingest(batch)
        assert outcome.rejected == []
        broadcast += outcome.broadcast
        box.acknowledge(outcome.acknowledged, session=new.session)
    assert broadcast_ids(broadcast) == ["e1", "e2", "e3", "e4", "e5"]
    assert_consistent(new, broadcast)
    assert box.pending == 0
    assert box.counters["retargeted"] == 4
    assert old.ingest(resent).broadcast == []  # the old master ignores the new session's envelopes


def test_a_restarted_producer_is_not_confused_with_the_old_one() -> None:
    master = MasterCore(SESSION)
    old_id = ProducerOutbox.new_producer_id("a")
    assert old_id.startswith("a/")
    old = outbox(old_id)
    result = master.ingest([old.push(noop_event(f"old{n}"), now=0.0) for n in range(3)])
    broadcast = list(result.broadcast)
    # Restarted before the acknowledgements arrived: a new id, numbering from 0 again.
    new_id = ProducerOutbox.new_producer_id("a")
    assert new_id != old_id
    new = outbox(new_id)
    result = master.ingest([new.push(noop_event(f"new{n}"), now=0.0) for n in range(2)])
    assert result.rejected == []
    broadcast += result.broadcast
    assert broadcast_ids(broadcast) == ["old0", "old1", "old2", "new0", "new1"]
    assert new.acknowledge(result.acknowledged) == 2
    assert master.producer_next(new_id) == 2
    assert master.producer_next(old_id) == 3
    assert_consistent(master, broadcast)


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_lossy_network_still_applies_every_event_once_in_order(seed: int) -> None:
    """A trace pushed through outboxes, envelopes and acknowledgements dropped, copied and reordered."""
    rng = random.Random(seed)
    events = trace()
    boxes: dict[str, ProducerOutbox] = {}
    pushed: dict[str, list[object]] = defaultdict(list)
    master = MasterCore(SESSION)
    to_master: list[bytes] = []
    to_producers: list[tuple[str, int]] = []
    broadcast: list[bytes] = []

    def send(queue: list[T], item: T) -> None:
        if rng.random() < 0.3:
            return
        queue.append(item)
        if rng.random() < 0.2:
            queue.append(item)

    def deliver(queue: list[T]) -> list[T]:
        rng.shuffle(queue)
        cut = rng.randint(0, len(queue))
        out = queue[cut:]
        del queue[cut:]
        return out

    waiting = list(events)
    now = 0.0
    while waiting or any(box.pending for box in boxes.values()):
        now += 0.5
        assert now < 10_000, "no progress"
        for event in waiting[:5]:
            node = str(event.origin)
            if node not in boxes:
                boxes[node] = outbox(
                    ProducerOutbox.new_producer_id(node), node, resend_after_s=1.0, max_resend_after_s=4.0
                )
            send(to_master, boxes[node].push(event.event, now=now))
            pushed[node].append(event.event)
        del waiting[:5]
        for box in boxes.values():
            for envelope in box.due(now):
                send(to_master, envelope)
        batch: list[bytes] = deliver(to_master)
        result = master.ingest(batch)
        assert result.rejected == []
        broadcast += result.broadcast
        for ack in result.acknowledged:
            send(to_producers, ack)
        acks = deliver(to_producers)
        for box in boxes.values():
            box.acknowledge(acks)

    out = assert_consistent(master, broadcast)
    assert len(out) == len(events)
    applied: dict[str, list[object]] = defaultdict(list)
    for event in out:
        applied[str(event.origin)].append(event.event)
    assert applied == pushed
    assert sum(box.counters["acknowledged"] for box in boxes.values()) == len(events)
