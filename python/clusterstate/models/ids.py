"""Identifier newtypes. On the wire every id is a plain JSON string."""

from __future__ import annotations

from typing import Annotated, NewType
from uuid import uuid4

from pydantic import Field

__all__ = [
    "MAX_INDEX",
    "CommandId",
    "EventId",
    "EventIndex",
    "InstanceId",
    "Int64",
    "ModelId",
    "NodeId",
    "RunnerId",
    "TaskId",
    "UInt64",
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


MAX_INDEX = 2**63 - 1
"""The largest global event index: indices are 64-bit signed in the Rust core and the log."""

EventIndex = Annotated[int, Field(ge=0, le=MAX_INDEX)]
"""A global event index: ``0..=MAX_INDEX``."""

Int64 = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
"""A typed integer field the Rust core holds in an ``i64`` (Python's ``int`` alone is unbounded)."""

UInt64 = Annotated[int, Field(ge=0, le=2**64 - 1)]
"""A typed integer field the Rust core holds in a ``u64``."""


def new_event_id() -> EventId:
    """A fresh random event id (uuid4), exo's default when a producer gives none."""
    return EventId(str(uuid4()))


def new_task_id() -> TaskId:
    """A fresh random task id (uuid4)."""
    return TaskId(str(uuid4()))
