"""``clusterstate node``: the shell that runs one :class:`~.machine.NodeMachine` over zenoh, in one anyio task group.

The shell decides nothing. It carries out the machine's effects over the :class:`~.transport.Transport` (publish,
subscribe, tokens, queryables, fetches), feeds back what arrives, ticks the machine on its timers (the monotonic
clock: a wall-clock jump changes nothing), pushes the real gatherers' samples into the producer and serves the
HTTP read API. Every machine call runs on the event-loop thread, where the Rust cores live.

Start-up refuses a node id that is already live: a second process on the same data directory fails on its lock
(:class:`~.datadir.DataDirLockedError`), and a member token already present under this node id (a cloned disk on
another machine) raises :class:`NodeIdInUseError`. Shutdown (:meth:`NodeShell.stop`, on SIGTERM or SIGINT): the
gatherers stop, the outbox gets up to `drain_s` to empty, then the machine stops (a master resigns, so the next
round needs no debounce) and the session closes. A second signal exits at once.
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
from anyio.abc import TaskGroup

from clusterstate.errors import ClusterStateError, OutboxFullError
from clusterstate.gatherers import Gatherer, GathererSettings, default_monitors
from clusterstate.models import Event, NodeId

from .actions import (
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
from .api import serve as serve_api
from .datadir import DataDir
from .keys import Keys
from .machine import NodeMachine, NodeOptions
from .transport import Inbox, Liveliness, Request, Transport
from .transport.zenoh import ZenohConfig, open_zenoh

__all__ = ["NodeIdInUseError", "NodeSettings", "NodeShell", "run_node"]

log = logging.getLogger("clusterstate.node")


class NodeIdInUseError(ClusterStateError, RuntimeError):
    """Another live process already uses this node id in the cluster."""


@dataclass(frozen=True)
class NodeSettings:
    """Everything ``clusterstate node`` is told."""

    data_dir: Path
    node_id: str | None = None  # None: the one kept in the data directory (made on first start)
    new_id: bool = False
    options: NodeOptions = field(default_factory=NodeOptions)
    zenoh: ZenohConfig = field(default_factory=ZenohConfig)
    api_host: str = "127.0.0.1"
    api_port: int | None = 52421  # None: no HTTP API; 0: any free port
    debug_api: bool = False
    gather: bool = True
    gatherer: GathererSettings | None = None
    drain_s: float = 2.0
    identity_wait_s: float = 1.0  # how long a member token under this node id is looked for at start


_DECLARE_WAIT_S = 2.0
"""The longest effects wait behind a stream being declared (a declaration is local: it takes microseconds)."""


def _now() -> float:
    return time.monotonic()


class NodeShell:
    """The running node: a machine, a transport and the tasks carrying effects between them."""

    def __init__(self, machine: NodeMachine, transport: Transport, group: TaskGroup, settings: NodeSettings) -> None:
        self.machine = machine
        self.transport = transport
        self.settings = settings
        self._group = group
        self._streams: dict[tuple[type, str], tuple[AsyncExitStack, anyio.CancelScope, Inbox[Any] | None]] = {}
        self._empty_waiters: list[anyio.Event] = []
        self._effects: deque[Effect] = deque()
        self._opening = False  # an effect waits for a stream to be declared: later ones queue behind it

    # The HTTP API's view of the node (clusterstate.runtime.api.NodeView).

    @property
    def node_id(self) -> str:
        return self.machine.node_id

    def status(self) -> dict[str, Any]:
        status = self.machine.status()
        status["dropped"] = {
            f"{kind.__name__.lower()} {key}": inbox.dropped
            for (kind, key), (_, _, inbox) in self._streams.items()
            if inbox is not None and inbox.dropped
        }
        status["peers"] = self.transport.peers()
        return status

    def state_json(self) -> bytes:
        return self.machine.state.model_dump_json(by_alias=True).encode()

    def events_since(self, since: int, limit: int) -> list[bytes]:
        return self.machine.events_since(since, limit)

    async def statuses(self, within: float) -> dict[str, dict[str, Any] | None]:
        """Every live member's status (None for a member that did not answer `within` seconds)."""
        replies = await self.transport.query(self.machine.keys.statuses(), {}, within)
        found: dict[str, dict[str, Any] | None] = dict.fromkeys(self.machine.view.members)
        for reply in replies:
            if not reply.ok:
                continue
            try:
                status = json.loads(reply.payload)
                found[str(status["node"])] = status
            except (ValueError, KeyError, TypeError):
                continue
        return found

    async def emit(self, event: Event, within: float) -> int:
        """Push `event` and wait until the outbox has released everything pushed so far (it included)."""
        self.push(event)
        with anyio.fail_after(within):
            await self._outbox_empty()
        return self.machine.next_index

    async def _outbox_empty(self) -> None:
        if self.machine.producer.outbox.pending:
            emptied = anyio.Event()
            self._empty_waiters.append(emptied)
            await emptied.wait()

    # Carrying out effects.

    def push(self, event: Event) -> None:
        """A local event into the producer (an `OutboxFullError` is raised to the caller)."""
        self._run(self.machine.push(event, _now()))

    def _run(self, effects: list[Effect]) -> None:
        """Carry out `effects` in order, after those of earlier calls. An effect after one that opens a stream
        waits until that stream is declared: an acknowledgement or frame published to a subscription that is not
        declared yet would be lost. Everything else happens at once; a fetch runs as a task of its own."""
        self._effects.extend(effects)
        if not self._opening:
            self._drain()

    def _drain(self) -> None:
        while self._effects:
            effect = self._effects.popleft()
            if isinstance(effect, Publish):
                self.transport.publish(effect.key, effect.payload)
            elif isinstance(effect, Fetch):
                self._group.start_soon(self._fetch, effect)
            elif isinstance(effect, Unsubscribe | Unserve | Undeclare):
                self._close(effect)
            else:
                declared = self._open(effect)
                if declared is not None and self._effects:
                    self._opening = True
                    self._group.start_soon(self._drain_once_declared, declared)
                    return
        if self._empty_waiters and not self.machine.producer.outbox.pending:
            for waiter in self._empty_waiters:
                waiter.set()
            self._empty_waiters.clear()

    async def _drain_once_declared(self, declared: anyio.Event) -> None:
        with anyio.move_on_after(_DECLARE_WAIT_S):
            await declared.wait()
        self._opening = False
        self._drain()

    def _open(self, effect: Subscribe | Watch | Serve | Declare) -> anyio.Event | None:
        """Start the stream's task; the event it sets once the stream is declared (None: it was open already)."""
        kind, key = _stream_of(effect)
        if (kind, key) in self._streams:
            return None
        stack = AsyncExitStack()
        scope = anyio.CancelScope()
        declared = anyio.Event()
        self._streams[kind, key] = (stack, scope, None)
        self._group.start_soon(self._stream, effect, stack, scope, declared)
        return declared

    def _close(self, effect: Unsubscribe | Unserve | Undeclare) -> None:
        kind = {Unsubscribe: Subscribe, Unserve: Serve, Undeclare: Declare}[type(effect)]
        key = effect.pattern if isinstance(effect, Unsubscribe) else effect.key
        entry = self._streams.pop((kind, key), None)
        if entry is not None:
            entry[1].cancel()

    async def _stream(
        self,
        effect: Subscribe | Watch | Serve | Declare,
        stack: AsyncExitStack,
        scope: anyio.CancelScope,
        declared: anyio.Event,
    ) -> None:
        kind, key = _stream_of(effect)
        with scope:
            async with stack:
                if isinstance(effect, Declare):
                    await stack.enter_async_context(self.transport.token(key))
                    declared.set()
                    await anyio.sleep_forever()
                elif isinstance(effect, Subscribe):
                    inbox = await stack.enter_async_context(self.transport.subscribe(key))
                    self._declared(kind, key, inbox, declared)
                    await self._read_publications(key, inbox)
                elif isinstance(effect, Watch):
                    watch = await stack.enter_async_context(self.transport.watch(key))
                    self._declared(kind, key, watch, declared)
                    await self._read_liveliness(watch)
                else:
                    queries = await stack.enter_async_context(self.transport.serve(key))
                    self._declared(kind, key, queries, declared)
                    await self._answer(key, queries)

    def _declared(self, kind: type, key: str, inbox: Inbox[Any], declared: anyio.Event) -> None:
        entry = self._streams.get((kind, key))
        if entry is not None:
            self._streams[kind, key] = (entry[0], entry[1], inbox)
        declared.set()

    async def _read_publications(self, pattern: str, inbox: Inbox[bytes]) -> None:
        async for first in inbox:
            batch = [first]
            while len(inbox) and len(batch) < 4096:
                batch.append(await inbox.receive())
            self._run(self.machine.on_publications(pattern, batch, _now()))

    async def _read_liveliness(self, inbox: Inbox[Liveliness]) -> None:
        async for change in inbox:
            self._run(self.machine.on_liveliness(change.key, change.alive, _now()))

    async def _answer(self, key: str, queries: Inbox[Request]) -> None:
        async for request in queries:
            answer = self.machine.on_query(key, request.parameters, _now())
            (request.reply if answer.ok else request.reply_err)(answer.payload)

    async def _fetch(self, fetch: Fetch) -> None:
        replies = await self.transport.query(fetch.key, fetch.parameters, self.machine.options.page_timeout_s)
        answer = Answer(replies[0].payload, replies[0].ok) if replies else None
        self._run(self.machine.on_reply(fetch, answer, _now()))

    async def tick_forever(self) -> None:
        """Tick the machine when its next timer is due (at least every `tick_s`)."""
        while True:
            await anyio.sleep(max(0.0, self.machine.next_timer - _now()))
            self._run(self.machine.tick(_now()))

    async def gather_forever(self) -> None:
        """Push this machine's hardware samples; a full outbox drops the sample (the next one replaces it)."""
        gatherer = Gatherer(NodeId(self.node_id), default_monitors(self.settings.gatherer))
        async with gatherer.events() as events:
            async for event in events:
                try:
                    self.push(event)
                except OutboxFullError:
                    self.machine.counters["samples_dropped_outbox_full"] += 1

    async def drain(self, within: float) -> bool:
        """Wait up to `within` seconds for the outbox to empty; whether it did."""
        with anyio.move_on_after(within):
            await self._outbox_empty()
        return not self.machine.producer.outbox.pending

    async def stop(self) -> None:
        """The machine's stop effects, carried out at once (the master's resignation included)."""
        effects = self.machine.stop(_now())
        for effect in effects:
            if isinstance(effect, Publish):
                self.transport.publish(effect.key, effect.payload)
        for _, scope, _ in self._streams.values():
            scope.cancel()
        self._streams.clear()
        await anyio.lowlevel.checkpoint()


def _stream_of(effect: Subscribe | Watch | Serve | Declare) -> tuple[type, str]:
    key = effect.pattern if isinstance(effect, Subscribe | Watch) else effect.key
    return type(effect), key


async def _refuse_live_id(transport: Transport, key: str, node_id: str, within: float) -> None:
    """Raise :class:`NodeIdInUseError` when a member token under `node_id` shows up within `within` seconds."""
    async with transport.watch(key) as seen:
        with anyio.move_on_after(within):
            async for change in seen:
                if change.alive:
                    raise NodeIdInUseError(
                        f"node id {node_id} is already live in this cluster (another process holds its member "
                        "token; a cloned data directory? start this one with --new-id)"
                    )


@asynccontextmanager
async def _signals(on_first: Callable[[], None]) -> AsyncIterator[None]:
    """Call `on_first` on the first SIGTERM/SIGINT; exit at once on the second."""

    async def watch() -> None:
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as received:
            count = 0
            async for signum in received:
                count += 1
                if count > 1:
                    log.warning("second signal (%s): exiting at once", signal.Signals(signum).name)
                    os._exit(128 + signum)
                log.info("%s: stopping", signal.Signals(signum).name)
                on_first()

    async with anyio.create_task_group() as group:
        group.start_soon(watch)
        try:
            yield
        finally:
            group.cancel_scope.cancel()


async def run_node(
    settings: NodeSettings,
    *,
    ready: Callable[[Mapping[str, Any]], None] | None = None,
    stop: anyio.Event | None = None,
    handle_signals: bool = True,
) -> None:
    """Run one node until `stop` is set (or a signal comes): the data directory, the zenoh session, the machine,
    the gatherers and the HTTP API. `ready` gets ``{"node", "cluster", "api", "listen"}`` once everything serves."""
    stop = stop or anyio.Event()
    with DataDir(settings.data_dir) as data:
        node_id = data.node_id(settings.node_id, new=settings.new_id)
        keys_cluster = settings.options.cluster
        async with open_zenoh(settings.zenoh) as transport:
            await _refuse_live_id(transport, Keys(keys_cluster).member(node_id), node_id, settings.identity_wait_s)
            machine = NodeMachine(node_id, data, settings.options, now=_now())
            async with anyio.create_task_group() as group:
                shell = NodeShell(machine, transport, group, settings)
                shell._run(machine.start(_now()))
                group.start_soon(shell.tick_forever)
                gathering = anyio.CancelScope()
                if settings.gather:
                    group.start_soon(_in_scope, gathering, shell.gather_forever)
                api_url: str | None = None
                api_stop = anyio.Event()
                if settings.api_port is not None:
                    api_ready: dict[str, Any] = {}
                    started = anyio.Event()

                    def on_api_ready(port: int) -> None:
                        api_ready["port"] = port
                        started.set()

                    group.start_soon(
                        lambda: serve_api(
                            shell,
                            settings.api_host,
                            settings.api_port or 0,
                            debug=settings.debug_api,
                            ready=on_api_ready,
                            shutdown=api_stop,
                        )
                    )
                    await started.wait()
                    api_url = f"http://{settings.api_host}:{api_ready['port']}"
                log.info("node %s of cluster %s is up (API %s)", node_id, keys_cluster, api_url or "off")
                if ready is not None:
                    ready({"node": node_id, "cluster": keys_cluster, "api": api_url, "listen": settings.zenoh.listen})
                async with _signals(stop.set) if handle_signals else _nothing():
                    await stop.wait()
                    gathering.cancel()
                    log.info("stopping: draining the outbox (up to %.1f s)", settings.drain_s)
                    await shell.drain(settings.drain_s if math.isfinite(settings.drain_s) else 0.0)
                    await shell.stop()
                    api_stop.set()
                    await anyio.sleep(0.05)
                    group.cancel_scope.cancel()


@asynccontextmanager
async def _nothing() -> AsyncIterator[None]:
    yield


async def _in_scope(scope: anyio.CancelScope, run: Callable[[], Awaitable[None]]) -> None:
    with scope:
        await run()
