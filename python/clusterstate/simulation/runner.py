"""Run the scenarios and score every detector's decisions against what really happened.

Scoring (docs/liveness.md):

- a node is *down* during each of its outages (crash or partition), from the outage's start to its
  end (the end of the run if it never returns);
- a decision about a node that is not down is a **false disconnect**;
- the first decision about a node during one of its outages is a **detection**; its latency is the
  time since the master indexed the node's last event before the decision;
- an outage *needs* detecting when the node stays unheard for at least ``(K+1)·T`` after its last
  indexed event (before the run ends or the node returns); one that ends without a detection is
  **missed**; a detection with latency above ``(K+1)·T`` is **late** (below ``K·T``: **early**).
"""

from __future__ import annotations

import bisect
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field

from .detectors import Detector, FirstProposalDetector, TrackerDetector, WallClockDetector
from .scenarios import MIN_NODES, Scenario, default_scenarios
from .stream import Stream, build_stream

__all__ = ["DETECTORS", "DetectorResult", "ScenarioResult", "SimulationConfig", "run_scenario", "simulate"]

DETECTORS = ("wall-clock", "first-proposal", "tracker")
"""Detector names, in table order."""

_EPSILON = 1e-6


@dataclass(frozen=True)
class SimulationConfig:
    """Cluster size, seed, and the liveness settings (period ``T``, threshold ``K``)."""

    nodes: int = 8
    seed: int = 0
    period_s: float = 10.0
    threshold: int = 3
    duration_s: float = 600.0

    def __post_init__(self) -> None:
        if self.nodes < MIN_NODES:
            raise ValueError(f"nodes must be at least {MIN_NODES}")
        if not self.period_s > 0 or self.threshold < 1:
            raise ValueError("period_s must be > 0 and threshold >= 1")

    @property
    def window(self) -> tuple[float, float]:
        """The detection window ``[K·T, (K+1)·T]``."""
        return self.threshold * self.period_s, (self.threshold + 1) * self.period_s


@dataclass
class DetectorResult:
    """One detector's score in one scenario."""

    detector: str
    decisions: list[tuple[float, int]] = field(default_factory=list)
    """``(time, node)`` of every disconnect decision."""
    false_disconnects: int = 0
    required: int = 0
    detected: int = 0
    missed: int = 0
    late: int = 0
    early: int = 0
    latencies: list[float] = field(default_factory=list)
    """Latency of every detection (seconds), in time order."""

    @property
    def latency_summary(self) -> tuple[float, float, float] | None:
        """(min, median, max) latency, or ``None`` without detections."""
        if not self.latencies:
            return None
        return min(self.latencies), statistics.median(self.latencies), max(self.latencies)


@dataclass
class ScenarioResult:
    scenario: Scenario
    events: int
    cycles: int
    results: dict[str, DetectorResult]
    final_states: dict[str, object] = field(default_factory=dict)
    """The ``CoreState`` each index-based detector's master ends with."""


def _detectors(stream: Stream, config: SimulationConfig) -> list[Detector]:
    return [
        WallClockDetector(stream.offsets),
        FirstProposalDetector(config.threshold),
        TrackerDetector(config.period_s, config.threshold),
    ]


def run_scenario(scenario: Scenario, config: SimulationConfig) -> ScenarioResult:
    """Simulate ``scenario`` and score the three detectors on the same event stream."""
    stream = build_stream(scenario, config.nodes, config.seed, config.period_s)
    detectors = _detectors(stream, config)
    decisions: dict[str, list[tuple[float, int]]] = {detector.name: [] for detector in detectors}
    deliveries = stream.deliveries
    position = 0
    term = 0
    for now, cycle_term in stream.cycles:
        # Everything indexed strictly before the cycle starts; a backlog released at `now` comes after it.
        end = bisect.bisect_left(deliveries, now, lo=position, key=lambda d: d.at)
        batch = deliveries[position:end]
        position = end
        for detector in detectors:
            detector.deliver(batch)
        if cycle_term != term:
            term = cycle_term
            for detector in detectors:
                detector.new_term(stream.terms[term][1])
        for detector in detectors:
            decisions[detector.name] += [(now, node) for node in detector.cycle(now)]
    results = {name: _score(name, decisions[name], stream, config) for name in DETECTORS}
    finals = {d.name: getattr(d, "state", None) for d in detectors if hasattr(d, "state")}
    return ScenarioResult(scenario, len(deliveries), len(stream.cycles), results, finals)


def _score(name: str, decisions: list[tuple[float, int]], stream: Stream, config: SimulationConfig) -> DetectorResult:
    low, high = config.window
    duration = stream.scenario.duration_s
    heard: dict[int, list[float]] = {node: [] for node in range(stream.nodes)}
    for delivery in stream.deliveries:
        heard[delivery.node].append(delivery.at)

    def last_heard(node: int, before: float) -> float:
        times = heard[node]
        position = bisect.bisect_left(times, before)
        return times[position - 1] if position else 0.0

    outages = [(o.node, o.start_s, o.end_s if o.end_s is not None else duration) for o in stream.scenario.outages]
    detected: set[int] = set()
    result = DetectorResult(name, decisions=decisions)
    for when, node in decisions:
        hit = next(
            (i for i, (n, start, end) in enumerate(outages) if n == node and start <= when < end),
            None,
        )
        if hit is None:
            result.false_disconnects += 1
            continue
        if hit in detected:
            continue
        detected.add(hit)
        latency = when - last_heard(node, when)
        result.latencies.append(latency)
        result.late += latency > high + _EPSILON
        result.early += latency < low - _EPSILON
    for i, (node, start, end) in enumerate(outages):
        if end - last_heard(node, start + _EPSILON) >= high:
            result.required += 1
            if i in detected:
                result.detected += 1
            else:
                result.missed += 1
    return result


def simulate(config: SimulationConfig, scenarios: Sequence[Scenario] | None = None) -> list[ScenarioResult]:
    """Run ``scenarios`` (default: :func:`default_scenarios`) with ``config``."""
    chosen = default_scenarios(config.duration_s) if scenarios is None else scenarios
    return [run_scenario(scenario, config) for scenario in chosen]
