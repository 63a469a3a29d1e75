"""Checks over a :class:`~clusterstate.runtime.local.LocalCluster` of real node processes (multi-process tests).

The checks themselves are :mod:`clusterstate.runtime.check` (``clusterstate demo`` runs the same ones); these wrap
them as test assertions:

- :func:`emit`: ``NodeGatheredInfo`` events about `node` pushed through its outbox; the ids returned were released.
- :func:`assert_converged`: every released event is in the master's log exactly once, and every node's ``/state``
  equals the pure-Python reference fold of that log.
"""

from __future__ import annotations

from collections.abc import Iterable

from clusterstate.runtime import check
from clusterstate.runtime.local import LocalCluster, LocalNode
from event_bytes import info_event

__all__ = ["assert_converged", "emit"]


def emit(node: LocalNode, tag: str, count: int, within: float = 20.0) -> list[str]:
    """Push `count` events about `node` through its outbox; the ids of those released (all of them, or it raises)."""
    return check.emit(node, tag, count, lambda event_id: info_event(node.name, event_id), within)


def assert_converged(cluster: LocalCluster, released: Iterable[str], timeout: float = 30.0) -> str:
    """Wait until the cluster settles and every node's State equals the replay of the master's log, then check
    that every released event is in that log exactly once; the master's name."""
    verdict = check.converge(cluster, released, timeout)
    if not verdict.states_equal:
        raise AssertionError(
            f"no single master with every State equal to the replay of its log in {timeout}s; "
            f"statuses {cluster.statuses()}; States differing: {list(verdict.differing)}"
        )
    assert verdict.contiguous, "the master's log has a gap"
    assert not verdict.lost, f"released events missing from the log: {list(verdict.lost)}"
    assert not verdict.duplicated, f"released events in the log more than once: {list(verdict.duplicated)}"
    assert verdict.master is not None
    return verdict.master
