"""The zenoh transport: one session per process, in router mode, with explicit endpoints.

The only module that imports zenoh. Zenoh calls its callbacks on its own threads; each callback only appends to
the stream's :class:`Inbox` and, when the reading task waits, schedules one wake-up on the event loop with
``loop.call_soon_threadsafe`` (so it needs the asyncio backend of anyio). Queries are queued the same way and
answered later from the loop thread, where the cores live. The session is always closed on exit.

Settings (:class:`ZenohConfig`), as measured on loopback: router mode, so one cut link does not split the views;
multicast scouting off unless asked (``discover``); gossip on except where a test must not be routed around; a 3 s
lease (a hung peer's tokens go away after about one lease); a 2 s open timeout and a 250 ms → 1 s connect retry, so
a healed link comes back in about 1.5 s instead of 7.5 s; shared memory off.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, cast

import anyio
import zenoh

from clusterstate.runtime.errors import TransportError

from . import DEFAULT_CAPACITY, Inbox, Liveliness, Reply, Request

__all__ = ["ZenohConfig", "ZenohTransport", "open_zenoh"]


@dataclass(frozen=True)
class ZenohConfig:
    """The zenoh session settings of one node."""

    listen: tuple[str, ...] = ("tcp/0.0.0.0:52420",)
    connect: tuple[str, ...] = ()
    discover: bool = False  # multicast scouting
    gossip: bool = True
    lease_ms: int = 3000
    keep_alive: int = 4
    open_timeout_ms: int = 2000
    retry_init_ms: int = 250
    retry_max_ms: int = 1000

    def session_config(self) -> zenoh.Config:
        config = zenoh.Config()
        settings: dict[str, Any] = {
            "mode": "router",
            "listen/endpoints": list(self.listen),
            "connect/endpoints": list(self.connect),
            "connect/retry": {
                "period_init_ms": self.retry_init_ms,
                "period_max_ms": self.retry_max_ms,
                "period_increase_factor": 2,
            },
            "scouting/multicast/enabled": self.discover,
            "scouting/gossip/enabled": self.gossip,
            "transport/link/tx/lease": self.lease_ms,
            "transport/link/tx/keep_alive": self.keep_alive,
            "transport/unicast/open_timeout": self.open_timeout_ms,
            "transport/shared_memory/enabled": False,
        }
        for key, value in settings.items():
            config.insert_json5(key, json.dumps(value))
        return config


@asynccontextmanager
async def open_zenoh(config: ZenohConfig) -> AsyncIterator[ZenohTransport]:
    """A transport over a new zenoh session, closed on exit (:class:`TransportError` when it cannot open)."""
    loop = asyncio.get_running_loop()
    try:
        session = await anyio.to_thread.run_sync(zenoh.open, config.session_config())
    except zenoh.ZError as e:
        raise TransportError(f"cannot open the zenoh session (listen {list(config.listen)}): {e}") from None
    transport = ZenohTransport(session, loop)
    try:
        yield transport
    finally:
        transport.close()


class _Request:
    """A zenoh query, answered on the queryable's key and finalised by the one reply."""

    def __init__(self, query: zenoh.Query, reply_key: str) -> None:
        self._query = query
        self._reply_key = reply_key
        self.key = str(query.key_expr)
        # The stub types `Parameters.__iter__` as returning a list; it iterates (key, value) pairs.
        self.parameters: Mapping[str, str] = dict(cast("Iterable[tuple[str, str]]", query.parameters))

    def reply(self, payload: bytes) -> None:
        with self._query as query:
            query.reply(self._reply_key, payload)

    def reply_err(self, payload: bytes) -> None:
        with self._query as query:
            query.reply_err(payload)


def _finalise(request: Request) -> None:
    if isinstance(request, _Request):
        request._query.drop()


class ZenohTransport:
    """:class:`~clusterstate.runtime.transport.Transport` over one zenoh session."""

    def __init__(self, session: zenoh.Session, loop: asyncio.AbstractEventLoop) -> None:
        self._session = session
        self._loop = loop
        self._publishers: dict[tuple[str, bool], zenoh.Publisher] = {}

    def _wake(self, fn: Callable[[], None]) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(fn)

    def close(self) -> None:
        for publisher in self._publishers.values():
            publisher.undeclare()
        self._publishers.clear()
        self._session.close()

    def publish(self, key: str, payload: bytes, *, express: bool = False) -> None:
        publisher = self._publishers.get((key, express))
        if publisher is None:
            publisher = self._session.declare_publisher(
                key,
                congestion_control=zenoh.CongestionControl.BLOCK,
                reliability=zenoh.Reliability.RELIABLE,
                express=express,
            )
            self._publishers[key, express] = publisher
        publisher.put(payload)

    @asynccontextmanager
    async def subscribe(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[bytes]]:
        inbox: Inbox[bytes] = Inbox(capacity)
        subscriber = self._session.declare_subscriber(
            pattern, lambda sample: inbox.put(sample.payload.to_bytes(), self._wake)
        )
        try:
            yield inbox
        finally:
            self._undeclare(subscriber.undeclare)
            inbox.close()

    @asynccontextmanager
    async def serve(self, key: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[Request]]:
        inbox: Inbox[Request] = Inbox(capacity, discard=_finalise)
        queryable = self._session.declare_queryable(key, lambda query: inbox.put(_Request(query, key), self._wake))
        try:
            yield inbox
        finally:
            self._undeclare(queryable.undeclare)
            inbox.close()
            inbox.clear()

    async def query(self, key: str, parameters: Mapping[str, str], within: float) -> list[Reply]:
        selector = zenoh.Selector(key, dict(parameters))

        def ask() -> list[Reply]:
            return [_reply(r) for r in self._session.get(selector, timeout=within)]

        return await anyio.to_thread.run_sync(ask, abandon_on_cancel=True)

    @asynccontextmanager
    async def token(self, key: str) -> AsyncIterator[None]:
        token = self._session.liveliness().declare_token(key)
        try:
            yield
        finally:
            self._undeclare(token.undeclare)

    @asynccontextmanager
    async def watch(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AsyncIterator[Inbox[Liveliness]]:
        inbox: Inbox[Liveliness] = Inbox(capacity)

        def seen(sample: zenoh.Sample) -> None:
            inbox.put(Liveliness(str(sample.key_expr), sample.kind == zenoh.SampleKind.PUT), self._wake)

        subscriber = self._session.liveliness().declare_subscriber(pattern, seen, history=True)
        try:
            yield inbox
        finally:
            self._undeclare(subscriber.undeclare)
            inbox.close()

    def peers(self) -> list[str]:
        info = self._session.info
        return sorted({str(zid) for zid in [*info.routers_zid(), *info.peers_zid()]})

    def _undeclare(self, undeclare: Callable[[], object]) -> None:
        """Undeclare an entity unless the session is already closed (which undeclared everything)."""
        if not self._session.is_closed():
            undeclare()


def _reply(reply: zenoh.Reply) -> Reply:
    if reply.ok is not None:
        return Reply(reply.ok.payload.to_bytes())
    if reply.err is not None:
        return Reply(reply.err.payload.to_bytes(), ok=False)
    return Reply(b"", ok=False)
