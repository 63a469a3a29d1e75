"""The simulated cluster: what every node sends, and when the master indexes it.

Simulated time only: the whole run is computed up front as a list of :class:`Delivery` records, in
the order the master indexes them; detectors then consume that one stream, so all three see exactly
the same events at the same times.

Each node runs exo's info gatherer: one loop per monitor, gather → send
→ sleep its interval, starting at a seeded phase. Half the nodes (rounded up, node 0 first) are Mac
Studios with macmon (1 s metrics, Thunderbolt every 5 s plus the time ``system_profiler`` takes,
bridge/RDMA/interfaces every 10 s, disk every 30 s, name and static info every 60 s: ≈1.8 events/s),
the others Linux boxes (1 s memory, 10 s interfaces, 30 s disk, 60 s name/static: ≈1.2 events/s).
Busy nodes also stream tokens (``ChunkGenerated``, 10/s) in requests of 5-20 s separated by idle
gaps of 1-15 s, with a ``RunnerStatusUpdated`` at both ends.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass, field

from pydantic import JsonValue

from clusterstate.gatherers import default_interval_s
from clusterstate.models import (
    ChunkGenerated,
    CommandId,
    DiskUsage,
    Event,
    EventId,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    NetworkInterfaceInfo,
    NodeConfig,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeId,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    RunnerId,
    RunnerIdle,
    RunnerRunning,
    RunnerStatusUpdated,
    StaticNodeInformation,
    SystemPerformanceProfile,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
)
from clusterstate.models.profiling import GatheredInfo

from .scenarios import Scenario

__all__ = ["ELECTION_S", "Delivery", "Stream", "build_stream", "node_id"]

ELECTION_S = 3.2
"""Seconds without a master during an election (exo: 0.2 s debounce + 3 s campaign)."""

_GIB = 1024**3
_SLOW_SAMPLE_S = 31.0
_SLOW_SLEEP_S = 5.0
_TOKEN_PERIOD_S = 0.1


def node_id(index: int) -> NodeId:
    """The id of simulated node ``index``."""
    return NodeId(f"node-{index:02d}")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One event as the master indexes it."""

    at: float
    """When the master indexes it (simulated seconds)."""
    sent: float
    """When the node sent it (true time; the node's own clock reads ``sent + offset``)."""
    node: int
    gathered: bool
    """A ``NodeGatheredInfo`` (the only kind exo's wall-clock detector and the first proposal count)."""
    event: bytes
    """The event's JSON (``{"Tag": {...}}``)."""


@dataclass(frozen=True)
class Monitor:
    """One gatherer loop: the infos each sample sends, how long a sample takes, and (from its name) how often."""

    name: str
    """The real monitor's name in :data:`clusterstate.gatherers.DEFAULT_SCHEDULES`."""
    sample_s: tuple[float, float]
    infos: tuple[str, ...]
    interval_s: float = field(init=False)
    """exo's interval of the monitor ``name``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval_s", default_interval_s(self.name))


_MAC = (
    Monitor("macmon", (0.0, 0.0), ("macmon",)),
    Monitor("thunderbolt", (0.5, 2.0), ("tb_idents", "tb_conns")),
    Monitor("thunderbolt_bridge", (0.05, 0.2), ("bridge",)),
    Monitor("rdma_ctl", (0.01, 0.05), ("rdma",)),
    Monitor("network", (0.01, 0.1), ("interfaces",)),
    Monitor("disk", (0.0, 0.01), ("disk",)),
    Monitor("misc", (0.01, 0.05), ("misc",)),
    Monitor("static", (0.3, 1.0), ("static",)),
)
_LINUX = (
    Monitor("memory", (0.0, 0.01), ("memory",)),
    Monitor("network", (0.01, 0.1), ("interfaces",)),
    Monitor("disk", (0.0, 0.01), ("disk",)),
    Monitor("misc", (0.01, 0.05), ("misc",)),
    Monitor("static", (0.3, 1.0), ("static",)),
)


def _infos(index: int) -> dict[str, GatheredInfo]:
    memory = MemoryUsage(
        ram_total=Memory(in_bytes=128 * _GIB),
        ram_available=Memory(in_bytes=100 * _GIB),
        swap_total=Memory(in_bytes=0),
        swap_available=Memory(in_bytes=0),
    )
    return {
        "macmon": MacmonMetrics(system_profile=SystemPerformanceProfile(gpu_usage=0.1, temp=41.0), memory=memory),
        "memory": memory,
        "tb_idents": MacThunderboltIdentifiers(idents=[]),
        "tb_conns": MacThunderboltConnections(conns=[]),
        "bridge": ThunderboltBridgeInfo(status=ThunderboltBridgeStatus(enabled=False, exists=False)),
        "rdma": RdmaCtlStatus(enabled=False),
        "interfaces": NodeNetworkInterfaces(
            ifaces=[NetworkInterfaceInfo(name="en0", ip_address=f"10.0.0.{index + 10}", interface_type="ethernet")]
        ),
        "disk": NodeDiskUsage(
            disk_usage=DiskUsage(total=Memory(in_bytes=1024 * _GIB), available=Memory(in_bytes=_GIB))
        ),
        "misc": MiscData(friendly_name=f"sim node {index}"),
        "static": StaticNodeInformation(
            model="Mac Studio", chip="Apple M3 Ultra", os_version="26.1", os_build_version="1"
        ),
        "config": NodeConfig(),
    }


def _json(event: Event) -> bytes:
    return event.model_dump_json().encode()


class _Node:
    """A node's event payloads, rendered once."""

    def __init__(self, index: int) -> None:
        nid = node_id(index)
        self.info = {
            kind: _json(NodeGatheredInfo(event_id=EventId(f"{nid}-{kind}"), node_id=nid, info=info))
            for kind, info in _infos(index).items()
        }
        runner = RunnerId(f"runner-{index:02d}")
        self.running = _json(
            RunnerStatusUpdated(event_id=EventId("r"), runner_id=runner, runner_status=RunnerRunning())
        )
        self.idle = _json(RunnerStatusUpdated(event_id=EventId("i"), runner_id=runner, runner_status=RunnerIdle()))
        token: dict[str, JsonValue] = {"model": "m", "text": " x", "token_id": 1, "usage": None, "finish_reason": None}
        chunk = {"TokenChunk": token}
        self.token = _json(ChunkGenerated(event_id=EventId("t"), command_id=CommandId(f"cmd-{index:02d}"), chunk=chunk))


@dataclass(frozen=True)
class Stream:
    """A scenario's whole run: the deliveries in index order, and when each master term starts."""

    scenario: Scenario
    nodes: int
    offsets: tuple[float, ...]
    """Each node's clock offset, seconds."""
    deliveries: list[Delivery]
    terms: list[tuple[float, int]]
    """``(start, master node)``: the first plan cycle of each master term (the first at 0)."""
    cycles: list[tuple[float, int]]
    """``(start, term)``: every plan cycle the master runs, in time order."""


def _windows_of(scenario: Scenario) -> list[tuple[float, float]]:
    """Intervals in which the master indexes nothing (events wait until the end)."""
    windows = list(scenario.ingest_stalls) + list(scenario.master_pauses)
    windows += [(at, at + ELECTION_S) for at, _ in scenario.elections]
    return sorted(windows)


def build_stream(scenario: Scenario, nodes: int, seed: int, period_s: float) -> Stream:
    """Everything the master indexes in ``scenario`` on a cluster of ``nodes``, seeded."""
    rng = random.Random(f"{seed}:{scenario.name}:offsets")
    offsets = [rng.uniform(-2.0, 2.0) for _ in range(nodes)]
    for node, offset in scenario.clock_offsets:
        offsets[node] = offset
    duration = scenario.duration_s
    crashes = {
        node: [(o.start_s, o.end_s) for o in scenario.outages if o.node == node and not o.partition]
        for node in range(nodes)
    }
    partitions = {
        node: [(o.start_s, o.end_s) for o in scenario.outages if o.node == node and o.partition]
        for node in range(nodes)
    }
    stalled = dict(scenario.stalled_gatherer)
    master_windows = _windows_of(scenario)

    def down(node: int, t: float) -> bool:
        return any(start <= t < (end if end is not None else duration + 1) for start, end in crashes[node])

    def delivered_at(node: int, t: float) -> float | None:
        at = t
        for start, end in partitions[node]:
            if start <= at < (end if end is not None else duration + 1):
                if end is None:
                    return None
                at = end
        for start, end in master_windows:
            if start <= at < end:
                at = end
        return at

    raw: list[tuple[float, int, bool, bytes]] = []

    def send(node: int, t: float, gathered: bool, event: bytes) -> None:
        if t < duration and not down(node, t):
            raw.append((t, node, gathered, event))

    for node in range(nodes):
        payloads = _Node(node)
        node_rng = random.Random(f"{seed}:{scenario.name}:node:{node}")
        monitors = _MAC if node < (nodes + 1) // 2 else _LINUX
        slow = node in scenario.slow_gatherer
        blocked = _blocked_windows(node_rng, duration) if slow else []

        def gatherer_ok(t: float, node: int = node, blocked: list[tuple[float, float]] = blocked) -> bool:
            if node in stalled and t >= stalled[node]:
                return False
            return not any(start <= t < end for start, end in blocked)

        for monitor in monitors:
            if slow and monitor.name == "thunderbolt":
                continue  # replaced by the 31 s system_profiler loop below
            for t in _loop(node_rng, monitor, duration):
                if gatherer_ok(t):
                    for kind in monitor.infos:
                        send(node, t, True, payloads.info[kind])
        for _, returns in blocked:  # the slow sample returns
            if returns < duration and not (node in stalled and returns >= stalled[node]):
                send(node, returns, True, payloads.info["tb_idents"])
                send(node, returns + 0.001, True, payloads.info["tb_conns"])
        # A boot (again) sends the node's config and identity at once.
        for _, boots in crashes[node]:
            if boots is not None:
                for step, kind in enumerate(("config", "static", "misc")):
                    send(node, boots + 0.01 * (step + 1), True, payloads.info[kind])
        if node in scenario.busy:
            for t, event in _work(node_rng, payloads, duration):
                send(node, t, False, event)

    deliveries: list[Delivery] = []
    for t, node, gathered, event in sorted(raw, key=lambda item: (item[0], item[1])):
        at = delivered_at(node, t)
        if at is not None and at < duration:
            deliveries.append(Delivery(at=at, sent=t, node=node, gathered=gathered, event=event))
    deliveries.sort(key=lambda d: d.at)  # stable: the order sent within a backlog

    terms = [(0.0, 0)] + [(at + ELECTION_S, master) for at, master in sorted(scenario.elections)]
    cycles = _cycles(scenario, terms, period_s)
    return Stream(scenario, nodes, tuple(offsets), deliveries, terms, cycles)


def _loop(rng: random.Random, monitor: Monitor, duration: float) -> Iterator[float]:
    """Send times of a monitor loop: gather (``sample_s``), send, sleep ``interval_s``; seeded phase."""
    t = rng.uniform(0.0, monitor.interval_s)
    while True:
        t += rng.uniform(*monitor.sample_s)
        if t >= duration:
            return
        yield t
        t += monitor.interval_s


def _blocked_windows(rng: random.Random, duration: float) -> list[tuple[float, float]]:
    """When a slow ``system_profiler`` blocks the gatherer: 31 s out of every 36 s, seeded phase."""
    windows = []
    t = rng.uniform(0.0, _SLOW_SLEEP_S)
    while t < duration:
        windows.append((t, t + _SLOW_SAMPLE_S))
        t += _SLOW_SAMPLE_S + _SLOW_SLEEP_S
    return windows


def _work(rng: random.Random, payloads: _Node, duration: float) -> Iterator[tuple[float, bytes]]:
    """A busy node's runner: requests of 5-20 s streaming tokens, idle gaps of 1-15 s."""
    t = rng.uniform(0.0, 5.0)
    while t < duration:
        yield t, payloads.running
        end = t + rng.uniform(5.0, 20.0)
        t += _TOKEN_PERIOD_S
        while t < end:
            yield t, payloads.token
            t += _TOKEN_PERIOD_S
        yield end, payloads.idle
        t = end + rng.uniform(1.0, 15.0)


def _cycles(scenario: Scenario, terms: list[tuple[float, int]], period_s: float) -> list[tuple[float, int]]:
    """The plan cycles: each term's first pass at once, then one every period (a paused master's overdue
    cycle runs when it resumes); a term ends when the next election starts."""
    ends = [at for at, _ in sorted(scenario.elections)] + [scenario.duration_s]
    cycles: list[tuple[float, int]] = []

    def in_pause(t: float) -> float | None:
        return next((end for start, end in scenario.master_pauses if start < t < end), None)

    for term, ((start, _), end) in enumerate(zip(terms, ends, strict=True)):
        t = start
        while t < end:
            resumed = in_pause(t)
            if resumed is not None:
                t = resumed
                if t >= end:
                    break
            cycles.append((t, term))
            t += period_s
    return cycles
