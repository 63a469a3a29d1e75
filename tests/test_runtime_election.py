"""The election's pure rules: ranking, winner, quorum, rounds, triggers, terms and the record's wire form."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterstate.errors import DecodeError
from clusterstate.runtime.actions import Announce, Campaign, Follow, PersistTerm, Resign
from clusterstate.runtime.election import (
    Candidate,
    Resignation,
    Round,
    Visible,
    answer,
    decode_message,
    decode_record,
    encode_record,
    encode_resignation,
    quorum_size,
    trigger,
    winner,
)
from clusterstate.runtime.errors import InvalidNameError, InvalidRecordError
from clusterstate.runtime.keys import Session

NODES = [f"n{i}" for i in range(6)]
TERM = 7


# A node's priority and voter flag are its configuration: the same in all its records.
PRIORITY = dict(zip(NODES, [-1, 0, 2, -1, 1, 0], strict=True))
VOTERS = set(NODES[:4])


def records(term: int = TERM) -> st.SearchStrategy[Candidate]:
    return st.builds(
        lambda node, lineage_term, nxt: Candidate(term, node, lineage_term, nxt, PRIORITY[node], node in VOTERS),
        st.sampled_from(NODES),
        st.integers(0, 3),
        st.integers(0, 30),
    )


ROUNDS = st.lists(records(), max_size=10)
MEMBERS = st.sets(st.sampled_from(NODES)).map(frozenset)


def best_per_node(rs: list[Candidate], members: frozenset[str]) -> list[Candidate]:
    """The records that count: live members only; when a node sent several, its most complete one."""
    live = [r for r in rs if r.node in members]
    return [
        r
        for r in live
        if not any(o.node == r.node and (o.lineage_term, o.next) > (r.lineage_term, r.next) for o in live)
    ]


@given(ROUNDS, MEMBERS, st.none() | st.integers(1, 6), st.randoms())
def test_winner_is_deterministic_and_order_independent(
    rs: list[Candidate], members: frozenset[str], quorum: int | None, rnd: random.Random
) -> None:
    shuffled = list(rs)
    rnd.shuffle(shuffled)
    assert winner(rs, members, quorum) == winner(shuffled, members, quorum) == winner(rs, set(members), quorum)


@given(ROUNDS, MEMBERS)
def test_priority_minus_one_never_wins(rs: list[Candidate], members: frozenset[str]) -> None:
    elected = winner(rs, members, None)
    counted = best_per_node(rs, members)
    if any(r.priority >= 0 for r in counted):
        assert elected is not None
    if elected is not None:
        assert all(r.priority >= 0 for r in counted if r.node == elected)
    else:
        assert all(r.priority == -1 for r in counted)


@given(ROUNDS, MEMBERS)
def test_winner_is_the_most_complete_replica_of_the_newest_lineage(
    rs: list[Candidate], members: frozenset[str]
) -> None:
    elected = winner(rs, members, None)
    eligible = [r for r in best_per_node(rs, members) if r.priority >= 0]
    if elected is None:
        assert not eligible
        return
    mine = max((r.lineage_term, r.next) for r in eligible if r.node == elected)
    assert all((r.lineage_term, r.next) <= mine for r in eligible)


@given(ROUNDS, MEMBERS, st.integers(1, 7))
def test_a_round_without_a_quorum_of_voters_elects_nobody(
    rs: list[Candidate], members: frozenset[str], quorum: int
) -> None:
    voters = {r.node for r in rs if r.node in members and r.voter}
    elected = winner(rs, members, quorum)
    if len(voters) < quorum:
        assert elected is None
    elif any(r.priority >= 0 for r in best_per_node(rs, members)):
        assert elected is not None


@given(ROUNDS, MEMBERS, st.lists(records(), max_size=4))
def test_records_of_nodes_that_are_not_members_do_not_count(
    rs: list[Candidate], members: frozenset[str], others: list[Candidate]
) -> None:
    strangers = [r for r in others if r.node not in members]
    assert winner(rs + strangers, members, None) == winner(rs, members, None)


def test_ranking_order() -> None:
    def c(node: str, lineage_term: int, nxt: int, priority: int = 0) -> Candidate:
        return Candidate(TERM, node, lineage_term, nxt, priority)

    everyone = {"a", "b", "c", "d"}
    # The newest lineage beats a longer log of an older one.
    assert winner([c("a", 2, 900), c("b", 3, 10)], everyone, None) == "b"
    # Then the most complete replica, then the priority, then the smallest node id.
    assert winner([c("a", 3, 10, priority=5), c("b", 3, 11)], everyone, None) == "b"
    assert winner([c("b", 3, 11), c("a", 3, 11, priority=1)], everyone, None) == "a"
    assert winner([c("c", 3, 11), c("b", 3, 11)], everyone, None) == "b"
    # Priority -1 never wins, even with the best replica; alone it elects nobody.
    assert winner([c("a", 3, 99, priority=-1), c("d", 0, 0)], everyone, None) == "d"
    assert winner([c("a", 3, 99, priority=-1)], everyone, None) is None
    # Older-term records in the same set do not count.
    assert winner([c("a", 3, 99), Candidate(TERM + 1, "b", 0, 0)], everyone, None) == "b"


def test_quorum_size() -> None:
    assert quorum_size("none", 5) is None
    assert [quorum_size("auto", n) for n in range(1, 8)] == [None, None, 2, 3, 3, 4, 4]
    assert quorum_size(2, 9) == 2
    with pytest.raises(InvalidRecordError, match="quorum = 0"):
        quorum_size(0, 3)


def test_round_answers_stale_records_joins_newer_terms_and_announces_once() -> None:
    own = Candidate(TERM, "a", 2, 40)
    rnd = Round(own, started=100.0, timeout=1.0)
    assert rnd.receive(Candidate(TERM - 3, "old", 0, 0)) == (Announce(TERM),)
    assert rnd.receive(Candidate(TERM + 2, "b", 0, 0)) == (PersistTerm(TERM + 2), Campaign(TERM + 2))
    assert rnd.receive(Candidate(TERM, "b", 2, 41)) == (Announce(TERM),)
    assert rnd.receive(Candidate(TERM, "b", 2, 41)) == ()
    assert rnd.receive(own) == ()
    assert not rnd.complete({"a", "b", "c"}, now=100.5)
    assert rnd.complete({"a", "b", "c"}, now=101.0)  # timed out
    assert rnd.complete({"a", "b"}, now=100.1)  # every live member answered
    assert rnd.winner({"a", "b"}, None) == "b"
    assert rnd.winner({"a"}, None) == "a"  # b left: its record no longer counts


def test_answer_outside_a_round() -> None:
    assert answer(5, Candidate(3, "x", 0, 0)) == (Announce(5),)
    assert answer(5, Candidate(9, "x", 0, 0)) == (PersistTerm(9),)
    assert answer(5, Candidate(5, "x", 0, 0)) == ()


def view(**kw: object) -> Visible:
    fields: dict[str, object] = {
        "me": "a",
        "term": 4,
        "seen_term": 0,
        "masters": frozenset(),
        "serving": None,
        "following": None,
        "masterless_since": None,
    }
    fields.update(kw)
    return Visible(**fields)  # type: ignore[arg-type]


def master(term: int, node: str, nxt: int = 0) -> Candidate:
    return Candidate(term, node, term, nxt)


def test_no_master_for_the_debounce_starts_a_campaign_for_the_next_term() -> None:
    assert trigger(view(masterless_since=10.0), now=10.125, debounce=0.25) == ()
    assert trigger(view(masterless_since=10.0), now=10.25, debounce=0.25) == (PersistTerm(5), Campaign(5))
    assert trigger(view(masterless_since=10.0, seen_term=8), now=11.0, debounce=0.2) == (PersistTerm(9), Campaign(9))
    # A resignation was heard: no debounce. A round already running: no new one.
    assert trigger(view(masterless_since=10.0, resigned=True), now=10.0, debounce=0.2) == (PersistTerm(5), Campaign(5))
    assert trigger(view(masterless_since=10.0, campaigning=True), now=99.0, debounce=0.2) == ()


def test_one_master_is_followed_and_a_higher_term_is_adopted() -> None:
    assert trigger(view(masters=frozenset({master(4, "b")})), 0.0, 0.2) == (Follow(Session(4, "b")),)
    assert trigger(view(masters=frozenset({master(4, "b")}), following=Session(4, "b")), 0.0, 0.2) == ()
    assert trigger(view(masters=frozenset({master(6, "b")})), 0.0, 0.2) == (PersistTerm(6), Follow(Session(6, "b")))
    # A serving master that sees a higher term resigns at once and follows it.
    mine = Session(4, "a")
    assert trigger(view(masters=frozenset({master(4, "a"), master(6, "b")}), serving=mine), 0.0, 0.2) == (
        PersistTerm(6),
        Resign(mine),
        Follow(Session(6, "b")),
    )
    assert trigger(view(serving=mine, masters=frozenset({master(4, "a")}), seen_term=5), 0.0, 0.2) == (
        PersistTerm(5),
        Resign(mine),
    )


def test_two_masters_start_no_round_everyone_keeps_the_highest() -> None:
    both = frozenset({master(4, "a", nxt=10), master(4, "b", nxt=12)})
    # Same term: the most complete replica is kept; the other master resigns and follows it.
    assert trigger(view(masters=both, serving=Session(4, "a")), 0.0, 0.2) == (
        Resign(Session(4, "a")),
        Follow(Session(4, "b")),
    )
    assert trigger(view(me="c", masters=both, following=Session(4, "a")), 0.0, 0.2) == (Follow(Session(4, "b")),)
    assert trigger(view(me="b", masters=both, serving=Session(4, "b")), 0.0, 0.2) == ()


VISIBLE = st.builds(
    Visible,
    me=st.sampled_from(NODES),
    term=st.integers(0, 9),
    seen_term=st.integers(0, 12),
    masters=st.frozensets(
        st.builds(master, st.integers(0, 12), st.sampled_from(NODES), st.integers(0, 30)), max_size=3
    ),
    serving=st.none() | st.builds(Session, st.integers(0, 9), st.sampled_from(NODES)),
    following=st.none() | st.builds(Session, st.integers(0, 12), st.sampled_from(NODES)),
    masterless_since=st.none() | st.floats(0, 10),
    resigned=st.booleans(),
    campaigning=st.booleans(),
)


@given(VISIBLE, st.floats(0, 20))
def test_terms_never_go_back_and_rounds_start_only_without_a_master(v: Visible, now: float) -> None:
    actions = trigger(v, now, debounce=0.2)
    persisted = [a.term for a in actions if isinstance(a, PersistTerm)]
    assert all(t > v.term for t in persisted)
    assert len(persisted) <= 1
    seen = max([v.term, v.seen_term, *(m.term for m in v.masters)])
    for a in actions:
        if isinstance(a, Campaign):
            assert not v.masters
            assert a.term == seen + 1
            assert persisted == [a.term]
            assert actions.index(PersistTerm(a.term)) < actions.index(a)  # persisted before acting on it
        if isinstance(a, Follow):
            assert Candidate(a.session.term, a.session.master, a.session.term, 0) in {
                Candidate(m.term, m.node, m.lineage_term, 0) for m in v.masters
            }


@given(records())
def test_record_wire_form_round_trips(r: Candidate) -> None:
    assert decode_record(encode_record(r)) == r


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b'{"term":1}',
        b'{"term":1,"node":"a","lineage_term":0,"next":0,"priority":0,"voter":1}',
        b'{"term":true,"node":"a","lineage_term":0,"next":0,"priority":0,"voter":true}',
        b'{"term":1,"node":"a/b","lineage_term":0,"next":0,"priority":0,"voter":true}',
        b'{"term":1,"node":"a","lineage_term":2,"next":0,"priority":0,"voter":true}',
        b'{"term":1,"node":"a","lineage_term":0,"next":0,"priority":-2,"voter":true}',
    ],
)
def test_bad_record_payloads_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="invalid election record"):
        decode_record(payload)


def test_bad_records_are_typed_errors_naming_the_field() -> None:
    with pytest.raises(InvalidRecordError, match="next = -1"):
        Candidate(1, "a", 0, -1)
    with pytest.raises(InvalidRecordError, match="priority = -2"):
        Candidate(1, "a", 0, 0, priority=-2)
    with pytest.raises(InvalidRecordError, match="lineage_term = 3"):
        Candidate(1, "a", 3, 0)
    with pytest.raises(InvalidNameError, match="'a b'"):
        Candidate(1, "a b", 0, 0)


def test_a_nodes_duplicate_records_count_the_same_in_any_order() -> None:
    twins = [Candidate(TERM, "a", 1, 5, voter=False), Candidate(TERM, "a", 1, 5, voter=True)]
    assert winner(twins, {"a"}, 1) == winner(twins[::-1], {"a"}, 1) == "a"


@given(st.integers(0, 2**40), st.from_regex(r"[a-z0-9][a-z0-9_.-]{0,8}", fullmatch=True))
def test_resignations_round_trip_and_records_still_decode(term: int, node: str) -> None:
    resignation = Resignation(Session(term, node))
    assert decode_message(encode_resignation(resignation)) == resignation
    record = Candidate(term=term, node=node, lineage_term=0, next=0)
    assert decode_message(encode_record(record)) == record


@pytest.mark.parametrize(
    "payload", [b'{"resign": -1, "node": "a"}', b'{"resign": 1, "node": "a/b"}', b'{"resign": "1", "node": "a"}', b"["]
)
def test_bad_resignations_are_decode_errors(payload: bytes) -> None:
    with pytest.raises(DecodeError, match="election"):
        decode_message(payload)
