"""The runtime's small messages (pure): every encoding decodes back, and a peer's garbage is a DecodeError,
never another exception. The steps count and drop such garbage instead of raising."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterstate import EventLog, MasterCore, NodeCore, ProducerOutbox
from clusterstate.errors import DecodeError
from clusterstate.runtime.actions import Answer, Fetch, Publish, Subscribe, Unsubscribe
from clusterstate.runtime.follower import FollowerStep
from clusterstate.runtime.keys import Keys, Session
from clusterstate.runtime.leader import LeaderStep
from clusterstate.runtime.lineage import Epoch
from clusterstate.runtime.producer import ProducerStep
from clusterstate.runtime.wire import (
    AckMessage,
    Heartbeat,
    PageError,
    Progress,
    decode_ack,
    decode_heartbeat,
    decode_page_error,
    decode_page_request,
    decode_progress,
    encode_ack,
    encode_heartbeat,
    encode_page_error,
    encode_progress,
    split_frame,
)
from event_bytes import info_event

KEYS = Keys("wire")
S1 = Session(1, "m")
S_M = Session(1, "n1")  # the session of the leader test
INDEX = st.integers(0, 2**63 - 1)
PRODUCER = st.text(min_size=1, max_size=12)
NODE_IDS = st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True)
ACKS = st.builds(
    AckMessage,
    INDEX,
    st.lists(st.tuples(PRODUCER, INDEX), max_size=5).map(tuple),
    st.lists(st.tuples(PRODUCER, INDEX, INDEX), max_size=5).map(tuple),
)
ERRORS = st.builds(PageError, st.sampled_from(["snapshot_required", "index_ahead", "bad_request"]), st.none() | INDEX)


@given(ACKS)
def test_ack_round_trips(message: AckMessage) -> None:
    assert decode_ack(encode_ack(message)) == message


LINEAGES = st.lists(st.tuples(st.integers(1, 50), NODE_IDS, st.integers(0, 50)), max_size=4).map(
    lambda epochs: tuple(
        Epoch(Session(term, node), start)
        for term, node, start in zip(
            sorted({t for t, _, _ in epochs}), [n for _, n, _ in epochs], sorted(s for _, _, s in epochs), strict=False
        )
    )
)


@given(INDEX, st.none() | INDEX, LINEAGES)
def test_heartbeat_round_trips(next_index: int, commit: int | None, lineage: tuple[Epoch, ...]) -> None:
    message = Heartbeat(next_index, commit, lineage)
    assert decode_heartbeat(encode_heartbeat(message)) == message


@given(NODE_IDS, INDEX)
def test_progress_round_trips(node: str, next_index: int) -> None:
    assert decode_progress(encode_progress(Progress(node, next_index))) == Progress(node, next_index)


@pytest.mark.parametrize(
    "payload",
    [
        b'{"next": 1, "commit": null}',
        b'{"next": 1, "commit": -1, "lineage": []}',
        b'{"next": 1, "commit": null, "lineage": [[2, "a", 0], [1, "b", 5]]}',
        b'{"next": 1, "commit": null, "lineage": [[1, "a/b", 0]]}',
        b'{"next": 1, "commit": null, "lineage": [[1, "a"]]}',
    ],
)
def test_bad_heartbeat_fields_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="heartbeat"):
        decode_heartbeat(payload)


@pytest.mark.parametrize("payload", [b'{"node": "a/b", "next": 1}', b'{"node": "a", "next": -1}', b'{"next": 1}'])
def test_bad_progress_reports_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="progress"):
        decode_progress(payload)


@given(ERRORS)
def test_page_error_round_trips(message: PageError) -> None:
    assert decode_page_error(encode_page_error(message)) == message


@given(st.binary(max_size=64) | st.text(max_size=64).map(str.encode))
def test_garbage_is_a_decode_error(payload: bytes) -> None:
    for decode in (decode_ack, decode_heartbeat, decode_page_error):
        with contextlib.suppress(DecodeError):  # anything else fails the test
            decode(payload)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        b"[]",
        b'{"upto": -1, "acks": [], "missing": []}',
        b'{"upto": 1, "acks": [["p", 1, 2]], "missing": []}',
        b'{"upto": 1, "acks": [[1, 1]], "missing": []}',
        b'{"upto": 1, "acks": [], "missing": [["p", 1]]}',
        b'{"upto": true, "acks": [], "missing": []}',
        b'{"upto": 1, "acks": [], "missing": [], "extra": 0}',
        b'{"upto": 1, "acks": {}, "missing": []}',
        b'{"upto": 9223372036854775808, "acks": [], "missing": []}',
        b'{"upto": 1, "acks": [["p", 9223372036854775808]], "missing": []}',
    ],
)
def test_bad_acks_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="acknowledgement"):
        decode_ack(payload)


@pytest.mark.parametrize("payload", [b'{"next": 1.5}', b'{"next": -2}', b'{"next": 1, "commit": 1}', b'"x"', b"\xff"])
def test_bad_heartbeats_are_refused(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="heartbeat"):
        decode_heartbeat(payload)


@pytest.mark.parametrize(
    ("parameters", "expected"),
    [
        ({"since": "0", "limit": "1"}, (0, 1)),
        ({"since": "12", "limit": "10000"}, (12, 10_000)),
        ({"since": "-1", "limit": "5"}, None),
        ({"since": "1", "limit": "0"}, None),
        ({"since": "9223372036854775807", "limit": "1"}, (2**63 - 1, 1)),
        ({"since": "9223372036854775808", "limit": "1"}, None),
        ({"since": "1", "limit": "10001"}, None),
        ({"since": "\u0661", "limit": "5"}, None),  # ARABIC-INDIC DIGIT ONE: not ASCII
        ({"since": "1"}, None),
        ({"since": "1", "limit": "5", "x": "1"}, None),
    ],
)
def test_page_requests(parameters: dict[str, str], expected: tuple[int, int] | None) -> None:
    if expected is None:
        with pytest.raises(DecodeError, match="page request"):
            decode_page_request(parameters)
    else:
        assert decode_page_request(parameters) == expected


def test_frames_split_back_into_their_items() -> None:
    assert split_frame(b"") == []
    assert split_frame(b'{"a":1}\n{"b":2}') == [b'{"a":1}', b'{"b":2}']


def producer(session: Session = S1) -> ProducerStep:
    return ProducerStep(ProducerOutbox("n1/p", "n1", (session.master, session.term)), KEYS)


def test_producer_holds_acknowledgements_until_its_node_applied_upto() -> None:
    step = producer()
    assert step.start() == [Subscribe(KEYS.ack(S1, "n1"))]
    (sent,) = step.push(info_event("n1", "e0"), now=0.0)
    assert isinstance(sent, Publish)
    assert sent.key == KEYS.local("n1")
    assert step.outbox.pending == 1
    ack = encode_ack(AckMessage(upto=7, acks=(("n1/p", 0),)))
    assert step.on_ack(S1, ack, applied=6, now=1.0) == []
    assert (step.outbox.pending, step.held) == (1, 1)
    assert step.on_applied(6) == 0
    assert step.on_applied(7) == 1
    assert (step.outbox.pending, step.held) == (0, 0)


def test_producer_drops_foreign_and_bad_acks_and_retargets() -> None:
    step = producer()
    step.push(info_event("n1", "e0"), now=0.0)
    ack = encode_ack(AckMessage(upto=0, acks=(("n1/p", 0),)))
    assert step.on_ack(Session(2, "m"), ack, applied=9, now=1.0) == []
    assert step.on_ack(S1, b"not json", applied=9, now=1.0) == []
    assert step.counters == {"other_session": 1, "bad_acks": 1}
    assert step.outbox.pending == 1
    step.on_ack(S1, encode_ack(AckMessage(upto=5)), applied=0, now=1.0)
    assert step.held == 1
    s2 = Session(2, "m2")
    effects = step.retarget(s2)
    assert effects[:2] == [Unsubscribe(KEYS.ack(S1, "n1")), Subscribe(KEYS.ack(s2, "n1"))]
    assert [type(e) for e in effects[2:]] == [Publish]
    assert step.held == 0  # the old session's acknowledgements name the old numbering
    assert step.retarget(s2) == []


def indexed(idx: int) -> bytes:
    return b'{"idx":%d,"origin":"n1","event":{"TestEvent":{"event_id":"e%d"}}}' % (idx, idx)


def test_follower_keeps_one_page_in_flight_and_backs_off_after_an_empty_page() -> None:
    step = FollowerStep(NodeCore(), KEYS, page_limit=2, page_timeout=3.0, retry_after=1.0)
    assert step.follow(S1, now=0.0) == [Subscribe(KEYS.global_(S1)), Subscribe(KEYS.heartbeat(S1))]
    assert step.on_frames(S1, [indexed(0)], now=0.0) == []
    assert step.next_index == 1
    # A gap: index 3 arrives without 1 and 2; one fetch from 1, none while it is in flight.
    (fetch,) = step.on_frames(S1, [indexed(3)], now=0.0)
    assert fetch == Fetch(1, KEYS.events(S1), since=1, limit=2)
    assert step.on_heartbeat(S1, encode_heartbeat(Heartbeat(9)), now=0.5) == []
    assert step.tick(now=1.0) == []
    # Its reply applies 1..3 (3 was buffered); the heartbeat said 9: the next page at once.
    (fetch2,) = step.on_page(1, Answer(indexed(1) + b"\n" + indexed(2)), now=1.5)
    assert isinstance(fetch2, Fetch)
    assert (fetch2.ident, fetch2.since, step.next_index) == (2, 4, 4)
    # A page that applies nothing holds the next fetch back for retry_after.
    assert step.on_page(2, Answer(b""), now=2.0) == []
    assert step.next_timer == 3.0
    assert step.tick(now=2.5) == []
    (fetch3,) = step.tick(now=3.0)
    assert isinstance(fetch3, Fetch)
    # No reply within page_timeout: cleared, held back again.
    assert step.tick(now=5.9) == []
    assert step.tick(now=6.0) == []
    assert step.counters["page_timeouts"] == 1
    assert [f.ident for f in step.tick(now=7.0) if isinstance(f, Fetch)] == [fetch3.ident + 1]


def test_follower_drops_other_sessions_and_garbage() -> None:
    step = FollowerStep(NodeCore(), KEYS)
    step.follow(S1, now=0.0)
    s2 = Session(2, "m2")
    assert step.on_frames(s2, [indexed(0)], now=0.0) == []
    assert step.on_heartbeat(S1, b"{", now=0.0) == []
    assert step.on_frames(S1, [b"garbage\n" + indexed(0)], now=0.0) == []
    assert step.next_index == 1
    assert step.core.counters["rejected"] == 1
    assert step.counters == {"other_session": 1, "bad_heartbeats": 1}
    assert step.follow(s2, now=0.0) == [
        Unsubscribe(KEYS.global_(S1)),
        Unsubscribe(KEYS.heartbeat(S1)),
        Subscribe(KEYS.global_(s2)),
        Subscribe(KEYS.heartbeat(s2)),
    ]


def test_leader_ingests_acknowledges_and_answers_pages(tmp_path: Path) -> None:
    master = MasterCore(("n1", 1), log=EventLog(tmp_path / "log", create=True, durability="none"))
    step = LeaderStep(master, KEYS, now=0.0, period_s=10.0, heartbeat_s=1.0, snapshot_every=2)
    outbox = ProducerOutbox("n2/p", "n2", ("n1", 1))
    envelopes = [outbox.push(info_event("n2", f"e{i}"), now=0.0) for i in range(3)]
    effects = step.on_envelopes([envelopes[0] + b"\n" + envelopes[2], b"garbage"], now=0.5)
    frame, ack = effects
    assert isinstance(frame, Publish)
    assert isinstance(ack, Publish)
    assert frame == Publish(KEYS.global_(S_M), frame.payload)
    assert len(split_frame(frame.payload)) == 1
    assert ack.key == KEYS.ack(S_M, "n2")
    assert decode_ack(ack.payload) == AckMessage(upto=1, acks=(("n2/p", 0),), missing=(("n2/p", 1, 2),))
    assert master.counters["rejected_malformed"] == 1
    step.on_envelopes([envelopes[1]], now=0.6)
    assert step.counters["snapshots"] == 1
    # The first heartbeat is due at once, then one every heartbeat_s / 10 for the session's first two heartbeat_s
    # (followers subscribe just after it started), then one every heartbeat_s, busy or idle.
    beat = [Publish(KEYS.heartbeat(S_M), encode_heartbeat(Heartbeat(3)))]
    assert step.next_timer == 0.0
    assert step.tick(now=0.7) == beat
    assert step.next_timer == pytest.approx(0.8)
    assert step.tick(now=0.75) == []
    assert step.tick(now=1.95) == beat
    assert step.next_timer == pytest.approx(2.05)
    assert step.tick(now=2.05) == beat
    assert step.next_timer == pytest.approx(3.05)
    assert step.tick(now=3.0) == []
    assert step.tick(now=3.05) == beat
    page = step.on_query({"since": "1", "limit": "5"})
    assert page.ok
    assert len(split_frame(page.payload)) == 2
    assert step.on_query({"since": "4", "limit": "5"}) == Answer(
        encode_page_error(PageError("index_ahead", 3)), ok=False
    )
    assert step.on_query({"since": "x", "limit": "5"}) == Answer(encode_page_error(PageError("bad_request")), ok=False)
    master.close()


@given(st.binary(max_size=80) | ACKS.map(encode_ack) | st.text(max_size=80).map(str.encode), st.booleans())
def test_steps_count_and_drop_garbage_instead_of_raising(payload: bytes, ok: bool) -> None:
    step = producer()
    step.on_ack(S1, payload, applied=0, now=0.0)
    assert step.counters["bad_acks"] + step.counters["acks"] == 1
    follower = FollowerStep(NodeCore(), KEYS)
    follower.follow(S1, now=0.0)
    follower.on_heartbeat(S1, payload, now=0.0)
    follower.on_frames(S1, [payload], now=0.0)
    follower.on_page(1, Answer(payload, ok), now=0.0)
    assert follower.next_index == 0
