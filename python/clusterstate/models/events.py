"""Events and their envelopes, with clusterstate's changes to exo's (docs/models.md).

Changes from exo, on purpose:
- ``NodeGatheredInfo`` has no ``when``: no wall clock in events. A legacy ``when`` is accepted on
  input and dropped.
- ``NodeDisconnected{node_id, last_index, stale_cycles}`` replaces ``NodeTimedOut`` and carries the
  evidence for the decision. A legacy ``NodeTimedOut`` still decodes and applies the same way.
- ``IndexedEvent{idx, origin, event}`` records which node produced the event.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, Tag, model_validator

from ._base import CamelCaseModel, TaggedJson, TaggedModel, check_json, one_of_tags, tag_discriminator
from .ids import CommandId, EventId, EventIndex, InstanceId, Int64, NodeId, RunnerId, TaskId, UInt64, new_event_id
from .profiling import GatheredInfo
from .topology import Connection
from .work import DownloadProgress, Instance, RunnerStatus, Task, TaskStatus

__all__ = [
    "ChunkGenerated",
    "Event",
    "ForwarderEvent",
    "GenerationChunk",
    "IndexedEvent",
    "InputChunkReceived",
    "InputImageChunk",
    "InstanceCreated",
    "InstanceDeleted",
    "NodeDisconnected",
    "NodeDownloadProgress",
    "NodeGatheredInfo",
    "NodeTimedOut",
    "RunnerDeleted",
    "RunnerStatusUpdated",
    "SessionId",
    "TaskAcknowledged",
    "TaskCreated",
    "TaskDeleted",
    "TaskFailed",
    "TaskStatusUpdated",
    "TestEvent",
    "TopologyEdgeCreated",
    "TopologyEdgeDeleted",
    "TraceEventData",
    "TracesCollected",
    "TracesMerged",
    "origin_node",
    "scoped_node",
]

GenerationChunk = Annotated[TaggedJson, one_of_tags("TokenChunk", "ImageChunk", "ToolCallChunk", "ErrorChunk")]
"""A generated token, tool call, image piece or error; opaque to the reducer."""
InputImageChunk = Annotated[TaggedJson, one_of_tags("InputImageChunk")]
"""A piece of an input image for an edit request; opaque to the reducer."""


class _BaseEvent(TaggedModel):
    event_id: EventId = Field(default_factory=new_event_id)


class TestEvent(_BaseEvent):
    __test__ = False  # not a pytest test class


class TaskCreated(_BaseEvent):
    task_id: TaskId
    task: Task


class TaskStatusUpdated(_BaseEvent):
    task_id: TaskId
    task_status: TaskStatus


class TaskFailed(_BaseEvent):
    task_id: TaskId
    error_type: str
    error_message: str


class TaskDeleted(_BaseEvent):
    task_id: TaskId


class TaskAcknowledged(_BaseEvent):
    task_id: TaskId


class InstanceCreated(_BaseEvent):
    instance: Instance


class InstanceDeleted(_BaseEvent):
    instance_id: InstanceId


class RunnerStatusUpdated(_BaseEvent):
    runner_id: RunnerId
    runner_status: RunnerStatus


class RunnerDeleted(_BaseEvent):
    runner_id: RunnerId


class NodeTimedOut(_BaseEvent):
    """Legacy exo event: decodes and applies like :class:`NodeDisconnected` without evidence."""

    node_id: NodeId


class NodeDisconnected(_BaseEvent):
    """The master declared a node gone because its event index stopped advancing.

    ``last_index`` is the global index of the node's last event (``None`` for a node never heard
    from, e.g. one added only by a topology edge); ``stale_cycles`` is how many consecutive plan
    cycles saw no progress.
    """

    node_id: NodeId
    last_index: EventIndex | None
    stale_cycles: UInt64


class NodeGatheredInfo(_BaseEvent):
    """One hardware sample from a node's gatherer. No ``when``: see the module docstring."""

    node_id: NodeId
    info: GatheredInfo

    @model_validator(mode="before")
    @classmethod
    def _drop_legacy_when(cls, value: Any) -> Any:
        if isinstance(value, dict) and "when" in value:
            check_json(value["when"])
            return {key: item for key, item in value.items() if key != "when"}
        return value


class NodeDownloadProgress(_BaseEvent):
    download_progress: DownloadProgress


class ChunkGenerated(_BaseEvent):
    command_id: CommandId
    chunk: GenerationChunk


class InputChunkReceived(_BaseEvent):
    command_id: CommandId
    chunk: InputImageChunk


class TopologyEdgeCreated(_BaseEvent):
    conn: Connection


class TopologyEdgeDeleted(_BaseEvent):
    conn: Connection


class TraceEventData(CamelCaseModel):
    name: str
    start_us: Int64
    duration_us: Int64
    rank: Int64
    category: str


class TracesCollected(_BaseEvent):
    task_id: TaskId
    rank: Int64
    traces: list[TraceEventData]


class TracesMerged(_BaseEvent):
    task_id: TaskId
    traces: list[TraceEventData]


Event = Annotated[
    Annotated[TestEvent, Tag("TestEvent")]
    | Annotated[TaskCreated, Tag("TaskCreated")]
    | Annotated[TaskStatusUpdated, Tag("TaskStatusUpdated")]
    | Annotated[TaskFailed, Tag("TaskFailed")]
    | Annotated[TaskDeleted, Tag("TaskDeleted")]
    | Annotated[TaskAcknowledged, Tag("TaskAcknowledged")]
    | Annotated[InstanceCreated, Tag("InstanceCreated")]
    | Annotated[InstanceDeleted, Tag("InstanceDeleted")]
    | Annotated[RunnerStatusUpdated, Tag("RunnerStatusUpdated")]
    | Annotated[RunnerDeleted, Tag("RunnerDeleted")]
    | Annotated[NodeTimedOut, Tag("NodeTimedOut")]
    | Annotated[NodeDisconnected, Tag("NodeDisconnected")]
    | Annotated[NodeGatheredInfo, Tag("NodeGatheredInfo")]
    | Annotated[NodeDownloadProgress, Tag("NodeDownloadProgress")]
    | Annotated[ChunkGenerated, Tag("ChunkGenerated")]
    | Annotated[InputChunkReceived, Tag("InputChunkReceived")]
    | Annotated[TopologyEdgeCreated, Tag("TopologyEdgeCreated")]
    | Annotated[TopologyEdgeDeleted, Tag("TopologyEdgeDeleted")]
    | Annotated[TracesCollected, Tag("TracesCollected")]
    | Annotated[TracesMerged, Tag("TracesMerged")],
    tag_discriminator(),
]
"""Any event. Externally tagged: ``{"NodeGatheredInfo": {...}}``."""


class IndexedEvent(CamelCaseModel):
    """An event with its global index and the node that produced it (``None`` if unknown)."""

    idx: EventIndex
    origin: NodeId | None = None
    event: Event


class SessionId(CamelCaseModel):
    """A master's term: the elected node and the election clock it won at."""

    master_node_id: NodeId
    election_clock: UInt64


class ForwarderEvent(CamelCaseModel):
    """exo's envelope on the wire: a producer's counter (``local_events``) or the global index."""

    origin_idx: UInt64
    origin: NodeId
    session: SessionId
    event: Event


def origin_node(indexed: IndexedEvent) -> NodeId | None:
    """The node whose liveness this event proves: every event counts, not only samples.

    The envelope's ``origin`` when present; otherwise (exo-shaped input) the producer named inside
    the event: the sampled node, the downloading node, or the source of a reachability edge. An
    event *about* a node that the node did not produce (``NodeDisconnected``) names no producer.
    """
    if indexed.origin is not None:
        return indexed.origin
    return scoped_node(indexed.event)


def scoped_node(event: Event) -> NodeId | None:
    """The node a node-scoped event is about, which is also the node that produced it: the sampled
    node, the downloading node, the source of a reachability edge. ``None`` for the other events
    (``NodeDisconnected`` is about a node but made by the master)."""
    if isinstance(event, NodeGatheredInfo):
        return event.node_id
    if isinstance(event, NodeDownloadProgress):
        return event.download_progress.node_id
    if isinstance(event, TopologyEdgeCreated | TopologyEdgeDeleted):
        return event.conn.source
    return None
