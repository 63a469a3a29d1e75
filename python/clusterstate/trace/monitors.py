"""Each node's info gatherer: one loop per monitor at exo's rates.

A monitor samples, emits one ``NodeGatheredInfo`` per sample, then sleeps its interval (exo's, from
:data:`clusterstate.gatherers.DEFAULT_SCHEDULES`), so its period is the interval plus the time the
sample took (system_profiler takes a while; macmon streams every 1000 ms). Each loop starts with a
seeded delay after boot, so nodes and monitors are out of phase as in a real cluster.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from clusterstate.gatherers import default_interval_s
from clusterstate.models import (
    DiskUsage,
    GatheredInfo,
    MacmonMetrics,
    MacThunderboltConnections,
    MacThunderboltIdentifiers,
    Memory,
    MemoryUsage,
    MiscData,
    NodeConfig,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeNetworkInterfaces,
    RdmaCtlStatus,
    StaticNodeInformation,
    SystemPerformanceProfile,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
)

from .engine import NodeRuntime, Sim

__all__ = ["LINUX_MONITORS", "MAC_MONITORS", "Monitor", "start_monitors"]

_MIB = 1024 * 1024
_GIB = 1024 * _MIB


@dataclass(frozen=True)
class Monitor:
    """One gatherer loop: what it samples, how long a sample takes, and (from its name) how often."""

    name: str
    """The real monitor's name in :data:`clusterstate.gatherers.DEFAULT_SCHEDULES`."""
    sample_s: tuple[float, float]
    """Range of the time one sample takes, added to the interval."""
    sample: Callable[[Sim, NodeRuntime], Sequence[GatheredInfo]]
    interval_s: float = field(init=False)
    """exo's interval of the monitor ``name``."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "interval_s", default_interval_s(self.name))


def _memory(node: NodeRuntime) -> MemoryUsage:
    spec = node.spec
    # Memory wobbles around the OS baseline plus the loaded weights (a bounded random walk).
    node.ram_wobble = max(-2 * _GIB, min(2 * _GIB, node.ram_wobble + int(node.rng.gauss(0, 48 * _MIB))))
    page = 16384 if spec.kind == "mac" else 4096
    used = spec.base_ram_used + node.resident_bytes + node.ram_wobble
    used = max(_GIB, min(spec.ram_total - _GIB, used)) // page * page
    swap_used = 0 if spec.swap_total == 0 else (300 * _MIB + node.rng.randrange(0, 64 * _MIB)) // page * page
    return MemoryUsage(
        ram_total=Memory(in_bytes=spec.ram_total),
        ram_available=Memory(in_bytes=spec.ram_total - used),
        swap_total=Memory(in_bytes=spec.swap_total),
        swap_available=Memory(in_bytes=spec.swap_total - swap_used),
    )


def _macmon(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    rng = node.rng
    busy = node.generating > 0
    # The die heats toward a load-dependent target and cools back slowly.
    target = 68.0 if busy else 41.0
    node.temperature += (target - node.temperature) * 0.15 + rng.gauss(0, 0.3)
    if busy:
        gpu, pcpu, ecpu, power = (
            rng.uniform(0.82, 0.98),
            rng.uniform(0.12, 0.3),
            rng.uniform(0.05, 0.2),
            rng.uniform(170, 240),
        )
    else:
        gpu, pcpu, ecpu, power = (
            rng.uniform(0.0, 0.04),
            rng.uniform(0.02, 0.09),
            rng.uniform(0.04, 0.18),
            rng.uniform(11, 24),
        )
    profile = SystemPerformanceProfile(
        gpu_usage=round(gpu, 4),
        temp=round(node.temperature, 2),
        sys_power=round(power, 2),
        pcpu_usage=round(pcpu, 4),
        ecpu_usage=round(ecpu, 4),
    )
    return [MacmonMetrics(system_profile=profile, memory=_memory(node))]


def _psutil_memory(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    return [_memory(node)]


def _network(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    ifaces = list(node.spec.interfaces)
    sim.advertise(node.node_id, tuple(iface.ip_address for iface in ifaces))
    return [NodeNetworkInterfaces(ifaces=ifaces)]


def _thunderbolt(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    # One system_profiler run yields both: the identifiers first, then the cables.
    return [
        MacThunderboltIdentifiers(idents=list(node.spec.tb_ports)),
        MacThunderboltConnections(conns=list(node.spec.tb_links)),
    ]


def _bridge(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    status = ThunderboltBridgeStatus(enabled=node.spec.bridge_enabled, exists=True, service_name="Thunderbolt Bridge")
    return [ThunderboltBridgeInfo(status=status)]


def _rdma_ctl(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    enabled = node.spec.rdma_enabled
    return [] if enabled is None else [RdmaCtlStatus(enabled=enabled)]


def _disk(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    spec = node.spec
    # Logs and caches creep; downloads take the big bites.
    node.disk_drift += node.rng.randrange(0, 24 * _MIB)
    available = max(0, spec.disk_free - node.downloaded_bytes - node.disk_drift) // 4096 * 4096
    return [
        NodeDiskUsage(
            disk_usage=DiskUsage(total=Memory(in_bytes=spec.disk_total), available=Memory(in_bytes=available))
        )
    ]


def _misc(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    return [MiscData(friendly_name=node.spec.friendly_name)]


def _static(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    spec = node.spec
    return [
        StaticNodeInformation(
            model=spec.model, chip=spec.chip, os_version=spec.os_version, os_build_version=spec.os_build_version
        )
    ]


def _once_config(sim: Sim, node: NodeRuntime) -> Sequence[GatheredInfo]:
    return [NodeConfig()]


_NETWORK = Monitor("network", (0.01, 0.06), _network)
_DISK = Monitor("disk", (0.0, 0.01), _disk)
_MISC = Monitor("misc", (0.005, 0.05), _misc)
_STATIC = Monitor("static", (0.2, 0.6), _static)

MAC_MONITORS: tuple[Monitor, ...] = (
    Monitor("macmon", (-0.004, 0.004), _macmon),
    Monitor("thunderbolt", (0.3, 0.8), _thunderbolt),
    Monitor("thunderbolt_bridge", (0.05, 0.2), _bridge),
    Monitor("rdma_ctl", (0.01, 0.04), _rdma_ctl),
    _NETWORK,
    _DISK,
    _MISC,
    _STATIC,
)
"""A Mac with macmon and rdma_ctl installed."""

LINUX_MONITORS: tuple[Monitor, ...] = (
    Monitor("memory", (0.0005, 0.002), _psutil_memory),
    _NETWORK,
    _DISK,
    _MISC,
    _STATIC,
)
"""A Linux box: psutil memory, no Thunderbolt."""


def start_monitors(sim: Sim, node: NodeRuntime, boot: float) -> None:
    """Start the node's gatherer loops for the life that begins at ``boot``."""
    # NodeConfig is read once when the worker starts.
    sim.on_node(node, boot + node.rng.uniform(0.01, 0.05), lambda now: _emit(sim, node, _once_config(sim, node)))
    for monitor in MAC_MONITORS if node.spec.kind == "mac" else LINUX_MONITORS:
        sim.on_node(node, boot + node.rng.uniform(0.05, 1.0), _loop(sim, node, monitor))


def _loop(sim: Sim, node: NodeRuntime, monitor: Monitor) -> Callable[[float], None]:
    def tick(now: float) -> None:
        _emit(sim, node, monitor.sample(sim, node))
        sim.on_node(node, now + monitor.interval_s + node.rng.uniform(*monitor.sample_s), tick)

    return tick


def _emit(sim: Sim, node: NodeRuntime, infos: Sequence[GatheredInfo]) -> None:
    for info in infos:
        sim.emit(node.node_id, NodeGatheredInfo(event_id=sim.event_id(), node_id=node.node_id, info=info))
