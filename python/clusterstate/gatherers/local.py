"""This machine as a node: its id, a quick one-shot sample, and the live view (``clusterstate gather``)."""

from __future__ import annotations

import contextlib
import json
import socket
from collections.abc import Sequence

import anyio
from rich.console import Console
from rich.live import Live
from rich.table import Table

from clusterstate.models import IndexedEvent, NodeGatheredInfo, NodeId

from .gatherer import Gatherer, GatherResult, gather_once
from .sources import GathererSettings, default_monitors
from .view import samples_table

__all__ = ["append_local", "gather_json", "local_node_id", "run_live", "sample_local"]


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


async def _live(gatherer: Gatherer, console: Console, duration_s: float | None) -> None:
    title = f"This machine: {gatherer.node_id} (Ctrl-C to stop)"

    def table() -> Table:
        return samples_table(gatherer.monitors, gatherer.status, title=title)

    with Live(get_renderable=table, console=console, refresh_per_second=4):
        async with gatherer.events() as events:
            with anyio.move_on_after(duration_s if duration_s is not None else float("inf")):
                async for _ in events:
                    pass  # the table reads gatherer.status, refreshed by Live itself


def run_live(
    console: Console,
    node_id: NodeId | None = None,
    settings: GathererSettings | None = None,
    duration_s: float | None = None,
) -> None:
    """Run every monitor and show their samples in a table refreshing in place, until Ctrl-C or ``duration_s``."""
    gatherer = Gatherer(node_id or local_node_id(), default_monitors(settings))
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how the live view is meant to stop
        anyio.run(_live, gatherer, console, duration_s)
