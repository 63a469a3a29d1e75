"""The events a simulated node pushes (:mod:`.cluster`): mostly its own hardware samples, some pass-through events.

Every id is drawn from the run's ``random.Random``, so a seed pushes the same events.
"""

from __future__ import annotations

import random
import uuid

from clusterstate.models import (
    DiskUsage,
    Event,
    EventId,
    Memory,
    MemoryUsage,
    MiscData,
    NodeDiskUsage,
    NodeGatheredInfo,
    NodeId,
    TaskDeleted,
    TaskId,
    TestEvent,
)

__all__ = ["random_event"]

_GB = 1 << 30


def random_event(rng: random.Random, node: str) -> Event:
    """One event from `node`: a memory, disk or name sample about itself (80 %), a test event or a task deletion."""
    event_id = EventId(_uuid(rng))
    kind = rng.random()
    if kind < 0.5:
        total = rng.randint(8, 512) * _GB
        memory = MemoryUsage(
            ram_total=Memory(in_bytes=total),
            ram_available=Memory(in_bytes=rng.randint(0, total)),
            swap_total=Memory(in_bytes=0),
            swap_available=Memory(in_bytes=0),
        )
        return NodeGatheredInfo(event_id=event_id, node_id=NodeId(node), info=memory)
    if kind < 0.65:
        disk = DiskUsage(total=Memory(in_bytes=1 << 40), available=Memory(in_bytes=rng.randint(0, 1 << 40)))
        return NodeGatheredInfo(event_id=event_id, node_id=NodeId(node), info=NodeDiskUsage(disk_usage=disk))
    if kind < 0.8:
        name = MiscData(friendly_name=f"{node}-{rng.randint(0, 99)}")
        return NodeGatheredInfo(event_id=event_id, node_id=NodeId(node), info=name)
    if kind < 0.9:
        return TestEvent(event_id=event_id)
    return TaskDeleted(event_id=event_id, task_id=TaskId(_uuid(rng)))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))
