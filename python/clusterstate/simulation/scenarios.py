"""The fault scenarios of ``clusterstate simulate`` (docs/liveness.md).

A scenario is data: which nodes are busy serving a model, how far each node's clock is off, and the
faults injected at given simulated times. Node 0 is the first master and never fails; scenarios name
nodes 1 to 5, so a simulated cluster has at least :data:`MIN_NODES` nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MIN_NODES", "Outage", "Scenario", "default_scenarios"]

MIN_NODES = 6
"""The smallest cluster the default scenarios fit in (they name nodes 0 to 5)."""


@dataclass(frozen=True)
class Outage:
    """A node the master cannot hear from ``start_s`` until ``end_s`` (``None``: until the end).

    A crash (``partition=False``) loses the node's events; the node boots again at ``end_s`` with the
    same id. In a network partition the node keeps running and its events reach the master when
    the partition heals (exo's workers resend until acknowledged).
    """

    node: int
    start_s: float
    end_s: float | None = None
    partition: bool = False


@dataclass(frozen=True)
class Scenario:
    """One simulated run.

    Attributes:
        name: Short id (table rows, plot labels).
        title: What is injected, in a sentence.
        duration_s: Simulated seconds.
        busy: Nodes serving a model: a stream of token events with idle gaps of at most 15 s.
        clock_offsets: ``(node, seconds)``: how far a node's wall clock is from true time (others are
            off by a seeded ±2 s, as NTP leaves them).
        outages: Crashes and partitions.
        slow_gatherer: Nodes whose ``system_profiler`` call blocks the info gatherer for 31 s, again
            5 s after it returns (no hardware sample in between).
        stalled_gatherer: ``(node, from_s)``: the gatherer stops for good while the node keeps working.
        ingest_stalls: ``(start_s, end_s)``: the master indexes nothing (its plan loop keeps running);
            the events wait and are indexed at ``end_s``.
        master_pauses: ``(start_s, end_s)``: the whole master process is paused (no indexing, no plan
            cycle); the overdue cycle runs at ``end_s``, before the backlog is indexed.
        elections: ``(at_s, node)``: a new master is elected at ``at_s`` (3.2 s without a master), with
            fresh liveness bookkeeping.
    """

    name: str
    title: str
    duration_s: float = 600.0
    busy: tuple[int, ...] = (1, 2)
    clock_offsets: tuple[tuple[int, float], ...] = ()
    outages: tuple[Outage, ...] = ()
    slow_gatherer: tuple[int, ...] = ()
    stalled_gatherer: tuple[tuple[int, float], ...] = ()
    ingest_stalls: tuple[tuple[float, float], ...] = ()
    master_pauses: tuple[tuple[float, float], ...] = ()
    elections: tuple[tuple[float, int], ...] = ()


def default_scenarios(duration_s: float = 600.0) -> list[Scenario]:
    """The scenario set of the issue, one fault each, over ``duration_s`` simulated seconds (≥ 600)."""
    if duration_s < 600.0:
        raise ValueError("the default scenarios need duration_s >= 600")
    d = duration_s
    flaps = (
        (100.3, 115.3),
        (161.8, 173.8),
        (222.4, 282.4),
        (331.9, 343.9),
        (405.5, 465.5),
        (503.1, 515.1),
    )
    return [
        Scenario("baseline", "no fault: 2 busy nodes, clocks within ±2 s", d),
        Scenario(
            "slow-gatherer",
            "system_profiler blocks the gatherer of 2 busy nodes for 31 s, every 36 s",
            d,
            slow_gatherer=(1, 2),
        ),
        Scenario(
            "stalled-gatherer",
            "node 2's gatherer stops at 60 s for good; its runner keeps streaming tokens",
            d,
            stalled_gatherer=((2, 60.0),),
        ),
        Scenario(
            "clock-skew",
            "clocks off by -5 min, +1 h, -2 h, +90 s; the node 1 h ahead crashes at 206.1 s",
            d,
            clock_offsets=((1, -300.0), (2, 3600.0), (3, -7200.0), (4, 90.0)),
            outages=(Outage(2, 206.1),),
        ),
        Scenario(
            "crash",
            "nodes 3 and 5 crash at 204.5 s and 333.3 s, never to return",
            d,
            outages=(
                Outage(3, 204.5),
                Outage(5, 333.3),
            ),
        ),
        Scenario(
            "partition",
            "nodes 4 and 5 are cut off from the master from 153.2 s to 271.9 s",
            d,
            outages=(Outage(4, 153.2, 271.9, partition=True), Outage(5, 153.2, 271.9, partition=True)),
        ),
        Scenario(
            "master-ingest-stall",
            "the master indexes nothing for 150 s (5·K·T) from 200 s; its plan loop keeps running",
            d,
            ingest_stalls=((200.0, 350.0),),
        ),
        Scenario(
            "master-pause",
            "the whole master process is paused for 150 s from 200 s",
            d,
            master_pauses=((200.0, 350.0),),
        ),
        Scenario(
            "re-election",
            "node 1 becomes master at 300 s (fresh bookkeeping); node 5 crashes at 121.7 s and node 4 at 407.4 s",
            d,
            outages=(Outage(5, 121.7), Outage(4, 407.4)),
            elections=((300.0, 1),),
        ),
        Scenario(
            "restart-rejoin",
            "node 3 crashes at 156.6 s and boots again at 256.6 s with the same id",
            d,
            outages=(Outage(3, 156.6, 256.6),),
        ),
        Scenario(
            "flapping",
            "node 4 drops out 6 times: 12-15 s outages and two of 60 s",
            d,
            outages=tuple(Outage(4, start, end) for start, end in flaps),
        ),
    ]
