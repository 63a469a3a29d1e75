"""Identifier newtypes. On the wire every id is a plain JSON string."""

from __future__ import annotations

from typing import NewType
from uuid import uuid4

__all__ = [
    "CommandId",
    "EventId",
    "InstanceId",
    "ModelId",
    "NodeId",
    "RunnerId",
    "TaskId",
    "new_event_id",
    "new_task_id",
]

NodeId = NewType("NodeId", str)
"""A node's identity (in exo: the libp2p PeerId in base58)."""
CommandId = NewType("CommandId", str)
ModelId = NewType("ModelId", str)
TaskId = NewType("TaskId", str)
InstanceId = NewType("InstanceId", str)
RunnerId = NewType("RunnerId", str)
EventId = NewType("EventId", str)


def new_event_id() -> EventId:
    """A fresh random event id (uuid4), exo's default when a producer gives none."""
    return EventId(str(uuid4()))


def new_task_id() -> TaskId:
    """A fresh random task id (uuid4)."""
    return TaskId(str(uuid4()))
