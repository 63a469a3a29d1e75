"""This machine as a node: its id, and a quick one-shot sample of each of its monitors."""

from __future__ import annotations

import json
import socket
from collections.abc import Sequence

import anyio

from clusterstate.models import IndexedEvent, NodeGatheredInfo, NodeId

from .gatherer import GatherResult, gather_once
from .sources import GathererSettings, default_monitors

__all__ = ["append_local", "gather_json", "local_node_id", "sample_local"]


def local_node_id() -> NodeId:
    """The id this machine's samples carry when no other is given: ``local-<hostname>``."""
    return NodeId(f"local-{socket.gethostname()}")


def sample_local(
    node_id: NodeId | None = None, settings: GathererSettings | None = None, *, deadline_s: float | None = None
) -> GatherResult:
    """One sample of each of this machine's monitors (blocking; runs its own event loop)."""
    monitors = default_monitors(settings)
    return anyio.run(lambda: gather_once(node_id or local_node_id(), monitors, deadline_s=deadline_s))


def gather_json(events: Sequence[NodeGatheredInfo]) -> str:
    """``clusterstate gather --json``: a JSON list of ``{"NodeGatheredInfo": {...}}`` events, in monitor order."""
    return json.dumps([event.model_dump(mode="json") for event in events], indent=2)


def append_local(trace: Sequence[IndexedEvent], events: Sequence[NodeGatheredInfo]) -> list[IndexedEvent]:
    """``trace`` followed by ``events`` (all from their node), indexed after its last event."""
    start = trace[-1].idx + 1 if trace else 0
    return [
        *trace,
        *(IndexedEvent(idx=start + offset, origin=event.node_id, event=event) for offset, event in enumerate(events)),
    ]
