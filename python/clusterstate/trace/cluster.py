"""The static side of a trace: which machines exist, how they are cabled, where work goes and
who crashes when. Everything here is decided up front from the config; the simulation
(:mod:`clusterstate.trace.engine`) then plays it out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from itertools import combinations
from typing import Literal

from clusterstate.models import (
    InterfaceType,
    NetworkInterfaceInfo,
    NodeId,
    ThunderboltConnection,
    ThunderboltIdentifier,
)

from .config import TraceConfig
from .rand import derive_rng, peer_id, uuid_str

__all__ = ["ClusterSpec", "NodeKind", "NodeSpec", "Placement", "cluster_spec"]

NodeKind = Literal["mac", "linux"]

_GIB = 1024**3
_MAC_RAM = 512 * _GIB  # Mac Studio, M3 Ultra
_MAC_TB_PORTS = 6  # Thunderbolt 5 ports of an M3 Ultra Mac Studio: en2..en7
_MAC_DISKS = (994_662_584_320, 1_995_218_165_760, 3_996_329_328_640)  # APFS containers of 1/2/4 TB SSDs
_LINUX_DISKS = (983_349_387_264, 1_967_317_565_440)  # ext4 on 1/2 TB NVMe
_MAC_OS = (("26.2", "25C56"), ("26.1", "25B78"), ("15.7.2", "24G325"))
_FIRST_NAMES = (
    "Ada", "Alan", "Barbara", "Claude", "Dennis", "Donald", "Edsger", "Frances", "Grace", "Guido",
    "Hedy", "Ivan", "John", "Ken", "Leslie", "Linus", "Margaret", "Niklaus", "Radia", "Shafi",
    "Sophie", "Tim", "Tony", "Vint", "Whitfield", "Yukihiro",
)  # fmt: skip
_LINUX_HOSTS = ("dgx-spark", "gpu-box", "rig", "tower")


@dataclass(frozen=True)
class NodeSpec:
    """One machine: its identity, hardware, network, cabling and life."""

    index: int
    node_id: NodeId
    kind: NodeKind
    friendly_name: str
    model: str
    chip: str
    os_version: str
    os_build_version: str
    ram_total: int
    swap_total: int
    base_ram_used: int
    disk_total: int
    disk_free: int
    lan_ip: str
    bridge_ip: str | None
    interfaces: tuple[NetworkInterfaceInfo, ...]
    tb_ports: tuple[ThunderboltIdentifier, ...]
    tb_links: tuple[ThunderboltConnection, ...]
    tb_group: int | None
    bridge_enabled: bool
    rdma_enabled: bool | None
    boot_at: float
    silent_at: float | None
    rejoin_at: float | None
    models_on_disk: tuple[str, ...]


@dataclass(frozen=True)
class Placement:
    """An instance the master will place: over which nodes, of which model, when."""

    index: int
    nodes: tuple[NodeId, ...]
    meta: Literal["MlxJaccl", "MlxRing"]
    model_id: str
    at_s: float


@dataclass(frozen=True)
class ClusterSpec:
    """The whole static plan of a trace."""

    nodes: tuple[NodeSpec, ...]
    master: NodeId
    tb_groups: tuple[tuple[NodeId, ...], ...]
    cables: tuple[tuple[NodeId, NodeId], ...]
    """Thunderbolt cables, as (node, node) pairs in cabling order."""
    lan_unreachable: frozenset[frozenset[NodeId]]
    """Pairs of nodes that cannot reach each other over the LAN (empty for a full mesh)."""
    placements: tuple[Placement, ...]

    def node(self, node_id: NodeId) -> NodeSpec:
        return next(spec for spec in self.nodes if spec.node_id == node_id)

    @property
    def bridge_nodes(self) -> tuple[NodeId, ...]:
        return tuple(spec.node_id for spec in self.nodes if spec.bridge_enabled)


def cluster_spec(config: TraceConfig) -> ClusterSpec:
    """Decide everything static about the cluster of ``config``."""
    n = config.nodes
    mac_count = min(n, int(n * config.mac_fraction + 0.5))
    id_rng = derive_rng(config.seed, "node-ids")
    unique: dict[NodeId, None] = {}  # insertion-ordered, with constant-time membership
    while len(unique) < n:
        unique.setdefault(peer_id(id_rng))
    ids = list(unique)

    macs = list(range(mac_count))
    size = max(config.tb_group_size, 1)
    groups = [macs[start : start + size] for start in range(0, mac_count, size)]
    cabled = [group for group in groups if len(group) >= 2]
    bridged = {index for group in cabled[: config.bridge_groups] for index in group}
    group_of = {index: number for number, group in enumerate(groups) for index in group if len(group) >= 2}

    tb_rng = derive_rng(config.seed, "thunderbolt")
    ports = {index: [uuid_str(tb_rng).upper() for _ in range(_MAC_TB_PORTS)] for index in macs}
    cables = [pair for group in cabled for pair in _wiring(group, config.tb_wiring)]
    links: dict[int, list[ThunderboltConnection]] = {index: [] for index in macs}
    used = dict.fromkeys(macs, 0)
    speeds: dict[tuple[int, int], str] = {}
    for a, b in cables:
        port_a, port_b = used[a], used[b]
        used[a], used[b] = port_a + 1, port_b + 1
        links[a].append(ThunderboltConnection(source_uuid=ports[a][port_a], sink_uuid=ports[b][port_b]))
        links[b].append(ThunderboltConnection(source_uuid=ports[b][port_b], sink_uuid=ports[a][port_a]))
        speeds[a, port_a] = speeds[b, port_b] = "Up to 80 Gb/s"

    boot_rng = derive_rng(config.seed, "boot")
    boots = [0.0] + [round(boot_rng.uniform(0.0, config.join_spread_s), 6) for _ in range(n - 1)]
    placements = _placements(config, ids, cabled, mac_count)
    hosting = {node for placement in placements for node in placement.nodes}
    silent = _silent_schedule(config, ids, boots, hosting)
    disk_rng = derive_rng(config.seed, "models-on-disk")
    on_disk = {node_id: list(_extra_models(disk_rng, index < mac_count)) for index, node_id in enumerate(ids)}
    for placement in placements:
        for node_id in placement.nodes:
            if disk_rng.random() < config.predownloaded_fraction and placement.model_id not in on_disk[node_id]:
                on_disk[node_id].append(placement.model_id)

    net_rng = derive_rng(config.seed, "lan")
    subnet = f"10.{net_rng.randrange(256)}"
    third = net_rng.randrange(0, 200)
    # One draw per pair, in pair order; with a full mesh no draw can cut a pair, so none is made
    # (net_rng draws nothing after this), which keeps the default cluster linear in its nodes.
    unreachable = frozenset(
        frozenset((ids[a], ids[b]))
        for a, b in (combinations(range(n), 2) if config.lan_reachability < 1.0 else ())
        if net_rng.random() >= config.lan_reachability
    )
    name_order = list(_FIRST_NAMES)
    derive_rng(config.seed, "names").shuffle(name_order)

    nodes = []
    for index, node_id in enumerate(ids):
        rng = derive_rng(config.seed, "hardware", index)
        host = 11 + index
        lan_ip = f"{subnet}.{third + host // 256}.{host % 256}"
        is_mac = index < mac_count
        bridge_ip = f"169.254.{rng.randrange(1, 255)}.{rng.randrange(1, 255)}" if index in bridged else None
        if is_mac:
            first = name_order[index % len(name_order)]
            suffix = f" {index // len(name_order) + 1}" if index >= len(name_order) else ""
            friendly = f"{first}'s Mac Studio{suffix}"
            os_version, os_build = rng.choice(_MAC_OS)
            disk_total = rng.choice(_MAC_DISKS)
            ram_total, swap_total = _MAC_RAM, 0
            base_used = rng.randrange(14 * _GIB, 40 * _GIB)
        else:
            friendly = f"{rng.choice(_LINUX_HOSTS)}-{index:02d}"
            os_version, os_build = "Linux", "Unknown"
            disk_total = rng.choice(_LINUX_DISKS)
            # psutil's total is the RAM minus what the firmware and kernel keep.
            ram_total, swap_total = 64 * _GIB - rng.randrange(700, 1400) * 1024 * 1024 // 4096 * 4096, 8 * _GIB
            base_used = rng.randrange(4 * _GIB, 12 * _GIB)
        silent_at, rejoin_at = silent.get(node_id, (None, None))
        nodes.append(
            NodeSpec(
                index=index,
                node_id=node_id,
                kind="mac" if is_mac else "linux",
                friendly_name=friendly,
                model="Mac Studio" if is_mac else "Unknown Model",
                chip="Apple M3 Ultra" if is_mac else "Unknown Chip",
                os_version=os_version,
                os_build_version=os_build,
                ram_total=ram_total,
                swap_total=swap_total,
                base_ram_used=base_used,
                disk_total=disk_total,
                disk_free=int(disk_total * rng.uniform(0.3, 0.8)) // 4096 * 4096,
                lan_ip=lan_ip,
                bridge_ip=bridge_ip,
                interfaces=_interfaces(rng, is_mac, lan_ip, bridge_ip),
                tb_ports=tuple(
                    ThunderboltIdentifier(
                        rdma_interface=f"rdma_en{port + 2}", domain_uuid=uuid, link_speed=speeds.get((index, port), "")
                    )
                    for port, uuid in enumerate(ports.get(index, ()))
                ),
                tb_links=tuple(links.get(index, ())),
                tb_group=group_of.get(index),
                bridge_enabled=index in bridged,
                rdma_enabled=(index in group_of) if is_mac else None,
                boot_at=boots[index],
                silent_at=silent_at,
                rejoin_at=rejoin_at,
                models_on_disk=tuple(on_disk[node_id]),
            )
        )
    return ClusterSpec(
        nodes=tuple(nodes),
        master=ids[0],
        tb_groups=tuple(tuple(ids[index] for index in group) for group in cabled),
        cables=tuple((ids[a], ids[b]) for a, b in cables),
        lan_unreachable=unreachable,
        placements=placements,
    )


def _wiring(group: list[int], wiring: str) -> list[tuple[int, int]]:
    if wiring == "mesh" or len(group) <= 2:
        return list(combinations(group, 2))
    return [(group[i], group[(i + 1) % len(group)]) for i in range(len(group))]


def _placements(
    config: TraceConfig, ids: list[NodeId], cabled: list[list[int]], mac_count: int
) -> tuple[Placement, ...]:
    """Cabled Mac groups first (Jaccl over RDMA), then rings of up to two leftover nodes (Macs first)."""
    rng = derive_rng(config.seed, "placement")
    in_groups = {index for group in cabled for index in group}
    leftovers = [index for index in range(mac_count) if index not in in_groups]
    leftovers += list(range(mac_count, len(ids)))
    placements: list[Placement] = []
    meta: Literal["MlxJaccl", "MlxRing"]
    for number in range(config.instances):
        if number < len(cabled):
            members, meta = cabled[number], "MlxJaccl"
        elif leftovers:
            members, leftovers = leftovers[:2], leftovers[2:]
            meta = "MlxRing"
        else:
            break
        model = config.models[number % len(config.models)]
        at_s = round(config.first_placement_s + 10.0 * number + rng.uniform(0.0, 2.0), 6)
        placements.append(
            Placement(index=number, nodes=tuple(ids[i] for i in members), meta=meta, model_id=model, at_s=at_s)
        )
    return tuple(placements)


def _silent_schedule(
    config: TraceConfig, ids: list[NodeId], boots: list[float], hosting: set[NodeId]
) -> dict[NodeId, tuple[float, float | None]]:
    rng = derive_rng(config.seed, "silent")
    idle = [index for index in range(1, len(ids)) if ids[index] not in hosting]
    busy = [index for index in range(1, len(ids)) if ids[index] in hosting]
    rng.shuffle(idle)
    rng.shuffle(busy)
    schedule = {}
    lo, hi = config.silent_window
    for index in (idle + busy)[: config.silent_nodes]:
        # A node lives at least a moment, so it is known before it goes silent.
        silent_at = round(max(config.duration_s * rng.uniform(lo, hi), boots[index] + 1.5), 6)
        rejoin_at = None if config.rejoin_after_s is None else round(silent_at + config.rejoin_after_s, 6)
        schedule[ids[index]] = (silent_at, rejoin_at)
    return schedule


def _extra_models(rng: random.Random, is_mac: bool) -> list[str]:
    # What a node already has on disk from earlier sessions (reported by the 60 s rescan).
    pool = (
        [
            "mlx-community/Llama-3.3-70B-Instruct-4bit",
            "mlx-community/gpt-oss-120b-MXFP4-Q8",
            "mlx-community/DeepSeek-V3.1-4bit",
        ]
        if is_mac
        else ["mlx-community/Llama-3.2-1B-Instruct-4bit"]
    )
    return rng.sample(pool, rng.randint(0, min(2, len(pool))))


def _iface(name: str, ip: str, kind: InterfaceType = "unknown") -> NetworkInterfaceInfo:
    return NetworkInterfaceInfo(name=name, ip_address=ip, interface_type=kind)


def _link_local(rng: random.Random, zone: str) -> str:
    return (
        f"fe80::{rng.getrandbits(16):x}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}:{rng.getrandbits(16):x}%{zone}"
    )


def _interfaces(
    rng: random.Random, is_mac: bool, lan_ip: str, bridge_ip: str | None
) -> tuple[NetworkInterfaceInfo, ...]:
    """What psutil.net_if_addrs() shows, typed the way exo's gatherer types it."""
    if not is_mac:
        # On Linux exo types every interface "unknown".
        return (
            _iface("lo", "127.0.0.1"),
            _iface("enp5s0", lan_ip),
            _iface("docker0", "172.17.0.1"),
            _iface("lo", "::1"),
            _iface("enp5s0", _link_local(rng, "enp5s0")),
        )
    ifaces = [
        _iface("lo0", "127.0.0.1"),
        _iface("lo0", "::1"),
        _iface("lo0", "fe80::1%lo0"),
        _iface("en0", lan_ip, "ethernet"),
        _iface("en0", _link_local(rng, "en0"), "ethernet"),
    ]
    if bridge_ip is not None:
        # Only the bridge0 "Thunderbolt Bridge" port is typed thunderbolt; raw TB ports are en2.. (maybe_ethernet).
        ifaces += [
            _iface("bridge0", bridge_ip, "thunderbolt"),
            _iface("bridge0", _link_local(rng, "bridge0"), "thunderbolt"),
        ]
    ifaces += [_iface(name, _link_local(rng, name)) for name in ("anpi0", "anpi1", "awdl0", "llw0", "utun0", "utun1")]
    return tuple(ifaces)
