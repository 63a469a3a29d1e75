"""Per-node hardware information: the payloads of ``NodeGatheredInfo`` and the State maps they fill.

Mirrors exo's ``types/profiling.py`` and ``types/thunderbolt.py``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Tag

from ._base import CamelCaseModel, TaggedModel, tag_discriminator
from .ids import Int64

__all__ = [
    "DiskUsage",
    "GatheredInfo",
    "InterfaceType",
    "MacThunderboltConnections",
    "MacThunderboltIdentifiers",
    "MacmonMetrics",
    "Memory",
    "MemoryUsage",
    "MiscData",
    "NetworkInterfaceInfo",
    "NodeConfig",
    "NodeDiskUsage",
    "NodeIdentity",
    "NodeNetworkInfo",
    "NodeNetworkInterfaces",
    "NodeRdmaCtlStatus",
    "NodeThunderboltInfo",
    "RdmaCtlStatus",
    "StaticNodeInformation",
    "SystemPerformanceProfile",
    "ThunderboltBridgeInfo",
    "ThunderboltBridgeStatus",
    "ThunderboltConnection",
    "ThunderboltIdentifier",
]


class Memory(CamelCaseModel):
    """An amount of memory or storage, in bytes."""

    in_bytes: Int64

    @classmethod
    def from_mb(cls, mb: float) -> Memory:
        return cls(in_bytes=int(mb * 1024 * 1024))

    @classmethod
    def from_gb(cls, gb: float) -> Memory:
        return cls(in_bytes=int(gb * 1024 * 1024 * 1024))

    @property
    def in_gb(self) -> float:
        return self.in_bytes / (1024 * 1024 * 1024)


class MemoryUsage(CamelCaseModel):
    """RAM and swap of a node. Untagged when used as gathered info (as in exo)."""

    ram_total: Memory
    ram_available: Memory
    swap_total: Memory
    swap_available: Memory


class DiskUsage(CamelCaseModel):
    total: Memory
    available: Memory


class SystemPerformanceProfile(CamelCaseModel):
    gpu_usage: float = 0.0
    temp: float = 0.0
    sys_power: float = 0.0
    pcpu_usage: float = 0.0
    ecpu_usage: float = 0.0


InterfaceType = Literal["wifi", "ethernet", "maybe_ethernet", "thunderbolt", "unknown"]


class NetworkInterfaceInfo(CamelCaseModel):
    name: str
    ip_address: str
    interface_type: InterfaceType = "unknown"


class NodeIdentity(CamelCaseModel):
    model_id: str = "Unknown"
    chip_id: str = "Unknown"
    friendly_name: str = "Unknown"
    os_version: str = "Unknown"
    os_build_version: str = "Unknown"


class NodeNetworkInfo(CamelCaseModel):
    interfaces: list[NetworkInterfaceInfo] = Field(default_factory=list)


class ThunderboltIdentifier(CamelCaseModel):
    """One Thunderbolt controller of a node: its RDMA interface and domain UUID."""

    rdma_interface: str
    domain_uuid: str
    link_speed: str = ""


class ThunderboltConnection(CamelCaseModel):
    """A cable: the local controller's domain UUID and the one seen at the far end."""

    source_uuid: str
    sink_uuid: str


class NodeThunderboltInfo(CamelCaseModel):
    interfaces: list[ThunderboltIdentifier] = Field(default_factory=list)


class NodeRdmaCtlStatus(CamelCaseModel):
    enabled: bool


class ThunderboltBridgeStatus(CamelCaseModel):
    enabled: bool
    exists: bool
    service_name: str | None = None


# --- the GatheredInfo union: one sample of one monitor ---


class MacmonMetrics(TaggedModel):
    system_profile: SystemPerformanceProfile
    memory: MemoryUsage


class NodeNetworkInterfaces(TaggedModel):
    ifaces: list[NetworkInterfaceInfo]


class MacThunderboltIdentifiers(TaggedModel):
    idents: list[ThunderboltIdentifier]


class MacThunderboltConnections(TaggedModel):
    conns: list[ThunderboltConnection]


class RdmaCtlStatus(TaggedModel):
    enabled: bool


class ThunderboltBridgeInfo(TaggedModel):
    status: ThunderboltBridgeStatus


class NodeConfig(TaggedModel):
    """The node's config was read; carries nothing but still shows the node is alive."""


class MiscData(TaggedModel):
    friendly_name: str


class StaticNodeInformation(TaggedModel):
    model: str
    chip: str
    os_version: str
    os_build_version: str


class NodeDiskUsage(TaggedModel):
    disk_usage: DiskUsage


def _untagged_memory(value: dict[str, object]) -> str | None:
    # Tags are class names (capitalised); MemoryUsage is a bare object of lower-case fields.
    if len(value) == 1:
        (key,) = value
        if isinstance(key, str) and key[:1].isupper():
            return None
    return "MemoryUsage"


GatheredInfo = Annotated[
    Annotated[MacmonMetrics, Tag("MacmonMetrics")]
    | Annotated[MemoryUsage, Tag("MemoryUsage")]
    | Annotated[NodeNetworkInterfaces, Tag("NodeNetworkInterfaces")]
    | Annotated[MacThunderboltIdentifiers, Tag("MacThunderboltIdentifiers")]
    | Annotated[MacThunderboltConnections, Tag("MacThunderboltConnections")]
    | Annotated[RdmaCtlStatus, Tag("RdmaCtlStatus")]
    | Annotated[ThunderboltBridgeInfo, Tag("ThunderboltBridgeInfo")]
    | Annotated[NodeConfig, Tag("NodeConfig")]
    | Annotated[MiscData, Tag("MiscData")]
    | Annotated[StaticNodeInformation, Tag("StaticNodeInformation")]
    | Annotated[NodeDiskUsage, Tag("NodeDiskUsage")],
    tag_discriminator(untagged=_untagged_memory),
]
"""One monitor sample. Externally tagged, except ``MemoryUsage`` which exo sends bare."""
