"""Busy is never dead, even under loss: real outboxes, a real master and its tracker over a seeded
lossy, copying, reordering channel (``clusterstate.simulation.lossy``, simulated time).

Every push time and every ``NodeDisconnected`` decision is recorded; a decision about a producer
that pushed within the last ``K·T`` is a failure, whatever the loss. The dead producer is still
detected within the tracker's window, and every event reaches the master at most once, in order.
"""

from __future__ import annotations

import bisect

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clusterstate.simulation.lossy import LossyConfig, LossyResult, run_lossy


def disconnects_of_busy_producers(result: LossyResult) -> list[tuple[float, str, float]]:
    """``(decision time, node, its last push)`` of every decision about a producer that pushed within the last
    ``K·T`` before it. A decision after a producer's crash is its detection (its last envelopes may be lost for
    good, as it resends nothing): checked against the window instead."""
    busy_window = result.config.threshold * result.config.period_s
    found = []
    for when, node in result.decisions:
        pushes = result.pushes.get(node)
        if not pushes or when >= result.crashes.get(node, float("inf")):
            continue  # the master's own node (it pushes nothing here), or a detection
        position = bisect.bisect_right(pushes, when)
        if position and when - pushes[position - 1] <= busy_window:
            found.append((when, node, pushes[position - 1]))
    return found


def assert_exactly_once_in_order(result: LossyResult) -> None:
    applied: dict[str, list[str]] = {node: [] for node in result.pushes}
    for event_id in result.applied:
        node = event_id.rsplit("-", 1)[0]
        applied[node].append(event_id)
    for node, pushes in result.pushes.items():
        ids = applied[node]
        assert ids == [f"{node}-{i}" for i in range(len(ids))], node
        assert len(ids) <= len(pushes)


@pytest.mark.parametrize("loss", [0.0, 0.1, 0.2, 0.3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_busy_producer_is_disconnected_under_loss(loss: float, seed: int) -> None:
    result = run_lossy(LossyConfig(loss=loss, seed=seed))
    assert disconnects_of_busy_producers(result) == []
    assert result.false_disconnects == 0
    assert_exactly_once_in_order(result)
    low, high = result.config.window
    for node in result.crashes:
        detection = result.detection(node)
        assert detection is not None, node
        from_crash, from_last_indexed = detection
        assert low <= from_last_indexed <= high
        # The dead node's last envelopes may be lost for good (it resends nothing), so the window can start
        # before the crash; it never ends later than (K+1)·T plus what was still in flight.
        assert from_crash <= high + result.config.max_resend_after_s


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    loss=st.floats(0.0, 0.3),
    reorder=st.floats(0.0, 0.6),
    producers=st.integers(2, 6),
)
def test_no_busy_producer_is_disconnected_property(seed: int, loss: float, reorder: float, producers: int) -> None:
    result = run_lossy(LossyConfig(loss=loss, reorder=reorder, producers=producers, seed=seed, duration_s=300.0))
    assert disconnects_of_busy_producers(result) == []
    assert_exactly_once_in_order(result)


def test_the_check_catches_busy_producers_disconnected_by_backoff_alone() -> None:
    # Without the master's missing reports and with a 30 s backoff cap (= K·T), one lost envelope holds every
    # later one of its producer behind it long enough for the tracker to see no advance: the check above fails.
    result = run_lossy(LossyConfig(loss=0.3, seed=0, gap_reports=False, max_resend_after_s=30.0))
    found = disconnects_of_busy_producers(result)
    assert found
    assert all(when - last_push < 1.0 for when, _, last_push in found)  # pushing right up to the decision
