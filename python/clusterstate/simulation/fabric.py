"""The simulated network of :mod:`.cluster`: a heap of timed deliveries standing in for zenoh, in simulated time.

- **Publications** reach every attached port with a subscription matching the key (:func:`~clusterstate.runtime.keys.
  matches`), the publisher's own included, as zenoh delivers them: each copy is lost, duplicated, delayed and
  held back (so reordered) by draws from the one seeded ``random.Random``.
- **Liveliness**: a declared token joins the fabric a short delay later and every watcher with a matching pattern
  is told; a watch first reports the tokens present. A closed port's tokens leave after a short delay, a frozen
  (hung) port's only after the lease; a thawed port's tokens come back and it is told what changed meanwhile.
- **Queries** go to the first port serving the key: its answer comes back after a delay; no server answers
  ``None`` at once; a lost query or reply, or a server that closes or freezes, answers ``None`` at the timeout.

A frozen port receives nothing (publications to it are dropped); the replies and timeouts of its queries wait
until it thaws, as a stopped process's timers fire late. Every delivery is folded into :attr:`Network.digest`,
with the random ids (uuids) numbered in order of appearance, so two runs of one seed have the same digest.
"""

from __future__ import annotations

import hashlib
import heapq
import random
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from clusterstate.runtime.actions import (
    Answer,
    Declare,
    Effect,
    Fetch,
    Publish,
    Serve,
    Subscribe,
    Undeclare,
    Unserve,
    Unsubscribe,
    Watch,
)
from clusterstate.runtime.keys import matches

__all__ = ["Handler", "Links", "Network", "Port"]

_UUID = re.compile(rb"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


@dataclass(frozen=True)
class Links:
    """How the network treats each message: `loss` and `copy` (duplication) chances, a delay drawn from `delay_s`,
    and a `late` chance of up to `late_s` more (reordering). Liveliness changes take `liveliness_s`; a closed
    port's tokens leave after `close_s`, a frozen one's after `lease_s`; a query unanswered for `timeout_s` gets
    ``None``."""

    loss: float = 0.0
    copy: float = 0.0
    delay_s: tuple[float, float] = (0.001, 0.02)
    late: float = 0.0
    late_s: float = 0.3
    liveliness_s: float = 0.02
    close_s: float = 0.1
    lease_s: float = 3.0
    timeout_s: float = 5.0


class Handler(Protocol):
    """What the network calls on a node."""

    def on_publication(self, pattern: str, payload: bytes) -> None: ...

    def on_liveliness(self, key: str, alive: bool) -> None: ...

    def on_query(self, key: str, parameters: Mapping[str, str]) -> Answer: ...

    def on_reply(self, fetch: Fetch, answer: Answer | None) -> None: ...


@dataclass(eq=False)
class Port:
    """One node process's attachment to the network; a restarted node attaches a new port."""

    name: str
    handler: Handler
    subscriptions: set[str] = field(default_factory=set)
    watches: set[str] = field(default_factory=set)
    serving: set[str] = field(default_factory=set)
    tokens: set[str] = field(default_factory=set)  # declared by this port
    seen: set[str] = field(default_factory=set)  # tokens reported alive to this port
    open: bool = True
    frozen: bool = False
    expired: bool = False  # frozen past the lease: its tokens left the fabric
    freezes: int = 0
    deferred: list[Callable[[], None]] = field(default_factory=list)

    @property
    def reachable(self) -> bool:
        return self.open and not self.frozen


@dataclass(eq=False)
class _Query:
    port: Port
    fetch: Fetch
    done: bool = False


class Network:
    """The ports, the token fabric and the heap of what is due; `rng` draws every fault."""

    def __init__(self, rng: random.Random, links: Links) -> None:
        self.rng = rng
        self.links = links
        self.now = 0.0
        self.ports: list[Port] = []
        self.tokens: dict[str, Port] = {}
        self.counters: dict[str, int] = {"delivered": 0, "lost": 0, "copied": 0, "late": 0, "query_timeouts": 0}
        self._heap: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self._digest = hashlib.sha256()
        self._ids: dict[bytes, bytes] = {}

    # The clock.

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Run `action` at simulated time `when` (after everything already due then)."""
        self._seq += 1
        heapq.heappush(self._heap, (max(when, self.now), self._seq, action))

    def step(self) -> bool:
        """Run the next due action; False when nothing is due."""
        if not self._heap:
            return False
        self.now, _, action = heapq.heappop(self._heap)
        action()
        return True

    @property
    def next_due(self) -> float:
        return self._heap[0][0] if self._heap else float("inf")

    @property
    def digest(self) -> str:
        return self._digest.hexdigest()

    def note(self, *parts: str | bytes) -> None:
        """Fold one happening into the digest (uuids numbered in order of first appearance)."""
        self._digest.update(b"%.9f" % self.now)
        for part in parts:
            raw = part.encode() if isinstance(part, str) else part
            self._digest.update(b"\0" + _UUID.sub(self._number, raw))
        self._digest.update(b"\n")

    def _number(self, match: re.Match[bytes]) -> bytes:
        return self._ids.setdefault(match.group(), b"#%d" % len(self._ids))

    # Ports.

    def attach(self, name: str, handler: Handler) -> Port:
        port = Port(name, handler)
        self.ports.append(port)
        return port

    def close(self, port: Port) -> None:
        """The process ended: nothing reaches it any more; its tokens leave after `close_s`."""
        port.open = False
        self.ports.remove(port)
        self.at(self.now + self.links.close_s, lambda: self._vanish_all(port))

    def freeze(self, port: Port) -> None:
        """The process stops (hangs): nothing reaches it; its tokens leave once the lease runs out."""
        port.frozen = True
        port.freezes += 1
        freeze = port.freezes
        self.at(self.now + self.links.lease_s, lambda: self._expire(port, freeze))

    def thaw(self, port: Port) -> None:
        """The process runs again: its tokens come back, it is told what changed, its query replies arrive."""
        port.frozen = False
        if port.expired:
            port.expired = False
            for key in sorted(port.tokens):
                self._appear(key, port)
        current = {key for key in self.tokens if any(matches(p, key) for p in port.watches)}
        for key in sorted(port.seen - current):
            self._tell(port, key, alive=False)
        for key in sorted(current - port.seen):
            self._tell(port, key, alive=True)
        deferred, port.deferred = port.deferred, []
        for action in deferred:
            action()

    # Effects.

    def carry_out(self, port: Port, effects: Iterable[Effect]) -> None:
        """Carry out a node's effects."""
        for effect in effects:
            if isinstance(effect, Publish):
                self.publish(effect.key, effect.payload)
            elif isinstance(effect, Subscribe):
                port.subscriptions.add(effect.pattern)
            elif isinstance(effect, Unsubscribe):
                port.subscriptions.discard(effect.pattern)
            elif isinstance(effect, Serve):
                port.serving.add(effect.key)
            elif isinstance(effect, Unserve):
                port.serving.discard(effect.key)
            elif isinstance(effect, Declare):
                port.tokens.add(effect.key)
                self.at(self.now + self.links.liveliness_s, partial(self._appear, effect.key, port))
            elif isinstance(effect, Undeclare):
                port.tokens.discard(effect.key)
                self.at(self.now + self.links.liveliness_s, partial(self._vanish, effect.key, port))
            elif isinstance(effect, Watch):
                self.at(self.now + self.links.liveliness_s, partial(self._watch, port, effect.pattern))
            else:
                self.query(port, effect)

    def publish(self, key: str, payload: bytes) -> None:
        for port in self.ports:
            for pattern in sorted(port.subscriptions):
                if matches(pattern, key):
                    for delay in self._copies():
                        self.at(self.now + delay, partial(self._deliver, port, pattern, key, payload))

    def query(self, port: Port, fetch: Fetch) -> None:
        query = _Query(port, fetch)
        server = next((p for p in self.ports if fetch.key in p.serving), None)
        if server is None:
            self.at(self.now, lambda: self._reply(query, None))
            return
        self.at(self.now + self.links.timeout_s, lambda: self._timeout(query))
        for delay in self._copies()[:1]:
            self.at(self.now + delay, lambda: self._ask(server, query))

    # Deliveries.

    def _copies(self) -> list[float]:
        """The delays of the copies of one message (none: lost)."""
        links, rng = self.links, self.rng
        if rng.random() < links.loss:
            self.counters["lost"] += 1
            return []
        copies = 2 if rng.random() < links.copy else 1
        self.counters["copied"] += copies - 1
        delays = []
        for _ in range(copies):
            delay = rng.uniform(*links.delay_s)
            if rng.random() < links.late:
                self.counters["late"] += 1
                delay += rng.uniform(0, links.late_s)
            delays.append(delay)
        return delays

    def _deliver(self, port: Port, pattern: str, key: str, payload: bytes) -> None:
        if port.reachable and pattern in port.subscriptions:
            self.counters["delivered"] += 1
            self.note("pub", port.name, key, payload)
            port.handler.on_publication(pattern, payload)

    def _ask(self, server: Port, query: _Query) -> None:
        fetch = query.fetch
        if not server.reachable or fetch.key not in server.serving:
            return
        self.note("query", server.name, fetch.key, str(fetch.since), str(fetch.limit))
        answer = server.handler.on_query(fetch.key, fetch.parameters)
        for delay in self._copies()[:1]:
            self.at(self.now + delay, lambda: self._reply(query, answer))

    def _timeout(self, query: _Query) -> None:
        if not query.done:
            self.counters["query_timeouts"] += 1
            self._reply(query, None)

    def _reply(self, query: _Query, answer: Answer | None) -> None:
        port = query.port
        if query.done or not port.open:
            return
        if port.frozen:
            port.deferred.append(lambda: self._reply(query, answer))
            return
        query.done = True
        self.note("reply", port.name, query.fetch.key, b"-" if answer is None else answer.payload)
        port.handler.on_reply(query.fetch, answer)

    # Liveliness.

    def _appear(self, key: str, port: Port) -> None:
        if not port.open or port.expired or key not in port.tokens:
            return
        known = key in self.tokens
        self.tokens[key] = port
        if not known:
            self._announce(key, alive=True)

    def _vanish(self, key: str, port: Port) -> None:
        if self.tokens.get(key) is port and (key not in port.tokens or not port.open or port.expired):
            del self.tokens[key]
            self._announce(key, alive=False)

    def _vanish_all(self, port: Port) -> None:
        for key in sorted(port.tokens):
            self._vanish(key, port)

    def _expire(self, port: Port, freeze: int) -> None:
        if port.open and port.frozen and port.freezes == freeze:
            port.expired = True
            self._vanish_all(port)

    def _watch(self, port: Port, pattern: str) -> None:
        if not port.open:
            return
        port.watches.add(pattern)
        if port.frozen:
            return  # told at the thaw
        for key in sorted(self.tokens):
            if matches(pattern, key) and key not in port.seen:
                self._tell(port, key, alive=True)

    def _announce(self, key: str, *, alive: bool) -> None:
        for port in list(self.ports):
            if port.reachable and any(matches(p, key) for p in port.watches) and (key in port.seen) != alive:
                self._tell(port, key, alive=alive)

    def _tell(self, port: Port, key: str, *, alive: bool) -> None:
        (port.seen.add if alive else port.seen.discard)(key)
        self.note("token+" if alive else "token-", port.name, key)
        port.handler.on_liveliness(key, alive)
