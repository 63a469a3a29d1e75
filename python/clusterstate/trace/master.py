"""The simulated master's plan loop (exo's ``Master._plan``, docs/liveness.md), reduced to what a
trace needs.

Every plan period (first pass at once) the master:

1. deletes every instance that has a node it has already declared disconnected (as exo's plan
   loop does on its next pass);
2. runs a simple event-index staleness rule: a node whose last event index has not advanced for
   ``stale_cycles`` consecutive passes is declared gone with
   ``NodeDisconnected(node_id, last_index, stale_cycles)``.

It also places the configured instances at their times. The real staleness tracker (with the
master-stall guard and grace period) is not modelled here: the simulated master never stalls.
"""

from __future__ import annotations

from clusterstate.models import NodeDisconnected, NodeId

from .engine import Sim
from .workload import InstanceRun

__all__ = ["Master"]


class Master:
    """Plans, places and times nodes out; runs on the master node (node 0), which never crashes."""

    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.runs = [InstanceRun(sim, placement) for placement in sim.spec.placements]
        self._seen: dict[NodeId, int] = {}
        self._stale: dict[NodeId, int] = {}

    def start(self) -> None:
        self.sim.at(0.0, self._plan)
        for run in self.runs:
            self.sim.at(run.placement.at_s, run.place)

    def _plan(self, now: float) -> None:
        sim = self.sim
        for run in self.runs:
            if run.placed and not run.deleted and run.lost_member():
                run.delete(now)
        for node_id, last in sorted(sim.last_idx.items(), key=lambda item: sim.nodes[item[0]].spec.index):
            if self._seen.get(node_id) != last:
                self._seen[node_id], self._stale[node_id] = last, 0
                continue
            self._stale[node_id] += 1
            if self._stale[node_id] >= sim.config.stale_cycles:
                cycles = self._stale.pop(node_id)
                del self._seen[node_id]
                event = NodeDisconnected(event_id=sim.event_id(), node_id=node_id, last_index=last, stale_cycles=cycles)
                sim.emit(sim.master, event)
                sim.disconnect(node_id)
        sim.at(now + sim.config.plan_interval_s, self._plan)
