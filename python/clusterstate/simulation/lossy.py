"""The lossy-channel case: real producer outboxes, a real master and its tracker over a seeded network.

``producers`` nodes each run a :class:`clusterstate.ProducerOutbox` and push events all the time
(1 to 3 a second); one of them (``dead=1``) crashes for good at a seeded time. Their envelopes go to a
:class:`clusterstate.MasterCore` over a :class:`Link` that loses ``loss`` of what is sent, copies
a few and holds each item back a tick with probability ``reorder`` (what arrives in a tick arrives
shuffled); the master's answer to each producer (its acknowledgements and, with ``gap_reports``, its
``missing`` reports) comes back over a second link with the same faults. The master runs
``plan_cycle`` every ``period_s`` of simulated time (nothing sleeps), so its
:class:`clusterstate.StalenessTracker` decides on what really reached the State.

Scoring: a decision about a producer's node that has not crashed is a **false disconnect** (every
live producer pushes all the time); the dead node's first decision is its **detection**, timed from
its crash (its last push) and from the master's indexing of its last event. The master's own node
sends nothing here but the master's decisions, so the tracker disconnects it too; those decisions
are recorded but not scored.

Example:
    >>> from clusterstate.simulation.lossy import LossyConfig, run_lossy
    >>> run_lossy(LossyConfig(loss=0.2, duration_s=120.0)).false_disconnects
    0
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from rich.console import Console
from rich.table import Table

from clusterstate._core import MasterCore, ProducerOutbox

__all__ = ["LOSS_SWEEP", "Link", "LossyConfig", "LossyResult", "lossy_markdown", "lossy_table", "run_lossy"]

T = TypeVar("T")

LOSS_SWEEP = (0.0, 0.1, 0.2, 0.3)
"""The loss rates ``clusterstate simulate --loss`` compares by default."""

_MASTER = "master"


class Link(Generic[T]):
    """One direction of a seeded network: each item sent is lost with probability ``loss`` or copied
    with probability ``copy``; each item in flight is held back a tick with probability ``reorder``;
    what arrives in a tick arrives in random order."""

    def __init__(self, rng: random.Random, *, loss: float, copy: float, reorder: float = 0.3) -> None:
        self.rng, self.loss, self.reorder, self.copy = rng, loss, reorder, copy
        self.in_flight: list[T] = []
        self.lost = 0
        self.copied = 0

    def send(self, item: T) -> None:
        if self.rng.random() < self.loss:
            self.lost += 1
            return
        self.in_flight.append(item)
        if self.rng.random() < self.copy:
            self.copied += 1
            self.in_flight.append(item)

    def deliver(self) -> list[T]:
        arrived: list[T] = []
        held: list[T] = []
        for item in self.in_flight:
            (held if self.rng.random() < self.reorder else arrived).append(item)
        self.in_flight = held
        self.rng.shuffle(arrived)
        return arrived


@dataclass(frozen=True)
class LossyConfig:
    """The network's faults, the cluster, the tracker's ``T`` and ``K`` and the outboxes' resend policy."""

    loss: float = 0.2
    reorder: float = 0.3
    copy: float = 0.02
    seed: int = 0
    producers: int = 5
    dead: int = 1
    period_s: float = 10.0
    threshold: int = 3
    duration_s: float = 600.0
    tick_s: float = 0.25
    resend_after_s: float = 2.0
    max_resend_after_s: float = 5.0
    gap_reports: bool = True
    """Whether producers resend what the master reports missing (``IngestResult.missing``) at once."""

    def __post_init__(self) -> None:
        if not (0.0 <= self.loss < 1.0 and 0.0 <= self.reorder < 1.0 and 0.0 <= self.copy < 1.0):
            raise ValueError("loss, reorder and copy must be in [0, 1)")
        if not 0 <= self.dead < self.producers:
            raise ValueError("dead must be in [0, producers)")
        if not (self.period_s > 0 and self.tick_s > 0 and self.duration_s >= 3 * self.period_s):
            raise ValueError("period_s and tick_s must be > 0, duration_s at least 3 periods")
        if self.threshold < 1:
            raise ValueError("threshold must be at least 1")

    @property
    def window(self) -> tuple[float, float]:
        """The tracker's detection window ``[K·T, (K+1)·T]`` after a node's last indexed event."""
        return self.threshold * self.period_s, (self.threshold + 1) * self.period_s


@dataclass
class LossyResult:
    """What one run did: every push and decision, and the score."""

    config: LossyConfig
    pushes: dict[str, list[float]] = field(default_factory=dict)
    """Push times of each node (the node id is its producer's)."""
    crashes: dict[str, float] = field(default_factory=dict)
    """When each dead node crashed (it pushes, resends and hears nothing after)."""
    decisions: list[tuple[float, str]] = field(default_factory=list)
    """``(time, node)`` of every ``NodeDisconnected`` the master decided."""
    indexed: dict[str, list[float]] = field(default_factory=dict)
    """When the master indexed each node's events (simulated time of the ingest)."""
    applied: list[str] = field(default_factory=list)
    """The ``event_id`` of every event the master broadcast, in global-index order."""
    envelopes_lost: int = 0
    resent: int = 0

    @property
    def false_disconnects(self) -> int:
        """Decisions about a producer's node that had not crashed."""
        return sum(
            1 for when, node in self.decisions if node in self.pushes and when < self.crashes.get(node, float("inf"))
        )

    def detection(self, node: str) -> tuple[float, float] | None:
        """The dead ``node``'s first decision after its crash, as (latency from the crash, latency from the
        master's indexing of its last event); ``None`` if it was not detected."""
        crash = self.crashes[node]
        when = next((when for when, n in self.decisions if n == node and when >= crash), None)
        if when is None:
            return None
        last_indexed = max((t for t in self.indexed.get(node, []) if t <= when), default=0.0)
        return when - crash, when - last_indexed


def _event(node: str, n: int) -> bytes:
    return json.dumps({"TestEvent": {"event_id": f"{node}-{n}"}}).encode()


def run_lossy(config: LossyConfig) -> LossyResult:
    """Run the lossy-channel case once (deterministic for a given ``config``)."""
    rng = random.Random(config.seed)
    session = (_MASTER, 1)
    master = MasterCore(session, period_s=config.period_s, threshold=config.threshold)
    nodes = [f"node-{i}" for i in range(config.producers)]
    outboxes = {
        node: ProducerOutbox(
            f"{node}/p",
            node,
            session,
            resend_after_s=config.resend_after_s,
            max_resend_after_s=config.max_resend_after_s,
        )
        for node in nodes
    }
    by_producer = {outbox.producer_id: node for node, outbox in outboxes.items()}
    rates = {node: rng.uniform(1.0, 3.0) for node in nodes}
    result = LossyResult(config, pushes={node: [] for node in nodes}, indexed={node: [] for node in nodes})
    for node in nodes[len(nodes) - config.dead :]:
        result.crashes[node] = rng.uniform(config.duration_s / 3, config.duration_s / 2)
    up: Link[bytes] = Link(rng, loss=config.loss, reorder=config.reorder, copy=config.copy)
    down: Link[tuple[str, list[tuple[str, int]], list[tuple[str, int, int]]]] = Link(
        rng, loss=config.loss, reorder=config.reorder, copy=config.copy
    )
    next_cycle = 0.0
    ticks = round(config.duration_s / config.tick_s)
    for tick in range(ticks + 1):
        now = tick * config.tick_s
        alive = [node for node in nodes if now < result.crashes.get(node, float("inf"))]
        for node in alive:
            outbox = outboxes[node]
            if rng.random() < rates[node] * config.tick_s:
                up.send(outbox.push(_event(node, len(result.pushes[node])), now=now))
                result.pushes[node].append(now)
            resends = outbox.due(now)
            result.resent += len(resends)
            for envelope in resends:
                up.send(envelope)
        ingested = master.ingest(up.deliver())
        for indexed in ingested.broadcast:
            record = json.loads(indexed)
            if "TestEvent" in record["event"]:
                result.indexed[record["origin"]].append(now)
                result.applied.append(record["event"]["TestEvent"]["event_id"])
        # In first-heard order, not a set's (hash-seeded) order: the channel's draws follow the send order.
        answered = dict.fromkeys([p for p, _ in ingested.acknowledged] + [p for p, _, _ in ingested.missing])
        for producer in answered:
            acks = [(p, seq) for p, seq in ingested.acknowledged if p == producer]
            missing = [gap for gap in ingested.missing if gap[0] == producer]
            down.send((by_producer[producer], acks, missing if config.gap_reports else []))
        for node, acks, missing in down.deliver():
            if node not in alive:
                continue
            outbox = outboxes[node]
            outbox.acknowledge(acks, session=session)
            resends = outbox.resend_missing(missing, now=now, session=session)
            result.resent += len(resends)
            for envelope in resends:
                up.send(envelope)
        if now >= next_cycle:
            cycle = master.plan_cycle(now)
            result.decisions += [(now, decision.node_id) for decision in cycle.decisions]
            next_cycle += config.period_s
    result.envelopes_lost = up.lost
    return result


_HEADERS = [
    "loss",
    "pushed",
    "envelopes lost",
    "resent",
    "false disconnects",
    "dead detected",
    "latency from crash (s)",
    "latency from last indexed (s)",
]


def _span(values: Sequence[float]) -> str:
    return f"{min(values):.1f} / {max(values):.1f}" if values else "-"


def _row(result: LossyResult) -> list[str]:
    detections = {node: result.detection(node) for node in result.crashes}
    found = [d for d in detections.values() if d is not None]
    return [
        f"{result.config.loss:.0%}",
        str(sum(len(times) for times in result.pushes.values())),
        str(result.envelopes_lost),
        str(result.resent),
        str(result.false_disconnects),
        f"{len(found)}/{len(detections)}",
        _span([crash for crash, _ in found]),
        _span([indexed for _, indexed in found]),
    ]


def lossy_table(results: Sequence[LossyResult], console: Console) -> None:
    """Print the lossy-channel runs as one table (one row per run)."""
    if not results:
        return
    config = results[0].config
    low, high = config.window
    table = Table(
        title=f"lossy channel: {config.producers} producers ({config.dead} crashing), reorder {config.reorder:.0%}, "
        f"T = {config.period_s:g} s, K = {config.threshold}, resend cap {config.max_resend_after_s:g} s, "
        f"window [{low:g}, {high:g}] s",
        title_justify="left",
    )
    for header in _HEADERS:
        table.add_column(header, justify="right")
    for result in results:
        table.add_row(*_row(result), style="red" if result.false_disconnects else None)
    console.print(table)


def lossy_markdown(results: Sequence[LossyResult]) -> str:
    """The lossy-channel runs as a Markdown table (for docs/liveness.md)."""
    lines = ["| " + " | ".join(_HEADERS) + " |", "|" + "---:|" * len(_HEADERS)]
    lines += ["| " + " | ".join(_row(result)) + " |" for result in results]
    return "\n".join(lines) + "\n"
