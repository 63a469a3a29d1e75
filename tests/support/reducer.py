"""Builders for reducer tests: apply events as the next index, and the small models the events carry."""

from __future__ import annotations

from typing import Any

from clusterstate.models import (
    Connection,
    Event,
    EventId,
    IndexedEvent,
    Multiaddr,
    NodeDisconnected,
    NodeGatheredInfo,
    NodeId,
    RDMAConnection,
    SocketConnection,
    State,
    ThunderboltBridgeInfo,
    ThunderboltBridgeStatus,
)
from clusterstate.reference import apply

__all__ = ["bridge", "disconnect", "gathered", "link", "socket", "step", "steps", "without_idx"]


def step(state: State, event: Event, origin: NodeId | None = None) -> State:
    """Apply ``event`` as the next indexed event."""
    return apply(state, IndexedEvent(idx=state.last_event_applied_idx + 1, origin=origin, event=event))


def steps(state: State, *events: Event, origin: NodeId | None = None) -> State:
    for event in events:
        state = step(state, event, origin)
    return state


def gathered(node: NodeId, info: Any) -> NodeGatheredInfo:
    return NodeGatheredInfo(event_id=EventId(f"info-{node}"), node_id=node, info=info)


def bridge(enabled: bool) -> ThunderboltBridgeInfo:
    return ThunderboltBridgeInfo(
        status=ThunderboltBridgeStatus(enabled=enabled, exists=True, service_name="Thunderbolt Bridge")
    )


def socket(ip: str, port: int = 52415) -> SocketConnection:
    return SocketConnection(sink_multiaddr=Multiaddr(address=f"/ip4/{ip}/tcp/{port}"))


def link(source: NodeId, sink: NodeId, edge: SocketConnection | RDMAConnection) -> Connection:
    return Connection(source=source, sink=sink, edge=edge)


def disconnect(node: NodeId) -> NodeDisconnected:
    return NodeDisconnected(node_id=node, last_index=None, stale_cycles=3)


def without_idx(state: State) -> dict[str, Any]:
    """The State as JSON, without ``last_event_applied_idx``: for States reached by different numbers of events."""
    dumped: dict[str, Any] = state.model_dump(mode="json")
    del dumped["last_event_applied_idx"]
    return dumped
