"""The cluster State with clusterstate's changes to exo's (docs/models.md).

``last_seen`` (wall-clock times) is replaced by ``last_event_index_by_node``: the global index of
the last event each node produced, so replaying the log rebuilds it exactly.

The JSON form is canonical: mapping keys are written sorted, whatever order they were inserted
in, so two replicas holding equal States write identical bytes.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, SerializerFunctionWrapHandler, field_serializer

from ._base import CamelCaseModel
from .ids import MAX_INDEX, EventIndex, InstanceId, NodeId, RunnerId, TaskId
from .profiling import (
    DiskUsage,
    MemoryUsage,
    NodeIdentity,
    NodeNetworkInfo,
    NodeRdmaCtlStatus,
    NodeThunderboltInfo,
    SystemPerformanceProfile,
    ThunderboltBridgeStatus,
)
from .topology import Topology
from .work import DownloadProgress, Instance, RunnerStatus, Task

__all__ = ["NODE_MAPS", "State"]

NODE_MAPS = (
    "downloads",
    "node_memory",
    "node_disk",
    "node_system",
    "node_network",
    "node_thunderbolt",
    "node_thunderbolt_bridge",
    "node_rdma_ctl",
)
"""Per-node fields dropped when a node disconnects (``node_identities`` survives: a rejoining node keeps its name)."""


class State(CamelCaseModel):
    """Everything the cluster knows, as folded from the indexed event stream. Immutable."""

    instances: dict[InstanceId, Instance] = Field(default_factory=dict)
    runners: dict[RunnerId, RunnerStatus] = Field(default_factory=dict)
    downloads: dict[NodeId, list[DownloadProgress]] = Field(default_factory=dict)
    tasks: dict[TaskId, Task] = Field(default_factory=dict)
    last_event_index_by_node: dict[NodeId, EventIndex] = Field(default_factory=dict)
    topology: Topology = Field(default_factory=Topology)
    last_event_applied_idx: int = Field(default=-1, ge=-1, le=MAX_INDEX)
    node_identities: dict[NodeId, NodeIdentity] = Field(default_factory=dict)
    node_memory: dict[NodeId, MemoryUsage] = Field(default_factory=dict)
    node_disk: dict[NodeId, DiskUsage] = Field(default_factory=dict)
    node_system: dict[NodeId, SystemPerformanceProfile] = Field(default_factory=dict)
    node_network: dict[NodeId, NodeNetworkInfo] = Field(default_factory=dict)
    node_thunderbolt: dict[NodeId, NodeThunderboltInfo] = Field(default_factory=dict)
    node_thunderbolt_bridge: dict[NodeId, ThunderboltBridgeStatus] = Field(default_factory=dict)
    node_rdma_ctl: dict[NodeId, NodeRdmaCtlStatus] = Field(default_factory=dict)
    thunderbolt_bridge_cycles: list[list[NodeId]] = Field(default_factory=list)

    @field_serializer(
        "instances",
        "runners",
        "downloads",
        "tasks",
        "last_event_index_by_node",
        "node_identities",
        "node_memory",
        "node_disk",
        "node_system",
        "node_network",
        "node_thunderbolt",
        "node_thunderbolt_bridge",
        "node_rdma_ctl",
        mode="wrap",
    )
    def _sorted_keys(self, value: dict[str, Any], handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(value)
        return dict(sorted(dumped.items()))

    def known_nodes(self) -> set[NodeId]:
        """Every node the State holds anything about: in the topology or with an event index."""
        return set(self.topology.list_nodes()) | set(self.last_event_index_by_node)
