"""Putting a trace together: boot every node, schedule crashes and rejoins, start the master, and
run the simulation into one indexed event stream."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from functools import partial
from typing import Any

from clusterstate.models import IndexedEvent, NodeId

from .cluster import cluster_spec
from .config import TraceConfig
from .downloads import add_to_disk, start_coordinator
from .engine import NodeRuntime, Progress, Sim
from .master import Master
from .monitors import start_monitors
from .network import start_sweeps
from .payloads import model_spec

__all__ = ["generate", "generate_trace", "iter_trace", "node_ids"]


def iter_trace(config: TraceConfig, progress: Progress | None = None) -> Iterator[IndexedEvent]:
    """The trace of ``config``, event by event, in global index order (idx 0, 1, 2, ...).

    ``progress``, if given, is called with the simulated time whenever it passes a whole second.
    """
    spec = cluster_spec(config)
    sim = Sim(config, spec)
    for node in sim.nodes.values():
        for model_id in node.spec.models_on_disk:
            add_to_disk(node, model_spec(model_id))
        sim.at(node.spec.boot_at, partial(_boot, sim, node))
        if node.spec.silent_at is not None:
            sim.at(node.spec.silent_at, partial(_crash, sim, node))
        if node.spec.rejoin_at is not None:
            sim.at(node.spec.rejoin_at, partial(_boot, sim, node))
    Master(sim).start()
    return sim.run(progress)


def generate(config: TraceConfig, progress: Progress | None = None) -> list[IndexedEvent]:
    """The whole trace of ``config`` as a list (``progress``: as in :func:`iter_trace`).

    CPython's cyclic garbage collector is paused while the list is built (and restored after,
    also on error): every event stays alive in the list, and each full collection would walk all
    of them again (at 1024 nodes that was two thirds of the time), while the simulation leaves
    only a few small cycles behind (self-scheduling closures), collected once it is re-enabled.
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        return list(iter_trace(config, progress))
    finally:
        if collecting:
            gc.enable()


def generate_trace(nodes: int, duration_s: float = 60.0, seed: int = 0, **knobs: Any) -> list[IndexedEvent]:
    """Shorthand for ``generate(TraceConfig(nodes, duration_s, seed, **knobs))``."""
    return generate(TraceConfig(nodes=nodes, duration_s=duration_s, seed=seed, **knobs))


def node_ids(config: TraceConfig) -> list[NodeId]:
    """The ids of the trace's nodes, node 0 (the master) first."""
    return [node.node_id for node in cluster_spec(config).nodes]


def _boot(sim: Sim, node: NodeRuntime, now: float) -> None:
    sim.boot(node)
    start_monitors(sim, node, now)
    start_sweeps(sim, node, now)
    start_coordinator(sim, node, now)


def _crash(sim: Sim, node: NodeRuntime, now: float) -> None:
    sim.crash(node)
