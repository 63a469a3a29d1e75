"""Each node's download coordinator: ``NodeDownloadProgress`` events.

A download reports ``DownloadPending``, then ``DownloadOngoing`` once a second (exo throttles
progress to 1/s per model), then ``DownloadCompleted``; a shard whose files are already on disk
completes at once. Every 60 s, starting at boot, the coordinator rescans the models directory and
re-emits ``DownloadCompleted`` for every shard on disk.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from clusterstate.models import (
    DownloadCompleted,
    DownloadOngoing,
    DownloadPending,
    Memory,
    NodeDownloadProgress,
    TaggedJson,
)

from .engine import NodeRuntime, Sim
from .payloads import ModelSpec, download_progress, full_shard

__all__ = ["add_to_disk", "download", "shard_key", "start_coordinator"]

_RESCAN_S = 60.0


def shard_key(shard: TaggedJson) -> str:
    """Canonical JSON of a shard: equal shards, equal keys."""
    return json.dumps(shard, sort_keys=True, separators=(",", ":"))


def add_to_disk(node: NodeRuntime, model: ModelSpec) -> None:
    """Record that the whole model is on the node's disk (from an earlier session)."""
    shard = full_shard(model)
    node.on_disk[shard_key(shard)] = (shard, model.storage_bytes)


def start_coordinator(sim: Sim, node: NodeRuntime, boot: float) -> None:
    """Start the rescan loop for the life that begins at ``boot``."""

    def rescan(now: float) -> None:
        for shard, total in node.on_disk.values():
            _emit(
                sim,
                node,
                DownloadCompleted(node_id=node.node_id, shard_metadata=shard, total_bytes=Memory(in_bytes=total)),
            )
        sim.on_node(node, now + _RESCAN_S + node.rng.uniform(0.05, 0.4), rescan)

    sim.on_node(node, boot + node.rng.uniform(0.2, 1.5), rescan)


def download(
    sim: Sim,
    node: NodeRuntime,
    model: ModelSpec,
    shard: TaggedJson,
    total: int,
    start: float,
    on_done: Callable[[float], None],
) -> None:
    """Download ``total`` bytes of ``shard`` to the node, from ``start``; call ``on_done`` when complete."""
    key = shard_key(shard)
    _emit(sim, node, DownloadPending(node_id=node.node_id, shard_metadata=shard))
    if key in node.on_disk or shard_key(full_shard(model)) in node.on_disk:
        # Every file the shard needs is already there: exo reports completion straight away.
        sim.on_node(
            node, start + node.rng.uniform(0.05, 0.3), lambda now: _complete(sim, node, key, shard, total, now, on_done)
        )
        return
    speed = node.rng.uniform(*sim.config.download_mb_per_s) * 1e6
    done = 0

    def progress(now: float) -> None:
        nonlocal done
        step = min(total - done, int(speed * node.rng.uniform(0.85, 1.1)))
        done += step
        node.downloaded_bytes += step
        if done >= total:
            _complete(sim, node, key, shard, total, now, on_done)
            return
        data = download_progress(model, total, done, speed)
        _emit(sim, node, DownloadOngoing(node_id=node.node_id, shard_metadata=shard, download_progress=data))
        sim.on_node(node, now + 1.0, progress)

    sim.on_node(node, start + 1.0, progress)


def _complete(
    sim: Sim, node: NodeRuntime, key: str, shard: TaggedJson, total: int, now: float, on_done: Callable[[float], None]
) -> None:
    node.on_disk[key] = (shard, total)
    _emit(sim, node, DownloadCompleted(node_id=node.node_id, shard_metadata=shard, total_bytes=Memory(in_bytes=total)))
    on_done(now)


def _emit(sim: Sim, node: NodeRuntime, progress: DownloadPending | DownloadOngoing | DownloadCompleted) -> None:
    sim.emit(node.node_id, NodeDownloadProgress(event_id=sim.event_id(), download_progress=progress))
