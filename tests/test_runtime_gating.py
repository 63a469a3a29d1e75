"""Acknowledgement gating and the commit index (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusterstate.runtime.errors import InvalidRecordError
from clusterstate.runtime.gating import AckGate, commit_index

# A run of steps: hold an acknowledgement (upto, one pair numbered by arrival) or release at (applied, commit).
STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("hold"), st.integers(0, 50)),
        st.tuples(st.just("release"), st.integers(0, 50), st.none() | st.integers(0, 50)),
    ),
    max_size=40,
)


@given(STEPS)
def test_gate_releases_only_what_the_node_applied_and_committed_in_order(steps: list[tuple[Any, ...]]) -> None:
    gate = AckGate()
    upto_of: dict[int, int] = {}
    released: list[int] = []
    for step in steps:
        if step[0] == "hold":
            n = len(upto_of)
            upto_of[n] = step[1]
            gate.hold(step[1], [("p/1", n)])
        else:
            _, applied, commit = step
            out = [idx for _, idx in gate.release(applied, commit)]
            for idx in out:
                assert upto_of[idx] <= applied
                assert commit is None or upto_of[idx] <= commit
            # What stays held is exactly what is beyond the bound.
            bound = applied if commit is None else min(applied, commit)
            assert gate.held == sum(1 for i, u in upto_of.items() if i not in released and i not in out and u > bound)
            assert out == sorted(out)  # arrival order within one release
            released += out
    assert len(set(released)) == len(released)
    # Once the node has applied (and the quorum committed) everything, nothing stays held.
    rest = [idx for _, idx in gate.release(50, 50)]
    assert sorted(released + rest) == list(range(len(upto_of)))
    assert rest == sorted(rest)
    assert gate.held == 0


def test_gate_example() -> None:
    gate = AckGate()
    gate.hold(5, [("n1/a", 0), ("n1/a", 1)])
    gate.hold(9, [("n1/a", 2)])
    gate.hold(3, [("n1/b", 0)])
    assert gate.release(4) == [("n1/b", 0)]
    assert gate.release(9, commit=6) == [("n1/a", 0), ("n1/a", 1)]
    assert gate.held == 1
    assert gate.release(9, commit=9) == [("n1/a", 2)]
    with pytest.raises(InvalidRecordError, match="upto = -1"):
        gate.hold(-1, [])


@given(st.lists(st.integers(0, 100), max_size=9), st.integers(1, 9))
def test_commit_index_is_reached_by_a_quorum(positions: list[int], quorum: int) -> None:
    commit = commit_index(positions, quorum)
    if len(positions) < quorum:
        assert commit == 0
    else:
        assert sum(p >= commit for p in positions) >= quorum
        assert sum(p > commit for p in positions) < quorum


def test_commit_index_examples() -> None:
    assert commit_index([10, 7, 3], 2) == 7
    assert commit_index([10, 7, 3], 1) == 10
    assert commit_index([10], 2) == 0
    with pytest.raises(InvalidRecordError):
        commit_index([1], 0)
