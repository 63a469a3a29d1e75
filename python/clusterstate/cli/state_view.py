"""Rendering a cluster State for people, with rich: a table of nodes and a one-line summary.

Kept apart from any one command so that every command that shows a State (``demo``, a live view)
shows it the same way. Nothing here changes or derives State; it only reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich import box
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from clusterstate.models import NodeId, NodeIdentity, State

__all__ = ["WIDE_COLUMNS", "ClusterCounts", "cluster_table", "format_bytes", "render", "short_id", "summary_line"]


@dataclass(frozen=True)
class ClusterCounts:
    """What a State holds, counted."""

    instances: int
    runners: int
    tasks: int
    downloads: int
    topology_nodes: int
    topology_edges: int
    bridge_cycles: int
    connected: int
    disconnected: int

    @classmethod
    def of(cls, state: State) -> ClusterCounts:
        connected = state.known_nodes()
        return cls(
            instances=len(state.instances),
            runners=len(state.runners),
            tasks=len(state.tasks),
            downloads=sum(len(entries) for entries in state.downloads.values()),
            topology_nodes=len(state.topology),
            topology_edges=len(state.topology.list_connections()),
            bridge_cycles=len(state.thunderbolt_bridge_cycles),
            connected=len(connected),
            disconnected=len(set(state.node_identities) - connected),
        )


def short_id(node_id: str) -> str:
    """A node id people can tell apart: exo ids all start with ``12D3KooW``, so keep the tail."""
    return node_id if len(node_id) <= 9 else f"…{node_id[-8:]}"


def format_bytes(count: int) -> str:
    """Binary units with one decimal, e.g. ``512.0 GiB``."""
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024:
            return f"{value:.1f} {unit}" if unit != "B" else f"{count} B"
        value /= 1024
    return f"{value:.1f} TiB"


def _model(identity: NodeIdentity | None) -> str:
    # exo reports "Unknown Model" / "Unknown Chip" for Linux boxes: say it once.
    known = (
        [value for value in (identity.model_id, identity.chip_id) if not value.startswith("Unknown")]
        if identity
        else []
    )
    return ", ".join(known) or "unknown"


def _ram(used: int, total: int) -> str:
    unit, scale = ("TiB", 1024**4) if total >= 1024**4 else ("GiB", 1024**3)
    return f"{used / scale:.1f} / {total / scale:.0f} {unit}"


def _os(identity: NodeIdentity | None) -> str:
    if identity is None:
        return "?"
    if identity.os_build_version in ("", "Unknown"):
        return identity.os_version
    return f"{identity.os_version} ({identity.os_build_version})"


WIDE_COLUMNS = 130
"""Console width from which the table shows each node's hardware model and OS."""


def cluster_table(state: State, *, wide: bool = True) -> Table:
    """One row per node the State knows of, connected ones first, each group by name.

    Args:
        state: The State to show.
        wide: Include the model/chip and OS columns (about 130 columns); without them the table
            fits an 80-column terminal.
    """
    connected = state.known_nodes()
    nodes = connected | set(state.node_identities)

    def order(node_id: NodeId) -> tuple[bool, str, str]:
        identity = state.node_identities.get(node_id)
        return (node_id not in connected, identity.friendly_name if identity else "", node_id)

    # SIMPLE_HEAD separates columns by a space; with one space of padding a side that is 3 columns
    # a gap, so the narrow table collapses the padding to stay within 80.
    table = Table(
        title="Cluster",
        title_justify="left",
        header_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=not wide,
        padding=(0, 1) if wide else (0, 0),
    )
    table.add_column("Node", style="dim", no_wrap=True)
    table.add_column("Name", no_wrap=True, overflow="ellipsis", max_width=None if wide else 22)
    if wide:
        table.add_column("Model / chip")
        table.add_column("OS")
    table.add_column("RAM used", justify="right", no_wrap=True)
    table.add_column("Disk free", justify="right", no_wrap=True)
    table.add_column("Last idx" if wide else "Idx", justify="right", no_wrap=True)
    table.add_column("Status", no_wrap=True)
    for node_id in sorted(nodes, key=order):
        identity = state.node_identities.get(node_id)
        memory = state.node_memory.get(node_id)
        disk = state.node_disk.get(node_id)
        last = state.last_event_index_by_node.get(node_id)
        ram = "—"
        if memory is not None:
            used = memory.ram_total.in_bytes - memory.ram_available.in_bytes
            ram = _ram(used, memory.ram_total.in_bytes)
        hardware = [_model(identity), _os(identity)] if wide else []
        table.add_row(
            short_id(node_id),
            identity.friendly_name if identity else "?",
            *hardware,
            ram,
            format_bytes(disk.available.in_bytes) if disk else "—",
            "—" if last is None else str(last),
            Text("connected", style="green") if node_id in connected else Text("disconnected", style="red"),
        )
    return table


def summary_line(state: State, events: int, seconds: float) -> Text:
    """What folding ``events`` in ``seconds`` produced, in one line."""
    counts = ClusterCounts.of(state)
    rate = events / seconds if seconds > 0 else float("inf")

    def plural(count: int, noun: str) -> str:
        return f"{count} {noun}{'' if count == 1 else 's'}"

    parts = [
        f"{events:,} events applied in {seconds:.2f} s ({rate:,.0f} events/s)",
        plural(counts.instances, "instance"),
        plural(counts.runners, "runner"),
        plural(counts.tasks, "task"),
        plural(counts.downloads, "download"),
        f"topology {plural(counts.topology_nodes, 'node')} / {plural(counts.topology_edges, 'edge')}",
        plural(counts.bridge_cycles, "bridge cycle"),
    ]
    if counts.disconnected:
        parts.append(f"{counts.disconnected} disconnected")
    return Text(" · ".join(parts))


def render(console: Console, state: State, events: int, seconds: float) -> None:
    """Print the cluster table and the summary line."""
    table = cluster_table(state, wide=console.width >= WIDE_COLUMNS)
    console.print(Group(table, summary_line(state, events, seconds)))
