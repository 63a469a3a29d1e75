"""Lineages: the divergence point against a brute-force oracle, and the set-aside decision."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterstate.runtime.actions import SetAside
from clusterstate.runtime.errors import InvalidLineageError
from clusterstate.runtime.keys import Session
from clusterstate.runtime.lineage import Epoch, append, diverged, divergence, validate

MAX_STEP = 6
HORIZON = 2 * 4 * MAX_STEP + 1  # past every start (a common base and a branch of up to 4 epochs each, MAX_STEP apart);
# indices past the last start are owned by the last epoch in both


@st.composite
def lineages(draw: st.DrawFn, base: tuple[Epoch, ...] = ()) -> tuple[Epoch, ...]:
    epochs = list(base)
    for _ in range(draw(st.integers(0, 4))):
        term = (epochs[-1].session.term if epochs else 0) + draw(st.integers(1, 2))
        start = (epochs[-1].start if epochs else 0) + draw(st.integers(0, MAX_STEP))
        epochs.append(Epoch(Session(term, draw(st.sampled_from("ab"))), start))
    return validate(epochs)


PAIRS = lineages().flatmap(lambda common: st.tuples(lineages(common), lineages(common)))


def owner(lineage: tuple[Epoch, ...], index: int) -> Epoch | None:
    found = None
    for epoch in lineage:
        if epoch.start <= index:
            found = epoch
    return found


@given(PAIRS)
def test_divergence_is_the_first_index_owned_differently(pair: tuple[tuple[Epoch, ...], tuple[Epoch, ...]]) -> None:
    mine, theirs = pair
    oracle = next((x for x in range(HORIZON) if owner(mine, x) != owner(theirs, x)), None)
    assert divergence(mine, theirs) == oracle == divergence(theirs, mine)


@given(PAIRS, st.integers(0, HORIZON))
def test_diverged_sets_aside_exactly_the_tail_past_the_divergence(
    pair: tuple[tuple[Epoch, ...], tuple[Epoch, ...]], nxt: int
) -> None:
    mine, theirs = pair
    point = divergence(mine, theirs)
    decision = diverged(mine, nxt, theirs)
    if point is None or nxt <= point:
        assert decision is None
    else:
        assert decision == SetAside(start=point, count=nxt - point)


def test_examples() -> None:
    s1, s2, s3 = Session(1, "a"), Session(2, "b"), Session(3, "c")
    base = append((), s1, 0)
    assert divergence(base, base) is None
    # The other side moved on to term 2 at index 100: a replica of term 1 with 120 events has 20 to set aside.
    assert diverged(base, 120, append(base, s2, 100)) == SetAside(start=100, count=20)
    assert diverged(base, 100, append(base, s2, 100)) is None
    # Two split-brain masters of different terms starting at 80 and 90.
    assert divergence(append(base, s2, 90), append(base, s3, 80)) == 80
    # An epoch that wrote nothing owns no index.
    assert divergence(append(append(base, s2, 50), s3, 50), append(base, s3, 50)) is None


def test_invalid_lineages() -> None:
    with pytest.raises(InvalidLineageError, match="term 1 does not follow"):
        validate([Epoch(Session(1, "a"), 0), Epoch(Session(1, "b"), 5)])
    with pytest.raises(InvalidLineageError, match="goes back"):
        validate([Epoch(Session(1, "a"), 5), Epoch(Session(2, "b"), 4)])
    with pytest.raises(InvalidLineageError, match="negative"):
        validate([Epoch(Session(1, "a"), -1)])
