"""An in-memory, seeded network implementing the transport protocol, for tests and the simulator.

Published payloads travel over one link per subscriber with the network's :class:`Faults`: each copy may be lost or
duplicated when sent, and every payload in flight is held back a tick with probability `delay`; what arrives in one
tick arrives in random order when `reorder` is set. :meth:`MemoryNetwork.tick` delivers; without faults, a publish
delivers at once. One ``random.Random(seed)`` draws every fault in a fixed order, so a seed replays the same run.

Queries and liveliness are reliable and immediate: a query nobody serves gets no reply at once, as with zenoh; a
transport that closes (a crashed or stopped process) takes its tokens, subscriptions and queryables with it.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio

from clusterstate.runtime.keys import matches

from . import DEFAULT_CAPACITY, Inbox, Liveliness, Reply, Request

__all__ = ["Faults", "MemoryNetwork", "MemoryTransport"]


@dataclass(frozen=True)
class Faults:
    loss: float = 0.0
    copy: float = 0.0
    delay: float = 0.0
    reorder: bool = False


class MemoryNetwork:
    """The network the transports of one simulated cluster share."""

    def __init__(self, seed: int = 0, faults: Faults | None = None) -> None:
        self.rng = random.Random(seed)
        self.faults = faults or Faults()
        self.lost = 0
        self.copied = 0
        self._in_flight: list[tuple[Inbox[bytes], bytes]] = []
        self._subscriptions: list[tuple[str, Inbox[bytes]]] = []
        self._queryables: list[tuple[str, Inbox[Request]]] = []
        self._tokens: list[tuple[str, MemoryTransport]] = []
        self._watches: list[tuple[str, Inbox[Liveliness]]] = []
        self._transports: list[MemoryTransport] = []

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[MemoryTransport]:
        """A transport on this network, closed on exit."""
        transport = MemoryTransport(self)
        try:
            yield transport
        finally:
            transport.close()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def send(self, key: str, payload: bytes) -> None:
        for pattern, inbox in self._subscriptions:
            if not matches(pattern, key):
                continue
            if self.rng.random() < self.faults.loss:
                self.lost += 1
                continue
            self._in_flight.append((inbox, payload))
            if self.rng.random() < self.faults.copy:
                self.copied += 1
                self._in_flight.append((inbox, payload))
        if self.faults == Faults():
            self.tick()

    def tick(self) -> int:
        """Deliver what is in flight (less what is held back); the number of payloads delivered."""
        arrived: list[tuple[Inbox[bytes], bytes]] = []
        held: list[tuple[Inbox[bytes], bytes]] = []
        for item in self._in_flight:
            (held if self.rng.random() < self.faults.delay else arrived).append(item)
        self._in_flight = held
        if self.faults.reorder:
            self.rng.shuffle(arrived)
        for inbox, payload in arrived:
            inbox.put(payload)
        return len(arrived)

    def _liveliness(self, key: str, alive: bool) -> None:
        for pattern, inbox in self._watches:
            if matches(pattern, key):
                inbox.put(Liveliness(key, alive))


class _Request:
    def __init__(self, key: str, parameters: Mapping[str, str], replies: list[Reply], done: anyio.Event) -> None:
        self.key = key
        self.parameters = dict(parameters)
        self._replies = replies
        self._done = done

    def reply(self, payload: bytes) -> None:
        self._answer(Reply(payload))

    def reply_err(self, payload: bytes) -> None:
        self._answer(Reply(payload, ok=False))

    def _answer(self, reply: Reply) -> None:
        if self._done.is_set():
            raise RuntimeError(f"query on {self.key!r} already answered")
        self._replies.append(reply)
        self._done.set()


class MemoryTransport:
    """:class:`~clusterstate.runtime.transport.Transport` on a :class:`MemoryNetwork`."""

    def __init__(self, network: MemoryNetwork) -> None:
        self._network = network
        self.ident = f"memory-{len(network._transports)}"
        network._transports.append(self)
        self._closed = False
        self._inboxes: list[Inbox[bytes] | Inbox[Request] | Inbox[Liveliness]] = []

    def peers(self) -> list[str]:
        return [t.ident for t in self._network._transports if t is not self and not t._closed]

    def close(self) -> None:
        """Leave the network: this transport's tokens go away, its streams stop receiving and end."""
        net = self._network
        self._closed = True
        for key, owner in list(net._tokens):
            if owner is self:
                self._drop_token(key)
        mine = self._inboxes
        net._subscriptions = [e for e in net._subscriptions if e[1] not in mine]
        net._queryables = [e for e in net._queryables if e[1] not in mine]
        net._watches = [e for e in net._watches if e[1] not in mine]
        net._in_flight = [e for e in net._in_flight if e[0] not in mine]
        for inbox in mine:
            inbox.close()

    def publish(self, key: str, payload: bytes, *, express: bool = False) -> None:
        if not self._closed:
            self._network.send(key, payload)

    @asynccontextmanager
    async def subscribe(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[bytes]]:
        inbox: Inbox[bytes] = Inbox(capacity)
        net = self._network
        self._open(inbox)
        net._subscriptions.append((pattern, inbox))
        try:
            yield inbox
        finally:
            net._subscriptions = [e for e in net._subscriptions if e[1] is not inbox]
            net._in_flight = [e for e in net._in_flight if e[0] is not inbox]
            inbox.close()

    @asynccontextmanager
    async def serve(self, key: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[Request]]:
        inbox: Inbox[Request] = Inbox(capacity)
        net = self._network
        self._open(inbox)
        net._queryables.append((key, inbox))
        try:
            yield inbox
        finally:
            net._queryables = [e for e in net._queryables if e[1] is not inbox]
            inbox.close()
            inbox.clear()

    async def query(self, key: str, parameters: Mapping[str, str], within: float) -> list[Reply]:
        servers = [inbox for pattern, inbox in self._network._queryables if matches(pattern, key)]
        replies: list[Reply] = []
        pending = []
        for inbox in servers:
            done = anyio.Event()
            inbox.put(_Request(key, parameters, replies, done))
            pending.append(done)
        with anyio.move_on_after(within):
            for done in pending:
                await done.wait()
        return list(replies)

    @asynccontextmanager
    async def token(self, key: str) -> AsyncIterator[None]:
        if self._closed:
            raise RuntimeError("the transport is closed")
        self._network._tokens.append((key, self))
        self._network._liveliness(key, alive=True)
        try:
            yield
        finally:
            self._drop_token(key)

    def _drop_token(self, key: str) -> None:
        entry = (key, self)
        if entry in self._network._tokens:
            self._network._tokens.remove(entry)
            self._network._liveliness(key, alive=False)

    @asynccontextmanager
    async def watch(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[Liveliness]]:
        inbox: Inbox[Liveliness] = Inbox(capacity)
        net = self._network
        self._open(inbox)
        for key, _owner in net._tokens:
            if matches(pattern, key):
                inbox.put(Liveliness(key, alive=True))
        net._watches.append((pattern, inbox))
        try:
            yield inbox
        finally:
            net._watches = [e for e in net._watches if e[1] is not inbox]
            inbox.close()

    def _open(self, inbox: Inbox[bytes] | Inbox[Request] | Inbox[Liveliness]) -> None:
        if self._closed:
            raise RuntimeError("the transport is closed")
        self._inboxes.append(inbox)
