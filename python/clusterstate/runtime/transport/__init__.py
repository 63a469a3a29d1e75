"""The one transport protocol the runtime talks to, and the inbox every incoming stream is read from.

Two implementations: :mod:`.zenoh` (the only module importing zenoh) and :mod:`.memory` (a seeded in-memory
network). Every incoming stream (subscription, queryable, liveliness watch) is an :class:`Inbox`: a bounded deque
that drops its oldest item when full and counts it (``dropped``), read with ``async for``. Every stream the runtime
reads can recover from a drop (frames are refetched as pages, envelopes resent by the outbox, queries time out).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

import anyio

__all__ = ["DEFAULT_CAPACITY", "Inbox", "Liveliness", "Reply", "Request", "Transport"]

T = TypeVar("T")
DEFAULT_CAPACITY = 65_536


class Inbox(Generic[T]):
    """A bounded, drop-oldest queue filled from any thread and read by one task of the event loop.

    The filler calls :meth:`put` (from a foreign thread it passes `wake`, which schedules a call on the loop
    thread, e.g. ``loop.call_soon_threadsafe``). The reader is woken once per burst: only when it is waiting.
    `discard` is called with every item dropped by an overflow (a query must be finalised, say).
    """

    def __init__(self, capacity: int = DEFAULT_CAPACITY, discard: Callable[[T], object] | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"inbox capacity must be at least 1, got {capacity}")
        self._items: deque[T] = deque()
        self._capacity = capacity
        self._discard = discard
        self._lock = threading.Lock()
        self._waiting: anyio.Event | None = None
        self._closed = False
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    def put(self, item: T, wake: Callable[[Callable[[], None]], object] | None = None) -> None:
        """Append `item` (dropping and counting the oldest when full); wake the reader if it waits. `wake` runs
        its argument on the loop thread; without it the caller is on the loop thread."""
        dropped: T | None = None
        with self._lock:
            if self._closed:
                return
            if len(self._items) == self._capacity:
                dropped = self._items.popleft()
                self.dropped += 1
            self._items.append(item)
            waiting, self._waiting = self._waiting, None
        if dropped is not None and self._discard is not None:
            self._discard(dropped)
        if waiting is not None:
            (wake or _call)(waiting.set)

    def close(self, wake: Callable[[Callable[[], None]], object] | None = None) -> None:
        """End the stream: the reader gets what is queued, then the iteration stops."""
        with self._lock:
            self._closed = True
            waiting, self._waiting = self._waiting, None
        if waiting is not None:
            (wake or _call)(waiting.set)

    def clear(self) -> None:
        """Drop every queued item, passing each to `discard` (a closed queryable finalises its queries)."""
        with self._lock:
            items = list(self._items)
            self._items.clear()
        if self._discard is not None:
            for item in items:
                self._discard(item)

    async def receive(self) -> T:
        """The next item; ``anyio.EndOfStream`` once closed and drained."""
        while True:
            with self._lock:
                if self._items:
                    return self._items.popleft()
                if self._closed:
                    raise anyio.EndOfStream
                event = self._waiting = anyio.Event()
            await event.wait()

    def __aiter__(self) -> AsyncIterator[T]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[T]:
        while True:
            try:
                yield await self.receive()
            except anyio.EndOfStream:
                return


def _call(fn: Callable[[], None]) -> None:
    fn()


@dataclass(frozen=True)
class Liveliness:
    """A liveliness token appeared (`alive`) or went away, under `key`."""

    key: str
    alive: bool


@dataclass(frozen=True)
class Reply:
    """One reply to a query: a payload, or an error payload when `ok` is false."""

    payload: bytes
    ok: bool = True


class Request(Protocol):
    """A query received by a queryable: answer it once with :meth:`reply` or :meth:`reply_err`, from the loop."""

    @property
    def key(self) -> str: ...

    @property
    def parameters(self) -> Mapping[str, str]: ...

    def reply(self, payload: bytes) -> None: ...

    def reply_err(self, payload: bytes) -> None: ...


class Transport(Protocol):
    """What the runtime needs from the network. Keys are concrete except where a method says a pattern."""

    def publish(self, key: str, payload: bytes, *, express: bool = False) -> None:
        """Send `payload` to every subscriber of a pattern matching `key` (reliable, in order per publisher)."""

    def subscribe(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AbstractAsyncContextManager[Inbox[bytes]]:
        """The payloads published on keys matching `pattern`, while the context is open."""

    def serve(self, key: str, capacity: int = DEFAULT_CAPACITY) -> AbstractAsyncContextManager[Inbox[Request]]:
        """The queries addressed to `key`, while the context is open (a queryable)."""

    async def query(self, key: str, parameters: Mapping[str, str], within: float) -> list[Reply]:
        """Ask every queryable serving `key`; the replies that came `within` seconds (none at once when
        nobody serves it)."""

    def token(self, key: str) -> AbstractAsyncContextManager[None]:
        """Hold a liveliness token on `key` while the context is open."""

    def watch(self, pattern: str, capacity: int = DEFAULT_CAPACITY) -> AbstractAsyncContextManager[Inbox[Liveliness]]:
        """The tokens present on keys matching `pattern` (as alive), then every appearance and disappearance."""

    def peers(self) -> list[str]:
        """The ids of the sessions this one is connected to right now (for ``/cluster``; never an identity)."""
