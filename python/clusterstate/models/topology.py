"""The cluster topology: which node can reach which, and how.

A directed multigraph over node ids whose edges are socket reachability (``SocketConnection``)
or Thunderbolt RDMA links (``RDMAConnection``). Parallel edges between one ordered pair are
allowed, equal ones are kept once.

:class:`Topology` is an immutable value: every change returns a new Topology that shares every
unchanged adjacency row with the old one (adding an edge copies the row index and one row, not the
graph), and leaves the old one valid, so a State holding it is never changed under a reader. It serialises as exo's
``TopologySnapshot`` in a canonical order: nodes sorted, connections sorted by source then sink,
parallel edges sorted (socket edges by address, then RDMA edges by interface names). The order
never depends on history, so equal graphs are equal values with identical JSON.

exo's placement and worker code read its topology through ``list_nodes``, ``list_connections``,
``map_connections``, ``out_edges``, ``neighbours``, ``node_is_leaf``, ``get_cycles``,
``is_rdma_cycle`` and ``get_subgraph_from_nodes``; :class:`Topology` answers each of them the same
way, in its canonical order (exo's order followed its graph's insertion order).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import networkx as nx
from pydantic import BaseModel, ConfigDict, Discriminator, Tag, computed_field, model_validator
from pydantic_core import core_schema

from ._base import CamelCaseModel, check_json
from .ids import NodeId

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler

__all__ = [
    "Connection",
    "Cycle",
    "Edge",
    "Multiaddr",
    "RDMAConnection",
    "SocketConnection",
    "Topology",
    "TopologySnapshot",
]

_MULTIADDR = re.compile(r"^/(?P<kind>ip4|ip6)/(?P<host>[^/]+)/tcp/(?P<port>[0-9]{1,5})(?:/p2p/[A-Za-z0-9]+)?$")
_COMPUTED = ("address_type", "ip_address", "port")


class Multiaddr(BaseModel):
    """An address a node is reachable at, such as ``/ip4/10.0.0.2/tcp/52415``.

    Serialises its parts (``address_type``, ``ip_address`` in its canonical text form, ``port``)
    next to ``address`` and ignores them on input, as exo does. Only ``/ip4`` and ``/ip6`` with a
    ``/tcp/<port>`` are accepted: exo cannot serialise any other multiaddr (its ``ip_address`` and
    ``port`` raise), so no other can be on the wire.
    """

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    address: str

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(key in value for key in _COMPUTED):
            for key in _COMPUTED:
                check_json(value.get(key))
            return {key: item for key, item in value.items() if key not in _COMPUTED}
        return value

    @model_validator(mode="after")
    def _check_format(self) -> Multiaddr:
        match = _MULTIADDR.match(self.address)
        if match is None:
            raise ValueError(f"not a supported multiaddr (/ip4|/ip6/<address>/tcp/<port>): {self.address!r}")
        try:
            ip = ipaddress.ip_address(match["host"])
        except ValueError:
            raise ValueError(f"not an IP address in {self.address!r}") from None
        if ip.version != (4 if match["kind"] == "ip4" else 6):
            raise ValueError(f"address family does not match {match['kind']} in {self.address!r}")
        if not 0 <= int(match["port"]) <= 65535:
            raise ValueError(f"port out of range in {self.address!r}")
        return self

    @computed_field  # type: ignore[prop-decorator]
    @property
    def address_type(self) -> str:
        return self.address.split("/")[1]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def ip_address(self) -> str:
        return str(ipaddress.ip_address(self.address.split("/")[2]))

    @computed_field  # type: ignore[prop-decorator]
    @property
    def port(self) -> int:
        return int(self.address.split("/")[4])


class SocketConnection(CamelCaseModel):
    """The source can reach the sink at this address."""

    sink_multiaddr: Multiaddr

    def __hash__(self) -> int:
        # exo hashes socket edges by IP only; equality still compares every field.
        return hash(self.sink_multiaddr.ip_address)


class RDMAConnection(CamelCaseModel):
    """A Thunderbolt RDMA link between two controllers' interfaces."""

    source_rdma_iface: str
    sink_rdma_iface: str


def _edge_shape(value: Any) -> str | None:
    # Edges are untagged on the wire; they are told apart by their fields.
    if isinstance(value, SocketConnection | RDMAConnection):
        return type(value).__name__
    if isinstance(value, dict):
        if "sink_multiaddr" in value or "sinkMultiaddr" in value:
            return "SocketConnection"
        if any(key in value for key in ("source_rdma_iface", "sourceRdmaIface", "sink_rdma_iface", "sinkRdmaIface")):
            return "RDMAConnection"
    return None


EdgeValue = SocketConnection | RDMAConnection


def edge_order(edge: EdgeValue) -> tuple[int, str, str]:
    """The canonical order of parallel edges: socket edges by address, then RDMA edges by interfaces."""
    if isinstance(edge, SocketConnection):
        return (0, edge.sink_multiaddr.address, "")
    return (1, edge.source_rdma_iface, edge.sink_rdma_iface)


Edge = Annotated[
    Annotated[SocketConnection, Tag("SocketConnection")] | Annotated[RDMAConnection, Tag("RDMAConnection")],
    Discriminator(_edge_shape),
]


class Connection(CamelCaseModel):
    """One directed edge of the topology."""

    source: NodeId
    sink: NodeId
    edge: Edge


class TopologySnapshot(BaseModel):
    """The serialised topology (no camelCase aliases, as in exo)."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    nodes: list[NodeId]
    connections: dict[NodeId, dict[NodeId, list[Edge]]]


@dataclass(frozen=True)
class Cycle:
    """A directed cycle of nodes (exo's ``Cycle``): each node has an edge to the next, the last one to the first."""

    node_ids: list[NodeId]

    def __len__(self) -> int:
        return len(self.node_ids)

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self.node_ids)


class Topology:
    """An immutable directed multigraph of node ids; see the module docstring."""

    __slots__ = ("_out",)

    def __init__(self, out: Mapping[NodeId, Mapping[NodeId, tuple[EdgeValue, ...]]] | None = None) -> None:
        # node -> sink -> its edges to that sink, canonically sorted. Every node has a row (maybe
        # empty). Shared with the Topologies this one was derived from, so never changed in place.
        self._out: Mapping[NodeId, Mapping[NodeId, tuple[EdgeValue, ...]]] = out if out is not None else {}

    # --- reading ---

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._out

    def __len__(self) -> int:
        return len(self._out)

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self.list_nodes())

    def list_nodes(self) -> list[NodeId]:
        """Every node, sorted by id."""
        return sorted(self._out)

    def list_connections(self) -> list[Connection]:
        """Every edge in canonical order (see the module docstring)."""
        return [connection for source in self.list_nodes() for connection in self.out_edges(source)]

    def out_edges(self, node_id: NodeId) -> list[Connection]:
        """Edges leaving ``node_id`` in canonical order (empty for an unknown node)."""
        row = self._out.get(node_id, {})
        return [Connection(source=node_id, sink=sink, edge=edge) for sink in sorted(row) for edge in row[sink]]

    def successors(self, node_id: NodeId) -> list[NodeId]:
        """Distinct nodes that ``node_id`` has an edge to (empty for an unknown node)."""
        return sorted(self._out.get(node_id, {}))

    def is_leaf(self, node_id: NodeId) -> bool:
        """At most one distinct successor (exo's ``node_is_leaf``)."""
        return len(self._out.get(node_id, {})) <= 1

    # --- exo's reading methods ---

    def neighbours(self, node_id: NodeId) -> list[NodeId]:
        """exo's ``neighbours``: the successors of ``node_id``."""
        return self.successors(node_id)

    def node_is_leaf(self, node_id: NodeId) -> bool:
        """exo's ``node_is_leaf``: at most one distinct successor."""
        return self.is_leaf(node_id)

    def map_connections(self) -> dict[NodeId, dict[NodeId, list[Connection]]]:
        """exo's ``map_connections``: source -> sink -> the edges between them, for every pair with an edge."""
        mapped: dict[NodeId, dict[NodeId, list[Connection]]] = {}
        for connection in self.list_connections():
            mapped.setdefault(connection.source, {}).setdefault(connection.sink, []).append(connection)
        return mapped

    def get_cycles(self) -> list[Cycle]:
        """exo's ``get_cycles``: every simple directed cycle, and a one-node cycle for every node.

        Each cycle starts at its smallest node id; the list is sorted.
        """
        graph: nx.DiGraph[NodeId] = nx.DiGraph()
        graph.add_nodes_from(self._out)
        graph.add_edges_from((source, sink) for source, row in self._out.items() for sink in row)
        cycles = [[node_id] for node_id in self._out]
        for cycle in nx.simple_cycles(graph):
            if len(cycle) >= 2:
                start = cycle.index(min(cycle))
                cycles.append(cycle[start:] + cycle[:start])
        return [Cycle(node_ids) for node_ids in sorted(cycles)]

    def is_rdma_cycle(self, cycle: Cycle) -> bool:
        """exo's ``is_rdma_cycle``: for every member that has edges to another member, an RDMA connection is
        among them."""
        members = set(cycle)
        return all(
            any(isinstance(edge, RDMAConnection) for edge in edges)
            for source in members
            for sink, edges in self._out.get(source, {}).items()
            if sink in members
        )

    def get_subgraph_from_nodes(self, nodes: Iterable[NodeId]) -> Topology:
        """exo's ``get_subgraph_from_nodes``: the known nodes among ``nodes`` and every edge between two of them."""
        kept = {node_id for node_id in nodes if node_id in self._out}
        return Topology(
            {source: {sink: edges for sink, edges in self._out[source].items() if sink in kept} for source in kept}
        )

    def edge_count(self) -> int:
        return sum(len(edges) for row in self._out.values() for edges in row.values())

    def snapshot(self) -> TopologySnapshot:
        return TopologySnapshot.model_construct(
            nodes=self.list_nodes(),
            connections={
                source: {sink: list(row[sink]) for sink in sorted(row)}
                for source in self.list_nodes()
                if (row := self._out[source])
            },
        )

    # --- building: every method returns a new Topology, or self when nothing changes ---

    @classmethod
    def from_snapshot(cls, snapshot: TopologySnapshot) -> Topology:
        topology = cls()
        for node_id in snapshot.nodes:
            topology = topology.with_node(node_id)
        for source, sinks in snapshot.connections.items():
            for sink, edges in sinks.items():
                for edge in edges:
                    topology = topology.with_connection(Connection(source=source, sink=sink, edge=edge))
        return topology

    def with_node(self, node_id: NodeId) -> Topology:
        if node_id in self._out:
            return self
        return Topology({**self._out, node_id: {}})

    def without_node(self, node_id: NodeId) -> Topology:
        """Remove the node and every edge touching it."""
        if node_id not in self._out:
            return self
        return Topology(
            {
                source: {sink: edges for sink, edges in row.items() if sink != node_id} if node_id in row else row
                for source, row in self._out.items()
                if source != node_id
            }
        )

    def with_connection(self, conn: Connection) -> Topology:
        """Add an edge; unknown endpoints are added too (exo's behaviour, kept)."""
        edges = self._out.get(conn.source, {}).get(conn.sink, ())
        if conn.edge in edges:
            return self
        out = dict(self._out)
        out.setdefault(conn.sink, {})
        out[conn.source] = {**out.get(conn.source, {}), conn.sink: _canonical((*edges, conn.edge))}
        return Topology(out)

    def without_connection(self, conn: Connection) -> Topology:
        """Remove the edge equal to ``conn``, in that direction only."""
        row = self._out.get(conn.source, {})
        edges = row.get(conn.sink, ())
        if conn.edge not in edges:
            return self
        kept = tuple(edge for edge in edges if edge != conn.edge)
        new_row = {sink: item for sink, item in row.items() if sink != conn.sink}
        if kept:
            new_row[conn.sink] = kept
        return Topology({**self._out, conn.source: new_row})

    def with_rdma_out_edges(self, source: NodeId, conns: Iterable[Connection]) -> Topology:
        """Replace every RDMA edge leaving ``source`` by ``conns`` (which must all leave ``source``)."""
        wanted: dict[NodeId, list[EdgeValue]] = {}
        for sink, edges in self._out.get(source, {}).items():
            wanted[sink] = [edge for edge in edges if not isinstance(edge, RDMAConnection)]
        for conn in conns:
            wanted.setdefault(conn.sink, []).append(conn.edge)
        row = {sink: _canonical(edges) for sink, edges in wanted.items() if edges}
        if source in self._out and row == self._out[source]:
            return self
        out = {**self._out, source: row}
        for sink in row:
            out.setdefault(sink, {})
        return Topology(out)

    # --- value semantics ---

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Topology):
            return NotImplemented
        return self is other or self._out == other._out

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Topology(nodes={len(self)}, edges={self.edge_count()})"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        snapshot_schema = handler.generate_schema(TopologySnapshot)
        from_snapshot = core_schema.no_info_after_validator_function(cls.from_snapshot, snapshot_schema)
        return core_schema.json_or_python_schema(
            json_schema=from_snapshot,
            python_schema=core_schema.union_schema([core_schema.is_instance_schema(cls), from_snapshot]),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda topology: topology.snapshot(), return_schema=snapshot_schema
            ),
        )


def _canonical(edges: Iterable[EdgeValue]) -> tuple[EdgeValue, ...]:
    """Parallel edges deduplicated and in canonical order."""
    unique: list[EdgeValue] = []
    for edge in edges:
        if edge not in unique:
            unique.append(edge)
    return tuple(sorted(unique, key=edge_order))
