"""This machine's samples for people: one row per monitor, what it last saw and how it is doing, refreshing in place
while the monitors run (``clusterstate gather``)."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence

import anyio
from rich import box
from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from clusterstate.gatherers import Gatherer, GathererSettings, Monitor, MonitorStatus, default_monitors
from clusterstate.gatherers.local import local_node_id
from clusterstate.models import (
    GatheredInfo,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDiskUsage,
    NodeId,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    ThunderboltBridgeInfo,
)

from .state_view import format_bytes

__all__ = ["describe", "run_live", "samples_table"]

_SHOWN_ADDRESSES = 3


def _memory(memory: MemoryUsage) -> str:
    total = memory.ram_total.in_bytes
    used = total - memory.ram_available.in_bytes
    text = f"RAM {format_bytes(used)} used of {format_bytes(total)}"
    if memory.swap_total.in_bytes:
        swap_used = memory.swap_total.in_bytes - memory.swap_available.in_bytes
        text += f", swap {format_bytes(swap_used)} of {format_bytes(memory.swap_total.in_bytes)}"
    return text


def describe(info: GatheredInfo) -> str:
    """One line about one sample."""
    match info:
        case MemoryUsage():
            return _memory(info)
        case MacmonMetrics(system_profile=profile, memory=memory):
            return (
                f"GPU {profile.gpu_usage:.0%}, P-CPU {profile.pcpu_usage:.0%}, E-CPU {profile.ecpu_usage:.0%}, "
                f"{profile.temp:.1f} °C, {profile.sys_power:.1f} W; {_memory(memory)}"
            )
        case NodeDiskUsage(disk_usage=disk):
            return f"{format_bytes(disk.available.in_bytes)} free of {format_bytes(disk.total.in_bytes)}"
        case NodeNetworkInterfaces(ifaces=ifaces):
            shown = ", ".join(f"{iface.name} {iface.ip_address}" for iface in ifaces[:_SHOWN_ADDRESSES])
            more = len(ifaces) - _SHOWN_ADDRESSES
            return shown + (f" (+{more} more)" if more > 0 else "") if ifaces else "no addresses"
        case MiscData(friendly_name=name):
            return name
        case StaticNodeInformation():
            build = "" if info.os_build_version in ("", "Unknown") else f" ({info.os_build_version})"
            return f"{info.model}, {info.chip}, {info.os_version}{build}"
        case NodeConfig():
            return "config.toml read"
        case MacThunderboltIdentifiers(idents=idents):
            return f"{len(idents)} controller{'s' if len(idents) != 1 else ''}: " + ", ".join(
                f"{ident.rdma_interface} {ident.link_speed}".strip() for ident in idents
            )
        case MacThunderboltConnections(conns=conns):
            return f"{len(conns)} cable{'s' if len(conns) != 1 else ''}"
        case ThunderboltBridgeInfo(status=status):
            if not status.exists:
                return "no Thunderbolt Bridge"
            return f"{status.service_name}: {'enabled' if status.enabled else 'disabled'}"
        case RdmaCtlStatus(enabled=enabled):
            return "RDMA enabled" if enabled else "RDMA disabled"
    return type(info).__name__  # pragma: no cover - the match covers GatheredInfo


def _every(monitor: Monitor) -> str:
    return "once" if monitor.interval_s is None else f"{monitor.interval_s:g} s"


def samples_table(monitors: Sequence[Monitor], status: Mapping[str, MonitorStatus], *, title: str) -> Table:
    """One row per monitor: its schedule, counts, last sample (or last error) and state."""
    table = Table(title=title, title_justify="left", header_style="bold", box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("Monitor", no_wrap=True, min_width=18)
    table.add_column("Every", justify="right", no_wrap=True, min_width=5)
    table.add_column("Samples", justify="right", no_wrap=True)
    table.add_column("Failed", justify="right", no_wrap=True)
    table.add_column("Last sample", ratio=1)
    table.add_column("State", no_wrap=True)
    for monitor in monitors:
        state = status[monitor.name]
        if state.consecutive_failures:
            last = Text(state.last_error or "failed", style="red")
            health = Text(f"failing x{state.consecutive_failures}", style="red")
            if state.retry_in_s is not None:
                health.append(f", retry in {state.retry_in_s:g} s")
        else:
            last = Text("; ".join(describe(info) for info in state.last) if state.last else "—")
            health = Text("ok", style="green") if state.samples else Text("waiting", style="dim")
        table.add_row(monitor.name, _every(monitor), str(state.samples), str(state.failures), last, health)
    return table


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
