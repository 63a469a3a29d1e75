"""Nodes the HTTP API serves in tests: ``NodeView``s over real cores, and the app served on a free port.

A :class:`CoreNode` keeps its State in a ``NodeCore`` fed its master's pages, pushes through a ``ProducerOutbox``
addressed to that master, and reads events from the master's ``EventLog`` (``MasterCore.events_since``). The
masters start from a log holding the shared test trace (:mod:`support.traces`).
"""

from __future__ import annotations

import contextlib
import functools
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread

from clusterstate import EventLog, MasterCore, NodeCore, ProducerOutbox
from clusterstate.models import Event
from clusterstate.runtime.api import NodeView, serve

from .traces import trace

__all__ = ["CLUSTER", "NODES", "CoreNode", "link", "master_over_trace", "served"]

CLUSTER = "test"
NODES = sorted({str(event.origin) for event in trace()})
"""The trace's node ids: the tests' nodes are the nodes the State knows."""

_PAGE = 10_000


def master_over_trace(path: Path, node_id: str, term: int) -> MasterCore:
    """A master of session ``term/node_id`` whose log (at ``path``) holds the trace."""
    log = EventLog(path, create=True, durability="none")
    log.append_many(trace())
    return MasterCore((node_id, term), log=log)


class CoreNode:
    """One node of a test cluster (a :class:`~clusterstate.runtime.api.NodeView`).

    ``follows`` says whether the node follows ``master``'s session (a candidate does not, but keeps the events it
    applied). ``members`` maps every live member to its node, or None for one that does not answer.
    """

    def __init__(self, node_id: str, master: MasterCore, *, role: str, follows: bool = True) -> None:
        self._node_id = node_id
        self.master = master
        self.role = role
        self.follows = follows
        self.core = NodeCore()
        self.outbox = ProducerOutbox(ProducerOutbox.new_producer_id(node_id), node_id, master.session)
        self.members: dict[str, CoreNode | None] = {node_id: self}
        self.dropped = {"global": 0, "local": 0}
        while page := master.events_since(self.core.next_index, _PAGE):
            self.core.receive(page)

    @property
    def node_id(self) -> str:
        return self._node_id

    @property
    def session(self) -> str | None:
        master, term = self.master.session
        return f"{term}/{master}" if self.follows else None

    def status(self) -> dict[str, Any]:
        master, term = self.master.session
        master_next = self.master.next_index if self.follows else None
        return {
            "node": self._node_id,
            "cluster": CLUSTER,
            "role": self.role,
            "term": term,
            "session": self.session,
            "next": self.core.next_index,
            "master_next": master_next,
            "lag": None if master_next is None else master_next - self.core.next_index,
            "missing": self.core.missing,
            "commit": master_next,
            "pending": self.outbox.pending,
            "members": sorted(self.members),
            "masters": [self.session] if self.follows else [],
            "lineage": [[term, master, 0]],
            "dropped": dict(self.dropped),
            "counters": {
                **{f"node_{name}": value for name, value in self.core.counters.items()},
                **{f"outbox_{name}": value for name, value in self.outbox.counters.items()},
            },
        }

    def state_json(self) -> bytes:
        return self.core.state.model_dump_json(by_alias=True).encode()

    def events_since(self, since: int, limit: int) -> list[bytes]:
        return self.master.events_since(since, limit)

    async def statuses(self, within: float) -> dict[str, dict[str, Any] | None]:
        return {node_id: None if node is None else node.status() for node_id, node in self.members.items()}

    async def emit(self, event: Event, within: float) -> int:
        """The real pipeline: outbox → master → every member's NodeCore → acknowledgement (no release while the
        node follows no session)."""
        with anyio.fail_after(within):
            envelope = self.outbox.push(event, now=0.0)
            if not self.follows:
                await anyio.sleep_forever()
            result = self.master.ingest([envelope])
            for node in self.members.values():
                if node is not None and node.follows and node.master is self.master:
                    node.core.receive(result.broadcast)
            self.outbox.acknowledge(result.acknowledged, session=self.master.session)
            return self.core.next_index


def link(*nodes: CoreNode, silent: tuple[str, ...] = ()) -> None:
    """Make ``nodes`` (and the ``silent`` ids, members that do not answer) one another's members."""
    members: dict[str, CoreNode | None] = {node.node_id: node for node in nodes}
    members.update(dict.fromkeys(silent))
    for node in nodes:
        node.members = dict(members)


@contextlib.contextmanager
def served(view: NodeView, *, debug: bool = False) -> Iterator[str]:
    """The API over ``view`` served on a free port of 127.0.0.1 in a thread of its own; yields its base URL and
    stops the server (waiting for it to finish) on exit."""
    ports: queue.Queue[int] = queue.Queue()
    with anyio.from_thread.start_blocking_portal() as portal:
        shutdown = portal.call(anyio.Event)
        server = portal.start_task_soon(
            functools.partial(serve, view, "127.0.0.1", 0, debug=debug, ready=ports.put, shutdown=shutdown)
        )
        port = ports.get(timeout=30)
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            portal.call(shutdown.set)
            server.result(timeout=30)
