"""Producers' envelopes for ``MasterCore.ingest``, and the check that a master's State is what it broadcast."""

from __future__ import annotations

from collections.abc import Sequence

import clusterstate
from clusterstate import MasterCore, reference
from clusterstate.models import IndexedEvent, NodeId, SessionId
from pipeline import envelope as encode_envelope

__all__ = ["SESSION", "assert_consistent", "decoded", "envelope"]

SESSION = ("master", 1)
"""The session the tests' masters run in, as ``(master_node_id, election_clock)``."""


def envelope(producer: str, origin_idx: int, event: bytes, node: str, session: tuple[str, int] = SESSION) -> bytes:
    """A local-event envelope (docs/master.md) around ``event``, an encoded tagged event."""
    master, clock = session
    return encode_envelope(
        producer, origin_idx, SessionId(master_node_id=NodeId(master), election_clock=clock), event, node
    )


def decoded(broadcast: Sequence[bytes]) -> list[IndexedEvent]:
    return [clusterstate.decode_indexed_event(line) for line in broadcast]


def assert_consistent(master: MasterCore, broadcast: Sequence[bytes]) -> list[IndexedEvent]:
    """The master's State is the reference replay of everything it broadcast, indexed 0, 1, 2, ..."""
    events = decoded(broadcast)
    assert [event.idx for event in events] == list(range(len(events)))
    assert master.state == reference.fold(events)
    assert master.next_index == len(events)
    return events
