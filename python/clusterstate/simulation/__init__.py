"""A deterministic, discrete-event simulation of cluster liveness (docs/liveness.md).

Simulated time only (nothing sleeps): a cluster of nodes sending events at exo's gatherer rates,
with injected faults (slow or stalled gatherers, skewed clocks, crashes, partitions, master stalls
and pauses, re-elections, restarts, flapping), and three liveness detectors run side by side on the
same event stream: exo's wall-clock ``last_seen`` timeout, the first event-index proposal, and
clusterstate's :class:`clusterstate.StalenessTracker`. The event stream is built by :mod:`.stream`;
realistic traces of a whole cluster's State (for tests and benchmarks) are :mod:`clusterstate.trace`'s. The
whole-cluster simulator of real node machines under faults (``clusterstate chaos``) is :mod:`.cluster`.

Example:
    >>> from clusterstate.simulation import SimulationConfig, simulate
    >>> results = simulate(SimulationConfig(nodes=6, seed=1))
    >>> sum(r.results["tracker"].false_disconnects for r in results)
    0
"""

from .detectors import Detector, FirstProposalDetector, TrackerDetector, WallClockDetector
from .runner import DETECTORS, DetectorResult, ScenarioResult, SimulationConfig, run_scenario, simulate
from .scenarios import MIN_NODES, Outage, Scenario, default_scenarios
from .stream import Delivery, Stream, build_stream, node_id

__all__ = [
    "DETECTORS",
    "MIN_NODES",
    "Delivery",
    "Detector",
    "DetectorResult",
    "FirstProposalDetector",
    "Outage",
    "Scenario",
    "ScenarioResult",
    "SimulationConfig",
    "Stream",
    "TrackerDetector",
    "WallClockDetector",
    "build_stream",
    "default_scenarios",
    "node_id",
    "run_scenario",
    "simulate",
]
